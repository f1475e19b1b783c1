"""First-run setup for `make run`: register this server and create the `admin` user once."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from sendconn.accounts.roles import ORGANIZATION_MANAGEMENT
from sendconn.connectors.servers import local_server


class Command(BaseCommand):
    help = "Register the local transport server and, on first run, create the admin user."

    def handle(self, *args, **options):
        server = local_server()
        self.stdout.write(f"Transport server {server.name} ({server.fqdn}) in site {server.site}.")
        User = get_user_model()
        if User.objects.filter(username="admin").exists():
            return
        password = secrets.token_urlsafe(12)
        admin = User.objects.create_user("admin", password=password)
        admin.groups.add(Group.objects.get(name=ORGANIZATION_MANAGEMENT))
        self.stdout.write(
            self.style.SUCCESS(
                f"Created user 'admin' in \"{ORGANIZATION_MANAGEMENT}\" with password: {password}\n"
                "This password is shown once; change it after signing in."
            )
        )
