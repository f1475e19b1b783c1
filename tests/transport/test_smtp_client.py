"""The outbound SMTP session against real aiosmtpd sinks on 127.0.0.x (peers in tests/peers)."""

import asyncio
import base64
import socket
import time

import pytest

from sendconn.connectors.services import Credential
from sendconn.transport.dns import Target
from sendconn.transport.smtp_client import (
    Reply,
    SessionOptions,
    SmtpPermanentError,
    SmtpSession,
    SmtpTransientError,
)
from tests.peers import free_port
from tests.peers.certs import legacy_tls_context
from tests.peers.hostile import ScriptedServer
from tests.peers.transcripts import MemoryTranscript

HELO = "ex01.contoso.test"
MESSAGE = b"From: alice@contoso.test\r\nSubject: Quarterly report\r\n\r\nSee attached.\r\n"


def options(**overrides):
    values = dict(helo_name=HELO, connect_timeout=2.0, command_timeout=3.0)
    values.update(overrides)
    return SessionOptions(**values)


def target(sink, hostname="mx1.fabrikam.test"):
    return Target(hostname, sink.host, sink.port, 10)


def session_for(*sinks, transcript=None, recipient_domain="fabrikam.test", **overrides):
    return SmtpSession(
        [target(s) for s in sinks], options(**overrides), transcript=transcript, recipient_domain=recipient_domain
    )


def codes(outcome):
    return {address: reply.code for address, reply in outcome.per_recipient.items()}


# --- plain delivery ----------------------------------------------------------------------------------------


def test_message_is_delivered_to_all_recipients_in_one_transaction(sink):
    server = sink()

    with session_for(server) as session:
        outcome = session.send("alice@contoso.test", ["bob@fabrikam.test", "carol@fabrikam.test"], MESSAGE)

    assert codes(outcome) == {"bob@fabrikam.test": 250, "carol@fabrikam.test": 250}
    assert outcome.per_recipient["bob@fabrikam.test"] == Reply(250, "2.6.0", "Queued mail for delivery")
    assert outcome.delivered == ["bob@fabrikam.test", "carol@fabrikam.test"]
    assert (outcome.remote_host, outcome.remote_ip, outcome.error) == ("mx1.fabrikam.test", "127.0.0.2", None)
    [received] = server.messages
    assert received.mail_from == "alice@contoso.test"
    assert received.rcpt_tos == ["bob@fabrikam.test", "carol@fabrikam.test"]
    assert received.data == MESSAGE
    assert not received.tls
    assert server.helo_names == [("EHLO", HELO)]


def test_lines_starting_with_a_dot_survive(sink):
    server = sink()
    body = b"Subject: dots\n\n.hidden line\n..two dots\nend"

    with session_for(server) as session:
        session.send("alice@contoso.test", ["bob@fabrikam.test"], body)

    assert server.messages[0].data == b"Subject: dots\r\n\r\n.hidden line\r\n..two dots\r\nend\r\n"


def test_null_sender_is_sent_as_empty_reverse_path(sink):
    server = sink()
    transcript = MemoryTranscript()

    with session_for(server, transcript=transcript) as session:
        outcome = session.send("", ["alice@fabrikam.test"], MESSAGE)

    assert outcome.delivered == ["alice@fabrikam.test"]
    assert f"> MAIL FROM:<> SIZE={len(MESSAGE)}" in transcript.lines()
    assert server.messages[0].mail_from == ""


def test_force_helo_skips_ehlo_and_starttls(sink, tls_certs):
    server = sink(tls_cert=tls_certs.self_signed)

    with session_for(server, force_helo=True) as session:
        session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)

    assert server.helo_names == [("HELO", HELO)]
    assert not server.messages[0].tls


def test_refused_ehlo_falls_back_to_helo(sink):
    server = sink(ehlo_reply="502 5.5.1 Command not implemented")

    with session_for(server) as session:
        outcome = session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)

    assert outcome.delivered == ["bob@fabrikam.test"]
    assert server.helo_names == [("EHLO", HELO), ("HELO", HELO)]


# --- choosing a host ---------------------------------------------------------------------------------------


def test_4xx_greeting_moves_on_to_the_next_host(sink):
    busy = sink("127.0.0.2", greeting_code=421)
    ready = sink("127.0.0.3")

    with session_for(busy, ready) as session:
        outcome = session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)

    assert outcome.remote_ip == "127.0.0.3"
    assert len(ready.messages) == 1
    [skipped] = session.attempts
    assert (skipped.stage, skipped.reply.code, skipped.remote_ip) == ("greeting", 421, "127.0.0.2")


