"""What each role group may do on the connector pages: 200 / 302, 403 (and nothing changed), 404, 405."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from sendconn.accounts import roles
from sendconn.connectors.models import AdminAuditLogEntry, SendConnector

pytestmark = pytest.mark.django_db
UNKNOWN_GUID = "6f1c9a8e-0000-4000-8000-000000000000"
ROLE_CLIENTS = {
    "Organization Management": "admin_client",
    "Server Management": "server_client",
    "View-Only Organization Management": "helpdesk_client",
}
READ_ONLY = ["server_client", "helpdesk_client"]


@pytest.fixture
def connector(make_connector):
    return make_connector("To internet", usage="Internet")


def test_migration_creates_the_three_role_groups_with_their_permissions():
    for name, permissions in roles.GROUP_PERMISSIONS.items():
        group = Group.objects.get(name=name)
        granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert granted == set(permissions), name


@pytest.mark.parametrize("page", ["connectors:list", "connectors:detail", "connectors:audit"])
@pytest.mark.parametrize("client_fixture", list(ROLE_CLIENTS.values()))
def test_every_role_group_can_read(request, client_fixture, page, connector):
    client = request.getfixturevalue(client_fixture)
    args = [] if page == "connectors:list" else [connector.guid]
    assert client.get(reverse(page, args=args)).status_code == 200


@pytest.mark.parametrize("page", ["connectors:detail", "connectors:audit"])
@pytest.mark.parametrize("client_fixture", list(ROLE_CLIENTS.values()))
def test_unknown_connector_is_404_for_readers(request, client_fixture, page):
    client = request.getfixturevalue(client_fixture)
    response = client.get(reverse(page, args=[UNKNOWN_GUID]))
    assert response.status_code == 404
    assert b"couldn't be found" in response.content


@pytest.mark.parametrize("page", ["connectors:list", "connectors:detail", "connectors:audit", "connectors:remove"])
def test_a_user_in_no_role_group_is_refused(nobody_client, page, connector):
    args = [] if page == "connectors:list" else [connector.guid]
    response = nobody_client.get(reverse(page, args=args))
    assert response.status_code == 403
    assert b"Access denied" in response.content


NAV_LINKS = ["ops:dashboard", "connectors:list", "ops:queues", "ops:tracking", "ops:protocol-logs"]


def test_a_user_in_no_role_group_is_offered_no_page_and_told_why(nobody_client):
    response = nobody_client.get(reverse("home"), follow=True)
    assert response.status_code == 403
    content = response.content.decode()
    assert "You aren't a member of any role group that can use the admin center yet." in content
    assert not [name for name in NAV_LINKS if f'href="{reverse(name)}"' in content]


@pytest.mark.parametrize("client_fixture", list(ROLE_CLIENTS.values()))
def test_every_role_group_sees_the_pages_it_can_open(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    content = client.get(reverse("connectors:list")).content.decode()
    for name in NAV_LINKS:
        assert f'href="{reverse(name)}"' in content, name
        assert client.get(reverse(name)).status_code == 200, name


def test_signed_out_visitors_are_sent_to_sign_in(client, connector):
    list_url = reverse("connectors:list")
    response = client.get(list_url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    response = client.post(reverse("connectors:disable", args=[connector.guid]))
    assert response.status_code == 302
    connector.refresh_from_db()
    assert connector.enabled is True


@pytest.mark.parametrize("client_fixture", READ_ONLY)
@pytest.mark.parametrize("action", ["connectors:enable", "connectors:disable", "connectors:remove"])
def test_read_only_roles_cannot_change_anything(request, client_fixture, action, connector):
    client = request.getfixturevalue(client_fixture)
    if action == "connectors:enable":
        SendConnector.objects.filter(pk=connector.pk).update(enabled=False)
    before = SendConnector.objects.values().get(pk=connector.pk)
    entries = AdminAuditLogEntry.objects.count()

    response = client.post(reverse(action, args=[connector.guid]))

    assert response.status_code == 403
    assert b"Access denied" in response.content
    assert SendConnector.objects.values().get(pk=connector.pk) == before
    assert AdminAuditLogEntry.objects.count() == entries


@pytest.mark.parametrize("client_fixture", READ_ONLY)
def test_read_only_roles_get_no_remove_confirmation(request, client_fixture, connector):
    client = request.getfixturevalue(client_fixture)
    assert client.get(reverse("connectors:remove", args=[connector.guid])).status_code == 403


@pytest.mark.parametrize("client_fixture", list(ROLE_CLIENTS.values()))
@pytest.mark.parametrize("action", ["connectors:enable", "connectors:disable"])
def test_enable_and_disable_are_post_only_for_everyone(request, client_fixture, action, connector):
    client = request.getfixturevalue(client_fixture)
    assert client.get(reverse(action, args=[connector.guid])).status_code == 405


def test_organization_management_can_change(admin_client, connector):
    assert admin_client.post(reverse("connectors:disable", args=[connector.guid])).status_code == 302
    assert admin_client.post(reverse("connectors:enable", args=[connector.guid])).status_code == 302
    assert admin_client.get(reverse("connectors:remove", args=[connector.guid])).status_code == 200


@pytest.mark.parametrize("action", ["connectors:enable", "connectors:disable", "connectors:remove"])
def test_organization_management_gets_404_for_unknown_connectors(admin_client, action):
    assert admin_client.post(reverse(action, args=[UNKNOWN_GUID])).status_code == 404


@pytest.mark.parametrize("page", ["connectors:list", "connectors:detail", "connectors:audit"])
def test_read_pages_refuse_post(admin_client, page, connector):
    args = [] if page == "connectors:list" else [connector.guid]
    assert admin_client.post(reverse(page, args=args)).status_code == 405


@pytest.mark.parametrize(
    "client_fixture, sees_buttons",
    [
        ("admin_client", True),
        ("server_client", False),
        ("helpdesk_client", False),
    ],
)
def test_the_list_shows_only_what_the_role_can_do(request, client_fixture, sees_buttons, connector):
    client = request.getfixturevalue(client_fixture)
    body = client.get(reverse("connectors:list")).content.decode()
    for button in ('aria-label="New"', 'aria-label="Edit"', 'aria-label="Delete"', ">Disable</button>"):
        assert (button in body) is sees_buttons, button


# The wizard and the edit dialog (their own tests cover what they do; here only who may open them).


@pytest.mark.parametrize(
    "client_fixture, status",
    [
        ("admin_client", 200),
        ("server_client", 403),
        ("helpdesk_client", 403),
        ("nobody_client", 403),
    ],
)
def test_only_organization_management_opens_the_wizard(request, client_fixture, status):
    client = request.getfixturevalue(client_fixture)
    assert client.get(reverse("connectors:new")).status_code == status


@pytest.mark.parametrize(
    "client_fixture, status",
    [
        ("admin_client", 200),
        ("server_client", 403),
        ("helpdesk_client", 403),
        ("nobody_client", 403),
    ],
)
@pytest.mark.parametrize("tab", ["general", "delivery", "scoping"])
def test_only_organization_management_opens_the_edit_dialog(request, client_fixture, status, tab, connector):
    client = request.getfixturevalue(client_fixture)
    assert client.get(reverse("connectors:edit", args=[connector.guid, tab])).status_code == status


@pytest.mark.parametrize("client_fixture", READ_ONLY)
def test_read_only_roles_cannot_save_an_edit(request, client_fixture, connector):
    client = request.getfixturevalue(client_fixture)
    before = SendConnector.objects.values().get(pk=connector.pk)
    response = client.post(reverse("connectors:edit", args=[connector.guid, "general"]), {"name": "Renamed"})
    assert response.status_code == 403
    assert SendConnector.objects.values().get(pk=connector.pk) == before


def test_edit_dialog_of_unknown_connector_or_tab_is_404(admin_client, connector):
    assert admin_client.get(reverse("connectors:edit", args=[UNKNOWN_GUID, "general"])).status_code == 404
    assert admin_client.get(reverse("connectors:edit", args=[connector.guid, "nonsense"])).status_code == 404
