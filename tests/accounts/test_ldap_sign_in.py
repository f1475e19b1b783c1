"""Signing in with the directory: OpenLDAP's slapd on loopback stands in for Active Directory.

Users sign in on the real sign-in page; their role groups follow their directory groups at each sign-in; local
accounts keep working beside the directory, and a directory that can't be reached is said so on the page.
"""

import socket

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from sendconn.accounts import roles
from tests.conftest import make_user
from tests.peers.certs import CertificateAuthority
from tests.peers.ldap import Slapd, slapd_installed

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not slapd_installed(), reason="Debian's slapd is not installed (apt-get install slapd)"),
]

SUFFIX = "dc=contoso,dc=test"
PEOPLE = f"ou=People,{SUFFIX}"
GROUPS = f"ou=Groups,{SUFFIX}"
SERVICE_ACCOUNT = f"cn=sendconn,ou=Service Accounts,{SUFFIX}"
SERVICE_PASSWORD = "service-account-password"
EXCHANGE_ADMINS = f"cn=Exchange Admins,{GROUPS}"
# As an Active Directory admin would paste them: upper-case attribute names, spaces after commas.
ROLE_GROUPS = {
    roles.ORGANIZATION_MANAGEMENT: ["CN=Exchange Admins, OU=Groups, DC=contoso, DC=test"],
    roles.VIEW_ONLY_ORGANIZATION_MANAGEMENT: ["CN=Help Desk,OU=Groups,DC=contoso,DC=test"],
}
UNREACHABLE = "The directory can&#x27;t be reached"


def person(uid, given_name, surname):
    return f"""dn: uid={uid},{PEOPLE}
objectClass: inetOrgPerson
uid: {uid}
cn: {given_name} {surname}
givenName: {given_name}
sn: {surname}
mail: {uid}@contoso.test
userPassword: {uid}-directory-password
"""


def group(name, *members):
    return f"dn: cn={name},{GROUPS}\nobjectClass: groupOfNames\ncn: {name}\n" + "".join(
        f"member: {member}\n" for member in members
    )


DIRECTORY = "\n".join(
    [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Contoso\ndc: contoso\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: People\n",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: Groups\n",
        f"dn: ou=Service Accounts,{SUFFIX}\nobjectClass: organizationalUnit\nou: Service Accounts\n",
        f"dn: {SERVICE_ACCOUNT}\nobjectClass: inetOrgPerson\ncn: sendconn\nsn: sendconn\n"
        f"userPassword: {SERVICE_PASSWORD}\n",
        person("alice", "Alice", "Ames"),  # Exchange Admins
        person("bob", "Bob", "Brown"),  # Tier 1, a group inside Help Desk
        person("carol", "Carol", "Cole"),  # no mapped group
        person("admin", "Directory", "Admin"),  # has the bootstrap admin's name, in Exchange Admins too
        group("Exchange Admins", f"uid=alice,{PEOPLE}", f"uid=admin,{PEOPLE}"),
        group("Tier 1", f"uid=bob,{PEOPLE}"),
        group("Help Desk", f"cn=Tier 1,{GROUPS}"),
        group("Sales", f"uid=carol,{PEOPLE}"),
    ]
)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    ca = CertificateAuthority(tmp_path_factory.mktemp("ldap-ca"))
    return ca, ca.issue("ldap.contoso.test", "127.0.0.1")


@pytest.fixture
def slapd(certificates):
    with Slapd(DIRECTORY, SUFFIX, tls_cert=certificates[1]) as server:
        yield server


