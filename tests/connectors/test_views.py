"""The send connectors page: list, details pane, search, paging, Enable/Disable, Remove, audit log."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from sendconn.connectors.models import AdminAuditLogEntry, SendConnector
from sendconn.connectors.services import Caller, Credential, set_send_connector
from sendconn.connectors.views import PAGE_SIZE

pytestmark = pytest.mark.django_db
LIST_URL = reverse("connectors:list")


def row_names(response):
    """Connector names in list order, as shown in the NAME column."""
    body = response.content.decode()
    tbody = body[body.index("<tbody") : body.index("</tbody>")]
    return re.findall(r'<td><a class="row-link" href="[^"]*"(?: aria-current="true")?>([^<]*)</a></td>', tbody)


def details_heading(response):
    match = re.search(r'<h2 id="details-heading">([^<]*)</h2>', response.content.decode())
    return match and match.group(1)


def make_many(make_connector, count, start=0):
    return [make_connector(f"Connector {number:03d}") for number in range(start, start + count)]


# --- The list -----------------------------------------------------------------------------------------------


def test_list_shows_the_eac_columns(admin_client, make_connector):
    make_connector("To internet", usage="Internet")
    make_connector(
        "Relay",
        address_spaces=["contoso.com;5"],
        dns_routing_enabled=False,
        smart_hosts=["relay.contoso.com", "10.0.0.5"],
        enabled=False,
    )

    response = admin_client.get(LIST_URL)

    assertContains(response, "<h1>send connectors</h1>", html=True)
    for heading in ("NAME", "STATUS", "TYPE", "ADDRESS SPACES", "ROUTING"):
        assertContains(response, f'<th scope="col">{heading}</th>', html=True)
    assert row_names(response) == ["Relay", "To internet"]
    assertContains(response, "SMTP:*;1")
    assertContains(response, "SMTP:contoso.com;5")
    assertContains(response, "relay.contoso.com, 10.0.0.5")
    assertContains(response, "MX record associated with recipient domain")
    assertContains(response, '<td class="status-disabled">Disabled</td>', html=True)
    assertContains(response, '<td class="status-enabled">Enabled</td>', html=True)
    assertContains(response, "2 total")


def test_managers_get_the_eac_icon_buttons(admin_client, make_connector):
    connector = make_connector()
    response = admin_client.get(LIST_URL)
    for url, name in (
        (reverse("connectors:new"), "New"),
        (reverse("connectors:edit", args=[connector.guid, "general"]), "Edit"),
        (reverse("connectors:remove", args=[connector.guid]), "Delete"),
    ):
        assertContains(response, f'<a class="icon-button" href="{url}" aria-label="{name}" title="{name}"')
    assertContains(response, '<button type="submit" class="icon-button" aria-label="Search" title="Search">')
    assertContains(response, 'aria-label="Refresh" title="Refresh"')
    assertContains(response, f'action="{reverse("connectors:disable", args=[connector.guid])}"')


@pytest.mark.parametrize("client_fixture", ["helpdesk_client", "server_client"])
def test_read_only_roles_see_no_buttons_they_cannot_use(request, client_fixture, make_connector):
    connector = make_connector()
    client = request.getfixturevalue(client_fixture)
    response = client.get(LIST_URL)
    assert response.status_code == 200
    assert row_names(response) == ["To internet"]
    for hidden in ('aria-label="New"', 'aria-label="Edit"', 'aria-label="Delete"', ">Enable<", ">Disable<"):
        assertNotContains(response, hidden)
    assertNotContains(response, reverse("connectors:disable", args=[connector.guid]))
    assertContains(response, "View audit log")


def test_empty_list_says_so(admin_client):
    response = admin_client.get(LIST_URL)
    assertContains(response, "There are no items to show in this view.")
    assertNotContains(response, 'id="details"')
    assertContains(response, 'aria-label="New"')


def test_rows_are_sorted_by_name_ignoring_case(admin_client, make_connector):
    for name in ("beta", "Charlie", "alpha", "Delta"):
        make_connector(name)
    assert row_names(admin_client.get(LIST_URL)) == ["alpha", "beta", "Charlie", "Delta"]


# --- Selection and the details pane -------------------------------------------------------------------------


def test_first_connector_is_selected_by_default(admin_client, make_connector):
    make_connector("Zulu")
    make_connector("Alpha")
    response = admin_client.get(LIST_URL)
    assert details_heading(response) == "Alpha"
    assertContains(response, "1 selected of 2 total")


def test_clicking_a_row_selects_it_with_a_plain_link(admin_client, make_connector):
    make_connector("Alpha")
    zulu = make_connector("Zulu")
    response = admin_client.get(LIST_URL, {"q": "u"})
    link = f'href="?q=u&amp;page=1&amp;selected={zulu.guid}"'
    assertContains(response, link)

    response = admin_client.get(LIST_URL, {"q": "u", "page": 1, "selected": zulu.guid})
    assert details_heading(response) == "Zulu"
    assertContains(response, f'<a class="row-link" {link} aria-current="true">Zulu</a>', html=True)


def test_details_pane_shows_the_connector(admin_client, make_connector):
    connector = make_connector(
        "Relay",
        address_spaces=["contoso.com;5", "*.fabrikam.com"],
        dns_routing_enabled=False,
        smart_hosts=["relay.contoso.com"],
        smart_host_auth_mechanism="BasicAuthRequireTLS",
        authentication_credential=Credential("svc-relay", "S3cret!pw"),
        is_scoped_connector=True,
        fqdn="mail.contoso.com",
        protocol_logging_level="Verbose",
        max_message_size=10 * 1024 * 1024,
    )

    response = admin_client.get(LIST_URL, {"selected": connector.guid})

    pane = response.content.decode().split('id="details"', 1)[1]
    for shown in (
        "Custom",
        "SMTP:contoso.com;5",
        "SMTP:*.fabrikam.com;1",
        "Route mail through smart hosts",
        "relay.contoso.com",
        "Offer basic authentication only after starting TLS",
        "svc-relay",
        "EX01",
        "10 MB (10,485,760 bytes)",
        "mail.contoso.com",
        "Verbose",
        " UTC",
        reverse("connectors:audit", args=[connector.guid]),
    ):
        assert shown in pane, shown
    assert re.search(r"<dt>Scoped send connector</dt>\s*<dd>Yes</dd>", pane)
    assertNotContains(response, "S3cret")


def test_details_pane_of_an_mx_connector(admin_client, make_connector):
    make_connector("Internal", usage="Internal", dns_routing_enabled=False, smart_hosts=["10.0.0.1"])
    make_connector("To internet", usage="Internet")
    response = admin_client.get(LIST_URL, {"q": "internet"})
    pane = response.content.decode().split('id="details"', 1)[1]
    assert "MX record associated with recipient domain" in pane
    assert "Smart host authentication" not in pane
    assert "35 MB (36,700,160 bytes)" in pane
    # Internal connectors have no size limit.
    response = admin_client.get(LIST_URL, {"q": "internal"})
    assert "Unlimited" in response.content.decode().split('id="details"', 1)[1]


def test_selected_connector_opens_the_page_that_shows_it(admin_client, make_connector):
    connectors = make_many(make_connector, PAGE_SIZE + 3)
    last = connectors[-1]

    response = admin_client.get(LIST_URL, {"selected": last.guid})

    assert response.context["page"].number == 2
    assert row_names(response)[-1] == last.name
    assert details_heading(response) == last.name


def test_selection_outside_the_search_still_shows_its_details(admin_client, make_connector):
    make_connector("Alpha")
    zulu = make_connector("Zulu")
    response = admin_client.get(LIST_URL, {"q": "alpha", "selected": zulu.guid})
    assert row_names(response) == ["Alpha"]
    assert details_heading(response) == "Zulu"


@pytest.mark.parametrize("selected", ["not-a-guid", "6f1c9a8e-0000-4000-8000-000000000000"])
def test_unknown_selection_falls_back_to_the_first_connector(admin_client, make_connector, selected):
    make_connector("Alpha")
    response = admin_client.get(LIST_URL, {"selected": selected})
    assert response.status_code == 200
    assert details_heading(response) == "Alpha"


# --- Search and paging --------------------------------------------------------------------------------------


def test_search_filters_by_name(admin_client, make_connector):
    make_connector("To internet")
    make_connector("Contoso relay")
    make_connector("Fabrikam relay")
    response = admin_client.get(LIST_URL, {"q": "RELAY"})
    assert row_names(response) == ["Contoso relay", "Fabrikam relay"]
    assertContains(response, 'value="RELAY"')
    assert row_names(admin_client.get(LIST_URL, {"q": "nothing like it"})) == []


def test_list_is_paginated(admin_client, make_connector):
    make_many(make_connector, PAGE_SIZE + 10)

    first = admin_client.get(LIST_URL)
    assert len(row_names(first)) == PAGE_SIZE
    assertContains(first, f"{PAGE_SIZE + 10} total")
    assertContains(first, '<a href="?page=2">Next</a>', html=True)
    assertNotContains(first, ">Previous<")

    second = admin_client.get(LIST_URL, {"page": 2})
    assert row_names(second) == [f"Connector {number:03d}" for number in range(PAGE_SIZE, PAGE_SIZE + 10)]
    assertContains(second, '<a href="?page=1">Previous</a>', html=True)
    assertNotContains(second, ">Next<")
    # Out-of-range or junk page numbers land on a real page instead of an error.
    assert admin_client.get(LIST_URL, {"page": "999"}).context["page"].number == 2
    assert admin_client.get(LIST_URL, {"page": "x"}).context["page"].number == 1


def test_paging_keeps_the_search(admin_client, make_connector):
    make_many(make_connector, PAGE_SIZE + 1)
    response = admin_client.get(LIST_URL, {"q": "connector"})
    assertContains(response, '<a href="?q=connector&amp;page=2">Next</a>', html=True)


def count_queries(client, params):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST_URL, params)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("params", [{}, {"q": "connector"}, {"page": "1"}, {"selected": "first"}])
def test_query_count_does_not_grow_with_the_number_of_connectors(admin_client, make_connector, params):
    few = make_many(make_connector, 5)
    for connector in few:  # every related list in use, so a missing prefetch would show
        set_send_connector(
            Caller("tests", "Shell"),
            connector,
            dns_routing_enabled=False,
            smart_hosts=["relay.contoso.com", "10.0.0.1"],
            address_spaces=["*", "contoso.com"],
        )
    if params.get("selected") == "first":
        params = {"selected": few[0].guid}
    admin_client.get(LIST_URL)  # warm the session and permission caches
    with_5 = count_queries(admin_client, params)

    make_many(make_connector, 55, start=5)
    with_60 = count_queries(admin_client, params)

    assert with_60 == with_5
    assert with_5 <= 15


def test_htmx_row_click_gets_the_console_region(admin_client, make_connector):
    connector = make_connector()
    response = admin_client.get(
        LIST_URL, {"selected": connector.guid}, headers={"HX-Request": "true", "HX-Boosted": "true"}
    )
    assertContains(response, 'id="connector-console"')
    assert details_heading(response) == connector.name


def test_list_refuses_post(admin_client):
    assert admin_client.post(LIST_URL).status_code == 405


# --- Markup in names ----------------------------------------------------------------------------------------


def test_names_with_markup_are_escaped_everywhere(admin_client, make_connector):
    connector = make_connector("<script>x</script>")
    escaped = "&lt;script&gt;x&lt;/script&gt;"
    pages = [
        admin_client.get(LIST_URL),
        admin_client.get(reverse("connectors:detail", args=[connector.guid])),
        admin_client.get(reverse("connectors:remove", args=[connector.guid])),
        admin_client.get(reverse("connectors:audit", args=[connector.guid])),
        admin_client.post(reverse("connectors:disable", args=[connector.guid]), follow=True),
    ]
    for response in pages:
        assert response.status_code == 200
        assertContains(response, escaped)
        assertNotContains(response, "<script>x</script>")


# --- Detail page --------------------------------------------------------------------------------------------


def test_detail_page_is_the_pane_on_its_own(helpdesk_client, make_connector):
    connector = make_connector("To internet", usage="Internet")
    response = helpdesk_client.get(reverse("connectors:detail", args=[connector.guid]))
    assert details_heading(response) == "To internet"
    assertContains(response, "MX record associated with recipient domain")
    assertNotContains(response, ">Edit<")
    assertNotContains(response, ">Disable<")


def test_detail_page_offers_managers_edit_and_remove(admin_client, make_connector):
    connector = make_connector()
    response = admin_client.get(reverse("connectors:detail", args=[connector.guid]))
    assertContains(response, reverse("connectors:edit", args=[connector.guid, "general"]))
    assertContains(response, reverse("connectors:remove", args=[connector.guid]))
    assertContains(response, ">Disable</button>")


def test_unknown_connector_gets_the_404_page(admin_client):
    response = admin_client.get(reverse("connectors:detail", args=["6f1c9a8e-0000-4000-8000-000000000000"]))
    assertContains(response, "couldn't be found", status_code=404)


# --- Enable / Disable ---------------------------------------------------------------------------------------


def test_disable_then_enable(admin_client, make_connector):
    connector = make_connector("To internet")

    response = admin_client.post(reverse("connectors:disable", args=[connector.guid]))

    assertRedirects(response, f"{LIST_URL}?selected={connector.guid}", fetch_redirect_response=False)
    connector.refresh_from_db()
    assert connector.enabled is False
    entry = AdminAuditLogEntry.objects.first()
    assert (entry.caller, entry.source) == ("orgadmin", "Web")
    assert entry.command_line == "Set-SendConnector -Identity 'To internet' -Enabled $false"
    page = admin_client.get(response.url)
    assertContains(page, "The Send connector &quot;To internet&quot; was disabled.")
    assertContains(page, ">Enable</button>")

    admin_client.post(reverse("connectors:enable", args=[connector.guid]))
    connector.refresh_from_db()
    assert connector.enabled is True
    assert AdminAuditLogEntry.objects.first().command_line.endswith("-Enabled $true")


def test_enable_returns_to_the_page_it_came_from(admin_client, make_connector):
    connector = make_connector("To internet", enabled=False)
    back = f"{LIST_URL}?q=inter&page=1&selected={connector.guid}"
    list_page = admin_client.get(LIST_URL, {"q": "inter", "page": 1, "selected": connector.guid})
    assertContains(list_page, f'name="next" value="{back.replace("&", "&amp;")}"')

    assertRedirects(admin_client.post(reverse("connectors:enable", args=[connector.guid]), {"next": back}), back)
    detail = reverse("connectors:detail", args=[connector.guid])
    assertRedirects(admin_client.post(reverse("connectors:disable", args=[connector.guid]), {"next": detail}), detail)


def test_enable_never_redirects_off_site(admin_client, make_connector):
    connector = make_connector(enabled=False)
    response = admin_client.post(reverse("connectors:enable", args=[connector.guid]), {"next": "https://evil.example/"})
    assertRedirects(response, f"{LIST_URL}?selected={connector.guid}")


def test_enabling_an_enabled_connector_changes_nothing(admin_client, make_connector):
    connector = make_connector()
    response = admin_client.post(reverse("connectors:enable", args=[connector.guid]), follow=True)
    assertContains(response, "is already enabled.")
    assert AdminAuditLogEntry.objects.filter(cmdlet="Set-SendConnector").count() == 0


@pytest.mark.parametrize("action", ["connectors:enable", "connectors:disable"])
def test_enable_and_disable_need_post(admin_client, make_connector, action):
    connector = make_connector()
    assert admin_client.get(reverse(action, args=[connector.guid])).status_code == 405
    connector.refresh_from_db()
    assert connector.enabled is True


# --- Remove -------------------------------------------------------------------------------------------------


def test_remove_asks_first(admin_client, make_connector):
    connector = make_connector("To internet")
    response = admin_client.get(reverse("connectors:remove", args=[connector.guid]))
    assertContains(response, "Are you sure you want to delete the Send connector 'To internet'?")
    assertContains(response, '<button type="submit" class="primary">Yes</button>', html=True)
    assertContains(response, f'<a class="button" href="{LIST_URL}?selected={connector.guid}">No</a>', html=True)
    assert SendConnector.objects.filter(pk=connector.pk).exists()


def test_remove_deletes_and_logs(admin_client, make_connector):
    connector = make_connector("To internet")
    response = admin_client.post(reverse("connectors:remove", args=[connector.guid]))
    assertRedirects(response, LIST_URL, fetch_redirect_response=False)
    assert not SendConnector.objects.exists()
    entry = AdminAuditLogEntry.objects.first()
    assert (entry.cmdlet, entry.caller, entry.connector_guid) == ("Remove-SendConnector", "orgadmin", connector.guid)
    assert entry.command_line == "Remove-SendConnector -Identity 'To internet'"
    assertContains(admin_client.get(LIST_URL), "The Send connector &quot;To internet&quot; was removed.")
    # A second submit of the same form finds nothing to remove.
    assert admin_client.post(reverse("connectors:remove", args=[connector.guid])).status_code == 404


# --- Audit log ----------------------------------------------------------------------------------------------


def test_audit_log_lists_changes_newest_first(helpdesk_client, make_connector):
    connector = make_connector("To internet")
    set_send_connector(Caller("orgadmin", "Web"), connector, fqdn="mail.contoso.com")
    make_connector("Other")  # its entries stay on its own log

    response = helpdesk_client.get(reverse("connectors:audit", args=[connector.guid]))

    assertContains(response, "Admin audit log: To internet")
    body = response.content.decode()
    lines = re.findall(r"<code>([^<]*)</code>", body)
    assert lines == [
        "Set-SendConnector -Identity &#x27;To internet&#x27; -Fqdn mail.contoso.com",
        "New-SendConnector -Name &#x27;To internet&#x27; -AddressSpaces &#x27;SMTP:*;1&#x27;",
    ]
    assert re.findall(r"<td>(orgadmin|tests)</td>", body) == ["orgadmin", "tests"]
    assert re.findall(r'<td title="[^"]*">(EAC|Shell)</td>', body) == ["EAC", "Shell"]
    assert "Other" not in body


def test_audit_log_of_unknown_connector_is_404(admin_client):
    response = admin_client.get(reverse("connectors:audit", args=["6f1c9a8e-0000-4000-8000-000000000000"]))
    assert response.status_code == 404


def test_a_post_without_the_csrf_token_changes_nothing_and_says_so(org_admin, make_connector):
    from django.test import Client

    connector = make_connector("To internet")
    client = Client(enforce_csrf_checks=True)
    client.force_login(org_admin)
    response = client.post(reverse("connectors:disable", args=[connector.guid]))

    assert response.status_code == 403
    assertContains(response, "The page had expired", status_code=403)
    assertContains(response, "sendconn admin center", status_code=403)
    assert SendConnector.objects.get().enabled is True
