"""Sign-in throttling (django-axes): 5 failed passwords for a name or from an address lock it for 15 minutes;
the lockout is audited, and Organization Management lifts it on the permissions page."""

import ipaddress
import logging
from datetime import timedelta
from html import unescape

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import authenticate
from django.test import Client, RequestFactory
from django.urls import reverse

from sendconn.accounts import lockouts, roles
from sendconn.connectors.models import AdminAuditLogEntry
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
PASSWORD = "Pa$$w0rd-orgadmin"  # tests.conftest.make_user's password for orgadmin


def sign_in(client, username, password, **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


def signed_in(client):
    return "_auth_user_id" in client.session


@pytest.fixture
def lifter(db):
    """A second member of Organization Management, signed in from another address."""
    client = Client(REMOTE_ADDR="192.0.2.200")
    client.force_login(make_user("kim", roles.ORGANIZATION_MANAGEMENT))
    return client


def test_100_wrong_passwords_lock_after_5_audited_until_an_admin_lifts_it(client, org_admin, lifter):
    statuses = [sign_in(client, "orgadmin", f"guess-{n}").status_code for n in range(100)]
    assert statuses[:4] == [200] * 4  # the form again, with its error
    assert statuses[4:] == [429] * 96  # the 5th failure locks; the rest are refused unchecked
    locked = sign_in(client, "orgadmin", PASSWORD)
    assert locked.status_code == 429 and not signed_in(client)
    assert "Too many failed sign-ins (5). Wait 15 minutes" in unescape(locked.content.decode())
    # Attempts refused during the lockout aren't counted: it ends 15 minutes after the 5th failure.
    assert sum(AccessAttempt.objects.values_list("failures_since_start", flat=True)) == 5

    lockout = AdminAuditLogEntry.objects.get(cmdlet="Sign-in lockout")
    assert (lockout.caller, lockout.source, lockout.object_name, lockout.connector_guid) == (
        "127.0.0.1",
        "Web",
        "orgadmin",
        None,
    )
    assert lockout.command_line == (
        "Sign-in locked for 15 minutes after 5 failed attempts: user name orgadmin, address 127.0.0.1"
    )
    assert "guess" not in " ".join(AccessAttempt.objects.values_list("post_data", flat=True))

    page = unescape(lifter.get(reverse("permissions:lockouts")).content.decode())
    assert "User name orgadmin" in page and "Address 127.0.0.1" in page
    response = lifter.post(reverse("permissions:clear-lockout"), {"kind": "username", "value": "orgadmin"}, follow=True)
    assert '"orgadmin" may sign in again.' in unescape(response.content.decode())
    assert lockouts.current_lockouts() == []  # the address's count was those same failures
    assert AdminAuditLogEntry.objects.filter(cmdlet="Clear-SignInLockout").get().command_line == (
        "Clear-SignInLockout -UserName orgadmin"
    )
    assert AdminAuditLogEntry.objects.get(cmdlet="Clear-SignInLockout").caller == "kim"

    response = sign_in(client, "orgadmin", PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_an_address_is_locked_whichever_names_it_tries(org_admin, lifter):
    attacker = Client(REMOTE_ADDR="198.51.100.7")
    for name in ["alice", "bob", "carol", "dave", "erin"]:
        sign_in(attacker, name, "guess")
    assert sign_in(attacker, "orgadmin", PASSWORD).status_code == 429
    # The name itself isn't locked: the administrator signs in from elsewhere.
    elsewhere = Client(REMOTE_ADDR="203.0.113.5")
    assert sign_in(elsewhere, "orgadmin", PASSWORD).status_code == 302
    assert [(lockout.kind, lockout.value, lockout.failures) for lockout in lockouts.current_lockouts()] == [
        (lockouts.ADDRESS, "198.51.100.7", 5)
    ]
    assert AdminAuditLogEntry.objects.get(cmdlet="Sign-in lockout").command_line.endswith("address 198.51.100.7")
    lifter.post(reverse("permissions:clear-lockout"), {"kind": "ip_address", "value": "198.51.100.7"})
    assert AdminAuditLogEntry.objects.get(cmdlet="Clear-SignInLockout").command_line == (
        "Clear-SignInLockout -IPAddress 198.51.100.7"
    )
    assert sign_in(attacker, "orgadmin", PASSWORD).status_code == 302


def test_a_lockout_ends_by_itself_after_15_minutes(client, org_admin):
    for n in range(5):
        sign_in(client, "orgadmin", f"guess-{n}")
    assert sign_in(client, "orgadmin", PASSWORD).status_code == 429
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=15, seconds=1)
    )
    assert lockouts.current_lockouts() == []
    assert sign_in(client, "orgadmin", PASSWORD).status_code == 302


def test_four_failures_dont_lock(client, org_admin):
    for n in range(4):
        sign_in(client, "orgadmin", f"guess-{n}")
    assert sign_in(client, "orgadmin", PASSWORD).status_code == 302
    assert not AdminAuditLogEntry.objects.exists()


def test_lifting_what_isnt_locked_is_refused(lifter):
    response = lifter.post(reverse("permissions:clear-lockout"), {"kind": "username", "value": "nobody"}, follow=True)
    assert 'The user name "nobody" isn\'t locked out.' in unescape(response.content.decode())
    response = lifter.post(reverse("permissions:clear-lockout"), {"kind": "bogus", "value": "x"}, follow=True)
    assert response.status_code == 200
    assert not AdminAuditLogEntry.objects.exists()


def request_from(remote_addr, forwarded=None):
    extra = {"REMOTE_ADDR": remote_addr}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_the_client_address_is_remote_addr_without_a_trusted_proxy(settings):
    settings.SENDCONN_TRUSTED_PROXIES = []
    assert lockouts.client_ip(request_from("192.0.2.1", "203.0.113.9")) == "192.0.2.1"


def test_a_trusted_proxy_forwards_the_client_address(settings):
    settings.SENDCONN_TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    # The proxy appends who connected to it; what the client wrote further left is ignored.
    assert lockouts.client_ip(request_from("10.0.0.2", "6.6.6.6, 203.0.113.9")) == "203.0.113.9"
    assert lockouts.client_ip(request_from("10.0.0.2", "203.0.113.9, 10.1.1.1")) == "203.0.113.9"  # two proxies
    assert lockouts.client_ip(request_from("10.0.0.2")) == "10.0.0.2"
    assert lockouts.client_ip(request_from("10.0.0.2", "not-an-address")) == "10.0.0.2"
    assert lockouts.client_ip(request_from("192.0.2.1", "203.0.113.9")) == "192.0.2.1"  # not a trusted proxy


def test_smtp_auth_without_a_request_still_authenticates_and_logs_no_error(org_admin, caplog):
    """smtpd checks AUTH with ``authenticate`` and no HTTP request: axes lets it through, and the errors axes
    logs about the missing request are filtered out of the log."""
    assert authenticate(username="orgadmin", password=PASSWORD) == org_admin
    assert authenticate(username="orgadmin", password="wrong") is None
    assert not [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