def test_5xx_greeting_is_skipped_too_and_only_ever_retried(sink):
    closed = sink("127.0.0.2", greeting_code=554, greeting_text="5.7.1 No SMTP service here")

    with pytest.raises(SmtpTransientError) as caught:
        session_for(closed).open()

    assert caught.value.stage == "greeting"
    assert caught.value.response == "450 4.4.317 Cannot connect to remote server [554 5.7.1 No SMTP service here]"


def test_refused_connection_moves_on_and_reports_every_host(sink):
    dead = Target("mx1.fabrikam.test", "127.0.0.2", free_port("127.0.0.2"), 10)
    also_dead = Target("mx2.fabrikam.test", "127.0.0.3", free_port("127.0.0.3"), 20)
    session = SmtpSession([dead, also_dead], options())

    with pytest.raises(SmtpTransientError) as caught:
        session.open()

    error = caught.value
    assert error.response == "450 4.4.316 Connection refused"
    assert (error.stage, error.remote_host, error.remote_ip, error.remote_port) == (
        "connect",
        "mx2.fabrikam.test",
        "127.0.0.3",
        also_dead.port,
    )
    assert [e.remote_host for e in error.attempts] == ["mx1.fabrikam.test"]


def test_silent_server_times_out(sink):
    listener = socket.socket()
    listener.bind(("127.0.0.2", 0))
    listener.listen()  # the kernel accepts; nobody ever greets
    try:
        session = SmtpSession(
            [Target("slow.fabrikam.test", "127.0.0.2", listener.getsockname()[1])], options(command_timeout=0.3)
        )
        with pytest.raises(SmtpTransientError) as caught:
            session.open()
    finally:
        listener.close()

    assert (caught.value.stage, caught.value.response) == ("greeting", "450 4.4.315 Connection timed out")


# --- per-recipient results ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pipelining", [True, False])
def test_each_recipient_gets_its_own_reply(sink, pipelining):
    server = sink(
        pipelining=pipelining,
        rcpt_replies={
            "busy@fabrikam.test": "450 4.2.1 Mailbox busy, try later",
            "gone@fabrikam.test": "550 5.1.1 User unknown",
        },
    )

    with session_for(server) as session:
        outcome = session.send(
            "alice@contoso.test", ["bob@fabrikam.test", "busy@fabrikam.test", "gone@fabrikam.test"], MESSAGE
        )

    busy, gone = outcome.per_recipient["busy@fabrikam.test"], outcome.per_recipient["gone@fabrikam.test"]
    assert outcome.delivered == ["bob@fabrikam.test"]
    assert (str(busy), busy.stage, busy.is_transient) == ("450 4.2.1 Mailbox busy, try later", "rcpt", True)
    assert (str(gone), gone.stage, gone.is_permanent) == ("550 5.1.1 User unknown", "rcpt", True)
    assert server.messages[0].rcpt_tos == ["bob@fabrikam.test"]


def test_no_recipient_accepted_sends_no_content_and_the_session_goes_on(sink):
    server = sink(rcpt_replies={"gone@fabrikam.test": "550 5.1.1 User unknown"})
    transcript = MemoryTranscript()

    with session_for(server, transcript=transcript) as session:
        refused = session.send("alice@contoso.test", ["gone@fabrikam.test"], MESSAGE)
        accepted = session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)

    assert codes(refused) == {"gone@fabrikam.test": 550}
    assert accepted.delivered == ["bob@fabrikam.test"]
    lines = transcript.lines()
    assert lines.count("> DATA") == 2  # pipelined with MAIL and RCPT, refused for want of a recipient
    assert lines.count(f"* [sending message ({len(MESSAGE)} bytes)]") == 1  # the second message's
    assert "> RSET" in lines
    assert server.sessions == 1


def test_too_many_recipients_go_in_further_transactions(sink):
    server = sink(max_recipients=2)
    recipients = [f"user{n}@fabrikam.test" for n in range(5)]

    with session_for(server) as session:
        outcome = session.send("alice@contoso.test", recipients, MESSAGE)

    assert outcome.delivered == recipients
    assert [m.rcpt_tos for m in server.messages] == [recipients[:2], recipients[2:4], recipients[4:]]
    assert server.sessions == 1


