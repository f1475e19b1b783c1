"""The edit dialog in Chromium: one properties dialog whose tabs keep what was typed, and greyed-out fields."""

import pytest
from playwright.sync_api import expect

from sendconn.connectors.models import AdminAuditLogEntry, SendConnector
from sendconn.connectors.services import Caller, Credential, new_send_connector

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def make_relay():
    return new_send_connector(
        Caller("tests", "Shell"),
        name="Relay",
        address_spaces=["*"],
        dns_routing_enabled=False,
        smart_hosts=["relay.contoso.com"],
        smart_host_auth_mechanism="None",
    ).connector


def open_dialog(page, live_server, connector):
    page.goto(f"{live_server.url}/connectors/?selected={connector.guid}")
    page.get_by_role("toolbar").get_by_role("link", name="Edit", exact=True).click()
    expect(page.get_by_role("heading", name=connector.name, level=1)).to_be_visible()


def tab(page, name):
    return page.get_by_role("tab", name=name)


def test_switching_tabs_keeps_what_was_typed_and_one_save_sends_it_all(admin_page, live_server):
    page = admin_page
    connector = make_relay()
    open_dialog(page, live_server, connector)
    expect(tab(page, "General")).to_have_attribute("aria-selected", "true")
    page.get_by_label("Name", exact=True).fill("Relay to Contoso")

    tab(page, "Delivery").click()
    expect(tab(page, "Delivery")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_label("Name", exact=True)).to_be_hidden()
    page.get_by_label("Use the external DNS lookup settings on servers with transport roles").check()

    tab(page, "Scoping").click()
    page.get_by_label("Scoped send connector").check()
    tab(page, "General").click()
    expect(page.get_by_label("Name", exact=True)).to_have_value("Relay to Contoso")  # not the old name

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text('The Send connector "Relay to Contoso" was saved.')
    connector = SendConnector.objects.get(pk=connector.pk)
    assert connector.name == "Relay to Contoso"
    assert connector.use_external_dns_servers_enabled is True and connector.is_scoped_connector is True
    entry = AdminAuditLogEntry.objects.filter(cmdlet="Set-SendConnector").get()  # one Save, one entry
    assert entry.command_line == (
        "Set-SendConnector -Identity Relay -Name 'Relay to Contoso' -UseExternalDNSServersEnabled $true "
        "-IsScopedConnector $true"
    )


@pytest.mark.browser_context_args(java_script_enabled=False)
def test_without_javascript_a_tab_submits_the_form_and_keeps_the_input(admin_page, live_server):
    page = admin_page
    connector = make_relay()
    open_dialog(page, live_server, connector)
    page.get_by_label("Name", exact=True).fill("Relay to Contoso")
    tab(page, "Delivery").click()
    expect(tab(page, "Delivery")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("cell", name="relay.contoso.com", exact=True)).to_be_visible()
    tab(page, "General").click()
    expect(page.get_by_label("Name", exact=True)).to_have_value("Relay to Contoso")
    assert SendConnector.objects.get(pk=connector.pk).name == "Relay"  # nothing saved by switching
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text('The Send connector "Relay to Contoso" was saved.')


def test_fields_that_do_not_apply_are_greyed_out_in_the_dialog(admin_page, live_server):
    page = admin_page
    open_dialog(page, live_server, make_relay())
    tab(page, "Delivery").click()
    smart_hosts = page.locator("fieldset", has=page.get_by_role("heading", name="Smart hosts"))
    remove = page.get_by_role("button", name="Remove relay.contoso.com")
    expect(remove).to_be_enabled()
    expect(page.get_by_label("User name")).to_be_disabled()  # authentication None
    expect(page.get_by_label("Password")).to_be_disabled()

    page.get_by_label("MX record associated with recipient domain").check()
    expect(remove).to_be_disabled()
    expect(smart_hosts).to_have_js_property("disabled", True)
    smart_hosts.locator("summary", has_text="Add").click(force=True)  # the Add doesn't open while greyed out
    expect(smart_hosts.get_by_role("group", name="Add smart host")).to_be_hidden()

    page.get_by_label("Route mail through smart hosts").check()
    expect(remove).to_be_enabled()
    for mechanism in ("Basic authentication", "Offer basic authentication only after starting TLS"):
        page.get_by_label(mechanism, exact=True).check()
        expect(page.get_by_label("User name")).to_be_enabled()
        expect(page.get_by_label("Password")).to_be_enabled()
    page.get_by_label("Exchange Server authentication").check()
    expect(page.get_by_label("User name")).to_be_disabled()

    expect(page.get_by_label("TLS domain")).to_be_disabled()  # TLS authentication level None
    for level in ("EncryptionOnly", "CertificateValidation"):
        page.get_by_label(level, exact=True).check()
        expect(page.get_by_label("TLS domain")).to_be_disabled()
    page.get_by_label("DomainValidation", exact=True).check()
    expect(page.get_by_label("TLS domain")).to_be_enabled()


def test_greyed_out_input_is_kept_for_when_it_applies_again(admin_page, live_server):
    """Greyed out is not thrown away: the list survives a round trip with MX chosen, and Save ignores it."""
    page = admin_page
    connector = new_send_connector(
        Caller("tests", "Shell"),
        name="Relay",
        address_spaces=["*"],
        dns_routing_enabled=False,
        smart_hosts=["relay.contoso.com"],
        smart_host_auth_mechanism="BasicAuth",
        authentication_credential=Credential("svc", "stored-pw"),
    ).connector
    open_dialog(page, live_server, connector)
    tab(page, "Delivery").click()
    page.get_by_label("MX record associated with recipient domain").check()
    tab(page, "Scoping").click()
    page.locator("#panel-scoping details.dialog > summary", has_text="Add").first.click()
    dialog = page.get_by_role("group", name="Add domain")
    dialog.get_by_label("Fully Qualified Domain Name (FQDN)").fill("contoso.com")
    dialog.get_by_role("button", name="Save").click()  # a round trip of the whole form
    expect(page.get_by_role("cell", name="contoso.com", exact=True)).to_be_visible()
    tab(page, "Delivery").click()
    expect(page.get_by_label("MX record associated with recipient domain")).to_be_checked()
    expect(page.get_by_role("button", name="Remove relay.contoso.com")).to_be_disabled()
    page.get_by_label("Route mail through smart hosts").check()
    expect(page.get_by_role("button", name="Remove relay.contoso.com")).to_be_enabled()
    expect(page.get_by_label("User name")).to_have_value("svc")
