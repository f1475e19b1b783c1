"""Delivery of one next hop, called directly, against the test nsd and aiosmtpd sinks on 127.0.0.x.

Zones (tests/transport/conftest.py): implicit.test → 127.0.0.5 (no MX), partial.test → mx.partial.test
127.0.0.6, relay.test smart hosts 127.0.0.7 / .8, nullmx / nxdomain / servfail.test. Every sink of a test
listens on the same port, the connector's Port.
"""

import email
import socket
from datetime import timedelta
from email import policy

import pytest
from django.utils import timezone

from sendconn.connectors.models import TransportServer
from sendconn.connectors.servers import local_server, register_transport_server
from sendconn.connectors.services import Credential
from sendconn.transport import wakeups
from sendconn.transport.claims import claim, due_rows
from sendconn.transport.engine import INITIAL_CONCURRENCY, get_engine, reset_engine
from sendconn.transport.models import Message, Recipient, RecipientStatus, TrackingEvent
from sendconn.transport.outcomes import retry_interval
from sendconn.transport.queueing import queue_message
from tests.peers import free_port
from tests.peers.servers import wait_until
from tests.peers.transcripts import iter_sessions

pytestmark = pytest.mark.django_db

SENDER = "julia@contoso.test"
CONTENT = (
    b"From: Julia <julia@contoso.test>\r\n"
    b"Subject: Quarterly report\r\n"
    b"Message-ID: <q3@contoso.test>\r\n"
    b"\r\n"
    b"Numbers attached.\r\n"
)
HOSTS = [f"127.0.0.{n}" for n in range(2, 9)]


@pytest.fixture(autouse=True)
def log_dirs(settings, tmp_path):
    settings.SENDCONN_PROTOCOL_LOG_DIR = tmp_path / "ProtocolLog"
    settings.SENDCONN_TRACKING_LOG_DIR = tmp_path / "MessageTracking"
    return settings


@pytest.fixture(autouse=True)
def woken(woken):
    """Wake-ups recorded instead of sent (conftest's woken), and no source servers remembered from another test."""
    wakeups.forget()
    return woken


@pytest.fixture
def port():
    """A TCP port free on every test address: the connector's Port, where each sink listens."""
    for _ in range(50):
        candidate = free_port(HOSTS[0])
        try:
            for host in HOSTS[1:]:
                with socket.socket() as probe:
                    probe.bind((host, candidate))
        except OSError:
            continue
        return candidate
    raise RuntimeError("no port free on every test address")


@pytest.fixture
def internet(make_connector, dns_settings, port):
    return make_connector("To internet", ["*"], usage="Internet", port=port)


@pytest.fixture
def one_session_per_domain(db):
    """Set-TransportService EX01 -MaxPerDomainOutboundConnections 1."""
    TransportServer.objects.filter(pk=local_server().pk).update(max_per_domain_outbound_connections=1)


def deliver(connector, next_hop_domain):
    return get_engine().deliver_now(connector.pk, next_hop_domain)


def rows_by_address():
    return {row.address: row for row in Recipient.objects.filter(message__is_dsn=False)}


def events(event_id):
    return list(TrackingEvent.objects.filter(event_id=event_id).values_list("recipient", "recipient_status"))


def notifications():
    return list(Message.objects.filter(is_dsn=True))


def report_of(message):
    """(text part, per-recipient delivery-status fields) of a queued notification."""
    parsed = email.message_from_bytes(bytes(message.content), policy=policy.default)
    text, status, _original = parsed.get_payload()
    blocks = status.get_payload()
    return text.get_content(), [dict(block.items()) for block in blocks[1:]]


# --- outcomes ---------------------------------------------------------------------------------------------


