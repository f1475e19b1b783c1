"""Signing in with the directory in Chromium: the "Sign in with …" button through the OpenID Connect provider
and back, and an LDAP user's password on the sign-in page (slapd), both ending in the admin center."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from sendconn.accounts import roles
from tests.accounts.test_ldap_sign_in import DIRECTORY, GROUPS, PEOPLE, ROLE_GROUPS, SUFFIX
from tests.peers.ldap import Slapd, slapd_installed
from tests.peers.oidc import OidcProvider

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def page_for(browser, request):
    context = browser.new_context()
    request.addfinalizer(context.close)
    return context.new_page()


def test_sign_in_with_the_provider_button(page_for, live_server, settings):
    users = [{"username": "alice", "password": "alice-idp-password", "groups": ["Exchange Admins"]}]
    with OidcProvider("sendconn", "browser-secret", f"{live_server.url}/oidc/callback/", users) as provider:
        settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = "sendconn", "browser-secret"
        settings.OIDC_OP_AUTHORIZATION_ENDPOINT = provider.endpoints["authorization"]
        settings.OIDC_OP_TOKEN_ENDPOINT = provider.endpoints["token"]
        settings.OIDC_OP_USER_ENDPOINT = provider.endpoints["userinfo"]
        settings.OIDC_OP_JWKS_ENDPOINT = provider.endpoints["jwks"]
        settings.OIDC_RP_SCOPES = "openid email profile groups"
        settings.SENDCONN_OIDC_PROVIDER_NAME = "Contoso ID"
        settings.SENDCONN_OIDC_ROLE_GROUPS = {roles.ORGANIZATION_MANAGEMENT: ["Exchange Admins"]}
        page = page_for
        page.goto(f"{live_server.url}{reverse('login')}")

        page.get_by_role("link", name="Sign in with Contoso ID").click()
        page.get_by_label("Username").fill("alice")  # the provider's own sign-in page
        page.get_by_label("Password").fill("alice-idp-password")
        page.get_by_role("button", name="Sign in").click()

        page.wait_for_url(f"{live_server.url}/dashboard/")
        expect(page.locator(".who")).to_contain_text("alice")
        expect(page.get_by_role("link", name="mail flow", exact=True)).to_be_visible()


@pytest.mark.skipif(not slapd_installed(), reason="Debian's slapd is not installed (apt-get install slapd)")
def test_sign_in_with_a_directory_password_and_a_directory_that_went_away(page_for, live_server, settings):
    with Slapd(DIRECTORY, SUFFIX) as directory:
        settings.SENDCONN_LDAP_SERVER_URI = directory.uri
        settings.SENDCONN_LDAP_USER_SEARCH_BASE = PEOPLE
        settings.SENDCONN_LDAP_USER_FILTER = "(uid=%(user)s)"
        settings.SENDCONN_LDAP_GROUP_SEARCH_BASE = GROUPS
        settings.SENDCONN_LDAP_GROUP_TYPE = "NestedGroupOfNames"
        settings.SENDCONN_LDAP_ROLE_GROUPS = ROLE_GROUPS
        page = page_for

        sign_in(page, live_server, "alice", "alice-directory-password")
        page.wait_for_url(f"{live_server.url}/dashboard/")
        expect(page.get_by_role("link", name="mail flow", exact=True)).to_be_visible()
        page.get_by_role("button", name="Sign out").click()

    sign_in(page, live_server, "alice", "alice-directory-password")
    expect(page.get_by_role("alert")).to_contain_text("The directory can't be reached")


def sign_in(page, live_server, username, password):
    page.goto(f"{live_server.url}{reverse('login')}")
    page.get_by_label("User name:").fill(username)
    page.get_by_label("Password:").fill(password)
    page.get_by_role("button", name="sign in").click()
