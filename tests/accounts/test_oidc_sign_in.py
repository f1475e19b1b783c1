"""Signing in with OpenID Connect: the authorization code flow end to end against django-oidc-provider, run in
its own process on loopback (tests/peers/oidc_provider); the user's browser is the Django test client on our side
and real HTTP on the provider's, and sendconn fetches the tokens and user info from the provider over HTTP."""

from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from sendconn.accounts import roles
from tests.conftest import make_user
from tests.peers import free_port
from tests.peers.oidc import OidcProvider

pytestmark = pytest.mark.django_db

CLIENT_ID, CLIENT_SECRET = "sendconn-console", "oidc-client-secret"
CALLBACK = "http://testserver/oidc/callback/"
USERS = [
    {
        "username": "alice",
        "password": "alice-idp-password",
        "email": "alice@contoso.test",
        "first_name": "Alice",
        "last_name": "Ames",
        "groups": ["Exchange Admins", "Sales"],
    },
    {"username": "carol", "password": "carol-idp-password", "groups": ["Sales"]},
    {"username": "admin", "password": "admin-idp-password", "groups": []},  # the bootstrap admin's name
]


@pytest.fixture(scope="module")
def provider():
    with OidcProvider(CLIENT_ID, CLIENT_SECRET, CALLBACK, USERS) as running:
        yield running


@pytest.fixture
def oidc(settings, provider):
    """sendconn configured for the provider, as for Entra ID, Keycloak or Okta."""
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = provider.endpoints["authorization"]
    settings.OIDC_OP_TOKEN_ENDPOINT = provider.endpoints["token"]
    settings.OIDC_OP_USER_ENDPOINT = provider.endpoints["userinfo"]
    settings.OIDC_OP_JWKS_ENDPOINT = provider.endpoints["jwks"]
    settings.OIDC_RP_SCOPES = "openid email profile groups"
    settings.SENDCONN_OIDC_PROVIDER_NAME = "Contoso ID"
    settings.SENDCONN_OIDC_ROLE_GROUPS = {roles.ORGANIZATION_MANAGEMENT: ["exchange admins"]}
    return provider


def sign_in_with_provider(client, provider, username, password, next_url=None):
    """Press "Sign in with …", sign in at the provider, come back: the final response in the console."""
    query = {"next": next_url} if next_url else {}
    response = client.get(reverse("oidc_authentication_init"), query)
    assert response.status_code == 302
    assert response.url.startswith(provider.endpoints["authorization"])
    back = urlsplit(provider.sign_in(response.url, username, password))
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    return client.get(f"{back.path}?{back.query}", follow=True)


def signed_in_user(client):
    return User.objects.filter(pk=client.session.get("_auth_user_id")).first()


def role_groups(user):
    return set(user.groups.filter(name__in=roles.ROLE_GROUPS).values_list("name", flat=True))


def test_the_sign_in_page_offers_the_provider_when_configured(client, oidc, settings):
    content = client.get(reverse("login")).content.decode()
    assert f'href="{reverse("oidc_authentication_init")}"' in content
    assert "Sign in with Contoso ID" in content

    settings.OIDC_RP_CLIENT_ID = ""
    assert "Sign in with" not in client.get(reverse("login")).content.decode()
    assert client.get(reverse("oidc_authentication_init")).status_code == 404


def test_a_provider_user_in_a_mapped_group_signs_in_with_its_role_group(client, oidc):
    response = sign_in_with_provider(client, oidc, "alice", "alice-idp-password", next_url=reverse("connectors:list"))

    user = signed_in_user(client)
    assert user.username == "alice"
    assert (user.first_name, user.last_name, user.email) == ("Alice", "Ames", "alice@contoso.test")
    assert not user.has_usable_password()
    assert role_groups(user) == {roles.ORGANIZATION_MANAGEMENT}
    assert response.redirect_chain[-1][0] == reverse("connectors:list")
    assert response.status_code == 200


def test_a_provider_user_in_no_mapped_group_signs_in_and_is_told_they_have_no_role(client, oidc):
    response = sign_in_with_provider(client, oidc, "carol", "carol-idp-password")

    assert signed_in_user(client).username == "carol"
    assert response.status_code == 403
    assert "You aren't a member of any role group that can use the admin center yet." in response.content.decode()


def test_role_groups_follow_the_groups_claim_at_each_sign_in(client, oidc):
    carol = User.objects.create_user("carol")  # signed in before, when she was an admin
    carol.groups.add(Group.objects.get(name=roles.ORGANIZATION_MANAGEMENT))

    sign_in_with_provider(client, oidc, "carol", "carol-idp-password")

    assert signed_in_user(client) == carol
    assert role_groups(carol) == set()


def test_a_local_account_is_not_signed_in_by_the_provider(client, oidc):
    local_admin = make_user("admin", roles.ORGANIZATION_MANAGEMENT)

    response = sign_in_with_provider(client, oidc, "admin", "admin-idp-password")

    assert signed_in_user(client) is None
    assert "Contoso ID didn&#x27;t sign you in." in response.content.decode()
    local_admin.refresh_from_db()
    assert role_groups(local_admin) == {roles.ORGANIZATION_MANAGEMENT}


def test_a_provider_that_cant_be_reached_is_said_so_and_local_accounts_still_sign_in(client, oidc, settings):
    start = client.get(reverse("oidc_authentication_init"))
    back = urlsplit(oidc.sign_in(start.url, "alice", "alice-idp-password"))
    settings.OIDC_OP_TOKEN_ENDPOINT = f"http://127.0.0.1:{free_port()}/openid/token"  # nobody listens

    response = client.get(f"{back.path}?{back.query}", follow=True)

    assert response.status_code == 200
    assert "Contoso ID can&#x27;t be reached" in response.content.decode()
    assert signed_in_user(client) is None
    local_admin = make_user("admin", roles.ORGANIZATION_MANAGEMENT)
    client.post(reverse("login"), {"username": "admin", "password": "Pa$$w0rd-admin"})
    assert signed_in_user(client) == local_admin
