"""/metrics: Prometheus counters after real deliveries (aiosmtpd sinks, the test nsd), the queue gauges read from
the database, who may scrape, and the counts of several processes (two smtpd listeners, a Celery worker, beat and
two gunicorn workers) added up.

Counters live in this test session's multiprocess folder and only grow, so the in-process tests compare before
and after; the process test has a folder of its own and checks exact values.
"""

import ipaddress
import smtplib
import sqlite3
import time
import urllib.request

import pytest
from django.db import transaction

from sendconn.connectors.services import Caller
from sendconn.observability import metrics
from sendconn.transport import tracking, wakeups
from sendconn.transport.engine import get_engine
from sendconn.transport.models import TrackingEventId, TrackingSource
from sendconn.transport.queueing import queue_message
from sendconn.transport.tasks import sweep
from sendconn.verification.models import VerificationStatus
from sendconn.verification.runner import run_verification
from sendconn.verification.services import start_verification
from tests.peers import free_port
from tests.peers.stack import TransportStack

from .conftest import parse_metrics, sample

SENDER = "julia@contoso.test"
CONTENT = b"From: julia@contoso.test\r\nSubject: Quarterly report\r\n\r\nNumbers attached.\r\n"


@pytest.fixture(autouse=True)
def quiet_transport(settings, tmp_path, dns_settings, woken):
    settings.SENDCONN_PROTOCOL_LOG_DIR = tmp_path / "ProtocolLog"
    settings.SENDCONN_TRACKING_LOG_DIR = tmp_path / "MessageTracking"
    settings.SENDCONN_VERIFY_TIMEOUT = 0.5
    wakeups.forget()


@pytest.fixture
def port():
    return free_port("127.0.0.6")


# --- after real deliveries ---------------------------------------------------------------------------------------


