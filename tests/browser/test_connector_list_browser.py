"""The connector list in Chromium: selecting a row with and without JavaScript, then acting on it."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

LIST_URL = reverse("connectors:list")


def sign_in(page, live_server, user):
    page.goto(f"{live_server.url}{reverse('login')}?next={LIST_URL}")  # home is the dashboard
    page.get_by_label("User name:").fill(user.username)
    page.get_by_label("Password:").fill(f"Pa$$w0rd-{user.username}")
    page.get_by_role("button", name="sign in").click()
    page.wait_for_url(f"{live_server.url}{LIST_URL}*")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # keep the role groups of the migration
@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-js"])
def test_clicking_anywhere_on_a_row_selects_it(browser, live_server, org_admin, make_connector, javascript, request):
    make_connector("Alpha")
    make_connector("Zulu", address_spaces=["contoso.com"], dns_routing_enabled=False, smart_hosts=["relay.contoso.com"])
    context = browser.new_context(java_script_enabled=javascript)
    # Closed with the test: its idle keep-alive connections would end later, in another test, and their server
    # threads would then close the test database connection from the wrong thread.
    request.addfinalizer(context.close)
    page = context.new_page()
    sign_in(page, live_server, org_admin)
    heading = page.locator("#details-heading")
    expect(heading).to_have_text("Alpha")
    if javascript:
        page.evaluate("window.notReloaded = true")

    # Not the name: another cell of the row. The name link covers the row, so force past Playwright's check
    # that the cell itself receives the click; the real mouse click lands on the link.
    page.get_by_role("cell", name="SMTP:contoso.com;1").click(force=True)

    expect(heading).to_have_text("Zulu")
    expect(page).to_have_url(re.compile(r"selected="))
    expect(page.locator("tr.selected")).to_contain_text("relay.contoso.com")
    if javascript:
        assert page.evaluate("window.notReloaded") is True  # htmx swapped the console, no page load

    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("status")).to_contain_text('The Send connector "Zulu" was disabled.')
    expect(heading).to_have_text("Zulu")
    expect(page.locator("tr.selected td").nth(1)).to_have_text("Disabled")
