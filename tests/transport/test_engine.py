"""The delivery engine against misbehaving and distant servers on loopback: many sessions per process, Exchange's
outbound connection limits, and silent or slow servers that hold only their own sessions.

Zones (tests/transport/conftest.py): implicit.test → 127.0.0.5, silent.test → 127.0.0.9 (no MX, implicit).
"""

import asyncio
import time
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from sendconn.connectors.models import TransportServer
from sendconn.connectors.servers import local_server
from sendconn.transport import wakeups
from sendconn.transport.engine import INITIAL_CONCURRENCY, LINGER_FOR, get_engine, reset_engine, share
from sendconn.transport.models import Recipient, RecipientStatus
from sendconn.transport.queueing import queue_message
from tests.peers import free_port
from tests.peers.hostile import LatencyProxy, ScriptedServer, SilentServer

SENDER = "julia@contoso.test"
CONTENT = b"From: Julia <julia@contoso.test>\r\nSubject: Numbers\r\n\r\nAttached.\r\n"


@pytest.fixture
def port():
    """A port free on both 127.0.0.5 and 127.0.0.9: the connector's Port."""
    for _ in range(50):
        candidate = free_port("127.0.0.5")
        try:
            with SilentServer("127.0.0.9", candidate):
                return candidate
        except OSError:
            continue
    raise RuntimeError("no common free port")


@pytest.fixture
def internet(make_connector, dns_settings, port, woken):
    return make_connector("To internet", ["*"], usage="Internet", port=port)


def limit_connections(per_domain=None, total=None):
    """Set-TransportService EX01 -MaxPerDomainOutboundConnections … -MaxOutboundConnections …"""
    changes = {"max_per_domain_outbound_connections": per_domain} if per_domain else {}
    if total:
        changes["max_outbound_connections"] = total
    TransportServer.objects.filter(pk=local_server().pk).update(**changes)


def rows_of(domain):
    """The domain's rows, read while the engine's thread works: in-memory SQLite shares its cache between
    threads, where a write locks the table for a moment (SQLITE_LOCKED, which no busy timeout waits for)."""
    for _ in range(100):
        try:
            return list(Recipient.objects.filter(domain=domain))
        except OperationalError:
            time.sleep(0.05)
    raise AssertionError(f"the rows of {domain} stayed locked")


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_mail_to_other_domains_flows_while_a_silent_server_holds_its_sessions(internet, sink, port, settings):
    settings.SENDCONN_SMTP_COMMAND_TIMEOUT = timedelta(seconds=60)
    server = sink("127.0.0.5", port=port)
    engine = get_engine()
    with SilentServer("127.0.0.9", port) as silent:
        for number in range(4):
            queue_message(SENDER, [f"user{number}@silent.test"], CONTENT)
        engine.wake(internet.pk, "silent.test")
        wait_until(lambda: silent.connections == 4, 5, "one session per message to the silent server")

        started = time.monotonic()
        for number in range(20):
            queue_message(SENDER, [f"user{number}@implicit.test"], CONTENT)
        engine.wake(internet.pk, "implicit.test")
        wait_until(lambda: len(server.messages) == 20, 5, "mail to another domain while the silent one hangs")
        assert time.monotonic() - started < 5

        waiting = rows_of("silent.test")
        assert {(row.status, row.attempt_count) for row in waiting} == {(RecipientStatus.READY, 0)}  # not failed
        assert all(row.claimed_by == engine.token for row in waiting)  # still in the hands of their sessions
    reset_engine()  # once the silent server hung up: its sessions end at once


@pytest.mark.django_db
def test_a_server_dribbling_its_greeting_is_cut_off_and_retried_on_the_timer(internet, port, settings):
    settings.SENDCONN_SMTP_COMMAND_TIMEOUT = timedelta(seconds=1)

    async def tarpit(reader, writer):
        while True:  # continuation lines for ever: each read succeeds, the reply never ends
            writer.write(b"220-mx.silent.test taking its time\r\n")
            await writer.drain()
            await asyncio.sleep(0.2)

    with ScriptedServer("127.0.0.9", port, tarpit):
        queue_message(SENDER, ["kim@silent.test"], CONTENT)
        started = time.monotonic()
        get_engine().deliver_now(internet.pk, "silent.test")
        elapsed = time.monotonic() - started

    row = Recipient.objects.get()
    assert elapsed < 4
    assert (row.status, row.attempt_count, row.last_response) == (
        RecipientStatus.RETRY,
        1,
        "450 4.4.315 Connection timed out",
    )
    assert row.next_attempt_at >= timezone.now() + timedelta(minutes=4)  # TransientFailureRetryInterval
    assert row.claimed_by == ""


