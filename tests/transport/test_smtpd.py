"""The submission listener against smtplib and raw-socket clients (hostile ones too), over real loopback sockets."""

import datetime
import os
import re
import signal
import smtplib
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import OperationalError

from sendconn.transport import smtpd, wakeups
from sendconn.transport.models import Message, RecipientStatus, TrackingEvent
from sendconn.transport.queueing import queue_messages
from sendconn.transport.smtpd import parse_listen
from tests.peers.smtp import RawClient
from tests.peers.stack import TransportStack

QUEUED = re.compile(r"^2\.6\.0 (<[^>]+>) \[InternalId=(\d+), Hostname=ex01\.contoso\.test\] Queued mail for delivery$")
CONTENT = b"From: app@contoso.test\r\nTo: kim@fabrikam.test\r\nSubject: Invoice\r\n\r\nHello.\r\n"


@pytest.fixture
def internet(make_connector, transactional_db):
    return make_connector("Internet", ["*"])


def test_relay_client_gets_250_only_once_the_message_is_committed(listen, internet):
    client = listen().client()
    assert client.mail("app@contoso.test") == (250, b"2.1.0 Sender OK")
    assert client.rcpt("kim@fabrikam.test") == (250, b"2.1.5 Recipient OK")
    assert client.rcpt("lee@tailspin.test")[0] == 250
    code, reply = client.data(CONTENT)
    # The test's own database connection sees everything the moment 250 arrives: it was committed before.
    assert code == 250, reply
    message_id, queue_id = QUEUED.match(reply.decode()).groups()
    message = Message.objects.get(pk=queue_id)
    assert message.message_id == message_id and message.sender == "app@contoso.test"
    assert message.client_ip == "127.0.0.1" and message.client_hostname == "client.contoso.test"
    assert bytes(message.content).endswith(CONTENT)
    assert sorted(message.recipients.values_list("address", "status", "connector")) == [
        ("kim@fabrikam.test", RecipientStatus.READY, internet.pk),
        ("lee@tailspin.test", RecipientStatus.READY, internet.pk),
    ]
    client.quit()


def test_the_receive_events_are_recorded_and_logged_within_a_moment_of_the_250(listen, internet, tracking_log_dir):
    client = listen().client()
    client.sendmail("app@contoso.test", ["kim@fabrikam.test", "lee@tailspin.test"], CONTENT)
    message = Message.objects.get()
    received = TrackingEvent.objects.filter(queued_message=message, event_id="RECEIVE")

    def logged():
        return "".join(path.read_text() for path in Path(tracking_log_dir).glob("MSGTRK*.log")).count(",RECEIVE,")

    started = time.monotonic()
    while (recorded(received), logged()) != (2, 2) and time.monotonic() - started < 5:
        time.sleep(0.02)

    assert time.monotonic() - started < smtpd.RECEIVE_EVENTS_WITHIN + 1
    assert sorted(received.values_list("recipient", "remote_ip", "source")) == [
        ("kim@fabrikam.test", "127.0.0.1", "SMTP"),
        ("lee@tailspin.test", "127.0.0.1", "SMTP"),
    ]
    assert logged() == 2
    client.quit()


def recorded(events):
    """How many of ``events`` are stored; 0 while the listener's thread writes them (the tests' in-memory database
    locks a table while it is written)."""
    try:
        return events.count()
    except OperationalError:
        return 0


def test_receive_events_that_cant_be_recorded_are_tried_again_without_more_mail(listen, internet, monkeypatch):
    record = smtpd.tracking.record
    failures = []

    def fails_once(events):  # the RECEIVE events' transaction, the first time
        if events and not failures:
            failures.append(len(events))
            raise OperationalError("database is locked")
        record(events)

    monkeypatch.setattr(smtpd.tracking, "record", fails_once)
    client = listen().client()
    client.sendmail("app@contoso.test", ["kim@fabrikam.test"], CONTENT)
    received = TrackingEvent.objects.filter(event_id="RECEIVE", recipient="kim@fabrikam.test")
    started = time.monotonic()
    while recorded(received) < 1 and time.monotonic() - started < 5:
        time.sleep(0.05)

    assert failures == [1] and recorded(received) == 1
    assert time.monotonic() - started < smtpd.RECEIVE_EVENTS_WITHIN + smtpd.RECEIVE_EVENTS_RETRY_AFTER + 1
    client.quit()