def test_5xx_after_data_fails_every_accepted_recipient(sink):
    server = sink(data_reply="554 5.6.0 Corrupt message content")

    with session_for(server) as session:
        outcome = session.send("alice@contoso.test", ["bob@fabrikam.test", "carol@fabrikam.test"], MESSAGE)

    assert {str(r) for r in outcome.per_recipient.values()} == {"554 5.6.0 Corrupt message content"}
    assert {r.stage for r in outcome.per_recipient.values()} == {"data"}
    assert all(r.is_permanent for r in outcome.per_recipient.values())


def test_4xx_after_data_is_transient(sink):
    server = sink(data_reply="451 4.3.0 Temporary server error")

    with session_for(server) as session:
        outcome = session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)

    assert outcome.per_recipient["bob@fabrikam.test"].is_transient


def test_connection_dropped_during_data_is_transient_for_the_accepted(sink):
    server = sink(drop_during_data=True, rcpt_replies={"gone@fabrikam.test": "550 5.1.1 User unknown"})

    session = session_for(server)
    outcome = session.send("alice@contoso.test", ["bob@fabrikam.test", "gone@fabrikam.test"], MESSAGE)

    assert str(outcome.per_recipient["bob@fabrikam.test"]) == "450 4.4.318 Connection was closed abruptly"
    assert outcome.per_recipient["bob@fabrikam.test"].is_transient
    assert outcome.per_recipient["gone@fabrikam.test"].code == 550
    assert (outcome.error.stage, outcome.error.remote_ip) == ("data", "127.0.0.2")
    assert not session.is_open
    assert not session.can_send_more()
    assert server.messages == []


# --- a soft error on a server that isn't the last: the next one gets the deferred recipients at once -------------


def mx_pair(first, second):
    return SmtpSession(
        [
            Target("mx1.fabrikam.test", first.host, first.port, 10),
            Target("mx2.fabrikam.test", second.host, second.port, 20),
        ],
        options(),
    )


def test_recipients_the_first_mx_defers_go_to_the_next_in_the_same_attempt(sink):
    greylisting = sink(
        "127.0.0.2",
        rcpt_replies={
            "bob@fabrikam.test": "450 4.2.1 Greylisted, try again later",
            "gone@fabrikam.test": "550 5.1.1 User unknown",
        },
    )
    backup = sink("127.0.0.3")

    with mx_pair(greylisting, backup) as session:
        outcome = session.send(
            "alice@contoso.test", ["bob@fabrikam.test", "carol@fabrikam.test", "gone@fabrikam.test"], MESSAGE
        )

    assert codes(outcome) == {"bob@fabrikam.test": 250, "carol@fabrikam.test": 250, "gone@fabrikam.test": 550}
    assert [m.rcpt_tos for m in greylisting.messages] == [["carol@fabrikam.test"]]
    assert [m.rcpt_tos for m in backup.messages] == [["bob@fabrikam.test"]]  # a 5xx is final: not offered on
    assert outcome.remote("bob@fabrikam.test") == ("mx2.fabrikam.test", "127.0.0.3")
    assert outcome.remote("carol@fabrikam.test") == ("mx1.fabrikam.test", "127.0.0.2")


def test_a_message_lost_mid_data_goes_to_the_next_mx_and_its_session_is_reused(sink):
    dropping = sink("127.0.0.2", drop_during_data=True)
    backup = sink("127.0.0.3")
    session = mx_pair(dropping, backup)

    first = session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)
    assert codes(first) == {"bob@fabrikam.test": 250}
    assert first.error is not None  # the first server's connection is gone: the caller closes the session
    session.close()
    refusing = sink("127.0.0.4", data_reply="451 4.3.0 Temporary server error")
    session = mx_pair(refusing, backup)
    for number in range(3):
        outcome = session.send("alice@contoso.test", [f"user{number}@fabrikam.test"], MESSAGE)
        assert codes(outcome) == {f"user{number}@fabrikam.test": 250}
    session.close()

    assert (refusing.sessions, backup.sessions, len(backup.messages)) == (1, 2, 4)


def test_when_the_last_mx_defers_too_its_answer_stands(sink):
    first = sink("127.0.0.2", data_reply="451 4.3.0 Temporary server error")
    last = sink("127.0.0.3", rcpt_replies={"bob@fabrikam.test": "452 4.2.2 Mailbox full"})

    with mx_pair(first, last) as session:
        outcome = session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)

    assert str(outcome.per_recipient["bob@fabrikam.test"]) == "452 4.2.2 Mailbox full"
    assert outcome.remote("bob@fabrikam.test") == ("mx2.fabrikam.test", "127.0.0.3")


