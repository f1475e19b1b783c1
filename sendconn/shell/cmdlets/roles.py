"""Add-, Remove- and Get-RoleGroupMember: membership of the management role groups."""
from functools import partial

from sendconn.accounts import selectors, services

from ..output import Record
from ..registry import Parameter, cmdlet, switch, text

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
    return _change_membership(invocation, services.add_role_group_member,
                              'Adding member "{member}" to role group "{group}".')


@cmdlet("Remove-RoleGroupMember", ROLE_GROUP, MEMBER, *COMPATIBILITY, confirm=True)
def remove_role_group_member(invocation):
    return _change_membership(invocation, services.remove_role_group_member,
                              'Removing member "{member}" from role group "{group}".')


@cmdlet("Get-RoleGroupMember", Parameter("Identity", text, mandatory=True, position=0, pipeline=True))
def get_role_group_member(invocation):
    return [
        Record({"Name": user.username, "RecipientType": "User", "Identity": user.username}, table=("Name", "RecipientType"))
        for user in selectors.role_group_members(invocation.params["Identity"])
    ]
