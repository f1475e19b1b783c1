"""Property test: whatever command lines a client sends, smtpd answers each with an SMTP reply and its session
never ends in an exception (nothing is logged at ERROR: no traceback)."""

import logging
import re

from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from sendconn.transport.smtpd import TEMPORARY_ERROR_REPLY

VERBS = [
    b"EHLO",
    b"HELO",
    b"MAIL FROM:",
    b"RCPT TO:",
    b"DATA",
    b"RSET",
    b"NOOP",
    b"VRFY",
    b"EXPN",
    b"HELP",
    b"AUTH",
    b"AUTH PLAIN",
    b"AUTH LOGIN",
    b"STARTTLS",
    b"QUIT",
    b"BDAT",
    b"mail from:",
    b"ehlo",
]
VALID = [
    b"EHLO client.contoso.test",
    b"MAIL FROM:<app@contoso.test>",
    b"MAIL FROM:<>",
    b"RCPT TO:<kim@fabrikam.test>",
    b"DATA",
    b"RSET",
]
# Bytes that matter to SMTP paths, headers and line handling (a bare LF would end the line: never in one).
SPECIAL = b' <>"@[]:.\\,;()\r\x00\t\x7f\x80\xc3\xa9\xff=+-_%!#$/IPv6aAzZ09'
ARGUMENT = st.one_of(
    st.binary(max_size=80),
    st.lists(st.sampled_from([bytes([byte]) for byte in SPECIAL]), max_size=60).map(b"".join),
    st.binary(min_size=400, max_size=700),
).map(lambda argument: argument.replace(b"\n", b""))
LINE = st.one_of(
    st.sampled_from(VALID),
    st.tuples(st.sampled_from(VERBS), st.sampled_from([b"", b" ", b"  "]), ARGUMENT).map(b"".join),
    ARGUMENT,
)
REPLY = re.compile(r"(?:[2-5]\d\d-[^\n]*\n)*[2-5]\d\d(?: [^\n]*)?")  # a whole reply, its lines joined by \n
CLOSING = ("221", "421", "502 5.5.1 Too many unrecognized commands")


def test_any_command_line_gets_an_smtp_reply_and_no_exception(listen, settings, caplog):
    settings.SENDCONN_SMTP_MAX_INBOUND_CONNECTIONS_PER_SOURCE = None  # one example's connection may linger
    listener = listen()
    caplog.set_level(logging.ERROR)
    caplog.set_level(logging.ERROR, logger="mail.log")  # aiosmtpd's logger, which tests.peers.smtp quiets

    @hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(greet=st.booleans(), lines=st.lists(LINE, min_size=1, max_size=6))
    @example(greet=True, lines=[b"VRFY <", b"MAIL FROM:<", b"MAIL FROM:/@", b"MAIL FROM:<>", b"RCPT TO:<"])  # found
    def converse(greet, lines):
        with listener.raw() as client:
            assert client.greeting.startswith("220 ")
            if greet:
                client.command(b"EHLO client.contoso.test")
            for line in lines:
                reply = client.command(line)
                assert REPLY.fullmatch(reply), (line, reply)
                assert reply != TEMPORARY_ERROR_REPLY, line  # what an exception in a command becomes
                if reply.startswith("354"):
                    reply = client.command(b".")
                elif reply.startswith("334"):
                    reply = client.command(b"*")  # cancel the AUTH exchange
                assert REPLY.fullmatch(reply), (line, reply)
                if reply.startswith(CLOSING):
                    assert client.is_closed_by_server()
                    return
            assert client.command(b"NOOP") == "250 OK"

    converse()
    assert [record.getMessage() for record in caplog.records] == []
