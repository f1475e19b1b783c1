"""The New Send connector wizard in Chromium, click for click as Microsoft's article tells an Exchange admin."""

import re

import pytest
from playwright.sync_api import expect

from sendconn.connectors.models import SendConnector
from sendconn.connectors.wizard import STEP_INSTRUCTIONS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def start_wizard(page, live_server):
    """Mail flow > Send connectors > New: a modal window over the list, or the wizard's page without JavaScript."""
    page.goto(f"{live_server.url}/connectors/")
    page.get_by_role("toolbar").get_by_role("link", name="New", exact=True).click()
    expect(page.get_by_role("heading", name="new send connector")).to_be_visible()


def click(button):
    """Click a wizard button and wait for its page: a new page, or the next one in the modal window (htmx)."""
    with button.page.expect_response(lambda response: response.request.method == "POST"):
        button.click()


def click_next(page):
    click(page.get_by_role("button", name="Next", exact=True))


def click_add(page):
    """The list's Add: a <summary> that opens its dialog in place (works without JavaScript)."""
    page.locator("details.dialog > summary", has_text="Add").click()


def add_address_space(page, domain):
    click_add(page)
    dialog = page.get_by_role("group", name="Add domain")
    expect(dialog.get_by_label("Type", exact=True)).to_have_value("SMTP")
    expect(dialog.get_by_label("Cost")).to_have_value("1")
    dialog.get_by_label("Fully Qualified Domain Name (FQDN)").fill(domain)
    click(dialog.get_by_role("button", name="Save"))
    expect(page.get_by_role("cell", name=domain, exact=True)).to_be_visible()


def add_source_server(page, name):
    click_add(page)
    dialog = page.get_by_role("group", name="Select a Server")
    dialog.get_by_label(name, exact=True).check()
    click(dialog.get_by_role("button", name="Add", exact=True))
    click(page.get_by_role("group", name="Select a Server").get_by_role("button", name="OK"))
    expect(page.get_by_role("button", name=f"Remove {name}")).to_be_visible()


def finish(page, live_server, name):
    page.get_by_role("button", name="Finish").click()
    page.wait_for_url(re.compile(r"/connectors/\?selected="))
    connector = SendConnector.objects.get(name=name)
    assert page.url == f"{live_server.url}/connectors/?selected={connector.guid}"
    expect(page.get_by_role("cell", name=name, exact=True)).to_be_visible()  # the new connector's row in the list
    return connector


def create_the_seed_connector(page, live_server):
    """Steps 1-5 of "Use the EAC to create an internet Send connector"."""
    start_wizard(page, live_server)
    page.get_by_label("Name", exact=True).fill("To internet")
    page.get_by_label("Internet", exact=True).check()
    click_next(page)

    expect(page.get_by_label("MX record associated with recipient domain")).to_be_checked()
    click_next(page)

    add_address_space(page, "*")
    expect(page.get_by_label("Scoped send connector")).not_to_be_checked()
    click_next(page)

    add_source_server(page, "EX01")
    return finish(page, live_server, "To internet")


def test_seed_internet_connector(admin_page, live_server):
    connector = create_the_seed_connector(admin_page, live_server)
    assert connector.usage == "Internet" and connector.dns_routing_enabled is True
    assert [str(space) for space in connector.address_spaces.all()] == ["SMTP:*;1"]
    assert [server.name for server in connector.source_transport_servers.all()] == ["EX01"]
    assert connector.is_scoped_connector is False


@pytest.mark.browser_context_args(java_script_enabled=False)
def test_seed_internet_connector_with_javascript_off(admin_page, live_server):
    connector = create_the_seed_connector(admin_page, live_server)
    assert [str(space) for space in connector.address_spaces.all()] == ["SMTP:*;1"]


