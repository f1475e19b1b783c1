"""Add-, Remove- and Get-RoleGroupMember: membership of the management role groups."""
from functools import partial

from sendconn.accounts import services

from ..output import Record
from ..registry import Parameter, cmdlet, switch, text

ROLE_GROUP = Parameter("Identity", text, mandatory=True, position=0)
MEMBER = Parameter("Member", text, mandatory=True, pipeline=True)
# Accepted for scripts written for Exchange; role groups here have no ManagedBy check to bypass.
COMPATIBILITY = (switch("BypassSecurityGroupManagerCheck"), Parameter("DomainController", text))


def _change_membership(invocation, change, action):
    """``change(group, member)`` once the user confirms ``action`` (a format string of group and member)."""
    group, member = invocation.params["Identity"], invocation.params["Member"]
    write = partial(change, group, member)
    if invocation.should_process(action.format(group=group, member=member), rehearse=write):
        write()
    return []


@cmdlet("Add-RoleGroupMember", ROLE_GROUP, MEMBER, *COMPATIBILITY, should_process=True)
def add_role_group_member(invocation):
    """Use the Add-RoleGroupMember cmdlet to add members to a management role group."""
    return _change_membership(invocation, services.add_role_group_member,
                              'Adding member "{member}" to role group "{group}".')


@cmdlet("Remove-RoleGroupMember", ROLE_GROUP, MEMBER, *COMPATIBILITY, confirm=True)
def remove_role_group_member(invocation):
    """Use the Remove-RoleGroupMember cmdlet to remove members from a management role group."""
    return _change_membership(invocation, services.remove_role_group_member,
                              'Removing member "{member}" from role group "{group}".')


@cmdlet("Get-RoleGroupMember", Parameter("Identity", text, mandatory=True, position=0, pipeline=True))
def get_role_group_member(invocation):
    """Use the Get-RoleGroupMember cmdlet to retrieve a list of members of a management role group."""
    return [
        Record({"Name": user.username, "RecipientType": "User", "Identity": user.username}, table=("Name", "RecipientType"))
        for user in services.role_group_members(invocation.params["Identity"])
    ]
