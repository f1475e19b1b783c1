"""Users and role group membership: the one write path for the permissions page and the shell.

Every change is written to the admin audit log as the command an Exchange administrator would run:
Add-/Remove-RoleGroupMember for membership, the Active Directory cmdlets for user accounts.
"""

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction

from sendconn.connectors import audit

from .roles import ORGANIZATION_MANAGEMENT, ROLE_GROUPS
from .selectors import find_role_group, find_user


def _refuse_leaving_no_administrator(user, action):
    """Organization Management must keep an enabled member, or nobody could manage role groups again."""
    others = Group.objects.get(name=ORGANIZATION_MANAGEMENT).user_set.filter(is_active=True).exclude(pk=user.pk)
    if user.is_active and user.groups.filter(name=ORGANIZATION_MANAGEMENT).exists() and not others.exists():
        raise ValidationError(
            f'"{user.username}" is the last enabled member of the role group "{ORGANIZATION_MANAGEMENT}": '
            f"{action} would leave nobody able to manage permissions. Add another member first."
        )


@transaction.atomic
def add_role_group_member(caller, identity, member):
    group, user = find_role_group(identity), find_user(member)
    if group.user_set.filter(pk=user.pk).exists():
        raise ValidationError(f'"{user.username}" is already a member of the role group "{group.name}".')
    group.user_set.add(user)
    audit.record_command(caller, "Add-RoleGroupMember", group.name, {"Member": user.username})
    return group, user


@transaction.atomic
def remove_role_group_member(caller, identity, member):
    group, user = find_role_group(identity), find_user(member)
    if not group.user_set.filter(pk=user.pk).exists():
        raise ValidationError(f'"{user.username}" isn\'t a member of the role group "{group.name}".')
    if group.name == ORGANIZATION_MANAGEMENT:
        _refuse_leaving_no_administrator(user, "removing them")
    group.user_set.remove(user)
    audit.record_command(caller, "Remove-RoleGroupMember", group.name, {"Member": user.username})
    return group, user


@dataclass(frozen=True)
class NewUser:
    user: object
    password: str  # shown once to the administrator who created the user, never stored in clear
    generated: bool


def generate_password():
    return secrets.token_urlsafe(12)


@transaction.atomic
def new_user(caller, username, password=None):
    """Create an enabled user in no role group; without ``password``, a one-time password is generated.

    Errors name the field they concern (``username`` or ``password``), for the form that asked.
    """
    User = get_user_model()
    username = str(username).strip()
    user = User(username=username)
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as error:
        raise ValidationError({"username": error.message_dict.get("username", error.messages)}) from None
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": f'The user "{username}" already exists.'})
    generated = not password
    password = password or generate_password()
    try:
        password_validation.validate_password(password, user)
    except ValidationError as error:
        raise ValidationError({"password": error.messages}) from None
    user.set_password(password)
    user.save()
    audit.record_command(caller, "New-ADUser", parameters={"Name": username, "Enabled": True}, object_name=username)
    return NewUser(user, password, generated)


@transaction.atomic
def disable_user(caller, identity):
    """Disabled users can't sign in; their sessions end at their next request (Django checks is_active)."""
    user = find_user(identity)
    if not user.is_active:
        raise ValidationError(f'The user "{user.username}" is already disabled.')
    if user.username == caller.username:
        raise ValidationError("You can't disable your own account.")
    _refuse_leaving_no_administrator(user, "disabling them")
    user.is_active = False
    user.save(update_fields=["is_active"])
    audit.record_command(caller, "Disable-ADAccount", user.username)
    return user


@transaction.atomic
def enable_user(caller, identity):
    user = find_user(identity)
    if user.is_active:
        raise ValidationError(f'The user "{user.username}" is already enabled.')
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit.record_command(caller, "Enable-ADAccount", user.username)
    return user


def set_role_groups(user, role_group_names):
    """Make ``user`` a member of exactly these role groups (a directory user's, refreshed at each sign-in);
    groups that are not role groups are left alone."""
    for group in Group.objects.filter(name__in=ROLE_GROUPS):
        if group.name in role_group_names:
            group.user_set.add(user)
        else:
            group.user_set.remove(user)
