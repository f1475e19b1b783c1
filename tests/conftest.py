"""Shared fixtures: a user per role group with a signed-in client, a connector factory, and the transport's
message tracking log directory and wake-ups kept inside the test."""

import os

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management.sql import emit_post_migrate_signal
from django.db import DEFAULT_DB_ALIAS
from django.db.models.signals import post_migrate
from django.dispatch import receiver

from sendconn.accounts import roles
from sendconn.connectors.services import Caller, new_send_connector
from sendconn.transport import wakeups
from sendconn.transport.engine import reset_engine

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API and the ORM in one test


@receiver(post_migrate, dispatch_uid="tests.restore_role_groups")
def restore_role_groups(**kwargs):
    """Transactional tests flush the database after each test, and a flush keeps no data migration's rows:
    Django re-emits post_migrate after the flush, so put the role groups back for the tests that follow.
    Permissions of apps not yet through post_migrate are skipped; the last app's signal completes the set."""
    for group_name, perms in roles.GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        for perm in perms:
            app_label, codename = perm.split(".")
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is not None:
                group.permissions.add(permission)


def make_user(username, group_name=None):
    if not Group.objects.filter(name__in=roles.ROLE_GROUPS).exists():
        # A serialized_rollback test's flush empties every table (content types and permissions too) and
        # emits no post_migrate: emit it, which recreates them and, through the receiver above, the groups.
        emit_post_migrate_signal(verbosity=0, interactive=False, db=DEFAULT_DB_ALIAS)
    user = User.objects.create_user(username, password="Pa$$w0rd-" + username)
    if group_name:
        user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def org_admin(db):
    return make_user("orgadmin", roles.ORGANIZATION_MANAGEMENT)


@pytest.fixture
def server_admin(db):
    return make_user("serveradmin", roles.SERVER_MANAGEMENT)


@pytest.fixture
def helpdesk(db):
    return make_user("helpdesk", roles.VIEW_ONLY_ORGANIZATION_MANAGEMENT)


@pytest.fixture
def nobody(db):
    """Signed in, but in no role group."""
    return make_user("nobody")


def _client_for(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(client, org_admin):
    return _client_for(client, org_admin)


@pytest.fixture
def server_client(client, server_admin):
    return _client_for(client, server_admin)


@pytest.fixture
def helpdesk_client(client, helpdesk):
    return _client_for(client, helpdesk)


@pytest.fixture
def nobody_client(client, nobody):
    return _client_for(client, nobody)


@pytest.fixture
def make_connector(db):
    """``make_connector("To internet", address_spaces=["*"], usage="Internet")`` through the real service."""

    def make(name="To internet", address_spaces=("*",), **params):
        return new_send_connector(
            Caller("tests", "Shell"), name=name, address_spaces=list(address_spaces), **params
        ).connector

    return make


@pytest.fixture
def tracking_log_dir(settings, tmp_path):
    """The message tracking log goes to the test's own directory."""
    settings.SENDCONN_TRACKING_LOG_DIR = tmp_path / "MessageTracking"
    return settings.SENDCONN_TRACKING_LOG_DIR


@pytest.fixture
def woken(monkeypatch):
    """Every wake_next_hops call, in order, recorded instead of sending Celery tasks."""
    calls = []
    monkeypatch.setattr(wakeups, "wake_next_hops", lambda next_hops, **kwargs: calls.append(list(next_hops)))
    return calls


@pytest.fixture(autouse=True)
def fresh_delivery_engine():
    """Each test gets its own delivery engine: sessions, backlogs and concurrency windows end with the test."""
    yield
    reset_engine()