def test_a_deferral_stands_when_no_later_mx_takes_a_connection(sink):
    first = sink("127.0.0.2", rcpt_replies={"bob@fabrikam.test": "451 4.7.1 Try again later"})
    dead = Target("mx2.fabrikam.test", "127.0.0.3", free_port("127.0.0.3"), 20)

    with SmtpSession([Target("mx1.fabrikam.test", first.host, first.port, 10), dead], options()) as session:
        outcome = session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)

    assert str(outcome.per_recipient["bob@fabrikam.test"]) == "451 4.7.1 Try again later"
    assert outcome.remote("bob@fabrikam.test") == ("mx1.fabrikam.test", "127.0.0.2")


def test_message_over_the_servers_size_limit_fails_with_5_3_4(sink):
    server = sink(size_limit=1000)

    with session_for(server) as session:
        too_big = session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE + b"x" * 2000)
        small = session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)

    reply = too_big.per_recipient["bob@fabrikam.test"]
    assert (reply.code, reply.enhanced_status, reply.is_permanent) == (552, "5.3.4", True)
    assert small.delivered == ["bob@fabrikam.test"]
    assert len(server.messages) == 1


# --- connection reuse --------------------------------------------------------------------------------------


def test_connection_is_reused_up_to_the_message_limit(sink):
    server = sink()
    session = session_for(server, max_messages_per_connection=2)

    session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)
    assert session.can_send_more()
    session.send("alice@contoso.test", ["carol@fabrikam.test"], MESSAGE)

    assert (session.messages_sent, session.can_send_more(), server.sessions) == (2, False, 1)
    session.close()
    session.send("alice@contoso.test", ["dave@fabrikam.test"], MESSAGE)
    session.close()
    assert (len(server.messages), server.sessions) == (3, 2)


def test_idle_connection_expires_after_the_inactivity_timeout(sink):
    server = sink()

    with session_for(server, inactivity_timeout=0.2) as session:
        session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)
        assert session.can_send_more()
        time.sleep(0.3)

        assert not session.can_send_more()


def test_reused_connection_closed_by_the_server_is_reopened_transparently(sink):
    server = sink(idle_timeout=0.3)

    with session_for(server) as session:
        session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)
        time.sleep(0.6)  # the sink hangs up on the idle connection
        outcome = session.send("alice@contoso.test", ["carol@fabrikam.test"], MESSAGE)

    assert outcome.delivered == ["carol@fabrikam.test"]
    assert (len(server.messages), server.sessions) == (2, 2)


# --- TLS ---------------------------------------------------------------------------------------------------


def test_starttls_is_used_when_offered(sink, tls_certs):
    server = sink(tls_cert=tls_certs.self_signed)

    with session_for(server) as session:
        session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)
        tls = session.tls

    assert server.messages[0].tls
    assert tls.protocol.startswith("TLSv1.")
    assert tls.cipher and not tls.verified
    assert tls.peer_subject == "CN=mx.contoso.test"
    assert tls.peer_names == ("mx.contoso.test",)
    assert server.helo_names == [("EHLO", HELO), ("EHLO", HELO)]  # again after STARTTLS


def test_ignore_starttls_sends_in_the_clear(sink, tls_certs):
    server = sink(tls_cert=tls_certs.valid)
    transcript = MemoryTranscript()

    with session_for(server, transcript=transcript, ignore_starttls=True) as session:
        session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)

    assert not server.messages[0].tls
    assert "> STARTTLS" not in transcript.lines()


def test_opportunistic_tls_that_fails_to_negotiate_retries_in_the_clear(sink, tls_certs):
    server = sink(tls_context=legacy_tls_context(tls_certs.valid))

    with session_for(server) as session:
        outcome = session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)

    assert outcome.delivered == ["bob@fabrikam.test"]
    assert not server.messages[0].tls
    assert server.sessions == 2


def test_require_tls_with_encryption_only_accepts_a_self_signed_certificate(sink, tls_certs):
    server = sink(tls_cert=tls_certs.self_signed)

    with session_for(server, require_tls=True, tls_auth_level="EncryptionOnly") as session:
        outcome = session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)

    assert outcome.delivered == ["bob@fabrikam.test"]
    assert server.messages[0].tls


def test_require_tls_fails_when_the_server_offers_no_starttls(sink):
    server = sink()

    with pytest.raises(SmtpTransientError) as caught:
        session_for(server, require_tls=True).send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)

    assert caught.value.stage == "starttls"
    assert caught.value.response.startswith("450 4.4.317 Cannot connect to remote server [TLS is required")
    assert server.messages == []