def test_smart_host_connector_with_basic_authentication(admin_page, live_server):
    page = admin_page
    start_wizard(page, live_server)
    page.get_by_label("Name", exact=True).fill("Smart host to Internet")
    page.get_by_label("Custom", exact=True).check()
    click_next(page)

    page.get_by_label("Route mail through smart hosts").check()
    click_add(page)
    dialog = page.get_by_role("group", name="Add smart host")
    dialog.get_by_label("IP address or fully qualified domain name (FQDN)").fill("smtp.contoso.com")
    click(dialog.get_by_role("button", name="Save"))
    expect(page.get_by_role("cell", name="smtp.contoso.com", exact=True)).to_be_visible()
    expect(page.get_by_label("Route mail through smart hosts")).to_be_checked()  # kept across the Save round trip
    click_next(page)

    page.get_by_label("Basic authentication", exact=True).check()
    click_next(page)
    expect(page.get_by_text('Enter the password for "Basic authentication".')).to_be_visible()  # checked on Next
    page.get_by_label("User name").fill("relay@contoso.com")
    page.get_by_label("Password").fill("S3cret!pw")
    click_next(page)

    add_address_space(page, "*")
    click_next(page)
    add_source_server(page, "EX01")
    connector = finish(page, live_server, "Smart host to Internet")

    assert connector.dns_routing_enabled is False
    assert [host.host for host in connector.smart_hosts.all()] == ["smtp.contoso.com"]
    assert connector.smart_host_auth_mechanism == "BasicAuth"
    assert connector.auth_username == "relay@contoso.com"
    assert b"S3cret" not in bytes(connector.auth_password_encrypted)  # encrypted at rest
    assert connector.get_password() == "S3cret!pw"


def test_the_wizard_opens_as_a_modal_window_over_the_list(admin_page, live_server):
    page = admin_page
    start_wizard(page, live_server)
    window = page.get_by_role("dialog", name="new send connector")
    expect(window).to_be_visible()
    assert window.evaluate("dialog => dialog.matches(':modal')")
    assert page.url == f"{live_server.url}/connectors/"  # the list stays behind the window
    expect(window).to_contain_text(STEP_INSTRUCTIONS["name"])
    expect(window.locator(".required")).to_have_count(2)  # Name and Type are required
    expect(page.get_by_label("Name", exact=True)).to_be_focused()

    page.get_by_label("Name", exact=True).fill("Smart host to Internet")
    page.get_by_label("Custom", exact=True).check()
    click_next(page)
    expect(window).to_contain_text(STEP_INSTRUCTIONS["network"])
    # The smart-host list and its Add are greyed out while MX routing is chosen.
    smart_hosts = window.locator("fieldset", has=page.get_by_role("heading", name="Smart hosts"))
    expect(smart_hosts).to_have_js_property("disabled", True)
    page.get_by_label("Route mail through smart hosts").check()
    expect(smart_hosts).to_have_js_property("disabled", False)
    click_add(page)
    dialog = page.get_by_role("group", name="Add smart host")
    dialog.get_by_label("IP address or fully qualified domain name (FQDN)").fill("smtp.contoso.com")
    click(dialog.get_by_role("button", name="Save"))
    click_next(page)
    expect(window).to_contain_text(STEP_INSTRUCTIONS["authentication"])
    expect(page.get_by_label("User name")).to_be_disabled()  # None is chosen
    page.get_by_label("Basic authentication", exact=True).check()
    expect(page.get_by_label("User name")).to_be_enabled()
    expect(page.get_by_label("Password")).to_be_enabled()

    window.get_by_role("button", name="Close").click()
    expect(window).to_be_hidden()


@pytest.mark.browser_context_args(java_script_enabled=False)
def test_without_javascript_the_wizard_is_its_own_page(admin_page, live_server):
    page = admin_page
    start_wizard(page, live_server)
    assert page.url == f"{live_server.url}/connectors/new/"
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_text(STEP_INSTRUCTIONS["name"])).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Smart host to Internet")
    click_next(page)
    # Nothing is greyed out without JavaScript: the server ignores the smart hosts while MX is chosen.
    expect(page.locator("fieldset", has=page.get_by_role("heading", name="Smart hosts"))).to_have_js_property(
        "disabled", False
    )


def test_a_session_that_ended_opens_the_sign_in_page_instead_of_an_empty_window(admin_page, live_server):
    page = admin_page
    page.goto(f"{live_server.url}/connectors/")
    page.context.clear_cookies()  # signed out meanwhile, in another tab
    page.get_by_role("toolbar").get_by_role("link", name="New", exact=True).click()
    page.wait_for_url(f"{live_server.url}/login/?next=/connectors/new/")
    expect(page.get_by_role("button", name="sign in")).to_be_visible()
