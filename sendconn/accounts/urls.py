from django.urls import path

from . import views

app_name = "permissions"
urlpatterns = [
    path("", views.admin_roles, name="admin-roles"),
    path("roles/<int:group_id>/", views.admin_roles, name="role-group"),
    path("roles/<int:group_id>/members/add/", views.add_member, name="add-member"),
    path("roles/<int:group_id>/members/remove/", views.remove_member, name="remove-member"),
    path("users/", views.user_list, name="users"),
    path("users/<int:user_id>/disable/", views.set_user_enabled, {"enabled": False}, name="disable-user"),
    path("users/<int:user_id>/enable/", views.set_user_enabled, {"enabled": True}, name="enable-user"),
    path("lockouts/", views.lockout_list, name="lockouts"),
    path("lockouts/clear/", views.clear_lockout, name="clear-lockout"),
    path("audit/", views.audit_log, name="audit"),
]
