"""Exchange's management role groups and what each may do.

Groups are created by a migration; permissions are Django's, so views check ``user.has_perm``.
"""

ORGANIZATION_MANAGEMENT = "Organization Management"
SERVER_MANAGEMENT = "Server Management"
VIEW_ONLY_ORGANIZATION_MANAGEMENT = "View-Only Organization Management"
ROLE_GROUPS = (ORGANIZATION_MANAGEMENT, SERVER_MANAGEMENT, VIEW_ONLY_ORGANIZATION_MANAGEMENT)
# What the EAC says of each role group (permissions › admin roles), narrowed to what sendconn manages.
ROLE_GROUP_DESCRIPTIONS = {
    ORGANIZATION_MANAGEMENT: (
        "Members of this management role group have permissions to manage Send connectors, queues and transport "
        "servers in the organization. Members can also manage role groups, users and sign-in lockouts."
    ),
    SERVER_MANAGEMENT: (
        "Members of this management role group have permissions to manage the transport servers' queues and to "
        "verify Send connectors, but not to change configuration that has organization-wide impact."
    ),
    VIEW_ONLY_ORGANIZATION_MANAGEMENT: (
        "Members of this management role group can view the Send connectors, queues, message tracking and "
        "protocol logs of the organization, but can't change them."
    ),
}

VIEW_CONNECTORS = "connectors.view_sendconnector"
ADD_CONNECTORS = "connectors.add_sendconnector"
CHANGE_CONNECTORS = "connectors.change_sendconnector"
DELETE_CONNECTORS = "connectors.delete_sendconnector"
VERIFY_CONNECTORS = "connectors.verify_sendconnector"
VIEW_AUDIT_LOG = "connectors.view_adminauditlogentry"
MANAGE_ROLE_GROUPS = "auth.change_group"
VIEW_QUEUES = "transport.view_recipient"  # the queue viewer: queues and their recipients
VIEW_QUEUED_MESSAGES = "transport.view_message"
MANAGE_QUEUES = "transport.manage_queues"  # Retry-/Suspend-/Resume-Queue, Suspend-/Resume-/Remove-Message
VIEW_MESSAGE_TRACKING = "transport.view_trackingevent"
QUEUE_READER = (VIEW_QUEUES, VIEW_QUEUED_MESSAGES, VIEW_MESSAGE_TRACKING)

# Group → permission codenames ("app_label.codename"); a later feature adds its own in a migration.
GROUP_PERMISSIONS = {
    ORGANIZATION_MANAGEMENT: (
        VIEW_CONNECTORS,
        ADD_CONNECTORS,
        CHANGE_CONNECTORS,
        DELETE_CONNECTORS,
        VERIFY_CONNECTORS,
        VIEW_AUDIT_LOG,
        MANAGE_ROLE_GROUPS,
        "connectors.view_transportserver",
        *QUEUE_READER,
        MANAGE_QUEUES,
    ),
    SERVER_MANAGEMENT: (
        VIEW_CONNECTORS,
        VERIFY_CONNECTORS,
        VIEW_AUDIT_LOG,
        "connectors.view_transportserver",
        *QUEUE_READER,
        MANAGE_QUEUES,
    ),
    VIEW_ONLY_ORGANIZATION_MANAGEMENT: (
        VIEW_CONNECTORS,
        VIEW_AUDIT_LOG,
        "connectors.view_transportserver",
        *QUEUE_READER,
    ),
}


def grant(apps, group_permissions):
    """Give each role group the permissions listed for it (a migration's RunPython; ``apps`` is its state).

    Django creates permissions after all migrations have run; the groups need them now, so they are created
    here first. A migration passes its own copy of the table, not ``GROUP_PERMISSIONS``, which grows later.
    """
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, perms in group_permissions.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
