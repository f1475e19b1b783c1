"""permissions › admin roles, users, sign-in lockouts: Organization Management only; every change audited."""

import re
from html import unescape

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from sendconn.accounts import roles
from sendconn.connectors.models import AdminAuditLogEntry

pytestmark = pytest.mark.django_db
REFUSED = ["server_client", "helpdesk_client", "nobody_client"]


def text(response):
    return unescape(response.content.decode())


def group_id(name):
    return Group.objects.get(name=name).pk


def groups(username):
    return sorted(User.objects.get(username=username).groups.values_list("name", flat=True))


def pages():
    org = group_id(roles.ORGANIZATION_MANAGEMENT)
    return [
        ("get", reverse("permissions:admin-roles"), {}),
        ("get", reverse("permissions:role-group", args=[org]), {}),
        ("post", reverse("permissions:add-member", args=[org]), {"member": "helpdesk"}),
        ("post", reverse("permissions:remove-member", args=[org]), {"member": "orgadmin"}),
        ("get", reverse("permissions:users"), {}),
        ("post", reverse("permissions:users"), {"username": "mallory"}),
        ("post", reverse("permissions:disable-user", args=[User.objects.get(username="orgadmin").pk]), {}),
        ("get", reverse("permissions:lockouts"), {}),
        ("post", reverse("permissions:clear-lockout"), {"kind": "username", "value": "orgadmin"}),
        ("get", reverse("permissions:audit"), {}),
    ]


def test_organization_management_opens_every_page(admin_client):
    for method, url, _ in pages():
        if method == "get":
            assert admin_client.get(url).status_code == 200, url


@pytest.mark.parametrize("client_fixture", REFUSED)
def test_everybody_else_is_refused_and_nothing_changes(request, client_fixture, org_admin, helpdesk):
    client = request.getfixturevalue(client_fixture)
    for method, url, data in pages():
        response = getattr(client, method)(url, data)
        assert response.status_code == 403, url
        assert b"Access denied" in response.content
    assert groups("orgadmin") == [roles.ORGANIZATION_MANAGEMENT]
    assert not User.objects.filter(username="mallory").exists()
    assert User.objects.get(username="orgadmin").is_active
    assert not AdminAuditLogEntry.objects.exists()


def test_signed_out_visitors_are_sent_to_sign_in(client, org_admin):
    for method, url, data in pages():
        response = getattr(client, method)(url, data)
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("login"))
    assert not AdminAuditLogEntry.objects.exists()


@pytest.mark.parametrize("client_fixture", ["admin_client", "server_client", "helpdesk_client"])
def test_only_organization_management_sees_permissions_in_the_navigation(request, client_fixture):
    content = request.getfixturevalue(client_fixture).get(reverse("connectors:list")).content.decode()
    shown = f'href="{reverse("permissions:admin-roles")}"' in content
    assert shown == (client_fixture == "admin_client")
    assert f'href="{reverse("password_change")}"' in content


def test_admin_roles_lists_the_three_role_groups_and_the_selected_ones_members(admin_client, server_admin):
    content = text(admin_client.get(reverse("permissions:admin-roles")))
    for name in roles.ROLE_GROUPS:
        assert name in content
    # Organization Management is selected first: its members are listed, the others are offered to add.
    assert "<td>orgadmin</td>" in content and "<td>serveradmin</td>" not in content
    content = text(admin_client.get(reverse("permissions:role-group", args=[group_id(roles.SERVER_MANAGEMENT)])))
    assert "<td>serveradmin</td>" in content and "have permissions to manage the transport servers" in content
    assert (
        admin_client.get(reverse("permissions:role-group", args=[Group.objects.create(name="Other").pk])).status_code
        == 404
    )


