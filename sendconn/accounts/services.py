"""Role group membership (Add-RoleGroupMember / Remove-RoleGroupMember)."""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from .roles import ROLE_GROUPS


def _group(identity):
    group = Group.objects.filter(name__iexact=str(identity).strip(), name__in=ROLE_GROUPS).first()
    if group is None:
        raise ValidationError(f'The role group "{identity}" couldn\'t be found.')
    return group


def _user(member):
    user = get_user_model().objects.filter(username__iexact=str(member).strip()).first()
    if user is None:
        raise ValidationError(f'The user "{member}" couldn\'t be found.')
    return user


def add_role_group_member(identity, member):
    group, user = _group(identity), _user(member)
    if group.user_set.filter(pk=user.pk).exists():
        raise ValidationError(f'"{user.username}" is already a member of the role group "{group.name}".')
    group.user_set.add(user)
    return group, user


def remove_role_group_member(identity, member):
    group, user = _group(identity), _user(member)
    if not group.user_set.filter(pk=user.pk).exists():
        raise ValidationError(f'"{user.username}" isn\'t a member of the role group "{group.name}".')
    group.user_set.remove(user)
    return group, user


def role_group_members(identity):
    return list(_group(identity).user_set.order_by("username"))


def set_role_groups(user, role_group_names):
    """Make ``user`` a member of exactly these role groups (a directory user's, refreshed at each sign-in);
    groups that are not role groups are left alone."""
    for group in Group.objects.filter(name__in=ROLE_GROUPS):
        if group.name in role_group_names:
            group.user_set.add(user)
        else:
            group.user_set.remove(user)