def test_delivered_deferred_and_failed_recipients_are_counted_with_their_status_class(
    make_connector, sink, port, scrape, django_capture_on_commit_callbacks
):
    connector = make_connector("Metrics route", ["*"], usage="Internet", port=port)
    sink(
        "127.0.0.6",
        port=port,
        rcpt_replies={
            "busy@partial.test": "450 4.2.1 Mailbox busy, try again later",
            "gone@partial.test": "550 5.1.1 User unknown",
        },
    )
    queue_message(SENDER, ["ok@partial.test", "busy@partial.test", "gone@partial.test"], CONTENT)
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        get_engine().deliver_now(connector.pk, "partial.test")

    after = scrape()

    def grew(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("sendconn_recipients_total", connector="Metrics route", outcome="delivered", status_class="2") == 1
    assert grew("sendconn_recipients_total", connector="Metrics route", outcome="deferred", status_class="4") == 1
    assert grew("sendconn_recipients_total", connector="Metrics route", outcome="failed", status_class="5") == 1
    assert grew("sendconn_delivery_latency_seconds_count", connector="Metrics route") == 1
    assert grew("sendconn_delivery_latency_seconds_bucket", connector="Metrics route", le="+Inf") == 1
    # The deferred recipient waits in the Retry state of its queue, read from the database at scrape time.
    assert (
        sample(after, "sendconn_queue_messages", connector="Metrics route", next_hop="partial.test", status="Retry")
        == 1
    )
    assert (
        sample(after, "sendconn_queue_oldest_message_age_seconds", connector="Metrics route", next_hop="partial.test")
        >= 0
    )
    assert ("sendconn_smtp_sessions_open", frozenset()) in after


def test_outcomes_of_a_rolled_back_transaction_are_not_counted(
    make_connector, scrape, django_capture_on_commit_callbacks
):
    make_connector("Rolled back", ["*"])
    message = queue_message(SENDER, ["kim@implicit.test"], CONTENT)
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            tracking.record(
                [
                    tracking.event(
                        TrackingEventId.SEND,
                        TrackingSource.SMTP,
                        message,
                        "kim@implicit.test",
                        recipient_status="250 2.6.0 Queued",
                        connector_name="Rolled back",
                    )
                ]
            )
            raise RuntimeError("the delivery's transaction fails")

    after = scrape()
    for name in ("sendconn_recipients_total", "sendconn_delivery_latency_seconds_count"):
        assert {key: value for key, value in after.items() if key[0] == name} == {
            key: value for key, value in before.items() if key[0] == name
        }


def test_queued_messages_are_gauged_per_connector_next_hop_and_status(make_connector, scrape):
    make_connector("Queue gauge", ["*"])
    queue_message(SENDER, ["kim@implicit.test", "lee@implicit.test"], CONTENT)  # one message, two recipients
    queue_message(SENDER, ["kim@implicit.test"], CONTENT)

    samples = scrape()

    assert (
        sample(samples, "sendconn_queue_messages", connector="Queue gauge", next_hop="implicit.test", status="Ready")
        == 2
    )
    assert (
        0
        <= sample(
            samples, "sendconn_queue_oldest_message_age_seconds", connector="Queue gauge", next_hop="implicit.test"
        )
        < 60
    )


def test_verify_delivery_runs_are_counted_by_result(make_connector, sink, scrape):
    server = sink("127.0.0.5", port=free_port("127.0.0.5"))
    good = make_connector("Verified", ["*"], port=server.port)
    bad = make_connector("Refused", dns_routing_enabled=False, smart_hosts=["127.0.0.7"], port=free_port("127.0.0.7"))
    before = scrape()

    ran = [
        run_verification(start_verification(Caller("orgadmin", "Web"), connector, "julia@implicit.test").pk)
        for connector in (good, bad)
    ]

    assert [run.status for run in ran] == [VerificationStatus.SUCCEEDED, VerificationStatus.FAILED]
    after = scrape()
    for result in ("Succeeded", "Failed"):
        assert (
            sample(after, "sendconn_verify_delivery_runs_total", result=result)
            - sample(before, "sendconn_verify_delivery_runs_total", result=result)
        ) == 1


def test_sweeper_runs_are_counted(scrape, db):
    before = sample(scrape(), "sendconn_sweeper_runs_total", result="success")

    sweep.apply()

    assert sample(scrape(), "sendconn_sweeper_runs_total", result="success") == before + 1


def test_smtp_session_gauge_follows_the_delivery_engines_calls(scrape, db):
    before = sample(scrape(), "sendconn_smtp_sessions_open")
    metrics.smtp_session_opened()
    metrics.smtp_session_opened()
    metrics.smtp_session_closed()

    assert sample(scrape(), "sendconn_smtp_sessions_open") == before + 1
    metrics.smtp_session_closed()


# --- who may scrape --------------------------------------------------------------------------------------------


def test_metrics_answer_loopback_by_default_and_no_one_else(client, db):
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    refused = client.get("/metrics", REMOTE_ADDR="192.0.2.10")
    assert refused.status_code == 403
    assert b"SENDCONN_METRICS_NETWORKS" in refused.content
    assert client.post("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 405


def test_metrics_answer_the_configured_networks(client, db, settings):
    settings.SENDCONN_METRICS_NETWORKS = [ipaddress.ip_network("192.0.2.0/24")]

    assert client.get("/metrics", REMOTE_ADDR="192.0.2.10").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_metrics_answer_the_bearer_token_from_anywhere(client, db, settings):
    settings.SENDCONN_METRICS_TOKEN = "scrape-me-4f1c"

    allowed = client.get("/metrics", REMOTE_ADDR="192.0.2.10", HTTP_AUTHORIZATION="Bearer scrape-me-4f1c")
    assert allowed.status_code == 200
    assert allowed["Content-Type"].startswith("text/plain; version=")
    for header in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": "Basic scrape-me-4f1c"}):
        refused = client.get("/metrics", REMOTE_ADDR="192.0.2.10", **header)
        assert refused.status_code == 401
        assert refused["WWW-Authenticate"].startswith("Bearer")


# --- several processes -----------------------------------------------------------------------------------------


@pytest.mark.services
def test_counts_of_smtpd_worker_and_beat_processes_add_up_on_the_web(tmp_path, nsd, sink):
    """Embedded mode as `make run` starts it: each process writes its own counters, gunicorn's /metrics adds them."""
    server = sink("127.0.0.5", port=free_port("127.0.0.5"))
    stack = TransportStack(
        tmp_path, SENDCONN_DNS_SERVERS=nsd.address, SENDCONN_SWEEP_INTERVAL=1, SENDCONN_SMTP_PROCESSES=2
    )
    try:
        stack.migrate()
        stack.cmdlet(f"New-SendConnector -Name 'To internet' -AddressSpaces * -Internet -Port {server.port}")
        web_port = stack.start_web(workers=2).port
        smtpd = stack.start_smtpd()
        worker = stack.start_worker(concurrency=2)
        stack.start_beat()
        with smtplib.SMTP(smtpd.host, smtpd.port, timeout=30) as client:
            for number in range(3):
                client.sendmail(SENDER, [f"user{number}@implicit.test"], f"Subject: {number}\r\n\r\nHi\r\n")
            client.mail(SENDER)
            assert client.rcpt("no-domain")[0] == 501

        def scraped():
            with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=10) as response:
                return parse_metrics(response.read().decode())

        deadline = time.monotonic() + 60
        while True:
            samples = scraped()
            done = (
                sample(
                    samples, "sendconn_recipients_total", connector="To internet", outcome="delivered", status_class="2"
                )
                == 3
                and sample(samples, "sendconn_sweeper_runs_total", result="success")
                # and the session closed: it stays open (idle) for KEEP_IDLE_FOR seconds after its last message
                and sample(samples, "sendconn_smtp_sessions_open") == 0
            )
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert done, stack.logs()
        assert sample(samples, "sendconn_smtpd_accepted_messages_total") == 3
        assert sample(samples, "sendconn_smtpd_refused_total", code="501") == 1
        assert sample(samples, "sendconn_delivery_latency_seconds_count", connector="To internet") == 3
        assert sample(samples, "sendconn_smtp_sessions_open") == 0
        assert len(server.messages) == 3
        # The worker's sweep also took this period's queue depth sample, for the charts.
        with sqlite3.connect(stack.var_dir / "sendconn.sqlite3") as database:
            names = [
                row[0]
                for row in database.execute(
                    "SELECT DISTINCT connector_name FROM observability_queuedepthsample ORDER BY connector_name"
                )
            ]
        assert names == ["", "To internet"]
        # A worker that stops takes its share of the open-sessions gauge along.
        metrics_dir = stack.var_dir / "metrics"
        assert list(metrics_dir.glob(f"gauge_livesum_*-{worker.pid}.db"))
        worker.stop()
        assert not list(metrics_dir.glob(f"gauge_livesum_*-{worker.pid}.db"))
    finally:
        stack.stop()