def test_recipients_are_delivered_in_one_transaction_and_tracked(internet, sink, port, log_dirs):
    server = sink("127.0.0.5", port=port)
    message = queue_message(SENDER, ["kim@implicit.test", "lee@implicit.test"], CONTENT)

    assert deliver(internet, "implicit.test") == 2

    [received] = server.messages
    assert (received.mail_from, received.rcpt_tos) == (SENDER, ["kim@implicit.test", "lee@implicit.test"])
    assert received.data.endswith(CONTENT)
    assert server.helo_names == [("EHLO", "ex01.contoso.test")]  # no Fqdn on the connector: the server's
    for row in rows_by_address().values():
        assert (row.status, row.last_response, row.attempt_count) == (
            RecipientStatus.DELIVERED,
            "250 2.6.0 Queued mail for delivery",
            1,
        )
        assert row.delivered_at and row.next_attempt_at is None and row.claimed_by == "" and row.claimed_at is None
    sent = TrackingEvent.objects.filter(event_id="SEND")
    assert sorted(sent.values_list("recipient", "connector_name", "remote_host", "remote_ip", "source")) == [
        ("kim@implicit.test", "To internet", "implicit.test", "127.0.0.5", "SMTP"),
        ("lee@implicit.test", "To internet", "implicit.test", "127.0.0.5", "SMTP"),
    ]
    assert {event.queued_message_id for event in sent} == {message.pk}
    [log_file] = log_dirs.SENDCONN_TRACKING_LOG_DIR.glob("MSGTRK*.log")
    rows = [line for line in log_file.read_text().splitlines() if ",SEND," in line]
    assert len(rows) == 2 and all(
        "To internet" in line and "250 2.6.0 Queued mail for delivery" in line for line in rows
    )


def test_each_recipient_gets_its_own_outcome(internet, sink, port):
    sink(
        "127.0.0.6",
        port=port,
        rcpt_replies={
            "busy@partial.test": "450 4.2.1 Mailbox busy, try again later",
            "gone@partial.test": "550 5.1.1 User unknown",
        },
    )
    queue_message(SENDER, ["ok@partial.test", "busy@partial.test", "gone@partial.test"], CONTENT)
    before = timezone.now()

    deliver(internet, "partial.test")

    rows = rows_by_address()
    assert rows["ok@partial.test"].status == RecipientStatus.DELIVERED
    busy = rows["busy@partial.test"]
    assert (busy.status, busy.last_response, busy.attempt_count) == (
        RecipientStatus.RETRY,
        "450 4.2.1 Mailbox busy, try again later",
        1,
    )
    assert before + timedelta(minutes=5) <= busy.next_attempt_at <= timezone.now() + timedelta(minutes=5)
    gone = rows["gone@partial.test"]
    assert (gone.status, gone.last_response, gone.next_attempt_at) == (
        RecipientStatus.FAILED,
        "550 5.1.1 User unknown",
        None,
    )
    assert events("SEND") == [("ok@partial.test", "250 2.6.0 Queued mail for delivery")]
    assert events("DEFER") == [("busy@partial.test", "450 4.2.1 Mailbox busy, try again later")]
    assert events("FAIL") == [("gone@partial.test", "550 5.1.1 User unknown")]
    assert events("DSN") == [("gone@partial.test", "550 5.1.1 User unknown")]
    [ndr] = notifications()
    assert (ndr.sender, list(ndr.recipients.values_list("address", flat=True))) == ("", [SENDER])
    text, [fields] = report_of(ndr)
    assert fields["Final-Recipient"] == "rfc822; gone@partial.test"
    assert (fields["Action"], fields["Status"]) == ("failed", "5.1.1")
    assert fields["Remote-MTA"] == "dns; mx.partial.test"
    assert fields["Diagnostic-Code"] == "smtp; 550 5.1.1 User unknown"
    assert "Send connector: To internet" in text and "Remote server: mx.partial.test" in text


