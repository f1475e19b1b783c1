"""Add-, Remove- and Get-RoleGroupMember through the shell (sendconn.accounts.services underneath)."""

from sendconn.accounts import roles
from sendconn.connectors.models import AdminAuditLogEntry


def groups(user):
    return sorted(user.groups.values_list("name", flat=True))


def audit_lines():
    return list(AdminAuditLogEntry.objects.order_by("id").values_list("caller", "source", "command_line"))


def test_add_role_group_member(cmdlet, nobody):
    result = cmdlet(f'Add-RoleGroupMember "{roles.VIEW_ONLY_ORGANIZATION_MANAGEMENT}" -Member nobody')
    assert (result.status, result.out, result.err) == (0, "", "")
    assert groups(nobody) == [roles.VIEW_ONLY_ORGANIZATION_MANAGEMENT]
    assert audit_lines() == [
        ("tester", "Shell", "Add-RoleGroupMember -Identity 'View-Only Organization Management' -Member nobody"),
    ]


def test_add_what_if_changes_nothing(cmdlet, nobody):
    result = cmdlet('Add-RoleGroupMember "Organization Management" -Member NOBODY -WhatIf')
    assert result.out == 'What if: Adding member "NOBODY" to role group "Organization Management".\n'
    assert groups(nobody) == []
    assert audit_lines() == []


def test_add_errors(cmdlet, helpdesk):
    already = cmdlet(f'Add-RoleGroupMember "{roles.VIEW_ONLY_ORGANIZATION_MANAGEMENT}" -Member helpdesk')
    assert already.status == 1
    assert already.err == (
        f'Add-RoleGroupMember : "helpdesk" is already a member of the role group '
        f'"{roles.VIEW_ONLY_ORGANIZATION_MANAGEMENT}".\n'
    )
    no_group = cmdlet('Add-RoleGroupMember "Recipient Management" -Member helpdesk')
    assert no_group.err == 'Add-RoleGroupMember : The role group "Recipient Management" couldn\'t be found.\n'
    no_user = cmdlet('Add-RoleGroupMember "Organization Management" -Member david')
    assert no_user.err == 'Add-RoleGroupMember : The user "david" couldn\'t be found.\n'
    missing = cmdlet('Add-RoleGroupMember "Organization Management"')
    assert "missing mandatory parameters: Member." in missing.err
    assert groups(helpdesk) == [roles.VIEW_ONLY_ORGANIZATION_MANAGEMENT]
    assert audit_lines() == []


def test_remove_asks_for_confirmation(cmdlet, server_admin):
    line = f'Remove-RoleGroupMember "{roles.SERVER_MANAGEMENT}" -Member serveradmin'
    declined = cmdlet(line, stdin="n\n")
    assert declined.status == 1
    assert f'Removing member "serveradmin" from role group "{roles.SERVER_MANAGEMENT}".' in declined.err
    assert groups(server_admin) == [roles.SERVER_MANAGEMENT]
    assert audit_lines() == []
    assert cmdlet(line, stdin="y\n").status == 0
    assert groups(server_admin) == []
    assert audit_lines() == [
        ("tester", "Shell", "Remove-RoleGroupMember -Identity 'Server Management' -Member serveradmin"),
    ]


def test_the_last_organization_management_member_cannot_be_removed(cmdlet, org_admin):
    result = cmdlet('Remove-RoleGroupMember "Organization Management" -Member orgadmin -Confirm:$false')
    assert result.status == 1
    assert result.err.startswith(
        'Remove-RoleGroupMember : "orgadmin" is the last enabled member of the role group "Organization Management"'
    )
    assert groups(org_admin) == [roles.ORGANIZATION_MANAGEMENT]


def test_remove_with_confirm_false_and_errors_before_the_prompt(cmdlet, server_admin):
    not_member = cmdlet('Remove-RoleGroupMember "Organization Management" -Member serveradmin', stdin="y\n")
    assert not_member.status == 1
    assert "Are you sure" not in not_member.err
    assert (
        'Remove-RoleGroupMember : "serveradmin" isn\'t a member of the role group "Organization Management".'
        in not_member.err
    )
    result = cmdlet('Remove-RoleGroupMember "Server Management" -Member serveradmin -Confirm:$false')
    assert (result.status, result.err) == (0, "")
    assert groups(server_admin) == []


def test_get_role_group_member(cmdlet, org_admin, nobody):
    cmdlet('Add-RoleGroupMember "Organization Management" -Member nobody')
    result = cmdlet('Get-RoleGroupMember "organization management"')
    assert result.status == 0
    assert result.out.splitlines() == [
        "",
        "Name     RecipientType",
        "----     -------------",
        "nobody   User",
        "orgadmin User",
        "",
    ]
    assert "couldn't be found" in cmdlet("Get-RoleGroupMember Nope").err


def test_get_and_clear_sign_in_lockout(cmdlet, client, org_admin):
    for attempt in range(5):
        client.post("/login/", {"username": "orgadmin", "password": f"wrong-{attempt}"})
    listed = cmdlet("Get-SignInLockout")
    assert listed.status == 0
    lines = listed.out.splitlines()
    assert lines[1].split() == ["Kind", "Identity", "FailedAttempts", "LockedUntil"]
    assert [line.split()[:3] for line in lines[3:5]] == [["UserName", "orgadmin", "5"], ["IPAddress", "127.0.0.1", "5"]]

    assert cmdlet("Clear-SignInLockout").err == "Clear-SignInLockout : Specify either -UserName or -IPAddress.\n"
    assert cmdlet("Clear-SignInLockout -UserName nobody").err == (
        'Clear-SignInLockout : The user name "nobody" isn\'t locked out.\n'
    )
    what_if = cmdlet("Clear-SignInLockout -UserName orgadmin -WhatIf")
    assert what_if.out == 'What if: Clearing the sign-in lockout of "orgadmin".\n'
    assert len(cmdlet("Get-SignInLockout").out.splitlines()) == 6

    assert cmdlet("Clear-SignInLockout -UserName orgadmin").status == 0
    assert cmdlet("Get-SignInLockout").out == ""
    assert audit_lines()[-1] == ("tester", "Shell", "Clear-SignInLockout -UserName orgadmin")
