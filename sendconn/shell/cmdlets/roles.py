"""Add-, Remove- and Get-RoleGroupMember: membership of the management role groups; Get- and
Clear-SignInLockout: the console's sign-in lockouts (also on the permissions page)."""

from functools import partial

from sendconn.accounts import lockouts, selectors, services

from ..output import Record, utc_text
from ..registry import CmdletError, Parameter, cmdlet, switch, text

ROLE_GROUP = Parameter("Identity", text, mandatory=True, position=0)
MEMBER = Parameter("Member", text, mandatory=True, pipeline=True)
# Accepted for scripts written for Exchange; role groups here have no ManagedBy check to bypass.
COMPATIBILITY = (switch("BypassSecurityGroupManagerCheck"), Parameter("DomainController", text))


def _change_membership(invocation, change, action):
    """``change(caller, group, member)`` once the user confirms ``action`` (a format string of group and member)."""
    group, member = invocation.params["Identity"], invocation.params["Member"]
    write = partial(change, invocation.session.caller, group, member)
    if invocation.should_process(action.format(group=group, member=member), rehearse=write):
        write()
    return []


@cmdlet("Add-RoleGroupMember", ROLE_GROUP, MEMBER, *COMPATIBILITY, should_process=True)
def add_role_group_member(invocation):
    """Use the Add-RoleGroupMember cmdlet to add members to a management role group."""
    return _change_membership(
        invocation, services.add_role_group_member, 'Adding member "{member}" to role group "{group}".'
    )


@cmdlet("Remove-RoleGroupMember", ROLE_GROUP, MEMBER, *COMPATIBILITY, confirm=True)
def remove_role_group_member(invocation):
    """Use the Remove-RoleGroupMember cmdlet to remove members from a management role group."""
    return _change_membership(
        invocation, services.remove_role_group_member, 'Removing member "{member}" from role group "{group}".'
    )


@cmdlet("Get-RoleGroupMember", Parameter("Identity", text, mandatory=True, position=0, pipeline=True))
def get_role_group_member(invocation):
    """Use the Get-RoleGroupMember cmdlet to retrieve a list of members of a management role group."""
    return [
        Record(
            {"Name": user.username, "RecipientType": "User", "Identity": user.username}, table=("Name", "RecipientType")
        )
        for user in selectors.role_group_members(invocation.params["Identity"])
    ]


@cmdlet("Get-SignInLockout")
def get_sign_in_lockout(invocation):
    return [
        Record(
            {
                "Kind": lockouts.PARAMETER[lockout.kind],
                "Identity": lockout.value,
                "FailedAttempts": lockout.failures,
                "LastFailure": utc_text(lockout.last_failure),
                "LockedUntil": utc_text(lockout.ends_at),
            },
            table=("Kind", "Identity", "FailedAttempts", "LockedUntil"),
        )
        for lockout in lockouts.current_lockouts()
    ]


@cmdlet("Clear-SignInLockout", *(Parameter(name, text) for name in lockouts.PARAMETER.values()), should_process=True)
def clear_sign_in_lockout(invocation):
    given = [
        (kind, invocation.params[name]) for kind, name in lockouts.PARAMETER.items() if invocation.params.get(name)
    ]
    if len(given) != 1:
        raise CmdletError("Specify either -UserName or -IPAddress.")
    kind, value = given[0]
    write = partial(lockouts.clear_lockout, invocation.session.caller, kind, value)
    if invocation.should_process(f'Clearing the sign-in lockout of "{value}".', rehearse=write):
        write()
    return []