def test_a_recipient_the_preferred_mx_hosts_defer_is_delivered_by_the_backup_mx_at_once(internet, sink, port):
    greylisted = {"bob@contoso.test": "450 4.2.1 Greylisted, try again later"}
    preferred = [
        sink("127.0.0.2", port=port, rcpt_replies=greylisted),
        sink("127.0.0.3", port=port, rcpt_replies=greylisted),
    ]
    backup = sink("127.0.0.4", port=port)
    queue_message(SENDER, ["ann@contoso.test", "bob@contoso.test"], CONTENT)

    deliver(internet, "contoso.test")

    assert {row.status for row in rows_by_address().values()} == {RecipientStatus.DELIVERED}
    assert [m.rcpt_tos for server in preferred for m in server.messages] == [["ann@contoso.test"]]
    assert [m.rcpt_tos for m in backup.messages] == [["bob@contoso.test"]]
    sent = dict(TrackingEvent.objects.filter(event_id="SEND").values_list("recipient", "remote_host"))
    assert sent["bob@contoso.test"] == "mx3.contoso.test"
    assert events("DEFER") == []  # one attempt, nothing left for the retry timer


def test_dns_servfail_is_retried_with_451_4_4_0(internet):
    queue_message(SENDER, ["kim@servfail.test"], CONTENT)

    deliver(internet, "servfail.test")

    row = rows_by_address()["kim@servfail.test"]
    assert row.status == RecipientStatus.RETRY
    assert row.last_response.startswith("451 4.4.0 DNS query failed")
    assert TrackingEvent.objects.get(event_id="DEFER").source == "DNS"
    assert notifications() == []


def test_nonexistent_domain_fails_with_an_ndr(internet):
    queue_message(SENDER, ["kim@nxdomain.test"], CONTENT)

    deliver(internet, "nxdomain.test")

    row = rows_by_address()["kim@nxdomain.test"]
    assert row.status == RecipientStatus.FAILED
    assert row.last_response.startswith("550 5.1.2 ")
    [ndr] = notifications()
    _, [fields] = report_of(ndr)
    assert fields["Status"] == "5.1.2" and "Remote-MTA" not in fields


def test_downgrade_dns_failures_retries_a_nonexistent_domain(make_connector, dns_settings, port):
    connector = make_connector("To internet", ["*"], port=port, downgrade_dns_failures=True)
    queue_message(SENDER, ["kim@nxdomain.test"], CONTENT)

    deliver(connector, "nxdomain.test")

    row = rows_by_address()["kim@nxdomain.test"]
    assert (row.status, row.last_response[:10]) == (RecipientStatus.RETRY, "451 4.4.0 ")
    assert notifications() == []


def test_null_mx_fails_at_once_with_5_1_10(internet):
    queue_message(SENDER, ["kim@nullmx.test"], CONTENT)

    deliver(internet, "nullmx.test")

    row = rows_by_address()["kim@nullmx.test"]
    assert (row.status, row.last_response) == (RecipientStatus.FAILED, "556 5.1.10 Recipient address has null MX")
    assert report_of(notifications()[0])[1][0]["Status"] == "5.1.10"


def test_unreachable_host_is_retried(internet, port):
    queue_message(SENDER, ["kim@implicit.test"], CONTENT)  # nothing listens on 127.0.0.5, nor on ::1

    deliver(internet, "implicit.test")

    row = rows_by_address()["kim@implicit.test"]
    assert (row.status, row.last_response) == (RecipientStatus.RETRY, "450 4.4.316 Connection refused")


def test_mail_to_a_smart_host_authenticates_inside_tls(make_connector, dns_settings, port, sink, tls_certs):
    relay = sink("127.0.0.7", port=port, tls_cert=tls_certs.valid, auth={"relay@contoso.test": "Pa$$w0rd"})
    connector = make_connector(
        "Via relay",
        ["*"],
        port=port,
        dns_routing_enabled=False,
        smart_hosts=["smtp.relay.test"],
        smart_host_auth_mechanism="BasicAuthRequireTLS",
        authentication_credential=Credential("relay@contoso.test", "Pa$$w0rd"),
    )
    queue_message(SENDER, ["kim@fabrikam.test", "lee@tailspin.test"], CONTENT)
    [next_hop] = Recipient.objects.order_by().values_list("next_hop_domain", flat=True).distinct()

    deliver(connector, next_hop)

    [received] = relay.messages
    assert received.rcpt_tos == ["kim@fabrikam.test", "lee@tailspin.test"]
    assert (received.tls, received.auth_user) == (True, "relay@contoso.test")
    assert {row.status for row in rows_by_address().values()} == {RecipientStatus.DELIVERED}
    assert set(TrackingEvent.objects.filter(event_id="SEND").values_list("remote_host", flat=True)) == {
        "smtp.relay.test"
    }


