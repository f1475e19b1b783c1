"""permissions in Chromium: an administrator creates a user, adds them to a role group, unlocks their sign-in
after 5 wrong passwords and disables them; the new user changes the one-time password."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def sign_in_form(page, live_server, username, password):
    page.goto(f"{live_server.url}{reverse('login')}")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="sign in").click()


def test_an_administrator_manages_a_user_from_creation_to_disabling(admin_page, live_server, browser, request):
    admin = admin_page
    admin.get_by_role("navigation", name="Features").get_by_role("link", name="permissions").click()
    tabs = admin.get_by_role("navigation", name="permissions")
    expect(tabs.get_by_role("link", name="admin roles")).to_have_attribute("aria-current", "page")
    tabs.get_by_role("link", name="users").click()
    admin.get_by_label("User name").fill("david")
    admin.get_by_role("button", name="Create").click()
    expect(admin.get_by_role("heading", name='User "david" created')).to_be_visible()
    one_time_password = admin.locator("code.secret").inner_text()
    assert len(one_time_password) >= 16

    tabs.get_by_role("link", name="admin roles").click()
    admin.get_by_role("link", name="Server Management").click()
    expect(admin.get_by_role("heading", name="Server Management")).to_be_visible()
    admin.get_by_label("Add a member").select_option("david")
    admin.get_by_role("button", name="Add", exact=True).click()
    expect(admin.get_by_role("status")).to_contain_text('"david" is now a member of "Server Management".')
    expect(admin.get_by_role("table", name="Members of Server Management")).to_contain_text("david")

    # David signs in with the one-time password and changes it; he sees no permissions page.
    context = browser.new_context()
    request.addfinalizer(context.close)
    david = context.new_page()
    sign_in_form(david, live_server, "david", one_time_password)
    david.wait_for_url(f"{live_server.url}/dashboard/")
    expect(david.get_by_role("link", name="permissions")).to_have_count(0)
    david.get_by_role("link", name="Change password").click()
    david.get_by_label("Old password").fill(one_time_password)
    david.get_by_label("New password", exact=True).fill("Davids-Own-Secret-9")
    david.get_by_label("New password confirmation").fill("Davids-Own-Secret-9")
    david.get_by_role("button", name="save").click()
    expect(david.get_by_role("status")).to_contain_text("Your password was changed.")
    david.get_by_role("button", name="Sign out").click()

    # Five wrong passwords lock his sign-in, even with the right one.
    for attempt in range(5):
        sign_in_form(david, live_server, "david", f"wrong-{attempt}")
    expect(david.get_by_role("heading", name="Sign-in locked")).to_be_visible()
    sign_in_form(david, live_server, "david", "Davids-Own-Secret-9")
    expect(david.get_by_role("alert")).to_contain_text("Too many failed sign-ins (5).")

    tabs.get_by_role("link", name="sign-in lockouts").click()
    expect(admin.get_by_role("cell", name="User name david")).to_be_visible()
    admin.get_by_role("button", name="Unlock david").click()
    expect(admin.get_by_role("status")).to_contain_text('"david" may sign in again.')
    sign_in_form(david, live_server, "david", "Davids-Own-Secret-9")
    david.wait_for_url(f"{live_server.url}/dashboard/")

    tabs.get_by_role("link", name="users").click()
    admin.get_by_role("button", name="Disable david").click()
    expect(admin.get_by_role("status")).to_contain_text('"david" is disabled and can no longer sign in.')
    expect(admin.get_by_role("row", name="david")).to_contain_text("Disabled")
    david.reload()  # his session ends with the account
    expect(david).to_have_url(f"{live_server.url}{reverse('login')}?next=/dashboard/")

    tabs.get_by_role("link", name="audit log").click()
    expect(admin.get_by_role("table")).to_contain_text("Disable-ADAccount -Identity david")
    expect(admin.get_by_role("table")).to_contain_text("Clear-SignInLockout -UserName david")
