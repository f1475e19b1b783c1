from django.utils.translation import gettext_lazy as _
from oidc_provider.lib.claims import ScopeClaims


def userinfo(claims, user):
    claims.update(
        preferred_username=user.username, email=user.email, given_name=user.first_name, family_name=user.last_name
    )
    return claims


class GroupsClaims(ScopeClaims):
    """The ``groups`` scope: the user's group names in a ``groups`` claim, as Keycloak's and Okta's mappers do."""

    info_groups = (_("Groups"), _("The groups you are a member of."))

    def scope_groups(self):
        return {"groups": sorted(self.user.groups.values_list("name", flat=True))}