@pytest.mark.django_db
def test_a_slow_server_never_sees_more_sessions_than_max_per_domain_outbound_connections(internet, sink, port):
    limit_connections(per_domain=3)
    server = sink("127.0.0.5", port=port, data_delay=0.2)
    for number in range(15):
        queue_message(SENDER, [f"user{number}@implicit.test"], CONTENT)

    get_engine().deliver_now(internet.pk, "implicit.test")

    assert len(server.messages) == 15
    assert server.max_in_data == 3  # more than one with a backlog, never more than the limit


@pytest.mark.django_db
def test_max_outbound_connections_caps_the_sessions_of_every_next_hop_together(internet, sink, port):
    limit_connections(total=2)
    server = sink("127.0.0.5", port=port, data_delay=0.2)
    for number in range(8):
        queue_message(SENDER, [f"user{number}@implicit.test"], CONTENT)

    get_engine().deliver_now(internet.pk, "implicit.test")

    assert len(server.messages) == 8
    assert server.max_in_data == 2


@pytest.mark.django_db
def test_a_distant_server_is_sent_to_over_parallel_sessions(internet, sink, port):
    far = sink("127.0.0.11", port=free_port("127.0.0.11"))
    with LatencyProxy("127.0.0.5", port, (far.host, far.port), rtt_ms=100):
        for number in range(30):
            queue_message(SENDER, [f"user{number}@implicit.test"], CONTENT)
        started = time.monotonic()
        get_engine().deliver_now(internet.pk, "implicit.test")
        elapsed = time.monotonic() - started

    assert len(far.messages) == 30
    # One session would need 3 round trips per message (MAIL+RCPT pipelined, DATA, the body): 9 s and more.
    assert elapsed < 4
    assert INITIAL_CONCURRENCY <= far.sessions < 30  # sessions grew with the backlog, and were reused


@pytest.mark.django_db(transaction=True)
def test_a_next_hop_with_mail_coming_holds_its_wake_up_mark_while_the_engine_looks_on_its_own(
    internet, sink, port, tmp_path, monkeypatch
):
    marks = wakeups.FileMarks(tmp_path / "wakeups")
    monkeypatch.setattr(wakeups, "pending_marks", lambda: marks)
    hop = (internet.pk, "implicit.test")
    server = sink("127.0.0.5", port=port)
    queue_message(SENDER, ["kim@implicit.test"], CONTENT)
    get_engine().wake(*hop)
    wait_until(lambda: len(server.messages) == 1, 5, "the first message")

    assert not marks.add(hop)  # held: smtpd sends this next hop no wake-up now
    queue_message(SENDER, ["lee@implicit.test"], CONTENT)  # and none is sent here (woken records it)
    wait_until(lambda: len(server.messages) == 2, 2, "mail committed while the mark is held, without a wake-up")

    mark = marks.directory / wakeups._mark_name(hop)
    wait_until(lambda: not mark.exists(), LINGER_FOR + 2, "the mark dropped once the engine stops looking")


@pytest.mark.django_db
def test_one_message_opens_one_session(internet, sink, port):
    server = sink("127.0.0.5", port=port)
    queue_message(SENDER, ["kim@implicit.test"], CONTENT)

    get_engine().deliver_now(internet.pk, "implicit.test")

    assert (len(server.messages), server.sessions) == (1, 1)


def test_the_limits_are_shared_among_the_engines_of_a_server():
    assert [share(40, 3, index) for index in range(3)] == [14, 13, 13]
    assert [share(2, 3, index) for index in range(3)] == [1, 1, 0]
    assert share(None, 3, 0) is None  # unlimited


@pytest.mark.django_db
def test_an_engine_registers_and_takes_its_share_of_the_server_limits(internet, sink, port):
    limit_connections(per_domain=10, total=100)
    sink("127.0.0.5", port=port)
    queue_message(SENDER, ["kim@implicit.test"], CONTENT)
    engine = get_engine()

    engine.deliver_now(internet.pk, "implicit.test")

    record = local_server().delivery_engines.get()
    assert record.token == engine.token
    assert (engine.max_sessions, engine.max_per_destination) == (100, 10)


@pytest.mark.django_db
def test_an_address_delivery_cannot_carry_fails_alone(internet, sink, port):
    """A row queued before smtpd refused such addresses: its message's other recipient still goes."""
    server = sink("127.0.0.5", port=port)
    message = queue_message(SENDER, ["ok@implicit.test", "bad@implicit.test"], CONTENT)
    Recipient.objects.filter(message=message, address="bad@implicit.test").update(address='"a>b"@implicit.test')

    get_engine().deliver_now(internet.pk, "implicit.test")

    outcomes = dict(Recipient.objects.filter(message=message).values_list("address", "status"))
    assert outcomes == {"ok@implicit.test": RecipientStatus.DELIVERED, '"a>b"@implicit.test': RecipientStatus.FAILED}
    assert [received.rcpt_tos for received in server.messages] == [["ok@implicit.test"]]
    assert Recipient.objects.get(address='"a>b"@implicit.test').last_response.startswith("501 5.1.3 Invalid address")
