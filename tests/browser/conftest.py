"""Browser tests: Debian's Chromium driven by pytest-playwright against pytest-django's live_server."""

import os

import pytest
from django.contrib.auth.models import Group, User
from django.db import connections

from sendconn.accounts import roles

# Never download browsers or talk to the network: the system Chromium, with its background services off.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture(scope="session")
def _serialized_databases(django_db_setup):
    """The test databases' contents as pytest-django serialized them, read before Playwright starts."""
    return {alias: getattr(connections[alias], "_test_serialized_contents", None) for alias in connections}


@pytest.fixture(scope="session")
def playwright(_serialized_databases, playwright):
    """Playwright's sync API runs the tests in another context, where Django opens new connection objects
    without the serialized contents that ``serialized_rollback`` restores (the role groups of the migration).
    Give them the same contents, so every browser test starts from the migrated database."""
    for alias, contents in _serialized_databases.items():
        if contents is not None:
            connections[alias]._test_serialized_contents = contents
    return playwright


def sign_in(page, live_server, username, group_name):
    """Create ``username`` in ``group_name`` and sign in through the login form, as an admin would."""
    password = f"Br0wser-{username}-pw"
    user = User.objects.create_user(username, password=password)
    user.groups.add(Group.objects.get(name=group_name))
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="sign in").click()
    page.wait_for_url(f"{live_server.url}/dashboard/")  # home after sign-in
    return user


@pytest.fixture
def admin_page(live_server, page):
    """A page signed in as a member of "Organization Management"."""
    sign_in(page, live_server, "browser-admin", roles.ORGANIZATION_MANAGEMENT)
    return page