def test_a_wrong_smart_host_password_is_retried_not_bounced(make_connector, dns_settings, port, sink, tls_certs):
    sink("127.0.0.7", port=port, tls_cert=tls_certs.valid, auth={"relay@contoso.test": "Pa$$w0rd"})
    connector = make_connector(
        "Via relay",
        ["*"],
        port=port,
        dns_routing_enabled=False,
        smart_hosts=["smtp.relay.test"],
        smart_host_auth_mechanism="BasicAuthRequireTLS",
        authentication_credential=Credential("relay@contoso.test", "nope"),
    )
    queue_message(SENDER, ["kim@fabrikam.test"], CONTENT)

    deliver(connector, "smtp.relay.test")

    row = rows_by_address()["kim@fabrikam.test"]
    assert row.status == RecipientStatus.RETRY and "Authentication failed" in row.last_response
    assert notifications() == []


def test_rows_of_a_disabled_connector_are_routed_again(make_connector, dns_settings, port, woken):
    first = make_connector("First", ["*"], port=port)
    queue_message(SENDER, ["kim@implicit.test"], CONTENT)
    second = make_connector("Second", ["*"], port=port)
    first.enabled = False
    first.save()

    assert deliver(first, "implicit.test") == 1

    row = Recipient.objects.get()
    assert (row.status, row.connector, row.next_hop_domain) == (RecipientStatus.READY, second, "implicit.test")
    assert woken == [[(second.pk, "implicit.test")]]


def test_a_wake_up_on_a_server_that_is_no_longer_a_source_server_is_handed_on(
    make_connector, dns_settings, port, sink, woken
):
    server = sink("127.0.0.5", port=port)
    ex02 = register_transport_server("EX02", "ex02.contoso.test", "Default-First-Site-Name")
    connector = make_connector("To internet", ["*"], port=port, source_transport_servers=[ex02])
    queue_message(SENDER, ["kim@implicit.test"], CONTENT)

    assert deliver(connector, "implicit.test") == 0

    assert server.messages == [] and Recipient.objects.get().status == RecipientStatus.READY
    assert woken == [[(connector.pk, "implicit.test")]]


# --- connections --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("per_connection, sessions", [(20, 1), (2, 3)])
def test_connections_are_reused_up_to_smtp_max_messages_per_connection(
    make_connector, dns_settings, port, sink, one_session_per_domain, per_connection, sessions
):
    server = sink("127.0.0.5", port=port)
    connector = make_connector("To internet", ["*"], port=port, smtp_max_messages_per_connection=per_connection)
    for number in range(5):
        queue_message(SENDER, [f"user{number}@implicit.test"], CONTENT)

    deliver(connector, "implicit.test")

    assert len(server.messages) == 5
    assert server.sessions == sessions


def test_a_backlog_is_claimed_in_batches_over_the_same_connection(
    internet, sink, port, settings, one_session_per_domain
):
    settings.SENDCONN_DELIVERY_BATCH_SIZE = 3
    server = sink("127.0.0.5", port=port)
    for number in range(7):
        queue_message(SENDER, [f"user{number}@implicit.test"], CONTENT)

    assert deliver(internet, "implicit.test") == 7

    assert len(server.messages) == 7 and server.sessions == 1
    assert set(Recipient.objects.values_list("status", flat=True)) == {RecipientStatus.DELIVERED}


