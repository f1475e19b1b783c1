"""Verify delivery (sendconn.verification) against real peers on loopback: the test nsd and aiosmtpd sinks.

Names in the test zone (tests/transport/conftest.py): implicit.test has no MX and the address 127.0.0.5;
partial.test's working MX is 127.0.0.6; smtp.relay.test is 127.0.0.7; nxdomain.test doesn't exist.
"""

import socket
import sqlite3
import time

import pytest
from django.core.exceptions import ValidationError

from sendconn.connectors.models import SendConnector
from sendconn.connectors.services import Caller, Credential, set_send_connector
from sendconn.verification.models import StepStatus, VerificationRun, VerificationStatus, VerificationStep
from sendconn.verification.runner import TEST_SUBJECT, remote_queue_id, run_verification
from sendconn.verification.selectors import remembered_recipients, with_last_verification
from sendconn.verification.services import parse_recipients, start_verification
from tests.peers import free_port
from tests.peers.certs import legacy_tls_context
from tests.peers.stack import TransportStack
from tests.peers.transcripts import iter_sessions

CALLER = Caller("orgadmin", "Web")
SUCCEEDED, FAILED, SKIPPED = StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED
SENDER = "ConnectorValidation@ex01.contoso.test"


@pytest.fixture(autouse=True)
def quick(settings, dns_settings):
    """Every lookup goes to the test nsd; a silent peer costs half a second, not the default 30."""
    settings.SENDCONN_VERIFY_TIMEOUT = 0.5
    settings.SENDCONN_VERIFY_SENDER = ""
    return settings


def verify(connector, recipients="julia@implicit.test"):
    run = start_verification(CALLER, connector, recipients)
    return run_verification(run.pk)


def statuses(run):
    return [(step.name, step.status) for step in run.steps.all()]


def step(run, name):
    return run.steps.get(name=name)


def smart_host_connector(make_connector, hosts, port, **params):
    return make_connector("To relay", dns_routing_enabled=False, smart_hosts=hosts, port=port, **params)


# --- passing ---------------------------------------------------------------------------------------------------


def test_mx_connector_delivers_the_test_message_step_by_step(make_connector, sink):
    server = sink("127.0.0.5", data_reply="250 2.0.0 Ok: queued as 4XYZ123")
    connector = make_connector("To internet", port=server.port)

    run = verify(connector, "Julia@IMPLICIT.test")

    assert run.status == VerificationStatus.SUCCEEDED and run.error == "" and run.failed_step is None
    assert run.recipients == ["Julia@implicit.test"]
    assert statuses(run) == [
        ("Resolve", SUCCEEDED),
        ("Connection", SUCCEEDED),
        ("SMTP EHLO", SUCCEEDED),
        ("TLS", SKIPPED),
        ("Authentication", SKIPPED),
        ("Send test email", SUCCEEDED),
    ]
    resolve = step(run, "Resolve").details
    assert f"MX 0 implicit.test → 127.0.0.5:{server.port}" in resolve
    assert "Looked up with the DNS servers of EX01: 127.0.0.1:" in resolve
    assert step(run, "Connection").summary.startswith(
        f"Connected to 127.0.0.5:{server.port} (implicit.test) from 127.0.0.1:"
    )
    ehlo = step(run, "SMTP EHLO").details.splitlines()
    assert ehlo[0].startswith("Banner: 220 sink.test")
    assert ehlo[1].startswith("Extensions: ") and "PIPELINING" in ehlo[1]
    assert (
        step(run, "TLS").summary
        == "Not used: the remote server didn't offer STARTTLS, and the connector doesn't require TLS."
    )
    assert step(run, "Authentication").summary == "No smart host authentication is configured."
    send = step(run, "Send test email").details.splitlines()
    assert send[0] == "Accepted for 1 recipient(s) by implicit.test: 250 2.0.0 Ok: queued as 4XYZ123"
    assert send[1] == "Remote queue ID: 4XYZ123"
    assert f"> MAIL FROM:<{SENDER}> SIZE=" in "\n".join(send)
    assert "< 250 2.0.0 Ok: queued as 4XYZ123" in send
    assert all(s.started_at and s.finished_at and s.duration is not None for s in run.steps.exclude(status=SKIPPED))
    assert run.finished_at and run.started_at
    assert "> EHLO ex01.contoso.test" in run.transcript and "< 221 " in run.transcript


