from django.db import migrations

from sendconn.accounts import roles

# The groups as this migration made them; later permissions come with their own migrations.
GROUP_PERMISSIONS = {
    roles.ORGANIZATION_MANAGEMENT: (
        "connectors.view_sendconnector", "connectors.add_sendconnector", "connectors.change_sendconnector",
        "connectors.delete_sendconnector", "connectors.verify_sendconnector", "connectors.view_adminauditlogentry",
        "auth.change_group", "connectors.view_transportserver",
    ),
    roles.SERVER_MANAGEMENT: (
        "connectors.view_sendconnector", "connectors.verify_sendconnector", "connectors.view_adminauditlogentry",
        "connectors.view_transportserver",
    ),
    roles.VIEW_ONLY_ORGANIZATION_MANAGEMENT: (
        "connectors.view_sendconnector", "connectors.view_adminauditlogentry", "connectors.view_transportserver",
    ),
}


def create_role_groups(apps, schema_editor):
    roles.grant(apps, GROUP_PERMISSIONS)


def remove_role_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUP_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("connectors", "0001_initial"),
    ]
    operations = [migrations.RunPython(create_role_groups, remove_role_groups)]
