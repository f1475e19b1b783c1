"""Directory sign-in settings come from the environment: off by default, and a bad value is named at start-up."""

from tests.test_settings import read_settings, run_python

AD = "CN=Exchange Admins,OU=Groups,DC=contoso,DC=com"


def test_directories_are_off_by_default_and_local_accounts_come_before_them(tmp_path):
    values = read_settings(
        tmp_path,
        [
            "SENDCONN_LDAP_SERVER_URI",
            "OIDC_RP_CLIENT_ID",
            "AUTHENTICATION_BACKENDS",
            "SENDCONN_LDAP_USER_FILTER",
            "SENDCONN_LDAP_GROUP_TYPE",
        ],
        SECRET_KEY="k",
    )

    assert (values["SENDCONN_LDAP_SERVER_URI"], values["OIDC_RP_CLIENT_ID"]) == ("", "")
    assert values["AUTHENTICATION_BACKENDS"] == [
        "sendconn.accounts.lockouts.SignInThrottle",  # refuses a locked-out sign-in before any password check
        "django.contrib.auth.backends.ModelBackend",
        "sendconn.accounts.backends.DirectoryBackend",
        "sendconn.accounts.backends.OpenIDConnectBackend",
    ]
    assert values["SENDCONN_LDAP_USER_FILTER"] == "(sAMAccountName=%(user)s)"
    assert values["SENDCONN_LDAP_GROUP_TYPE"] == "NestedActiveDirectory"


def test_ldap_settings_with_role_groups_mapped_to_group_dns(tmp_path):
    values = read_settings(
        tmp_path,
        [
            "SENDCONN_LDAP_SERVER_URI",
            "SENDCONN_LDAP_GROUP_SEARCH_BASE",
            "SENDCONN_LDAP_ROLE_GROUPS",
            "SENDCONN_LDAP_START_TLS",
            "SENDCONN_LDAP_TIMEOUT",
        ],
        SECRET_KEY="k",
        SENDCONN_LDAP_SERVER_URI="ldap://dc01.contoso.com",
        SENDCONN_LDAP_USER_SEARCH_BASE="DC=contoso,DC=com",
        SENDCONN_LDAP_ROLE_GROUPS=f"organization management={AD}; Organization Management=CN=Domain Admins,"
        "CN=Users,DC=contoso,DC=com;View-Only Organization Management=CN=Help Desk,"
        "OU=Groups,DC=contoso,DC=com;",
        SENDCONN_LDAP_START_TLS="true",
        SENDCONN_LDAP_TIMEOUT="2.5",
    )

    assert values["SENDCONN_LDAP_GROUP_SEARCH_BASE"] == "DC=contoso,DC=com"  # the user search base
    assert values["SENDCONN_LDAP_ROLE_GROUPS"] == {
        "Organization Management": [AD, "CN=Domain Admins,CN=Users,DC=contoso,DC=com"],
        "View-Only Organization Management": ["CN=Help Desk,OU=Groups,DC=contoso,DC=com"],
    }
    assert (values["SENDCONN_LDAP_START_TLS"], values["SENDCONN_LDAP_TIMEOUT"]) == (True, 2.5)


def refused(tmp_path, **env):
    result = run_python("import django; django.setup()", tmp_path, SECRET_KEY="k", **env)
    assert result.returncode != 0
    return result.stderr


def test_an_unknown_role_group_is_refused_with_the_known_ones_named(tmp_path):
    stderr = refused(tmp_path, SENDCONN_LDAP_ROLE_GROUPS=f"Exchange Admins={AD}")

    assert (
        "SENDCONN_LDAP_ROLE_GROUPS: 'Exchange Admins=CN=Exchange Admins,OU=Groups,DC=contoso,DC=com' is not "
        "'role group=directory group'. The role groups are \"Organization Management\""
    ) in stderr


def test_a_pair_without_a_group_is_refused(tmp_path):
    assert "SENDCONN_OIDC_ROLE_GROUPS: 'Organization Management' is not" in refused(
        tmp_path, SENDCONN_OIDC_ROLE_GROUPS="Organization Management"
    )


def test_a_server_without_a_user_search_base_is_refused(tmp_path):
    assert "SENDCONN_LDAP_USER_SEARCH_BASE is not set" in refused(
        tmp_path, SENDCONN_LDAP_SERVER_URI="ldap://dc01.contoso.com"
    )


def test_an_unknown_group_type_is_refused(tmp_path):
    assert "SENDCONN_LDAP_GROUP_TYPE must be one of NestedActiveDirectory" in refused(
        tmp_path, SENDCONN_LDAP_GROUP_TYPE="posix"
    )


def test_an_oidc_client_without_the_provider_s_endpoints_is_refused(tmp_path):
    assert "set SENDCONN_OIDC_AUTHORIZATION_ENDPOINT" in refused(tmp_path, SENDCONN_OIDC_CLIENT_ID="sendconn")


def test_oidc_settings_are_mozilla_django_oidc_s(tmp_path):
    base = "https://login.microsoftonline.com/tenant"
    values = read_settings(
        tmp_path,
        [
            "OIDC_RP_CLIENT_ID",
            "OIDC_OP_AUTHORIZATION_ENDPOINT",
            "OIDC_OP_JWKS_ENDPOINT",
            "OIDC_RP_SIGN_ALGO",
            "OIDC_VERIFY_SSL",
            "SENDCONN_OIDC_ROLE_GROUPS",
        ],
        SECRET_KEY="k",
        SENDCONN_OIDC_CLIENT_ID="00001111-aaaa-2222-bbbb-3333cccc4444",
        SENDCONN_OIDC_AUTHORIZATION_ENDPOINT=f"{base}/oauth2/v2.0/authorize",
        SENDCONN_OIDC_TOKEN_ENDPOINT=f"{base}/oauth2/v2.0/token",
        SENDCONN_OIDC_USERINFO_ENDPOINT="https://graph.microsoft.com/oidc/userinfo",
        SENDCONN_OIDC_JWKS_ENDPOINT=f"{base}/discovery/v2.0/keys",
        SENDCONN_OIDC_CA_FILE="/etc/ssl/certs/contoso.pem",
        SENDCONN_OIDC_ROLE_GROUPS="Server Management=5b9f2a4e-0c1d-4e8f-9a7b-6c5d4e3f2a1b",
    )

    assert values["OIDC_OP_JWKS_ENDPOINT"] == f"{base}/discovery/v2.0/keys"
    assert values["OIDC_RP_SIGN_ALGO"] == "RS256"
    assert values["OIDC_VERIFY_SSL"] == "/etc/ssl/certs/contoso.pem"
    assert values["SENDCONN_OIDC_ROLE_GROUPS"] == {"Server Management": ["5b9f2a4e-0c1d-4e8f-9a7b-6c5d4e3f2a1b"]}
