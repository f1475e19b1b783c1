"""Exchange's management role groups and what each may do.

Groups are created by a migration; permissions are Django's, so views check ``user.has_perm``.
"""
ORGANIZATION_MANAGEMENT = "Organization Management"
SERVER_MANAGEMENT = "Server Management"
VIEW_ONLY_ORGANIZATION_MANAGEMENT = "View-Only Organization Management"
ROLE_GROUPS = (ORGANIZATION_MANAGEMENT, SERVER_MANAGEMENT, VIEW_ONLY_ORGANIZATION_MANAGEMENT)

VIEW_CONNECTORS = "connectors.view_sendconnector"
ADD_CONNECTORS = "connectors.add_sendconnector"
CHANGE_CONNECTORS = "connectors.change_sendconnector"
DELETE_CONNECTORS = "connectors.delete_sendconnector"
VERIFY_CONNECTORS = "connectors.verify_sendconnector"
VIEW_AUDIT_LOG = "connectors.view_adminauditlogentry"
MANAGE_ROLE_GROUPS = "auth.change_group"

# Group → permission codenames ("app_label.codename"); a later feature adds its own in a migration.
GROUP_PERMISSIONS = {
    ORGANIZATION_MANAGEMENT: (
        VIEW_CONNECTORS, ADD_CONNECTORS, CHANGE_CONNECTORS, DELETE_CONNECTORS, VERIFY_CONNECTORS,
        VIEW_AUDIT_LOG, MANAGE_ROLE_GROUPS, "connectors.view_transportserver",
    ),
    SERVER_MANAGEMENT: (VIEW_CONNECTORS, VERIFY_CONNECTORS, VIEW_AUDIT_LOG, "connectors.view_transportserver"),
    VIEW_ONLY_ORGANIZATION_MANAGEMENT: (VIEW_CONNECTORS, VIEW_AUDIT_LOG, "connectors.view_transportserver"),
}
