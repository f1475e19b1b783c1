"""Reads for the permissions page and the shell: role groups, their members, users, their audit log."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Prefetch

from sendconn.connectors.models import AdminAuditLogEntry

from .lockouts import CLEAR_CMDLET, LOCKOUT_EVENT
from .roles import ROLE_GROUP_DESCRIPTIONS, ROLE_GROUPS

# What services and lockouts write to the admin audit log.
PERMISSION_CMDLETS = (
    "Add-RoleGroupMember",
    "Remove-RoleGroupMember",
    "New-ADUser",
    "Disable-ADAccount",
    "Enable-ADAccount",
    LOCKOUT_EVENT,
    CLEAR_CMDLET,
)


def find_role_group(identity):
    group = Group.objects.filter(name__iexact=str(identity).strip(), name__in=ROLE_GROUPS).first()
    if group is None:
        raise ValidationError(f'The role group "{identity}" couldn\'t be found.')
    return group


def find_user(identity):
    user = get_user_model().objects.filter(username__iexact=str(identity).strip()).first()
    if user is None:
        raise ValidationError(f'The user "{identity}" couldn\'t be found.')
    return user


def role_group_members(identity):
    return list(find_role_group(identity).user_set.order_by("username"))


def role_groups():
    """The role groups in Exchange's order, each with ``members`` (users, by name) and ``description``."""
    members = Prefetch("user_set", queryset=get_user_model().objects.order_by("username"), to_attr="members")
    groups = {group.name: group for group in Group.objects.filter(name__in=ROLE_GROUPS).prefetch_related(members)}
    for name, group in groups.items():
        group.description = ROLE_GROUP_DESCRIPTIONS[name]  # type: ignore[attr-defined]  # for the page
    return [groups[name] for name in ROLE_GROUPS if name in groups]


def users():
    """Every user, by name, with ``role_groups`` (their role groups' names)."""
    role_group_names = Prefetch(
        "groups", queryset=Group.objects.filter(name__in=ROLE_GROUPS).order_by("name"), to_attr="role_groups"
    )
    return get_user_model().objects.order_by("username").prefetch_related(role_group_names)


def permissions_audit_log():
    """Changes to role groups, users and sign-in lockouts, newest first."""
    return AdminAuditLogEntry.objects.filter(cmdlet__in=PERMISSION_CMDLETS)