def test_a_listener_that_stops_records_the_receive_events_it_holds(listen, internet):
    listener = listen()
    client = listener.client()
    client.sendmail("app@contoso.test", ["kim@fabrikam.test"], CONTENT)
    client.quit()

    listener.stop()

    assert TrackingEvent.objects.filter(event_id="RECEIVE", recipient="kim@fabrikam.test").count() == 1


def test_several_messages_on_one_connection(listen, internet):
    client = listen().client()
    for number in range(3):
        client.sendmail("app@contoso.test", [f"user{number}@fabrikam.test"], CONTENT)
    client.quit()
    assert Message.objects.count() == 3


def test_concurrent_sessions_are_committed_together(listen, internet, monkeypatch):
    batch_sizes = []

    def recording(submissions, *args, **kwargs):
        batch_sizes.append(len(submissions))
        return queue_messages(submissions, *args, **kwargs)

    monkeypatch.setattr(smtpd, "queue_messages", recording)
    listener = listen()
    replies = []

    def send(number):
        client = listener.client()
        for index in range(5):
            client.mail("app@contoso.test")
            client.rcpt(f"user{number}-{index}@fabrikam.test")
            replies.append(client.data(CONTENT))
        client.quit()

    threads = [threading.Thread(target=send, args=(number,)) for number in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(replies) == 60 and all(code == 250 for code, _ in replies)
    queue_ids = {int(QUEUED.match(reply.decode()).group(2)) for _, reply in replies}
    assert set(Message.objects.values_list("id", flat=True)) == queue_ids  # each 250 names its own message
    assert sum(batch_sizes) == 60 and max(batch_sizes) > 1


def test_null_sender_is_accepted(listen, internet):
    client = listen().client()
    client.sendmail("<>", ["kim@fabrikam.test"], CONTENT)
    client.quit()
    assert Message.objects.get().sender == ""


def test_non_relay_client_can_only_reach_accepted_domains(listen, internet):
    listener = listen(relay_networks=["127.0.0.1/32"], accepted_domains=["contoso.test", "*.tailspin.test"])
    client = listener.client(source="127.0.0.2")
    client.mail("someone@outside.test")
    assert client.rcpt("kim@fabrikam.test") == (550, b"5.7.54 SMTP; Unable to relay recipient in non-accepted domain")
    assert client.rcpt("julia@contoso.test")[0] == 250
    assert client.rcpt("ann@sales.tailspin.test")[0] == 250
    assert client.rcpt("bob@tailspin.test")[0] == 250
    assert client.rcpt("eve@nottailspin.test")[0] == 550
    assert client.data(CONTENT)[0] == 250
    client.quit()
    assert sorted(Message.objects.get().recipients.values_list("address", flat=True)) == [
        "ann@sales.tailspin.test",
        "bob@tailspin.test",
        "julia@contoso.test",
    ]


def test_non_relay_client_with_only_external_recipients_queues_nothing(listen, internet):
    client = listen(relay_networks=["127.0.0.1/32"]).client(source="127.0.0.2")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        client.sendmail("someone@outside.test", ["kim@fabrikam.test"], CONTENT)
    client.quit()
    assert not Message.objects.exists()


def test_size_is_advertised_and_enforced_with_552(listen, internet, settings):
    settings.SENDCONN_SMTP_MAX_MESSAGE_SIZE = 10240
    client = listen().client()
    assert client.esmtp_features["size"] == "10240"
    assert client.mail("app@contoso.test", ["SIZE=20000"]) == (
        552,
        b"5.3.4 Message size exceeds fixed maximum message size",
    )
    client.rset()
    client.mail("app@contoso.test")
    client.rcpt("kim@fabrikam.test")
    assert client.data(CONTENT + (b"x" * 78 + b"\r\n") * 300) == (
        552,
        b"5.3.4 Message size exceeds fixed maximum message size",
    )
    assert client.noop()[0] == 250  # the session goes on
    client.quit()
    assert not Message.objects.exists()


def test_invalid_recipient_address_is_refused(listen, internet):
    client = listen().client()
    client.mail("app@contoso.test")
    assert client.rcpt("no-domain")[0] == 501
    assert client.rcpt("kim@bad_domain!.test") == (501, b"5.1.3 Invalid address")
    client.quit()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A throwaway self-signed certificate for 127.0.0.1: (server context, client context trusting it, paths)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ex01.contoso.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("ex01.contoso.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    client.check_hostname = False  # we connect to 127.0.0.1; the chain is what matters here
    return server, client, cert_path, key_path


@pytest.fixture
def submitter(transactional_db):
    return User.objects.create_user("scanner", password="Scan-to-mail-1")


def test_authenticated_user_may_relay_after_starttls(listen, internet, certificate, submitter):
    server_context, client_context, _, _ = certificate
    client = listen(relay_networks=["127.0.0.1/32"], tls_context=server_context).client(source="127.0.0.2")
    assert "starttls" in client.esmtp_features and "auth" not in client.esmtp_features  # no AUTH in clear text
    client.starttls(context=client_context)
    client.ehlo("client.contoso.test")
    assert client.login("scanner", "Scan-to-mail-1") == (235, b"2.7.0 Authentication successful")
    assert client.sendmail("scanner@contoso.test", ["kim@fabrikam.test"], CONTENT) == {}
    client.quit()
    assert Message.objects.get().recipients.get().address == "kim@fabrikam.test"


def test_wrong_password_is_refused_and_does_not_open_the_relay(listen, internet, certificate, submitter):
    server_context, client_context, _, _ = certificate
    client = listen(relay_networks=["127.0.0.1/32"], tls_context=server_context).client(source="127.0.0.2")
    client.starttls(context=client_context)
    client.ehlo("client.contoso.test")
    with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        client.login("scanner", "wrong")
    assert (refused.value.smtp_code, refused.value.smtp_error) == (535, b"5.7.3 Authentication unsuccessful")
    client.mail("scanner@contoso.test")
    assert client.rcpt("kim@fabrikam.test")[0] == 550
    client.quit()


def test_auth_is_refused_without_tls(listen, internet, submitter):
    client = listen(relay_networks=["127.0.0.1/32"]).client(source="127.0.0.2")
    assert "starttls" not in client.esmtp_features and "auth" not in client.esmtp_features
    assert client.docmd("AUTH", "PLAIN AHNjYW5uZXIAU2Nhbi10by1tYWlsLTE=")[0] == 538
    client.quit()


def test_tls_settings_are_loaded_or_refused_clearly(certificate, settings):
    _, _, cert_path, key_path = certificate
    settings.SENDCONN_SMTP_TLS_CERT = ""
    assert smtpd.tls_context_from_settings() is None
    settings.SENDCONN_SMTP_TLS_CERT, settings.SENDCONN_SMTP_TLS_KEY = str(cert_path), str(key_path)
    assert isinstance(smtpd.tls_context_from_settings(), ssl.SSLContext)
    settings.SENDCONN_SMTP_TLS_KEY = str(cert_path)  # no key in there
    with pytest.raises(ImproperlyConfigured, match="can't be loaded"):
        smtpd.tls_context_from_settings()


def test_listen_address_parsing():
    assert parse_listen("127.0.0.1:2525") == ("127.0.0.1", 2525)
    assert parse_listen("[::1]:25") == ("::1", 25)
    assert parse_listen("mail.contoso.test:587") == ("mail.contoso.test", 587)
    for bad in ("127.0.0.1", ":25", "127.0.0.1:port", "127.0.0.1:70000"):
        with pytest.raises(ValueError, match="isn't a valid listen address"):
            parse_listen(bad)


def test_command_refuses_a_bad_listen_address(db):
    with pytest.raises(CommandError, match="isn't a valid listen address"):
        call_command("smtpd", listen="localhost")


def test_command_refuses_a_bad_relay_network(db, settings):
    settings.SENDCONN_RELAY_NETWORKS = ["10.0.0.0/33"]
    with pytest.raises(CommandError, match="SENDCONN_RELAY_NETWORKS: '10.0.0.0/33' isn't an IP address or network"):
        call_command("smtpd", listen="127.0.0.1:0")


def test_listener_processes_share_the_socket_and_stop_together(tmp_path):
    """``SENDCONN_SMTP_PROCESSES=3``: one socket, three processes serving it; SIGTERM to the first stops them all."""
    stack = TransportStack(tmp_path)
    stack.migrate()
    try:
        listener = stack.start_smtpd(SENDCONN_SMTP_PROCESSES=3)
        assert "(3 processes)" in listener.output()
        forked = [
            int(pid)
            for pid in subprocess.run(["pgrep", "-P", str(listener.pid)], capture_output=True, text=True).stdout.split()
        ]
        assert len(forked) == 2

        def submit(number):
            with smtplib.SMTP(listener.host, listener.port, timeout=30) as client:
                return client.sendmail("app@contoso.test", [f"user{number}@fabrikam.test"], CONTENT)

        with ThreadPoolExecutor(max_workers=12) as pool:
            assert list(pool.map(submit, range(36))) == [{}] * 36
        queued = (
            sqlite3.connect(stack.var_dir / "sendconn.sqlite3")
            .execute("SELECT COUNT(*) FROM transport_message")
            .fetchone()[0]
        )
        assert queued == 36

        listener.popen.send_signal(signal.SIGTERM)
        assert listener.popen.wait(timeout=20) == 0
        assert "smtpd stopped" in listener.output()
        for pid in forked:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        stack.stop()


def submit_raw(client, sender=b"<app@contoso.test>", recipients=(b"<kim@fabrikam.test>",), content=CONTENT):
    """MAIL, RCPT, DATA on a raw client; the DATA reply."""
    assert client.command(b"MAIL FROM:" + sender).startswith("250")
    for recipient in recipients:
        assert client.command(b"RCPT TO:" + recipient).startswith("250")
    assert client.command(b"DATA").startswith("354")
    client.sock.sendall(content + b".\r\n")
    return client.reply()


@pytest.mark.parametrize(
    "line",
    [
        b"EHLO evil.example\rX-Injected: x",
        b"EHLO [127.0.0.1]\r\rSubject: fake",
        b"EHLO evil\x00.example",
        b"HELO evil.example\rX-Injected: x",
        b"EHLO evil.example X-Injected: x",
        b"EHLO evil.example\tX",
        b"EHLO [127.0.0.256]",
        b"EHLO [::1]",
        b"EHLO [IPv6:127.0.0.1]",
        b"EHLO evil.example.",
    ],
)
def test_helo_name_that_is_not_a_domain_or_address_literal_is_refused(listen, line):
    with listen().raw() as client:
        assert client.command(line) == "501 5.5.4 Invalid domain name"
        assert client.command(b"MAIL FROM:<app@contoso.test>") == "503 Error: send HELO first"
        assert client.command(b"EHLO client.contoso.test").startswith("250-ex01.contoso.test")


@pytest.mark.parametrize(
    "name",
    [
        b"client.contoso.test",
        b"localhost",
        b"[127.0.0.1]",
        b"[IPv6:::1]",
        b"[IPv6:2001:db8::1]",
        b"SCAN_01.contoso.test",
    ],
)
def test_domains_and_address_literals_are_accepted_as_helo_names(listen, name):
    with listen().raw() as client:
        assert client.command(b"EHLO " + name).endswith("250 HELP")
        assert client.command(b"HELO " + name) == "250 ex01.contoso.test"


def test_received_header_has_only_the_validated_helo_name_and_the_client_address(listen, internet):
    with listen().raw() as client:
        assert client.command(b"EHLO evil.example\rX-Injected: x").startswith("501")
        assert client.command(b"EHLO [127.0.0.1]").endswith("250 HELP")
        assert submit_raw(client).startswith("250 2.6.0")
    content = bytes(Message.objects.get().content)
    received, rest = content.split(b"\r\n", 1)
    assert re.fullmatch(
        rb"Received: from \[127\.0\.0\.1\] \(\[127\.0\.0\.1\]\) by ex01\.contoso\.test \(sendconn\) "
        rb"with ESMTP; \w{3}, \d{2} \w{3} \d{4} [\d:]{8} [+-]\d{4}",
        received,
    )
    assert b"X-Injected" not in content and b"\r\r" not in content and content.count(b"Subject:") == 1


def test_recipient_delivery_could_not_carry_is_refused_and_the_others_are_queued(listen, internet):
    with listen().raw() as client:
        client.command(b"EHLO client.contoso.test")
        assert client.command(b"MAIL FROM:<app@contoso.test>") == "250 2.1.0 Sender OK"
        for bad in (
            b'<"a>b"@capture.example>',
            b'<"a<b"@capture.example>',
            b"<a\x00b@capture.example>",
            b'<"a\rb"@capture.example>',
            b'<"a\\>b"@capture.example>',
            b"<a@bad_domain.example>",
        ):
            assert client.command(b"RCPT TO:" + bad) == "501 5.1.3 Invalid address", bad
        assert client.command(b"RCPT TO:<a@b@capture.example>") == "553 5.1.3 Error: malformed address"  # aiosmtpd's
        assert client.command(b"RCPT TO:<ok@capture.example>") == "250 2.1.5 Recipient OK"
        assert client.command(b'RCPT TO:<"two words"@capture.example>') == "250 2.1.5 Recipient OK"
        assert client.command(b"DATA").startswith("354")
        client.sock.sendall(CONTENT + b".\r\n")
        assert client.reply().startswith("250 2.6.0")
    assert sorted(Message.objects.get().recipients.values_list("address", flat=True)) == [
        '"two words"@capture.example',
        "ok@capture.example",
    ]


@pytest.mark.parametrize(
    "sender",
    [
        b'<"a>b"@contoso.test>',
        b"<a\x00b@contoso.test>",
        b'<"a\rb"@contoso.test>',
        b"<app@[127.0.0.999]>",
        b"<app@bad_domain.test>",
    ],
)
def test_sender_delivery_could_not_carry_is_refused(listen, sender):
    with listen().raw() as client:
        client.command(b"EHLO client.contoso.test")
        assert client.command(b"MAIL FROM:" + sender) == "501 5.1.7 Invalid address"
        assert client.command(b"RCPT TO:<kim@fabrikam.test>") == "503 Error: need MAIL command"
        assert client.command(b"MAIL FROM:<app@contoso.test>") == "250 2.1.0 Sender OK"


@pytest.mark.parametrize("sender", [b"<>", b"<app@[127.0.0.1]>", b"<app@[IPv6:::1]>", b'<"first last"@contoso.test>'])
def test_null_sender_address_literals_and_quoted_senders_are_accepted(listen, internet, sender):
    with listen().raw() as client:
        client.command(b"EHLO client.contoso.test")
        assert submit_raw(client, sender=sender).startswith("250 2.6.0")
    assert Message.objects.get().sender == ("" if sender == b"<>" else sender[1:-1].decode())


def test_recipients_beyond_max_recipients_per_message_get_452(listen, internet):
    """Exchange's MaxRecipientsPerMessage, 200 by default: the 201st RCPT is deferred, the 200 are queued."""
    with listen().raw() as client:
        client.command(b"EHLO client.contoso.test")
        client.command(b"MAIL FROM:<app@contoso.test>")
        replies = [client.command(b"RCPT TO:<user%d@fabrikam.test>" % number) for number in range(202)]
        assert replies[:200] == ["250 2.1.5 Recipient OK"] * 200
        assert replies[200:] == ["452 4.5.3 Too many recipients"] * 2
        assert client.command(b"DATA").startswith("354")
        client.sock.sendall(CONTENT + b".\r\n")
        assert client.reply().startswith("250 2.6.0")
        # the limit is per message: the next transaction starts from zero
        client.command(b"MAIL FROM:<app@contoso.test>")
        assert client.command(b"RCPT TO:<kim@fabrikam.test>") == "250 2.1.5 Recipient OK"
    assert Message.objects.get().recipients.count() == 200


def test_max_recipients_per_message_setting(listen, internet, settings):
    settings.SENDCONN_SMTP_MAX_RECIPIENTS_PER_MESSAGE = 2
    client = listen().client()
    refused = client.sendmail("app@contoso.test", ["a@fabrikam.test", "b@fabrikam.test", "c@fabrikam.test"], CONTENT)
    assert refused == {"c@fabrikam.test": (452, b"4.5.3 Too many recipients")}
    client.quit()
    assert Message.objects.get().recipients.count() == 2


def connect_until(port, source, greeting, seconds=10):
    """Connect from ``source`` until the greeting starts with ``greeting`` (a listener counts a connection closed a
    moment after the client closes it), for up to ``seconds``; return the last client, still open."""
    deadline = time.monotonic() + seconds
    while True:
        client = RawClient(port, source)
        if client.greeting.startswith(greeting) or time.monotonic() > deadline:
            return client
        client.close()
        time.sleep(0.05)


def test_connections_beyond_max_inbound_connection_per_source_get_421(listen, settings):
    settings.SENDCONN_SMTP_MAX_INBOUND_CONNECTIONS_PER_SOURCE = 3
    listener = listen()
    first = [listener.raw() for _ in range(3)]
    assert all(client.greeting.startswith("220 ") for client in first)
    with listener.raw() as fourth:
        assert fourth.greeting == (
            "421 4.3.2 The maximum number of concurrent connections has exceeded a limit, closing transmission channel"
        )
        assert fourth.is_closed_by_server()
    with listener.raw(source="127.0.0.2") as other_source:
        assert other_source.greeting.startswith("220 ")
    assert first[0].command(b"QUIT").startswith("221")
    first[0].close()
    with connect_until(listener.port, "127.0.0.1", "220 ") as again:
        assert again.greeting.startswith("220 ")
    for client in first[1:]:
        client.close()


def test_connections_beyond_max_inbound_connection_get_421(listen, settings):
    settings.SENDCONN_SMTP_MAX_INBOUND_CONNECTIONS = 4
    settings.SENDCONN_SMTP_MAX_INBOUND_CONNECTIONS_PER_SOURCE = None  # unlimited
    listener = listen()
    open_clients = [listener.raw(source=f"127.0.0.{number}") for number in (1, 1, 1, 2)]
    assert all(client.greeting.startswith("220 ") for client in open_clients)
    with listener.raw(source="127.0.0.3") as fifth:
        assert fifth.greeting == (
            "421 4.3.2 The maximum number of concurrent server connections has exceeded a limit, "
            "closing transmission channel"
        )
        assert fifth.is_closed_by_server()
    for client in open_clients:
        client.close()


def test_listener_processes_count_connections_together(tmp_path):
    """``SENDCONN_SMTP_PROCESSES=3``: the limits hold for the listener as a whole, whichever process the kernel
    hands each connection to."""
    stack = TransportStack(tmp_path)
    stack.migrate()
    clients, others = [], []
    try:
        listener = stack.start_smtpd(
            SENDCONN_SMTP_PROCESSES=3,
            SENDCONN_SMTP_MAX_INBOUND_CONNECTIONS=7,
            SENDCONN_SMTP_MAX_INBOUND_CONNECTIONS_PER_SOURCE=4,
        )
        clients += [RawClient(listener.port, "127.0.0.1") for _ in range(4)]
        others += [RawClient(listener.port, "127.0.0.2") for _ in range(3)]
        assert all(client.greeting.startswith("220 ") for client in clients + others)
        with RawClient(listener.port, "127.0.0.2") as beyond_total:
            assert beyond_total.greeting == smtpd.TOO_MANY_CONNECTIONS_REPLY
        for client in others:
            client.close()
        clients += [connect_until(listener.port, "127.0.0.3", "220 ") for _ in range(2)]
        assert all(client.greeting.startswith("220 ") for client in clients[-2:])
        with connect_until(listener.port, "127.0.0.1", smtpd.TOO_MANY_CONNECTIONS_FROM_SOURCE_REPLY) as beyond_source:
            assert beyond_source.greeting == smtpd.TOO_MANY_CONNECTIONS_FROM_SOURCE_REPLY
    finally:
        for client in clients + others:
            client.close()
        stack.stop()


def connect_burst(port, count, before_greetings=lambda: None):
    """``count`` clients connect to ``port`` at once, from 25 sources (20 each at 500: within the default
    MaxInboundConnectionPerSource); each connect must complete within 0.5 s (a SYN the listen queue drops is
    retried after 1 s). Then ``before_greetings()``, and every client's greeting within 60 s in all."""
    sources = [f"127.0.1.{number}" for number in range(1, 26)]
    clients = []
    try:
        for number in range(count):
            sock = socket.socket()
            clients.append(sock)
            sock.bind((sources[number % len(sources)], 0))
            sock.settimeout(0.5)
            sock.connect(("127.0.0.1", port))
        before_greetings()
        started = time.monotonic()
        greetings = []
        for sock in clients:
            sock.settimeout(max(1.0, 60 - (time.monotonic() - started)))
            greetings.append(sock.makefile("rb").readline())
        return greetings
    finally:
        for sock in clients:
            sock.close()


def test_a_burst_of_connections_waits_in_the_listen_queue_while_the_listener_is_busy(listen):
    """500 clients connect while smtpd's event loop is busy: the kernel must hold every one of them, and each gets
    its greeting. (With asyncio's default backlog, 100 — create_server(sock=...) calls listen() again — the rest's
    SYNs are dropped and retried seconds later.)"""
    listener = listen()
    busy, release = threading.Event(), threading.Event()
    listener.loop.call_soon_threadsafe(lambda: (busy.set(), release.wait(60)))
    assert busy.wait(10)
    try:
        greetings = connect_burst(listener.port, 500, before_greetings=release.set)
    finally:
        release.set()
    assert all(greeting.startswith(b"220 ex01.contoso.test ") for greeting in greetings)


def test_a_burst_of_connections_to_the_listener_processes_is_greeted(tmp_path):
    stack = TransportStack(tmp_path)
    stack.migrate()
    try:
        listener = stack.start_smtpd(SENDCONN_SMTP_PROCESSES=2)
        greetings = connect_burst(listener.port, 500)
        assert len(greetings) == 500 and all(greeting.startswith(b"220 ") for greeting in greetings)
    finally:
        stack.stop()


def test_database_outage_answers_451_after_data_and_recovers_by_itself(listen, internet, monkeypatch):
    outage = threading.Event()
    outage.set()

    def queue_unless_down(*args, **kwargs):
        if outage.is_set():
            raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')
        return queue_messages(*args, **kwargs)

    monkeypatch.setattr(smtpd, "queue_messages", queue_unless_down)
    client = listen().client()
    client.mail("app@contoso.test")
    client.rcpt("kim@fabrikam.test")
    assert client.data(CONTENT) == (451, b"4.7.0 Temporary server error. Please try again later")
    assert not Message.objects.exists()
    outage.clear()  # the database is back: the same session queues the retry
    client.mail("app@contoso.test")
    client.rcpt("kim@fabrikam.test")
    assert client.data(CONTENT)[0] == 250
    client.quit()
    assert Message.objects.count() == 1


def test_a_write_that_fails_once_is_retried_before_the_client_is_answered(listen, internet, monkeypatch):
    """After a database restart the writer's first statement fails on the connection the restart broke; the
    connection is replaced and the message written, so even a lone client gets 250 at once."""
    failures = []

    def fails_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise OperationalError("server closed the connection unexpectedly")
        return queue_messages(*args, **kwargs)

    monkeypatch.setattr(smtpd, "queue_messages", fails_once)
    client = listen().client()
    assert client.sendmail("app@contoso.test", ["kim@fabrikam.test"], CONTENT) == {}
    client.quit()
    assert failures == [1] and Message.objects.count() == 1


def test_auth_while_the_database_is_unreachable_gets_454(listen, internet, certificate, submitter, monkeypatch):
    def database_down(credentials):
        raise OperationalError("connection refused")

    monkeypatch.setattr(smtpd, "authenticated_username", database_down)
    server_context, client_context, _, _ = certificate
    client = listen(relay_networks=["127.0.0.1/32"], tls_context=server_context).client(source="127.0.0.2")
    client.starttls(context=client_context)
    client.ehlo("client.contoso.test")
    with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        client.login("scanner", "Scan-to-mail-1")
    assert (refused.value.smtp_code, refused.value.smtp_error) == (454, b"4.7.0 Temporary authentication failure")
    assert client.noop()[0] == 250
    client.quit()


def test_the_wake_up_follows_the_250_and_its_failure_leaves_the_messages_queued(listen, internet, monkeypatch, caplog):
    woken = []

    def broker_down(next_hops, **kwargs):
        woken.append(list(next_hops))
        raise OSError("the broker went away")

    monkeypatch.setattr(wakeups, "wake_next_hops", broker_down)
    client = listen().client()
    assert client.sendmail("app@contoso.test", ["kim@fabrikam.test"], CONTENT) == {}
    assert client.sendmail("app@contoso.test", ["lee@fabrikam.test"], CONTENT) == {}
    client.quit()

    assert Message.objects.count() == 2
    assert woken[0] == [(internet.pk, "fabrikam.test")]
    assert "After queuing" in caplog.text  # logged; the sweeper wakes what is due
