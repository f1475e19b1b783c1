"""Verify delivery in Chromium, end to end: the button, the recipients form, the live step table, the result.

Peers are real: the test nsd and aiosmtpd sinks on 127.0.0.x. The verification itself runs the way the worker
runs it (``run_verification``), started by the same on-commit hook that sends the Celery task; here that hook's
``apply_async`` starts a thread in this process instead of going through a broker. A worker process can't be
used: pytest-django's live server runs on an in-memory SQLite database that no other process can open, and one
connection to it is shared by the live server's threads — the verification thread joins them. (The real worker
path is covered in tests/verification/test_runs.py with a Celery worker on Redis and PostgreSQL.)
"""

import asyncio
import re
import threading

import pytest
from django.contrib.auth.models import Group, User
from django.db import connections
from playwright.sync_api import expect

from sendconn.accounts import roles
from sendconn.connectors.services import Credential
from sendconn.verification import services
from sendconn.verification.runner import run_verification
from tests.peers import free_port
from tests.peers.smtp import SmtpSink
from tests.transport.conftest import dns_settings, nsd, sink, tls_certs  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


class SlowSink(SmtpSink):
    """A sink that takes ``data_delay`` seconds to answer the end of DATA: time to watch the steps go by."""

    def __init__(self, *args, data_delay=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.data_delay = data_delay

    def _handler(self):
        handler = super()._handler()
        answer = handler.handle_DATA

        async def slow_data(server, session, envelope):
            await asyncio.sleep(self.data_delay)
            return await answer(server, session, envelope)

        handler.handle_DATA = slow_data
        return handler


@pytest.fixture(autouse=True)
def quick(settings, dns_settings):  # noqa: F811
    settings.SENDCONN_VERIFY_TIMEOUT = 5.0
    return settings


@pytest.fixture(autouse=True)
def shared_connection(live_server):
    """One connection to the in-memory test database for the live server's threads and the verification's.

    Django's LiveServerTestCase shares the test's in-memory SQLite connection with the server threads; pytest-
    django's session-wide live_server does so only when the test database existed before it started. Otherwise
    each thread opens its own connection to the shared-cache database, whose table locks fail a writer at once
    ("database table is locked") while another thread reads — as the page's polling does while the verification
    writes its steps. So share one connection here, as LiveServerTestCase would.
    """
    server = live_server.thread.httpd
    overrides = server.connections_override or {}
    shared = overrides.get("default")
    if shared is not None:
        yield shared
        return
    shared = connections["default"]
    shared.inc_thread_sharing()  # for good: server threads still open for Chromium's connections close it later
    server.connections_override = {**overrides, "default": shared}
    yield shared
    server.connections_override = overrides


@pytest.fixture(autouse=True)
def worker_thread(monkeypatch, shared_connection):
    """The on-commit hook's ``publish_run`` runs the verification in a thread of this process."""
    threads = []

    def run(run_id):
        connections["default"] = shared_connection
        run_verification(run_id)

    def publish_run(run_id, queue):
        assert queue == "verify.ex01"
        thread = threading.Thread(target=run, args=(run_id,), name="verification", daemon=True)
        thread.start()
        threads.append(thread)

    monkeypatch.setattr(services, "publish_run", publish_run)
    yield
    for thread in threads:  # done before the database is emptied
        thread.join(timeout=30)


@pytest.fixture
def admin(live_server, page):
    """A page signed in as a member of "Server Management" (who may verify), on the connector list."""
    password = "Br0wser-verify-pw"
    User.objects.create_user("browser-admin", password=password).groups.add(
        Group.objects.get(name=roles.SERVER_MANAGEMENT)
    )
    page.goto(f"{live_server.url}/login/?next=/connectors/")
    page.get_by_label("User name").fill("browser-admin")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="sign in").click()
    page.wait_for_url(f"{live_server.url}/connectors/")
    return page


def step_row(page, name):
    return page.locator("#verification-status tbody tr", has=page.get_by_role("rowheader", name=name))


def step_status(page, name):
    return step_row(page, name).locator("td").first


def start(page, live_server, connector, recipients="julia@implicit.test"):
    page.goto(f"{live_server.url}/connectors/{connector.guid}/verify/")
    page.get_by_label("Recipients").fill(recipients)
    page.get_by_role("button", name="Validate").click()
    page.wait_for_url(re.compile(r"/verifications/\d+/$"))


