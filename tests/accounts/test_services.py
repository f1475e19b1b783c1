"""Users and role group membership through sendconn.accounts.services: what changes, what is refused, what is
audited."""

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import RequestFactory

from sendconn.accounts import roles, services
from sendconn.connectors.models import AdminAuditLogEntry
from sendconn.connectors.services import Caller

pytestmark = pytest.mark.django_db
ADMIN = Caller("orgadmin", AdminAuditLogEntry.Source.WEB)


def audit_lines():
    return list(AdminAuditLogEntry.objects.order_by("id").values_list("caller", "source", "command_line"))


def groups(user):
    return sorted(user.groups.values_list("name", flat=True))


def signs_in(username, password):
    return authenticate(RequestFactory().post("/login/"), username=username, password=password) is not None


def test_adding_and_removing_a_member_is_audited(org_admin, nobody):
    services.add_role_group_member(ADMIN, "view-only organization management", "NOBODY")
    assert groups(nobody) == [roles.VIEW_ONLY_ORGANIZATION_MANAGEMENT]
    services.remove_role_group_member(ADMIN, roles.VIEW_ONLY_ORGANIZATION_MANAGEMENT, "nobody")
    assert groups(nobody) == []
    assert audit_lines() == [
        ("orgadmin", "Web", "Add-RoleGroupMember -Identity 'View-Only Organization Management' -Member nobody"),
        ("orgadmin", "Web", "Remove-RoleGroupMember -Identity 'View-Only Organization Management' -Member nobody"),
    ]
    assert set(AdminAuditLogEntry.objects.values_list("connector_guid", flat=True)) == {None}


def refusal(service, *args):
    with pytest.raises(ValidationError) as refused:
        service(ADMIN, *args)
    return " ".join(refused.value.messages)


def test_membership_errors_change_and_audit_nothing(org_admin, helpdesk):
    assert refusal(services.add_role_group_member, roles.VIEW_ONLY_ORGANIZATION_MANAGEMENT, "helpdesk") == (
        '"helpdesk" is already a member of the role group "View-Only Organization Management".'
    )
    assert refusal(services.remove_role_group_member, roles.SERVER_MANAGEMENT, "helpdesk") == (
        '"helpdesk" isn\'t a member of the role group "Server Management".'
    )
    assert refusal(services.add_role_group_member, "Recipient Management", "helpdesk") == (
        'The role group "Recipient Management" couldn\'t be found.'
    )
    assert refusal(services.add_role_group_member, roles.SERVER_MANAGEMENT, "david") == (
        'The user "david" couldn\'t be found.'
    )
    assert groups(helpdesk) == [roles.VIEW_ONLY_ORGANIZATION_MANAGEMENT]
    assert audit_lines() == []


def test_the_last_enabled_organization_management_member_stays(org_admin, nobody):
    with pytest.raises(ValidationError, match='"orgadmin" is the last enabled member of the role group'):
        services.remove_role_group_member(ADMIN, roles.ORGANIZATION_MANAGEMENT, "orgadmin")
    # A disabled member doesn't count: nobody could sign in to manage permissions.
    services.add_role_group_member(ADMIN, roles.ORGANIZATION_MANAGEMENT, "nobody")
    services.disable_user(ADMIN, "nobody")
    with pytest.raises(ValidationError, match="last enabled member"):
        services.remove_role_group_member(ADMIN, roles.ORGANIZATION_MANAGEMENT, "orgadmin")
    services.enable_user(ADMIN, "nobody")
    services.remove_role_group_member(ADMIN, roles.ORGANIZATION_MANAGEMENT, "orgadmin")
    assert groups(org_admin) == []


def test_new_user_with_a_generated_one_time_password(org_admin):
    created = services.new_user(ADMIN, "  david  ")
    assert created.generated and len(created.password) >= 16
    assert created.user.username == "david" and created.user.is_active and groups(created.user) == []
    assert signs_in("david", created.password)
    assert audit_lines() == [("orgadmin", "Web", "New-ADUser -Name david -Enabled $true")]
    assert created.password not in AdminAuditLogEntry.objects.get().command_line


def test_new_user_with_a_password_set_by_the_admin(org_admin):
    created = services.new_user(ADMIN, "kim.akers", "Correct-Horse-7")
    assert not created.generated
    assert signs_in("kim.akers", "Correct-Horse-7")


@pytest.mark.parametrize(
    ("username", "password", "field", "message"),
    [
        ("ORGADMIN", None, "username", 'The user "ORGADMIN" already exists.'),
        ("", None, "username", "This field cannot be blank."),
        ("david smith", None, "username", "Enter a valid username."),
        ("david", "short", "password", "This password is too short."),
        ("david", "password123", "password", "This password is too common."),
    ],
)
def test_new_user_refusals_name_the_field(org_admin, username, password, field, message):
    with pytest.raises(ValidationError) as refused:
        services.new_user(ADMIN, username, password)
    assert message in " ".join(refused.value.message_dict[field])
    assert list(User.objects.values_list("username", flat=True)) == ["orgadmin"]
    assert audit_lines() == []


def test_a_disabled_user_cannot_sign_in_until_enabled(org_admin, helpdesk):
    services.disable_user(ADMIN, "helpdesk")
    assert not signs_in("helpdesk", "Pa$$w0rd-helpdesk")
    with pytest.raises(ValidationError, match="already disabled"):
        services.disable_user(ADMIN, "helpdesk")
    services.enable_user(ADMIN, "helpdesk")
    assert signs_in("helpdesk", "Pa$$w0rd-helpdesk")
    with pytest.raises(ValidationError, match="already enabled"):
        services.enable_user(ADMIN, "helpdesk")
    assert [line for _, _, line in audit_lines()] == [
        "Disable-ADAccount -Identity helpdesk",
        "Enable-ADAccount -Identity helpdesk",
    ]


def test_you_cannot_disable_yourself_or_the_last_administrator(org_admin, server_admin):
    with pytest.raises(ValidationError, match="You can't disable your own account."):
        services.disable_user(ADMIN, "orgadmin")
    with pytest.raises(ValidationError, match="last enabled member"):
        services.disable_user(Caller("serveradmin"), "orgadmin")
    assert User.objects.get(username="orgadmin").is_active