def test_certificate_validation_accepts_a_chain_to_the_trusted_ca(sink, tls_certs):
    server = sink(tls_cert=tls_certs.wrong_name)  # CertificateValidation checks the chain, not the name

    with session_for(
        server, require_tls=True, tls_auth_level="CertificateValidation", ca_file=str(tls_certs.ca_file)
    ) as session:
        outcome = session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)
        tls = session.tls

    assert outcome.delivered == ["bob@fabrikam.test"]
    assert tls.verified
    assert tls.peer_issuer == "CN=sendconn test CA"


@pytest.mark.parametrize(
    "certificate, reason",
    [
        ("untrusted", "unable to get local issuer certificate"),
        ("self_signed", "self-signed certificate"),
        ("expired", "certificate has expired"),
    ],
)
def test_certificate_validation_refuses_unknown_ca_and_expired(sink, tls_certs, certificate, reason):
    server = sink(tls_cert=getattr(tls_certs, certificate))

    with pytest.raises(SmtpTransientError) as caught:
        session_for(
            server, require_tls=True, tls_auth_level="CertificateValidation", ca_file=str(tls_certs.ca_file)
        ).open()

    assert caught.value.stage == "starttls"
    assert caught.value.response == f"450 4.7.320 Certificate validation failed [{reason}]"


@pytest.mark.parametrize(
    "tls_domain, recipient_domain",
    [
        ("mx.contoso.test", ""),
        ("*.contoso.test", ""),
        ("", "contoso.test"),  # no TlsDomain: the recipient domain or a subdomain of it
    ],
)
def test_domain_validation_accepts_matching_names(sink, tls_certs, tls_domain, recipient_domain):
    server = sink(tls_cert=tls_certs.valid)

    with session_for(
        server,
        require_tls=True,
        tls_auth_level="DomainValidation",
        tls_domain=tls_domain,
        recipient_domain=recipient_domain,
        ca_file=str(tls_certs.ca_file),
    ) as session:
        outcome = session.send("alice@contoso.test", ["bob@contoso.test"], MESSAGE)

    assert outcome.delivered == ["bob@contoso.test"]


@pytest.mark.parametrize(
    "certificate, tls_domain",
    [
        ("wrong_name", "mx.contoso.test"),
        ("valid", "contoso.test"),  # a plain TlsDomain is matched exactly
        ("valid", "*.fabrikam.test"),
    ],
)
def test_domain_validation_refuses_other_names(sink, tls_certs, certificate, tls_domain):
    server = sink(tls_cert=getattr(tls_certs, certificate))

    with pytest.raises(SmtpTransientError) as caught:
        session_for(
            server,
            require_tls=True,
            tls_auth_level="DomainValidation",
            tls_domain=tls_domain,
            ca_file=str(tls_certs.ca_file),
        ).open()

    assert caught.value.response.startswith("450 4.7.320 Certificate validation failed [SubjectMismatch")
    assert server.messages == []


# --- AUTH --------------------------------------------------------------------------------------------------


def test_basic_auth_require_tls_authenticates_after_starttls(sink, tls_certs):
    server = sink(tls_cert=tls_certs.valid, auth={"relay@contoso.test": "Pa$$w0rd"})

    with session_for(
        server, auth_mechanism="BasicAuthRequireTLS", username="relay@contoso.test", password="Pa$$w0rd"
    ) as session:
        session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)
        assert session.authenticated_as == "relay@contoso.test"

    assert server.messages[0].tls
    assert server.messages[0].auth_user == "relay@contoso.test"


def test_basic_auth_may_authenticate_without_tls(sink):
    server = sink(auth={"relay": "Pa$$w0rd"}, auth_require_tls=False)

    with session_for(server, auth_mechanism="BasicAuth", username="relay", password="Pa$$w0rd") as session:
        session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)

    assert (server.messages[0].tls, server.messages[0].auth_user) == (False, "relay")


def test_basic_auth_require_tls_never_sends_credentials_in_the_clear(sink):
    server = sink(auth={"relay": "Pa$$w0rd"}, auth_require_tls=False)  # AUTH offered without TLS
    transcript = MemoryTranscript()

    with pytest.raises(SmtpTransientError) as caught:
        session_for(
            server, transcript=transcript, auth_mechanism="BasicAuthRequireTLS", username="relay", password="Pa$$w0rd"
        ).open()

    assert caught.value.stage == "auth"
    assert caught.value.response.startswith("450 4.4.317 Cannot connect to remote server [BasicAuthRequireTLS")
    assert not any(line.startswith("> AUTH") for line in transcript.lines())