def test_the_test_message_goes_to_every_recipient_with_the_validation_subject(make_connector, sink):
    server = sink("127.0.0.5")
    connector = make_connector("To internet", port=server.port)

    run = verify(connector, "julia@implicit.test; kim@implicit.test")

    [received] = server.messages
    assert received.mail_from == SENDER
    assert received.rcpt_tos == ["julia@implicit.test", "kim@implicit.test"]
    assert f"Subject: {TEST_SUBJECT}".encode() in received.data
    assert b"To internet" in received.data
    assert run.status == VerificationStatus.SUCCEEDED
    assert "The remote server's reply names no queue ID." in step(run, "Send test email").details


def test_sender_comes_from_the_setting(settings, make_connector, sink):
    settings.SENDCONN_VERIFY_SENDER = "postmaster@contoso.test"
    server = sink("127.0.0.5")

    verify(make_connector("To internet", port=server.port))

    assert server.messages[0].mail_from == "postmaster@contoso.test"


def test_smart_host_with_tls_certificate_validation_and_authentication(settings, make_connector, sink, tls_certs):
    settings.SENDCONN_TLS_CA_FILE = str(tls_certs.ca_file)
    server = sink("127.0.0.7", tls_cert=tls_certs.valid, auth={"relay@contoso.test": "Pa$$w0rd"})
    connector = smart_host_connector(
        make_connector,
        ["smtp.relay.test"],
        server.port,
        require_tls=True,
        tls_auth_level="CertificateValidation",
        smart_host_auth_mechanism="BasicAuthRequireTLS",
        authentication_credential=Credential("relay@contoso.test", "Pa$$w0rd"),
    )

    run = verify(connector, "julia@fabrikam.test")

    assert run.status == VerificationStatus.SUCCEEDED, run.error
    assert all(status == SUCCEEDED for _, status in statuses(run))
    assert step(run, "Resolve").details.splitlines()[:2] == [
        "Smart hosts smtp.relay.test:",
        f"smtp.relay.test → 127.0.0.7:{server.port}",
    ]
    tls = step(run, "TLS").details.splitlines()
    assert tls[0].startswith("TLSv1.")
    assert tls[1] == "Validated: the certificate chain is trusted (TlsAuthLevel CertificateValidation)."
    assert "Certificate subject: CN=mx.contoso.test" in tls
    assert "Certificate issuer: CN=sendconn test CA" in tls
    assert any(line.startswith("Certificate expires: 20") for line in tls)
    auth = step(run, "Authentication").details
    assert auth.startswith("Authenticated as relay@contoso.test with AUTH PLAIN: 235 2.7.0 Authentication successful")
    assert server.messages[0].tls and server.messages[0].auth_user == "relay@contoso.test"
    everything = run.transcript + "".join(s.details for s in run.steps.all())
    assert "Pa$$w0rd" not in everything and "UGEkJHcwcmQ" not in everything  # nor its base64


def test_a_verbose_connectors_test_session_goes_to_the_protocol_log(settings, tmp_path, make_connector, sink):
    settings.SENDCONN_PROTOCOL_LOG_DIR = str(tmp_path / "SmtpSend")
    server = sink("127.0.0.7")
    quiet = verify(smart_host_connector(make_connector, ["127.0.0.7"], server.port))
    assert quiet.status == VerificationStatus.SUCCEEDED and not (tmp_path / "SmtpSend").exists()

    connector = SendConnector.objects.get(name="To relay")
    set_send_connector(CALLER, connector, protocol_logging_level="Verbose")
    run = verify(connector)

    assert run.status == VerificationStatus.SUCCEEDED, run.error
    (path,) = (tmp_path / "SmtpSend").glob("SEND*.log")
    ((session_id, rows),) = list(iter_sessions(path))
    assert {row["connector-id"] for row in rows} == {"To relay"}
    assert (rows[0]["event"], rows[0]["data"], rows[0]["context"]) == (
        "*",
        f"run {run.pk} requested by orgadmin",
        "Verify delivery",
    )
    sent = [row["data"] for row in rows if row["event"] == ">"]
    assert sent[0] == "EHLO ex01.contoso.test" and "QUIT" in sent
    assert rows[-1]["event"] == "-"
    assert any(row["event"] == "+" and row["remote-endpoint"] == f"127.0.0.7:{server.port}" for row in rows)