def test_a_backlog_opens_several_sessions_and_one_message_only_one(internet, sink, port):
    server = sink("127.0.0.5", port=port, data_delay=0.2)
    queue_message(SENDER, ["first@implicit.test"], CONTENT)
    deliver(internet, "implicit.test")
    assert server.sessions == 1
    reset_engine()

    for number in range(12):
        queue_message(SENDER, [f"user{number}@implicit.test"], CONTENT)
    deliver(internet, "implicit.test")

    assert len(server.messages) == 13
    assert server.max_in_data > 1  # sent in parallel


def test_a_connection_dropped_mid_message_defers_the_backlog_without_a_connection_per_message(internet, sink, port):
    server = sink("127.0.0.5", port=port, drop_during_data=True)
    for number in range(12):
        queue_message(SENDER, [f"user{number}@implicit.test"], CONTENT)

    deliver(internet, "implicit.test")

    rows = Recipient.objects.all()
    assert {(row.status, row.last_response) for row in rows} == {
        (RecipientStatus.RETRY, "450 4.4.318 Connection was closed abruptly")
    }
    assert server.sessions <= INITIAL_CONCURRENCY + 2  # the next hop is dead after a window of failures


def test_a_verbose_connector_writes_its_sessions_to_the_protocol_log(
    make_connector, dns_settings, port, sink, log_dirs
):
    sink("127.0.0.5", port=port)
    connector = make_connector("To internet", ["*"], port=port, protocol_logging_level="Verbose")
    queue_message(SENDER, ["kim@implicit.test"], CONTENT)

    deliver(connector, "implicit.test")
    reset_engine()  # closes the session instead of keeping it open for more mail

    [log_file] = log_dirs.SENDCONN_PROTOCOL_LOG_DIR.glob("SEND*.log")
    [(_, rows)] = iter_sessions(log_file)
    assert {row["connector-id"] for row in rows} == {"To internet"}
    assert [row["sequence-number"] for row in rows] == [str(n) for n in range(len(rows))]
    lines = [(row["event"], row["data"], row["context"]) for row in rows]
    assert lines[0] == ("*", "", "attempting to connect")
    assert (rows[0]["local-endpoint"], rows[0]["remote-endpoint"]) == ("", f"127.0.0.5:{port}")
    assert lines[1] == ("+", "", "") and rows[1]["local-endpoint"].startswith("127.")
    assert lines[2][:2] == ("<", "220 sink.test Python SMTP 1.4.6")
    assert lines[3] == (">", "EHLO ex01.contoso.test", "")
    size = len(bytes(Message.objects.get().content))
    assert lines.index((">", f"MAIL FROM:<{SENDER}> SIZE={size}", "")) + 1 == lines.index(
        (">", "RCPT TO:<kim@implicit.test>", "")
    )  # pipelined
    assert ("<", "250 2.6.0 Queued mail for delivery", "") in lines
    assert lines[-1] == ("-", "", "Local")
    assert [kind for kind, _, _ in lines].count("+") == 1


def test_each_connection_to_a_backup_mx_is_a_protocol_log_session_of_its_own(
    make_connector, dns_settings, port, sink, log_dirs
):
    for host in ("127.0.0.2", "127.0.0.3"):
        sink(host, port=port, rcpt_replies={"bob@contoso.test": "450 4.2.1 Greylisted, try again later"})
    sink("127.0.0.4", port=port)
    connector = make_connector("To internet", ["*"], port=port, protocol_logging_level="Verbose")
    queue_message(SENDER, ["bob@contoso.test"], CONTENT)

    deliver(connector, "contoso.test")
    reset_engine()

    [log_file] = log_dirs.SENDCONN_PROTOCOL_LOG_DIR.glob("SEND*.log")
    sessions = [rows for _, rows in iter_sessions(log_file)]
    assert len(sessions) == 3  # the preferred MX hosts in either order, then the backup that took the message
    assert sessions[-1][0]["remote-endpoint"] == f"127.0.0.4:{port}"
    for rows in sessions:
        assert [row["sequence-number"] for row in rows] == [str(n) for n in range(len(rows))]
        assert [row["event"] for row in rows].count("+") == 1 and rows[-1]["event"] == "-"
        assert len({row["remote-endpoint"] for row in rows}) == 1