def test_rejected_credentials_are_a_transient_failure_with_the_servers_answer(sink, tls_certs):
    server = sink(tls_cert=tls_certs.valid, auth={"relay": "Pa$$w0rd"})

    with pytest.raises(SmtpTransientError) as caught:
        session_for(server, auth_mechanism="BasicAuth", username="relay", password="wrong").open()

    assert caught.value.stage == "auth"
    assert caught.value.response == ("450 4.7.8 Authentication failed [535 5.7.8 Authentication credentials invalid]")


def test_on_stage_reports_each_opening_stage_as_it_succeeds(sink, tls_certs):
    server = sink(tls_cert=tls_certs.valid, auth={"relay": "Pa$$w0rd"})
    seen = []
    session = SmtpSession(
        [target(server)],
        options(auth_mechanism="BasicAuth", username="relay", password="Pa$$w0rd"),
        on_stage=lambda stage: seen.append((stage, session.tls is not None, session.authenticated_as)),
    )

    with session:
        session.open()

    assert seen == [("ehlo", False, None), ("starttls", True, None), ("auth", True, "relay")]


def test_on_stage_is_not_called_for_a_stage_that_failed(sink, tls_certs):
    server = sink(tls_cert=tls_certs.untrusted)
    seen = []
    session = SmtpSession(
        [target(server)],
        options(require_tls=True, tls_auth_level="CertificateValidation", ca_file=str(tls_certs.ca_file)),
        on_stage=seen.append,
    )

    with pytest.raises(SmtpTransientError):
        session.open()

    assert seen == ["ehlo"]


def test_auth_login_when_plain_is_not_offered(sink, tls_certs):
    server = sink(tls_cert=tls_certs.valid, auth={"relay": "Pa$$w0rd"}, auth_exclude=["PLAIN"])
    transcript = MemoryTranscript()

    with session_for(
        server, transcript=transcript, auth_mechanism="BasicAuth", username="relay", password="Pa$$w0rd"
    ) as session:
        session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)

    assert server.messages[0].auth_user == "relay"
    sent = [line for line in transcript.lines() if line.startswith(">")]
    assert sent[sent.index("> AUTH LOGIN") + 1 : sent.index("> AUTH LOGIN") + 3] == ["> ****", "> ****"]
    assert_no_secret(transcript, "relay", "Pa$$w0rd")


# --- transcript --------------------------------------------------------------------------------------------


def test_transcript_records_every_line_in_order(sink):
    server = sink()
    transcript = MemoryTranscript()

    with session_for(server, transcript=transcript) as session:
        session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)

    kinds = [e.kind for e in transcript.events]
    lines = transcript.lines()
    assert lines[0] == "* [attempting to connect]"
    assert (kinds[1], kinds[-1]) == ("+", "-")
    assert transcript.events[-1].context == "Local"
    assert lines[2].startswith("< 220 sink.test")
    assert lines[3] == f"> EHLO {HELO}"
    assert "< 250-PIPELINING" in lines
    assert [line for line in lines if line.startswith(">")] == [
        f"> EHLO {HELO}",
        f"> MAIL FROM:<alice@contoso.test> SIZE={len(MESSAGE)}",
        "> RCPT TO:<bob@fabrikam.test>",
        "> DATA",
        "> QUIT",
    ]
    assert f"* [sending message ({len(MESSAGE)} bytes)]" in lines
    assert {e.remote_endpoint for e in transcript.events[1:]} == {f"127.0.0.2:{server.port}"}
    assert all(e.local_endpoint.startswith("127.") for e in transcript.events[1:])


def test_transcript_records_tls_details_and_redacts_auth_plain(sink, tls_certs):
    server = sink(tls_cert=tls_certs.valid, auth={"relay": "Pa$$w0rd"})
    transcript = MemoryTranscript()

    with session_for(
        server, transcript=transcript, auth_mechanism="BasicAuth", username="relay", password="Pa$$w0rd"
    ) as session:
        session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)

    lines = transcript.lines()
    assert "> STARTTLS" in lines
    assert "* CN=mx.contoso.test [Certificate subject]" in lines
    assert "* CN=sendconn test CA [Certificate issuer name]" in lines
    assert any("negotiation succeeded" in line for line in lines)
    assert "> AUTH PLAIN ****" in lines
    assert_no_secret(transcript, "relay", "Pa$$w0rd")