def test_opportunistic_tls_is_shown_but_not_validated(make_connector, sink, tls_certs):
    server = sink("127.0.0.5", tls_cert=tls_certs.untrusted)

    run = verify(make_connector("To internet", port=server.port))

    assert step(run, "TLS").status == SUCCEEDED
    assert step(run, "TLS").details.splitlines()[1] == "Not validated: opportunistic TLS (RequireTLS is $false)."
    assert "Certificate issuer: CN=unknown test CA" in step(run, "TLS").details


def test_opportunistic_tls_that_fails_to_negotiate_is_skipped_and_the_message_sent_in_the_clear(
    make_connector, sink, tls_certs
):
    server = sink("127.0.0.5", tls_context=legacy_tls_context(tls_certs.valid))

    run = verify(make_connector("To internet", port=server.port))

    assert run.status == VerificationStatus.SUCCEEDED
    assert step(run, "TLS").status == SKIPPED
    assert step(run, "TLS").summary.startswith("STARTTLS failed to negotiate (")
    assert step(run, "Connection").details.splitlines()[-1].startswith("Connected again in ")
    assert step(run, "SMTP EHLO").summary.startswith("Banner: 220 sink.test")
    assert not server.messages[0].tls


def test_a_failed_address_is_reported_and_the_next_one_used(make_connector, sink):
    server = sink("127.0.0.7")
    connector = smart_host_connector(make_connector, ["127.0.0.8", "127.0.0.7"], server.port)

    run = verify(connector)

    assert run.status == VerificationStatus.SUCCEEDED
    assert step(run, "Connection").details.splitlines()[1:] == [
        "Tried before:",
        f"127.0.0.8:{server.port} (127.0.0.8): 450 4.4.316 Connection refused",
    ]


def test_when_every_address_fails_the_one_that_got_furthest_is_shown(settings, make_connector, sink, tls_certs):
    settings.SENDCONN_TLS_CA_FILE = str(tls_certs.ca_file)
    server = sink("127.0.0.5", tls_cert=tls_certs.untrusted)  # implicit.test: 127.0.0.5, then ::1 (refused)
    connector = make_connector(
        "To internet", port=server.port, require_tls=True, tls_auth_level="CertificateValidation"
    )

    run = verify(connector)

    assert run.failed_step.name == "TLS" and run.error.startswith("450 4.7.320 Certificate validation failed")
    assert step(run, "Connection").details.splitlines() == [
        step(run, "Connection").summary,
        "Other addresses tried:",
        f"[::1]:{server.port} (implicit.test): 450 4.4.316 Connection refused",
    ]
    assert f"connected to [::1]:{server.port}" not in run.transcript and f"[::1]:{server.port}" in run.transcript


def test_each_recipient_domain_is_its_own_next_hop(make_connector, sink):
    implicit = sink("127.0.0.5")
    partial = sink("127.0.0.6", port=implicit.port)
    connector = make_connector("To internet", port=implicit.port)

    run = verify(connector, "julia@implicit.test, kim@partial.test")

    assert run.status == VerificationStatus.SUCCEEDED
    assert [(s.next_hop, s.name) for s in run.steps.all()][::6] == [
        ("implicit.test", "Resolve"),
        ("partial.test", "Resolve"),
    ]
    assert run.steps.count() == 12
    assert implicit.messages[0].rcpt_tos == ["julia@implicit.test"]
    assert partial.messages[0].rcpt_tos == ["kim@partial.test"]


def test_the_connector_is_used_whatever_routing_would_choose(make_connector, sink):
    server = sink("127.0.0.7")
    make_connector("Implicit domain", address_spaces=["implicit.test"], port=free_port())  # routing's choice
    forced = smart_host_connector(make_connector, ["127.0.0.7"], server.port, address_spaces=["fabrikam.test"])

    run = verify(forced, "julia@implicit.test")

    assert run.status == VerificationStatus.SUCCEEDED
    assert server.messages[0].rcpt_tos == ["julia@implicit.test"]


# --- failing -------------------------------------------------------------------------------------------------


def assert_failed_at(run, failed_step, error):
    assert run.status == VerificationStatus.FAILED
    assert run.failed_step.name == failed_step
    assert run.error == error
    assert run.hint
    names = [name for name, _ in statuses(run)]
    after = names[names.index(failed_step) + 1 :]
    assert [status for name, status in statuses(run) if name in after] == [SKIPPED] * len(after)
    assert step(run, failed_step).status == FAILED and step(run, failed_step).summary == error