def test_a_connector_without_protocol_logging_writes_none(internet, sink, port, log_dirs):
    sink("127.0.0.5", port=port)
    queue_message(SENDER, ["kim@implicit.test"], CONTENT)

    deliver(internet, "implicit.test")

    assert not list(log_dirs.SENDCONN_PROTOCOL_LOG_DIR.glob("SEND*.log"))


class Clock:
    """A monotonic clock that stands still until the test moves it."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def test_an_open_connection_waits_briefly_for_the_next_task_of_its_next_hop(internet, sink, port, monkeypatch):
    clock = Clock()
    engine = get_engine()
    monkeypatch.setattr(engine, "clock", clock)  # however long the machine takes between the deliveries
    monkeypatch.setattr(engine, "keep_idle_for", 0.2)  # with the clock still, also how often idle sessions look
    server = sink("127.0.0.5", port=port)
    for batch in ("first", "second"):
        queue_message(SENDER, [f"{batch}@implicit.test"], CONTENT)
        deliver(internet, "implicit.test")
    assert (len(server.messages), server.sessions) == (2, 1)

    clock.advance(1)  # longer than the cache keeps it: closed (QUIT) by the reaper
    wait_until("the idle session's QUIT", lambda: server.quits == 1, timeout=10)
    queue_message(SENDER, ["third@implicit.test"], CONTENT)
    deliver(internet, "implicit.test")

    assert (len(server.messages), server.sessions) == (3, 2)


def test_a_changed_connector_never_reuses_a_connection_opened_before(internet, sink, port):
    server = sink("127.0.0.5", port=port)
    queue_message(SENDER, ["first@implicit.test"], CONTENT)
    deliver(internet, "implicit.test")
    internet.fqdn = "mail.contoso.test"
    internet.save()
    queue_message(SENDER, ["second@implicit.test"], CONTENT)

    deliver(internet, "implicit.test")

    assert server.sessions == 2
    assert server.helo_names == [("EHLO", "ex01.contoso.test"), ("EHLO", "mail.contoso.test")]


# --- notifications ------------------------------------------------------------------------------------------


def test_the_ndr_reaches_the_senders_domain(internet, sink, port):
    sink("127.0.0.5", port=port, rcpt_replies={"gone@implicit.test": "550 5.1.1 User unknown"})
    senders_server = sink("127.0.0.6", port=port)
    original = queue_message("julia@partial.test", ["gone@implicit.test"], CONTENT)

    deliver(internet, "implicit.test")
    deliver(internet, "partial.test")

    [bounce] = senders_server.messages
    assert (bounce.mail_from, bounce.rcpt_tos) == ("", ["julia@partial.test"])
    report = email.message_from_bytes(bounce.data, policy=policy.default)
    assert report.get_content_type() == "multipart/report"
    assert report["Subject"] == "Undeliverable: Quarterly report"
    assert report["In-Reply-To"] == "<q3@contoso.test>"
    text, status, returned = report.get_payload()
    assert "gone@implicit.test" in text.get_content()
    assert status.get_content_type() == "message/delivery-status"
    assert returned.get_content_type() == "message/rfc822"
    ndr = Message.objects.get(is_dsn=True)
    assert ndr.original_message == original
    assert Recipient.objects.get(message=ndr).status == RecipientStatus.DELIVERED


def test_no_ndr_for_a_null_sender_message(internet, sink, port):
    sink("127.0.0.5", port=port, rcpt_replies={"implicit.test": "550 5.1.1 User unknown"})
    queue_message("", ["gone@implicit.test"], CONTENT)
    queue_message(SENDER, ["also-gone@implicit.test"], CONTENT, is_dsn=True)  # one of our own notifications

    deliver(internet, "implicit.test")

    assert set(Recipient.objects.values_list("status", flat=True)) == {RecipientStatus.FAILED}
    assert Message.objects.count() == 2
    assert events("DSN") == []


def test_message_bigger_than_the_connector_now_allows_fails_with_5_3_4(internet, sink, port):
    server = sink("127.0.0.5", port=port)
    queue_message(SENDER, ["kim@implicit.test"], CONTENT)
    internet.max_message_size = 100
    internet.save()

    deliver(internet, "implicit.test")

    row = rows_by_address()["kim@implicit.test"]
    assert (row.status, row.last_response[:9]) == (RecipientStatus.FAILED, "550 5.3.4")
    assert server.messages == []
    assert report_of(notifications()[0])[1][0]["Status"] == "5.3.4"


# --- timers -------------------------------------------------------------------------------------------------


def test_retry_intervals_follow_exchange_timers(settings):
    assert settings.SENDCONN_TRANSIENT_FAILURE_RETRY_COUNT == 6
    assert [retry_interval(n) for n in (1, 6, 7, 20)] == [timedelta(minutes=5)] * 2 + [timedelta(minutes=10)] * 2


def test_transient_failures_retry_then_use_the_outbound_interval(internet, sink, port, settings):
    settings.SENDCONN_TRANSIENT_FAILURE_RETRY_COUNT = 2
    settings.SENDCONN_TRANSIENT_FAILURE_RETRY_INTERVAL = timedelta(seconds=2)
    settings.SENDCONN_OUTBOUND_CONNECTION_FAILURE_RETRY_INTERVAL = timedelta(seconds=7)
    sink("127.0.0.5", port=port, rcpt_replies={"implicit.test": "451 4.3.0 Try later"})
    queue_message(SENDER, ["kim@implicit.test"], CONTENT)
    waits = []
    for _ in range(3):
        deliver(internet, "implicit.test")
        row = Recipient.objects.get()
        waits.append(round((row.next_attempt_at - row.last_attempt_at).total_seconds()))
        assert deliver(internet, "implicit.test") == 0  # not due yet: nothing to claim
        Recipient.objects.update(next_attempt_at=timezone.now())

    assert waits == [2, 2, 7]
    assert Recipient.objects.get().attempt_count == 3


def test_a_transient_failure_after_expiry_fails_with_4_4_7(internet, settings):
    message = queue_message(SENDER, ["kim@servfail.test"], CONTENT)
    Message.objects.filter(pk=message.pk).update(submitted_at=timezone.now() - timedelta(days=2, seconds=1))

    deliver(internet, "servfail.test")

    row = rows_by_address()["kim@servfail.test"]
    assert row.status == RecipientStatus.FAILED
    assert row.last_response.startswith("550 4.4.7 QUEUE.Expired; message expired [LastError: 451 4.4.0 DNS query")
    assert TrackingEvent.objects.get(event_id="FAIL").source == "QUEUE"
    assert report_of(notifications()[0])[1][0]["Status"] == "4.4.7"


# --- claiming -----------------------------------------------------------------------------------------------


def test_a_claimed_row_is_not_claimed_again(internet):
    queue_message(SENDER, [f"user{n}@implicit.test" for n in range(5)], CONTENT)
    due = due_rows(internet.pk, "implicit.test")

    first = claim(due, "worker-a", 3)
    second = claim(due, "worker-b", 10)

    assert len(first) == 3 and len(second) == 2
    assert not {row.pk for row in first} & {row.pk for row in second}
    assert claim(due, "worker-c", 10) == []


def test_rows_not_due_or_final_are_not_claimed(internet):
    queue_message(SENDER, ["later@implicit.test", "done@implicit.test", "now@implicit.test"], CONTENT)
    Recipient.objects.filter(address="later@implicit.test").update(
        status=RecipientStatus.RETRY, next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    Recipient.objects.filter(address="done@implicit.test").update(status=RecipientStatus.DELIVERED)

    claimed = claim(due_rows(internet.pk, "implicit.test"), "worker-a", 10)

    assert [row.address for row in claimed] == ["now@implicit.test"]