def test_add_and_remove_a_member(admin_client, nobody):
    group = group_id(roles.SERVER_MANAGEMENT)
    response = admin_client.post(reverse("permissions:add-member", args=[group]), {"member": "nobody"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("permissions:role-group", args=[group])
    assert '"nobody" is now a member of "Server Management".' in text(response)
    assert groups("nobody") == [roles.SERVER_MANAGEMENT]
    response = admin_client.post(reverse("permissions:remove-member", args=[group]), {"member": "nobody"}, follow=True)
    assert '"nobody" is no longer a member of "Server Management".' in text(response)
    assert groups("nobody") == []
    assert list(AdminAuditLogEntry.objects.order_by("id").values_list("caller", "source", "command_line")) == [
        ("orgadmin", "Web", "Add-RoleGroupMember -Identity 'Server Management' -Member nobody"),
        ("orgadmin", "Web", "Remove-RoleGroupMember -Identity 'Server Management' -Member nobody"),
    ]


def test_membership_refusals_are_shown_not_raised(admin_client):
    org = group_id(roles.ORGANIZATION_MANAGEMENT)
    response = admin_client.post(reverse("permissions:remove-member", args=[org]), {"member": "orgadmin"}, follow=True)
    assert "is the last enabled member of the role group" in text(response)
    response = admin_client.post(reverse("permissions:add-member", args=[org]), {"member": "ghost"}, follow=True)
    assert "Select a user to add." in text(response)
    assert admin_client.get(reverse("permissions:add-member", args=[org])).status_code == 405
    assert groups("orgadmin") == [roles.ORGANIZATION_MANAGEMENT]
    assert not AdminAuditLogEntry.objects.exists()


def test_the_add_list_offers_only_users_not_yet_members(admin_client, nobody, helpdesk):
    content = admin_client.get(
        reverse("permissions:role-group", args=[group_id(roles.VIEW_ONLY_ORGANIZATION_MANAGEMENT)])
    ).content.decode()
    assert '<option value="nobody">' in content and '<option value="orgadmin">' in content
    assert '<option value="helpdesk">' not in content


def test_create_a_user_shows_the_one_time_password_once(admin_client):
    response = admin_client.post(reverse("permissions:users"), {"username": "david", "password": ""})
    assert response.status_code == 200
    password = response.context["created"].password
    content = text(response)
    assert f'<code class="secret">{password}</code>' in content
    assert "no-store" in response["Cache-Control"]
    assert password not in admin_client.get(reverse("permissions:users")).content.decode()
    assert User.objects.get(username="david").check_password(password)
    assert AdminAuditLogEntry.objects.get().command_line == "New-ADUser -Name david -Enabled $true"


def test_create_a_user_with_a_password_set_by_the_admin(admin_client):
    response = admin_client.post(reverse("permissions:users"), {"username": "kim", "password": "Correct-Horse-7"})
    assert "Correct-Horse-7" not in text(response)
    assert "kim signs in with the password you set." in text(response)
    assert User.objects.get(username="kim").check_password("Correct-Horse-7")


def test_create_user_errors_are_shown_on_the_form(admin_client):
    response = admin_client.post(reverse("permissions:users"), {"username": "OrgAdmin", "password": ""})
    assert response.context["form"].errors == {"username": ['The user "OrgAdmin" already exists.']}
    response = admin_client.post(reverse("permissions:users"), {"username": "kim", "password": "abc"})
    assert "This password is too short." in response.context["form"].errors["password"][0]
    assert not User.objects.filter(username__in=["kim", "OrgAdmin"]).exists()
    assert not AdminAuditLogEntry.objects.exists()


def test_disable_and_enable_a_user(admin_client, helpdesk):
    disable = reverse("permissions:disable-user", args=[helpdesk.pk])
    response = admin_client.post(disable, follow=True)
    assert '"helpdesk" is disabled and can no longer sign in.' in text(response)
    assert not User.objects.get(username="helpdesk").is_active
    response = admin_client.post(reverse("permissions:enable-user", args=[helpdesk.pk]), follow=True)
    assert '"helpdesk" is enabled.' in text(response)
    assert User.objects.get(username="helpdesk").is_active
    response = admin_client.post(
        reverse("permissions:disable-user", args=[User.objects.get(username="orgadmin").pk]), follow=True
    )
    assert "You can't disable your own account." in text(response)
    assert admin_client.post(reverse("permissions:disable-user", args=[9999])).status_code == 404
    assert list(AdminAuditLogEntry.objects.order_by("id").values_list("command_line", flat=True)) == [
        "Disable-ADAccount -Identity helpdesk",
        "Enable-ADAccount -Identity helpdesk",
    ]


def test_a_disabled_users_session_ends(admin_client, helpdesk):
    helpdesk_client = Client()
    helpdesk_client.force_login(helpdesk)
    assert helpdesk_client.get(reverse("connectors:list")).status_code == 200
    admin_client.post(reverse("permissions:disable-user", args=[helpdesk.pk]))
    assert helpdesk_client.get(reverse("connectors:list")).status_code == 302


@pytest.mark.parametrize("client_fixture", ["admin_client", "helpdesk_client", "nobody_client"])
def test_every_user_changes_their_own_password(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    user = User.objects.get(pk=client.session["_auth_user_id"])
    page = client.get(reverse("password_change"))
    assert page.status_code == 200 and b"Change password" in page.content
    refused = client.post(
        reverse("password_change"),
        {
            "old_password": "wrong",
            "new_password1": "New-Secret-42",
            "new_password2": "New-Secret-42",
        },
    )
    assert "Your old password was entered incorrectly." in refused.content.decode()
    response = client.post(
        reverse("password_change"),
        {
            "old_password": f"Pa$$w0rd-{user.username}",
            "new_password1": "New-Secret-42",
            "new_password2": "New-Secret-42",
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("password_change_done")
    assert b"Your password was changed." in response.content
    user.refresh_from_db()
    assert user.check_password("New-Secret-42")


def test_the_audit_log_tab_lists_every_kind_of_permissions_change_and_nothing_else(admin_client, nobody):
    admin_client.post(reverse("permissions:add-member", args=[group_id(roles.SERVER_MANAGEMENT)]), {"member": "nobody"})
    admin_client.post(
        reverse("permissions:remove-member", args=[group_id(roles.SERVER_MANAGEMENT)]), {"member": "nobody"}
    )
    admin_client.post(reverse("permissions:users"), {"username": "david"})
    david = User.objects.get(username="david")
    admin_client.post(reverse("permissions:disable-user", args=[david.pk]))
    admin_client.post(reverse("permissions:enable-user", args=[david.pk]))
    attacker = Client(REMOTE_ADDR="198.51.100.7")
    for attempt in range(5):
        attacker.post(reverse("login"), {"username": "david", "password": f"wrong-{attempt}"})
    admin_client.post(reverse("permissions:clear-lockout"), {"kind": "username", "value": "david"})
    AdminAuditLogEntry.objects.create(
        object_name="EX01\\Unreachable",
        cmdlet="Retry-Queue",
        caller="orgadmin",
        command_line="Retry-Queue -Identity 'EX01\\Unreachable'",
        source="Web",
    )

    content = text(admin_client.get(reverse("permissions:audit")))
    commands = re.findall(r"<code>(.*?)</code>", content)
    assert commands == [
        "Clear-SignInLockout -UserName david",
        "Sign-in locked for 15 minutes after 5 failed attempts: user name david, address 198.51.100.7",
        "Enable-ADAccount -Identity david",
        "Disable-ADAccount -Identity david",
        "New-ADUser -Name david -Enabled $true",
        "Remove-RoleGroupMember -Identity 'Server Management' -Member nobody",
        "Add-RoleGroupMember -Identity 'Server Management' -Member nobody",
    ]