def test_smart_host_that_refuses_the_connection(make_connector):
    port = free_port("127.0.0.7")
    run = verify(smart_host_connector(make_connector, ["smtp.relay.test"], port))

    assert_failed_at(run, "Connection", "450 4.4.316 Connection refused")
    assert run.hint == (
        f"Nothing accepts connections on 127.0.0.7:{port}: check the address of the smart host and "
        f"the connector's Port ({port})."
    )
    assert run.finished_at is not None


def test_smart_host_that_never_answers_times_out(make_connector):
    silent = socket.socket()
    silent.bind(("127.0.0.7", 0))
    silent.listen()
    try:
        started = time.monotonic()
        run = verify(smart_host_connector(make_connector, ["127.0.0.7"], silent.getsockname()[1]))
    finally:
        silent.close()

    assert_failed_at(run, "SMTP EHLO", "450 4.4.315 Connection timed out")
    assert "Check that port" in run.hint
    assert time.monotonic() - started < 5


def test_resolve_lists_each_smart_host_as_delivery_tries_them(make_connector, sink):
    server = sink("127.0.0.7")
    connector = smart_host_connector(make_connector, ["missing.relay.test", "smtp.relay.test"], server.port)

    run = verify(connector)

    assert run.status == VerificationStatus.SUCCEEDED
    assert step(run, "Resolve").details.splitlines()[:3] == [
        "Smart hosts missing.relay.test,smtp.relay.test:",
        "missing.relay.test: SMTPSEND.DNS.NonExistentDomain; nonexistent domain",
        f"smtp.relay.test → 127.0.0.7:{server.port}",
    ]


def test_smart_host_name_that_does_not_resolve(make_connector):
    run = verify(smart_host_connector(make_connector, ["nowhere.relay.test"], 25))

    # The queue's words for the same failure (a smart host that doesn't resolve is retried).
    assert_failed_at(
        run, "Resolve", "451 4.4.0 DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain; nonexistent domain"
    )
    assert "nowhere.relay.test: SMTPSEND.DNS.NonExistentDomain; nonexistent domain" in step(run, "Resolve").details
    assert "smart host names resolve" in run.hint
    assert run.transcript == ""


def test_recipient_domain_without_mx_or_address(make_connector):
    run = verify(make_connector("To internet"), "julia@nxdomain.test")

    # What the queue and tracking say for this recipient: it fails at once.
    assert_failed_at(run, "Resolve", "550 5.1.2 SMTPSEND.DNS.NonExistentDomain; nonexistent domain")
    assert "MX records of nxdomain.test" in run.hint


def test_downgrade_dns_failures_reads_as_the_queues_retry(make_connector):
    connector = make_connector("To internet", downgrade_dns_failures=True)
    run = verify(connector, "julia@nxdomain.test")

    assert_failed_at(
        run, "Resolve", "451 4.4.0 DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain; nonexistent domain"
    )


def test_certificate_from_an_unknown_ca_fails_certificate_validation(settings, make_connector, sink, tls_certs):
    settings.SENDCONN_TLS_CA_FILE = str(tls_certs.ca_file)
    server = sink("127.0.0.7", tls_cert=tls_certs.untrusted)
    connector = smart_host_connector(
        make_connector, ["smtp.relay.test"], server.port, require_tls=True, tls_auth_level="CertificateValidation"
    )

    run = verify(connector)

    assert run.failed_step.name == "TLS"
    assert run.error.startswith("450 4.7.320 Certificate validation failed [")
    assert "TlsAuthLevel CertificateValidation" in run.hint
    assert step(run, "Connection").status == step(run, "SMTP EHLO").status == SUCCEEDED
    assert server.messages == []


def test_tls_required_but_not_offered(make_connector, sink):
    server = sink("127.0.0.7")
    connector = smart_host_connector(
        make_connector, ["127.0.0.7"], server.port, require_tls=True, tls_auth_level="EncryptionOnly"
    )

    run = verify(connector)

    assert_failed_at(
        run,
        "TLS",
        "450 4.4.317 Cannot connect to remote server [TLS is required but the remote server did not offer STARTTLS]",
    )
    assert "RequireTLS is $true" in run.hint