def test_failed_connection_is_in_the_transcript(sink):
    transcript = MemoryTranscript()
    port = free_port("127.0.0.2")

    with pytest.raises(SmtpTransientError):
        SmtpSession([Target("mx1.fabrikam.test", "127.0.0.2", port)], options(), transcript=transcript).open()

    assert transcript.lines() == [
        "* [attempting to connect]",
        f"* Connection refused [Failed to connect to mx1.fabrikam.test[127.0.0.2:{port}]]",
    ]


def assert_no_secret(transcript, user, password):
    secrets = {
        password,
        base64.b64encode(password.encode()).decode(),
        base64.b64encode(f"\0{user}\0{password}".encode()).decode(),
    }
    text = "\n".join(f"{e.data} {e.context}" for e in transcript.events)
    assert not any(secret in text for secret in secrets)


# --- replies and options -----------------------------------------------------------------------------------


def test_reply_parsing_keeps_enhanced_codes_only_when_they_agree():
    assert Reply.from_server(550, b"5.1.1 User unknown") == Reply(550, "5.1.1", "User unknown")
    assert Reply.from_server(550, b"4.1.1 out of step") == Reply(550, "5.0.0", "4.1.1 out of step")
    assert Reply.from_server(421, b"Service shutting down") == Reply(421, "4.0.0", "Service shutting down")
    assert Reply.from_server(250, b"sink.test\nSIZE 100") == Reply(250, "2.0.0", "sink.test SIZE 100")


def test_options_come_from_the_connector(make_connector):
    connector = make_connector(
        "To relay",
        address_spaces=["*"],
        dns_routing_enabled=False,
        smart_hosts=["smtp.relay.test"],
        smart_host_auth_mechanism="BasicAuthRequireTLS",
        authentication_credential=Credential("relay", "Pa$$w0rd"),
        fqdn="mail.contoso.test",
        force_helo=False,
        require_tls=True,
        tls_auth_level="DomainValidation",
        tls_domain="*.relay.test",
        smtp_max_messages_per_connection=5,
    )

    opts = SessionOptions.for_connector(connector, "ex01.contoso.test")

    assert (opts.helo_name, opts.require_tls, opts.tls_auth_level, opts.tls_domain) == (
        "mail.contoso.test",
        True,
        "DomainValidation",
        "*.relay.test",
    )
    assert (opts.auth_mechanism, opts.username, opts.password) == ("BasicAuthRequireTLS", "relay", "Pa$$w0rd")
    assert (opts.max_messages_per_connection, opts.inactivity_timeout) == (5, 600.0)
    assert "Pa$$w0rd" not in repr(opts)


def test_options_default_to_the_server_fqdn(make_connector):
    opts = SessionOptions.for_connector(make_connector("To internet"), "ex01.contoso.test")

    assert (opts.helo_name, opts.username, opts.password) == ("ex01.contoso.test", "", "")


def test_helo_refused_with_5xx_is_permanent(sink):
    server = sink(ehlo_reply="502 5.5.1 Command not implemented", helo_reply="550 5.7.1 Go away")

    with pytest.raises(SmtpPermanentError) as caught:
        session_for(server).open()

    assert (caught.value.stage, caught.value.response) == ("ehlo", "550 5.7.1 Go away")


# --- servers that break the protocol -----------------------------------------------------------------------


def test_a_250_to_data_is_no_go_ahead_the_body_is_not_sent_and_the_recipients_wait():
    """RFC 5321 §4.1.1.4: only 354 lets the body go; anything else fails that attempt (here transiently)."""
    received = []

    async def wrong_data_reply(reader, writer):
        writer.write(b"220 mx.fabrikam.test ESMTP\r\n")
        while line := await reader.readline():
            received.append(line)
            command = line[:4].upper()
            reply = b"221 Bye\r\n" if command == b"QUIT" else b"250 OK\r\n"  # 250 to DATA as well
            writer.write(b"250-mx.fabrikam.test\r\n250 PIPELINING\r\n" if command == b"EHLO" else reply)
            await writer.drain()

    with ScriptedServer("127.0.0.2", free_port("127.0.0.2"), wrong_data_reply) as server:
        session = SmtpSession([Target("mx1.fabrikam.test", server.host, server.port, 10)], options())
        outcome = session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)
        session.close()

    reply = outcome.per_recipient["bob@fabrikam.test"]
    assert (reply.code, reply.enhanced_status, reply.is_transient) == (451, "4.5.0", True)
    assert "Unexpected reply to DATA [250" in reply.text
    assert outcome.error is not None  # the connection is dropped: the server's state is unknown
    assert not any(b"Quarterly report" in line for line in received)