def test_passing_connector_shows_each_step_live(admin, live_server, make_connector):
    page = admin
    server = SlowSink("127.0.0.5", data_delay=2.0)
    server.start()
    try:
        make_connector("To internet", port=server.port)
        page.goto(f"{live_server.url}/connectors/")
        page.get_by_role("link", name="Verify delivery").click()
        expect(page.get_by_role("heading", name="Verify delivery")).to_be_visible()
        page.get_by_label("Recipients").fill("julia@implicit.test, kim@implicit.test")
        page.get_by_role("button", name="Validate").click()
        page.wait_for_url(re.compile(r"/verifications/\d+/$"))
        page.evaluate("window.notReloaded = true")

        # While the sink sits on DATA, the earlier steps are done and the last one is running.
        expect(step_status(page, "Send test email")).to_have_text("Running", timeout=5000)
        expect(step_status(page, "Connection")).to_have_text("Succeeded")
        expect(step_row(page, "Connection")).to_contain_text(f"Connected to 127.0.0.5:{server.port}")
        expect(step_status(page, "TLS")).to_have_text("Skipped")
        expect(page.get_by_role("heading", name="Validation result: Running")).to_be_visible()

        expect(page.get_by_role("heading", name="Validation result: Succeeded")).to_be_visible(timeout=10000)
        expect(step_status(page, "Send test email")).to_have_text("Succeeded")
        assert page.evaluate("window.notReloaded") is True  # htmx swapped the fragment; no page load
        assert server.messages[0].rcpt_tos == ["julia@implicit.test", "kim@implicit.test"]

        page.get_by_text("SMTP transcript").click()
        expect(page.locator("details.transcript pre")).to_contain_text("> EHLO ex01.contoso.test")

        page.get_by_role("link", name="send connectors").first.click()
        expect(page.get_by_role("row", name=re.compile("To internet"))).to_contain_text("Passed")
        expect(page.get_by_role("row", name=re.compile("To internet"))).to_contain_text("by browser-admin")
    finally:
        server.stop()


def test_smart_host_that_refuses_the_connection(admin, live_server, make_connector):
    port = free_port("127.0.0.7")
    connector = make_connector("To relay", dns_routing_enabled=False, smart_hosts=["smtp.relay.test"], port=port)

    start(admin, live_server, connector)

    expect(admin.get_by_role("heading", name="Validation result: Failed")).to_be_visible(timeout=10000)
    expect(admin.get_by_role("alert")).to_contain_text("Connection failed: 450 4.4.316 Connection refused")
    expect(admin.get_by_role("alert")).to_contain_text(f"Nothing accepts connections on 127.0.0.7:{port}")
    expect(step_status(admin, "Resolve")).to_have_text("Succeeded")
    expect(step_status(admin, "Connection")).to_have_text("Failed")
    expect(step_status(admin, "Send test email")).to_have_text("Skipped")


def test_certificate_that_fails_certificate_validation(
    admin,
    live_server,
    make_connector,
    settings,
    sink,  # noqa: F811
    tls_certs,  # noqa: F811
):
    settings.SENDCONN_TLS_CA_FILE = str(tls_certs.ca_file)
    server = sink("127.0.0.7", tls_cert=tls_certs.untrusted)
    connector = make_connector(
        "To relay",
        dns_routing_enabled=False,
        smart_hosts=["smtp.relay.test"],
        port=server.port,
        require_tls=True,
        tls_auth_level="CertificateValidation",
    )

    start(admin, live_server, connector)

    expect(admin.get_by_role("heading", name="Validation result: Failed")).to_be_visible(timeout=10000)
    expect(admin.get_by_role("alert")).to_contain_text("TLS failed: 450 4.7.320 Certificate validation failed")
    expect(step_status(admin, "SMTP EHLO")).to_have_text("Succeeded")
    expect(step_status(admin, "TLS")).to_have_text("Failed")
    assert server.messages == []


def test_smart_host_that_rejects_authentication(admin, live_server, make_connector, sink, tls_certs):  # noqa: F811
    server = sink("127.0.0.7", tls_cert=tls_certs.valid, auth={"relay": "right"})
    connector = make_connector(
        "To relay",
        dns_routing_enabled=False,
        smart_hosts=["127.0.0.7"],
        port=server.port,
        smart_host_auth_mechanism="BasicAuthRequireTLS",
        authentication_credential=Credential("relay", "wrong"),
    )

    start(admin, live_server, connector)

    expect(admin.get_by_role("heading", name="Validation result: Failed")).to_be_visible(timeout=10000)
    expect(admin.get_by_role("alert")).to_contain_text("Authentication failed: 450 4.7.8 Authentication failed")
    expect(step_status(admin, "TLS")).to_have_text("Succeeded")
    expect(step_status(admin, "Authentication")).to_have_text("Failed")
    expect(step_row(admin, "Authentication")).to_contain_text("AUTH PLAIN ****")
    expect(admin.locator("body")).not_to_contain_text("wrong")