def test_smart_host_that_rejects_the_credentials(make_connector, sink, tls_certs):
    server = sink("127.0.0.7", tls_cert=tls_certs.valid, auth={"relay": "right"})
    connector = smart_host_connector(
        make_connector,
        ["127.0.0.7"],
        server.port,
        smart_host_auth_mechanism="BasicAuth",
        authentication_credential=Credential("relay", "wrong"),
    )

    run = verify(connector)

    assert_failed_at(
        run, "Authentication", "450 4.7.8 Authentication failed [535 5.7.8 Authentication credentials invalid]"
    )
    assert step(run, "TLS").status == SUCCEEDED
    assert "> AUTH PLAIN ****" in step(run, "Authentication").details
    assert "-AuthenticationCredential" in run.hint
    assert "wrong" not in run.transcript


def test_recipient_refused_by_the_remote_server(make_connector, sink):
    server = sink("127.0.0.5", rcpt_replies={"gone@implicit.test": "550 5.1.1 User unknown"})

    run = verify(make_connector("To internet", port=server.port), "gone@implicit.test")

    assert_failed_at(run, "Send test email", "550 5.1.1 User unknown")
    assert "gone@implicit.test: 550 5.1.1 User unknown" in step(run, "Send test email").details
    assert "recipient addresses" in run.hint


def test_connection_dropped_during_data(make_connector, sink):
    server = sink("127.0.0.5", drop_during_data=True)

    run = verify(make_connector("To internet", port=server.port))

    assert_failed_at(run, "Send test email", "450 4.4.318 Connection was closed abruptly")
    assert "dropped the connection" in run.hint


# --- starting, recipients, the list ------------------------------------------------------------------------


def test_recipients_are_checked_and_normalised():
    assert parse_recipients(" a@Contoso.TEST, b@fabrikam.test;A@contoso.test\nc@x.test ") == [
        "a@contoso.test",
        "b@fabrikam.test",
        "c@x.test",
    ]
    assert parse_recipients(["kim@contoso.test"]) == ["kim@contoso.test"]
    with pytest.raises(ValidationError) as caught:
        parse_recipients("julia, bob@, kim@contoso.test, bad local@x.test, x@-bad-.test")
    assert caught.value.messages == [
        "'julia' isn't a valid SMTP address.",
        "'bob@' isn't a valid SMTP address.",
        "'bad' isn't a valid SMTP address.",
        "'x@-bad-.test' isn't a valid SMTP address.",
    ]
    with pytest.raises(ValidationError, match="Enter at least one recipient"):
        parse_recipients(" , ")
    with pytest.raises(ValidationError, match="at most 10"):
        parse_recipients([f"user{n}@contoso.test" for n in range(11)])


def test_start_creates_the_run_and_its_pending_steps_and_nothing_for_bad_input(make_connector):
    connector = make_connector("To internet")

    with pytest.raises(ValidationError) as caught:
        start_verification(CALLER, connector, "not an address")
    assert "recipients" in caught.value.message_dict
    assert not VerificationRun.objects.exists()

    run = start_verification(CALLER, connector, "julia@implicit.test")
    assert (run.status, run.connector_name, run.requested_by, run.server_name) == (
        "Running",
        "To internet",
        "orgadmin",
        "EX01",
    )
    assert list(run.steps.values_list("name", "status", "next_hop")) == [
        (name, "Pending", "implicit.test")
        for name in ("Resolve", "Connection", "SMTP EHLO", "TLS", "Authentication", "Send test email")
    ]


def test_start_sends_the_run_to_the_verify_queue_of_a_source_server_on_commit(
    make_connector, django_capture_on_commit_callbacks, monkeypatch
):
    from sendconn.verification import services

    sent = []
    monkeypatch.setattr(services, "publish_run", lambda run_id, queue: sent.append(((run_id,), {"queue": queue})))
    connector = make_connector("To internet")

    with django_capture_on_commit_callbacks(execute=True):
        run = start_verification(CALLER, connector, "julia@implicit.test")
        assert sent == []  # not before the run is committed

    assert sent == [((run.pk,), {"queue": "verify.ex01"})]