@pytest.fixture
def directory(settings, slapd):
    """sendconn configured for the directory as an Active Directory admin would, with a service account."""
    settings.SENDCONN_LDAP_SERVER_URI = slapd.uri
    settings.SENDCONN_LDAP_BIND_DN = SERVICE_ACCOUNT
    settings.SENDCONN_LDAP_BIND_PASSWORD = SERVICE_PASSWORD
    settings.SENDCONN_LDAP_USER_SEARCH_BASE = PEOPLE
    settings.SENDCONN_LDAP_USER_FILTER = "(uid=%(user)s)"
    settings.SENDCONN_LDAP_GROUP_SEARCH_BASE = GROUPS
    settings.SENDCONN_LDAP_GROUP_TYPE = "NestedGroupOfNames"
    settings.SENDCONN_LDAP_ROLE_GROUPS = ROLE_GROUPS
    settings.SENDCONN_LDAP_TIMEOUT = 2.0
    return slapd


def sign_in(client, username, password):
    return client.post(reverse("login"), {"username": username, "password": password}, follow=True)


def signed_in_user(client):
    return User.objects.filter(pk=client.session.get("_auth_user_id")).first()


def role_groups(user):
    return set(user.groups.filter(name__in=roles.ROLE_GROUPS).values_list("name", flat=True))


def test_a_directory_admin_signs_in_into_the_role_group_of_their_directory_group(client, directory):
    response = sign_in(client, "alice", "alice-directory-password")

    assert response.redirect_chain[0][1] == 302
    user = signed_in_user(client)
    assert user.username == "alice"
    assert (user.first_name, user.last_name, user.email) == ("Alice", "Ames", "alice@contoso.test")
    assert not user.has_usable_password()  # only the directory checks it
    assert role_groups(user) == {roles.ORGANIZATION_MANAGEMENT}
    assert client.get(reverse("connectors:list")).status_code == 200


def test_the_user_name_is_matched_whatever_its_case(client, directory):
    sign_in(client, "alice", "alice-directory-password")
    client.logout()

    sign_in(client, "ALICE", "alice-directory-password")

    assert signed_in_user(client).username == "alice"
    assert User.objects.filter(username__iexact="alice").count() == 1


def test_groups_inside_a_mapped_group_count(client, directory):
    sign_in(client, "bob", "bob-directory-password")

    assert role_groups(signed_in_user(client)) == {roles.VIEW_ONLY_ORGANIZATION_MANAGEMENT}


def test_a_directory_user_in_no_mapped_group_signs_in_and_is_told_they_have_no_role(client, directory):
    response = sign_in(client, "carol", "carol-directory-password")

    assert signed_in_user(client).username == "carol"
    assert role_groups(signed_in_user(client)) == set()
    assert response.status_code == 403
    assert "You aren't a member of any role group that can use the admin center yet." in response.content.decode()


def test_removed_from_the_directory_group_loses_the_role_at_the_next_sign_in(client, directory):
    sign_in(client, "alice", "alice-directory-password")
    client.logout()
    directory.remove_member(EXCHANGE_ADMINS, f"uid=alice,{PEOPLE}")

    sign_in(client, "alice", "alice-directory-password")

    assert role_groups(signed_in_user(client)) == set()
    assert client.get(reverse("connectors:list")).status_code == 403


def test_a_wrong_password_is_refused_as_for_a_local_account(client, directory):
    response = sign_in(client, "alice", "not-her-password")

    assert signed_in_user(client) is None
    assert "Please enter a correct username and password." in response.content.decode()
    assert not User.objects.filter(username="alice").exists()


def test_a_local_account_is_not_taken_over_by_the_directory_user_of_the_same_name(client, directory):
    local_admin = make_user("admin", roles.ORGANIZATION_MANAGEMENT)

    response = sign_in(client, "admin", "admin-directory-password")

    assert signed_in_user(client) is None
    assert "Please enter a correct username and password." in response.content.decode()
    sign_in(client, "admin", "Pa$$w0rd-admin")
    assert signed_in_user(client) == local_admin
    local_admin.refresh_from_db()
    assert local_admin.has_usable_password() and role_groups(local_admin) == {roles.ORGANIZATION_MANAGEMENT}


