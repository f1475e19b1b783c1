"""Sign-in with the directory: LDAP / Active Directory (django-auth-ldap) and OpenID Connect (mozilla-django-oidc).

A directory user's role groups are the ones its directory groups map to, refreshed at every sign-in, so whoever
is removed from the directory group loses the role at their next sign-in. Local accounts (those with a password
here) are never signed in nor changed by a directory: the bootstrap admin keeps working whatever the directory
says or however unreachable it is.
"""

import logging
from typing import Any

import ldap
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.exceptions import SuspiciousOperation
from django.dispatch import receiver
from django_auth_ldap import config as ldap_config
from django_auth_ldap.backend import LDAPBackend, ldap_error, populate_user
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from .services import set_role_groups

logger = logging.getLogger(__name__)

# Set on the request when the directory could not answer, so the sign-in form says so.
DIRECTORY_UNREACHABLE = "sendconn_directory_unreachable"

# SENDCONN_LDAP_GROUP_TYPE -> how members are listed, and what a group is.
_GROUP_TYPES = {
    "NestedActiveDirectory": (ldap_config.NestedActiveDirectoryGroupType, "(objectClass=group)"),
    "ActiveDirectory": (ldap_config.ActiveDirectoryGroupType, "(objectClass=group)"),
    "NestedGroupOfNames": (ldap_config.NestedGroupOfNamesType, "(objectClass=groupOfNames)"),
    "GroupOfNames": (ldap_config.GroupOfNamesType, "(objectClass=groupOfNames)"),
}


def is_local_account(username):
    """A user with a password here: only the local password signs them in."""
    return (
        get_user_model()
        .objects.filter(username__iexact=username)
        .exclude(password__startswith=UNUSABLE_PASSWORD_PREFIX)
        .exists()
    )


def mapped_role_groups(directory_groups, role_group_map, normalize):
    """The role groups whose mapped directory groups include one of ``directory_groups``."""
    member_of = {normalize(group) for group in directory_groups}
    return [
        role_group
        for role_group, mapped in role_group_map.items()
        if any(normalize(group) in member_of for group in mapped)
    ]


def normal_dn(dn):
    """``CN=Exchange Admins, OU=Groups,DC=contoso`` and ``cn=exchange admins,ou=groups,dc=contoso`` are one DN."""
    try:
        return ldap.dn.dn2str(ldap.dn.str2dn(dn)).lower()
    except ldap.DECODING_ERROR:
        return dn.strip().lower()


class DirectoryBackend(LDAPBackend):
    """Users found in LDAP / Active Directory with the SENDCONN_LDAP_* settings; their password is checked by a
    bind as them."""

    _settings: Any  # django-auth-ldap's LDAPSettings, built on first use

    @property
    def settings(self):
        if self._settings is None:
            timeout = settings.SENDCONN_LDAP_TIMEOUT
            options = {
                ldap.OPT_REFERRALS: 0,  # Active Directory's referrals to other partitions would need another bind
                ldap.OPT_NETWORK_TIMEOUT: timeout,
                ldap.OPT_TIMEOUT: timeout,
            }
            if settings.SENDCONN_LDAP_CA_FILE:
                options[ldap.OPT_X_TLS_CACERTFILE] = settings.SENDCONN_LDAP_CA_FILE
                options[ldap.OPT_X_TLS_REQUIRE_CERT] = ldap.OPT_X_TLS_DEMAND
                options[ldap.OPT_X_TLS_NEWCTX] = 0  # last: applies the TLS options above to this connection
            group_type, group_filter = _GROUP_TYPES[settings.SENDCONN_LDAP_GROUP_TYPE]
            self._settings = ldap_config.LDAPSettings(
                defaults={
                    "SERVER_URI": settings.SENDCONN_LDAP_SERVER_URI,
                    "BIND_DN": settings.SENDCONN_LDAP_BIND_DN,
                    "BIND_PASSWORD": settings.SENDCONN_LDAP_BIND_PASSWORD,
                    "START_TLS": settings.SENDCONN_LDAP_START_TLS,
                    "CONNECTION_OPTIONS": options,
                    "USER_SEARCH": ldap_config.LDAPSearch(
                        settings.SENDCONN_LDAP_USER_SEARCH_BASE, ldap.SCOPE_SUBTREE, settings.SENDCONN_LDAP_USER_FILTER
                    ),
                    "GROUP_SEARCH": ldap_config.LDAPSearch(
                        settings.SENDCONN_LDAP_GROUP_SEARCH_BASE, ldap.SCOPE_SUBTREE, group_filter
                    ),
                    "GROUP_TYPE": group_type(),
                    "USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
                }
            )
        return self._settings

    def get_group_permissions(self, user, obj=None):
        return set()  # role groups are Django groups, which ModelBackend reads: no directory look-up per page

    def authenticate(self, request, username=None, password=None, **kwargs):
        if not settings.SENDCONN_LDAP_SERVER_URI or not username or is_local_account(username.strip()):
            return None
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None:
            group_dns = user.ldap_user.group_dns  # read before the user was saved (below)
            set_role_groups(user, mapped_role_groups(group_dns, settings.SENDCONN_LDAP_ROLE_GROUPS, normal_dn))
        return user


@receiver(populate_user, sender=DirectoryBackend)
def _read_groups_before_saving(sender, ldap_user, **kwargs):
    """Read the user's groups while django-auth-ldap still turns a failure into a refused sign-in that saves
    nothing; they are kept for the rest of the sign-in."""
    _ = ldap_user.group_dns  # the property reads them from the directory once and caches them


@receiver(ldap_error, sender=DirectoryBackend)
def _directory_unreachable(sender, request=None, exception=None, **kwargs):
    logger.warning("The directory %s can't be reached: %s", settings.SENDCONN_LDAP_SERVER_URI, exception)
    if request is not None:
        setattr(request, DIRECTORY_UNREACHABLE, True)


class OpenIDConnectBackend(OIDCAuthenticationBackend):
    """Users signed in by an OpenID Connect provider (authorization code flow), named by
    SENDCONN_OIDC_USERNAME_CLAIM, their role groups mapped from SENDCONN_OIDC_GROUPS_CLAIM."""

    def authenticate(self, request, **kwargs):
        if not settings.OIDC_RP_CLIENT_ID:
            return None
        return super().authenticate(request, **kwargs)

    def get_userinfo(self, access_token, id_token, payload):
        # Entra ID puts groups in the ID token only; the user info endpoint has the rest.
        return {**payload, **super().get_userinfo(access_token, id_token, payload)}

    def verify_claims(self, claims):
        return bool(self._username(claims))

    def filter_users_by_claims(self, claims):
        return self.UserModel.objects.filter(username__iexact=self._username(claims))

    def create_user(self, claims):
        user = self.UserModel.objects.create_user(self._username(claims))  # no password: unusable
        return self.update_user(user, claims)

    def update_user(self, user, claims):
        if user.has_usable_password():
            raise SuspiciousOperation(f'"{user.username}" is a local account: sign in with its password.')
        user.email = claims.get("email", user.email)
        user.first_name = claims.get("given_name", user.first_name)
        user.last_name = claims.get("family_name", user.last_name)
        user.save()
        groups = claims.get(settings.SENDCONN_OIDC_GROUPS_CLAIM) or []
        if isinstance(groups, str):
            groups = [groups]
        set_role_groups(user, mapped_role_groups(groups, settings.SENDCONN_OIDC_ROLE_GROUPS, str.casefold))
        return user

    @staticmethod
    def _username(claims):
        return str(claims.get(settings.SENDCONN_OIDC_USERNAME_CLAIM) or "").strip()
