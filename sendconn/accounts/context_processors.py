from . import roles


def role_flags(request):
    """What the signed-in user's role groups allow, so templates hide what the role can't do."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "can_view_connectors": user.has_perm(roles.VIEW_CONNECTORS),
        "can_view_queues": user.has_perm(roles.VIEW_QUEUES),
        "can_view_message_tracking": user.has_perm(roles.VIEW_MESSAGE_TRACKING),  # protocol logs too
        "can_manage_connectors": user.has_perm(roles.CHANGE_CONNECTORS),
        "can_verify_connectors": user.has_perm(roles.VERIFY_CONNECTORS),
        "can_manage_queues": user.has_perm(roles.MANAGE_QUEUES),
        "can_manage_permissions": user.has_perm(roles.MANAGE_ROLE_GROUPS),
    }