def test_anonymous_search_finds_the_user_when_no_bind_dn_is_set(client, directory, settings):
    settings.SENDCONN_LDAP_BIND_DN = settings.SENDCONN_LDAP_BIND_PASSWORD = ""

    sign_in(client, "alice", "alice-directory-password")

    assert role_groups(signed_in_user(client)) == {roles.ORGANIZATION_MANAGEMENT}


def test_start_tls_with_the_directory_s_ca(client, directory, settings, certificates):
    settings.SENDCONN_LDAP_START_TLS = True
    settings.SENDCONN_LDAP_CA_FILE = str(certificates[0].ca_file)

    sign_in(client, "alice", "alice-directory-password")

    assert signed_in_user(client).username == "alice"


def test_ldaps_with_the_directory_s_ca(client, directory, settings, certificates):
    settings.SENDCONN_LDAP_SERVER_URI = directory.ldaps_uri
    settings.SENDCONN_LDAP_CA_FILE = str(certificates[0].ca_file)

    sign_in(client, "alice", "alice-directory-password")

    assert signed_in_user(client).username == "alice"


def test_a_directory_certificate_from_another_ca_is_refused(client, directory, settings, tmp_path):
    settings.SENDCONN_LDAP_SERVER_URI = directory.ldaps_uri
    settings.SENDCONN_LDAP_CA_FILE = str(CertificateAuthority(tmp_path, name="another CA").ca_file)

    response = sign_in(client, "alice", "alice-directory-password")

    assert signed_in_user(client) is None
    assert UNREACHABLE in response.content.decode()


@pytest.fixture
def refused_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def silent_port():
    """Accepts connections (the kernel does) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.mark.parametrize("port_fixture", ["refused_port", "silent_port"])
def test_a_directory_that_cant_be_reached_is_said_so_and_local_accounts_still_sign_in(
    request, client, directory, settings, port_fixture
):
    settings.SENDCONN_LDAP_SERVER_URI = f"ldap://127.0.0.1:{request.getfixturevalue(port_fixture)}"
    settings.SENDCONN_LDAP_TIMEOUT = 0.5
    local_admin = make_user("admin", roles.ORGANIZATION_MANAGEMENT)

    response = sign_in(client, "alice", "alice-directory-password")

    assert response.status_code == 200
    assert UNREACHABLE in response.content.decode()
    assert signed_in_user(client) is None
    sign_in(client, "admin", "Pa$$w0rd-admin")
    assert signed_in_user(client) == local_admin


def test_a_refused_service_account_is_said_on_the_page_not_a_500(client, directory, settings):
    settings.SENDCONN_LDAP_BIND_PASSWORD = "an old password"

    response = sign_in(client, "alice", "alice-directory-password")

    assert response.status_code == 200
    assert UNREACHABLE in response.content.decode()


def test_groups_that_cant_be_read_refuse_the_sign_in_and_save_nothing(client, directory, settings):
    settings.SENDCONN_LDAP_GROUP_SEARCH_BASE = f"ou=Deleted,{SUFFIX}"

    response = sign_in(client, "alice", "alice-directory-password")

    assert UNREACHABLE in response.content.decode()
    assert not User.objects.filter(username="alice").exists()


def test_a_directory_user_s_pages_ask_the_directory_nothing(client, directory):
    sign_in(client, "alice", "alice-directory-password")
    directory.stop()

    assert client.get(reverse("connectors:list")).status_code == 200


def test_without_a_server_the_directory_is_not_asked(client, directory, settings):
    settings.SENDCONN_LDAP_SERVER_URI = ""

    response = sign_in(client, "alice", "alice-directory-password")

    assert signed_in_user(client) is None
    assert "Please enter a correct username and password." in response.content.decode()


def test_with_several_servers_the_next_one_answers_when_the_first_cant(client, directory, settings, refused_port):
    settings.SENDCONN_LDAP_SERVER_URI = f"ldap://127.0.0.1:{refused_port} {directory.uri}"

    sign_in(client, "alice", "alice-directory-password")

    assert signed_in_user(client).username == "alice"