def test_broker_failure_fails_the_run_with_a_hint(make_connector, django_capture_on_commit_callbacks, monkeypatch):
    from sendconn.verification import services

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(services, "publish_run", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        run = start_verification(CALLER, make_connector("To internet"), "julia@implicit.test")

    run.refresh_from_db()
    assert run.status == "Failed" and run.error.startswith("451 4.3.2 The verification couldn't be sent")
    assert "CELERY_BROKER_URL" in run.hint
    assert set(run.steps.values_list("status", flat=True)) == {"Skipped"}


def test_a_second_delivery_of_the_task_fails_a_run_left_running(make_connector):
    run = start_verification(CALLER, make_connector("To internet"), "julia@implicit.test")
    VerificationRun.objects.filter(pk=run.pk).update(started_at=run.requested_at)  # a worker took it, then died
    VerificationStep.objects.filter(run=run, position=0).update(status="Running")

    run = run_verification(run.pk)

    assert run.status == "Failed" and run.failed_step.name == "Resolve"
    assert run.error == "451 4.3.0 The worker running the verification stopped before it finished"
    assert run_verification(run.pk).status == "Failed"  # and a finished run is left alone


def test_recipients_are_remembered_and_the_list_gets_the_last_result(make_connector):
    connector = make_connector("To internet", port=free_port("127.0.0.5"))
    make_connector("Other")
    assert remembered_recipients(connector) == []

    first = verify(connector, "julia@implicit.test")
    start_verification(Caller("serveradmin", "Web"), connector, "kim@implicit.test, lee@implicit.test")

    assert first.status == "Failed"
    assert remembered_recipients(connector) == ["kim@implicit.test", "lee@implicit.test"]
    rows = {row.name: row for row in with_last_verification(SendConnector.objects.all())}
    assert (rows["To internet"].last_verification_status, rows["To internet"].last_verification_by) == (
        "Running",
        "serveradmin",
    )
    assert rows["Other"].last_verification_status is None


def test_a_connector_whose_routing_changed_before_the_worker_started_fails_with_a_hint(make_connector):
    connector = make_connector("To internet")
    run = start_verification(CALLER, connector, "julia@implicit.test")
    set_send_connector(CALLER, connector, dns_routing_enabled=False, smart_hosts=["smtp.relay.test"])

    run = run_verification(run.pk)

    assert run.failed_step.name == "Resolve" and "routing changed" in run.error
    assert run.hint == "Verify again: the connector now routes these recipients differently."


def test_a_removed_connector_takes_its_runs_along(make_connector):
    connector = make_connector("To internet")
    run = start_verification(CALLER, connector, "julia@implicit.test")
    connector.delete()

    assert run_verification(run.pk) is None
    assert not VerificationRun.objects.exists()


def test_remote_queue_ids():
    assert remote_queue_id("Ok: queued as 4ABC12.X") == "4ABC12.X"
    assert remote_queue_id("<a@b> [InternalId=12345, Hostname=EX02] Queued mail for delivery") == "12345"
    assert remote_queue_id("Queued mail for delivery") == ""


# --- through a real worker -------------------------------------------------------------------------------------


@pytest.mark.services
def test_a_worker_runs_the_verification_from_its_verify_queue(tmp_path, nsd, sink):
    """Embedded mode: one SQLite file and the filesystem broker shared by a shell process and a Celery worker
    that was told only ``-Q celery,server.ex01``; it consumes ``verify.ex01`` on its own."""
    server = sink("127.0.0.5")
    stack = TransportStack(tmp_path, SENDCONN_DNS_SERVERS=nsd.address, SENDCONN_VERIFY_TIMEOUT=5)
    try:
        stack.migrate()
        stack.cmdlet(f"New-SendConnector -Name 'To internet' -AddressSpaces * -Port {server.port}")
        worker = stack.start_worker(concurrency=1, queues="celery,server.ex01")
        run_id = int(
            stack.manage(
                "shell",
                "--no-imports",
                "-c",
                (
                    "from sendconn.connectors.selectors import get_connector; "
                    "from sendconn.connectors.services import Caller; "
                    "from sendconn.verification.services import start_verification; "
                    "print(start_verification(Caller('tester', 'Shell'), get_connector('To internet'), "
                    "'julia@implicit.test').pk)"
                ),
            ).strip()
        )

        database = sqlite3.connect(stack.var_dir / "sendconn.sqlite3")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            [(status, error)] = database.execute(
                "SELECT status, error FROM ops_verificationrun WHERE id = ?", (run_id,)
            ).fetchall()
            if status != "Running":
                break
            time.sleep(0.2)
        database.close()

        assert (status, error) == ("Succeeded", ""), stack.logs()
        assert server.messages[0].rcpt_tos == ["julia@implicit.test"]
        assert "sendconn.ops.tasks.verify_connector" in worker.output()
    finally:
        stack.stop()
