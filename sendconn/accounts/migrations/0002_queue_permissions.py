from django.db import migrations

from sendconn.accounts import roles

READ = ("transport.view_recipient", "transport.view_message", "transport.view_trackingevent")
MANAGE = ("transport.manage_queues",)
# Queue viewing and message tracking for every role group; queue and message actions for the two managing ones.
GROUP_PERMISSIONS = {
    roles.ORGANIZATION_MANAGEMENT: READ + MANAGE,
    roles.SERVER_MANAGEMENT: READ + MANAGE,
    roles.VIEW_ONLY_ORGANIZATION_MANAGEMENT: READ,
}


def grant_queue_permissions(apps, schema_editor):
    roles.grant(apps, GROUP_PERMISSIONS)


def revoke_queue_permissions(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group in Group.objects.filter(name__in=GROUP_PERMISSIONS):
        codenames = [perm.split(".")[1] for perm in GROUP_PERMISSIONS[group.name]]
        group.permissions.remove(*Permission.objects.filter(content_type__app_label="transport", codename__in=codenames))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_role_groups"),
        ("transport", "0002_manage_queues_permission"),
    ]
    operations = [migrations.RunPython(grant_queue_permissions, revoke_queue_permissions)]