def test_with_pipelining_data_goes_with_mail_and_rcpt_two_round_trips_a_message(sink):
    transcript = MemoryTranscript()

    with session_for(sink(), transcript=transcript) as session:
        session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)

    lines = transcript.lines()
    start = lines.index(f"> MAIL FROM:<alice@contoso.test> SIZE={len(MESSAGE)}")
    assert [line[:6] for line in lines[start : start + 6]] == [
        "> MAIL",
        "> RCPT",
        "> DATA",
        "< 250 ",
        "< 250 ",
        "< 354 ",
    ]


def test_a_354_to_a_pipelined_data_without_recipients_gets_an_empty_body_and_the_session_goes_on():
    """RFC 2920 says the server must refuse that DATA; one that doesn't gets "." alone, not the message."""
    received = []

    async def lenient_data(reader, writer):
        writer.write(b"220 mx.fabrikam.test ESMTP\r\n")
        in_data = False
        while line := await reader.readline():
            received.append(line)
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    writer.write(b"250 OK\r\n")
                continue
            command = line[:4].upper()
            if command == b"EHLO":
                writer.write(b"250-mx.fabrikam.test\r\n250 PIPELINING\r\n")
            elif command == b"RCPT":
                writer.write(b"550 5.1.1 User unknown\r\n" if b"gone@" in line else b"250 OK\r\n")
            elif command == b"DATA":
                in_data = True
                writer.write(b"354 Go ahead\r\n")
            elif command == b"QUIT":
                writer.write(b"221 Bye\r\n")
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()

    with ScriptedServer("127.0.0.2", free_port("127.0.0.2"), lenient_data) as server:
        session = SmtpSession([Target("mx1.fabrikam.test", server.host, server.port, 10)], options())
        refused = session.send("alice@contoso.test", ["gone@fabrikam.test"], MESSAGE)
        accepted = session.send("alice@contoso.test", ["bob@fabrikam.test"], MESSAGE)
        session.close()

    assert codes(refused) == {"gone@fabrikam.test": 550}
    assert accepted.delivered == ["bob@fabrikam.test"]
    assert sum(b"Quarterly report" in line for line in received) == 1  # the accepted message's body only
    assert b"RSET\r\n" in received


def test_a_421_among_the_rcpt_replies_leaves_the_452_overflow_for_later_instead_of_a_new_transaction():
    async def too_many_then_closing(reader, writer):
        writer.write(b"220 mx.fabrikam.test ESMTP\r\n")
        rcpt_replies = iter([b"452 4.5.3 Too many recipients\r\n", b"421 4.3.2 Closing down\r\n"])
        while line := await reader.readline():
            command = line[:4].upper()
            if command == b"EHLO":
                writer.write(b"250-mx.fabrikam.test\r\n250 PIPELINING\r\n")
            elif command == b"RCPT":
                writer.write(next(rcpt_replies))
            elif command == b"DATA":
                writer.write(b"503 5.5.1 No valid recipients\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()
        writer.close()

    with ScriptedServer("127.0.0.2", free_port("127.0.0.2"), too_many_then_closing) as server:
        session = SmtpSession([Target("mx1.fabrikam.test", server.host, server.port, 10)], options())
        outcome = session.send("alice@contoso.test", ["a@fabrikam.test", "b@fabrikam.test"], MESSAGE)
        session.close()

    assert codes(outcome) == {"a@fabrikam.test": 452, "b@fabrikam.test": 421}  # both retried on the timer


def test_a_greeting_that_never_ends_times_out_as_a_whole():
    async def tarpit(reader, writer):
        while True:
            writer.write(b"220-still here\r\n")
            await writer.drain()
            await asyncio.sleep(0.1)

    with ScriptedServer("127.0.0.2", free_port("127.0.0.2"), tarpit) as server:
        session = SmtpSession([Target("mx1.fabrikam.test", server.host, server.port, 10)], options(command_timeout=0.5))
        started = time.monotonic()
        with pytest.raises(SmtpTransientError) as failure:
            session.open()

    assert time.monotonic() - started < 2
    assert (failure.value.stage, str(failure.value.reply)) == ("greeting", "450 4.4.315 Connection timed out")
    assert not session.can_send_more()  # no TypeError on a session that never opened
