"""PlainPathSMTP answers and receives exactly what aiosmtpd's own SMTP session does, faster.

Each transcript goes to both over a real loopback socket; the replies and the content handed to the handler
must be the same.
"""

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from sendconn.transport.smtp_server import PlainPathSMTP
from tests.peers import free_port
from tests.peers.smtp import RawClient

SIZE_LIMIT = 4000


class Recorder:
    def __init__(self):
        self.received = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.6.0 Queued"


class _Controller(Controller):
    def __init__(self, session_class, handler, port):
        self.session_class = session_class
        super().__init__(handler, hostname="127.0.0.1", port=port, data_size_limit=SIZE_LIMIT)

    def factory(self):
        return self.session_class(self.handler, data_size_limit=SIZE_LIMIT)


@pytest.fixture
def servers():
    """aiosmtpd's SMTP and PlainPathSMTP, each with its own recording handler."""
    started = []
    for session_class in (SMTP, PlainPathSMTP):
        controller = _Controller(session_class, Recorder(), free_port())
        controller.start()
        started.append(controller)
    yield started
    for controller in started:
        controller.stop()


def both(servers, lines):
    """The replies of aiosmtpd's session and of ours to the same lines, and what each handler received."""
    return [(converse(controller.port, lines), controller.handler.received) for controller in servers]


def converse(port, lines):
    """Send each item of ``lines`` (bytes), reading one reply after each; return the replies' last lines."""
    replies = []
    with RawClient(port) as client:
        for line in lines:
            client.sock.sendall(line)
            replies.append(client.reply().rpartition("\n")[2])
    return replies


def transaction(content, sender=b"<app@contoso.test>", recipient=b"<kim@fabrikam.test>"):
    return [
        b"EHLO client.test\r\n",
        b"MAIL FROM:" + sender + b"\r\n",
        b"RCPT TO:" + recipient + b"\r\n",
        b"DATA\r\n",
        content,
    ]


CONTENTS = {
    "plain": b"Subject: hi\r\n\r\nHello.\r\n.\r\n",
    "empty": b".\r\n",
    "dot-stuffed": b"..first line starts with a dot\r\nmiddle\r\n..\r\n...two\r\nend.\r\n.\r\n",
    "line ending in a dot": b"Subject: x\r\n\r\nSentence one.\r\nSentence two.\r\n.\r\n",
    "bare LF before the dot": b"a\n.\r\nb\r\n.\r\n",
    "bigger than the line limit": b"Subject: big\r\n\r\n" + b"x" * 76 + b"\r\n" + (b"y" * 76 + b"\r\n") * 40 + b".\r\n",
    "line too long": b"Subject: long\r\n\r\n" + b"z" * 1200 + b"\r\n.\r\n",
    "too much data": (b"w" * 76 + b"\r\n") * 60 + b".\r\n",
}


@pytest.mark.parametrize("name", CONTENTS)
def test_data_replies_and_content_match_aiosmtpd(servers, name):
    (theirs, they_received), (ours, we_received) = both(servers, transaction(CONTENTS[name]) + [b"QUIT\r\n"])
    assert ours == theirs
    assert we_received == they_received
    if name == "dot-stuffed":
        assert we_received[0][2] == b".first line starts with a dot\r\nmiddle\r\n.\r\n..two\r\nend.\r\n"
    if name in ("line too long", "too much data"):
        assert ours[-2].startswith(("500", "552")) and we_received == []


def test_a_refused_message_leaves_the_session_ready_for_the_next(servers):
    lines = transaction(CONTENTS["too much data"]) + transaction(CONTENTS["plain"])[1:]
    (theirs, they_received), (ours, we_received) = both(servers, lines)
    assert ours == theirs and ours[4] == "552 Error: Too much mail data" and ours[-1] == "250 2.6.0 Queued"
    assert we_received == they_received and len(we_received) == 1


@pytest.mark.parametrize(
    "path",
    [
        b"<app@contoso.test> SIZE=100 BODY=8BITMIME",
        b"<first.last+tag@mail.contoso.test>",
        b"<>",
        b'<"two words"@contoso.test>',
        b"<a..b@contoso.test>",
        b"<.app@contoso.test>",
        b"<app@[127.0.0.1]>",
        b"<app@contoso..test>",
        b"<app@contoso.test",
        b"app@contoso.test",
    ],
)
def test_mail_and_rcpt_paths_match_aiosmtpd(servers, path):
    lines = [
        b"EHLO client.test\r\n",
        b"MAIL FROM:" + path + b"\r\n",
        b"RCPT TO:" + path + b"\r\n",
        b"DATA\r\n",
        CONTENTS["plain"],
    ]
    (theirs, they_received), (ours, we_received) = both(servers, lines)
    assert ours == theirs
    assert we_received == they_received


@pytest.mark.parametrize("path", [b"<", b"/@", b'$@[(:"\x00aa,%\x00'])
def test_paths_that_crash_the_email_parser_are_malformed(servers, path):
    """aiosmtpd answers these with ``500 Error: (IndexError) ...`` and logs a traceback; ours, as malformed."""
    ours = servers[1].port
    lines = [
        b"EHLO client.test\r\n",
        b"MAIL FROM:" + path + b"\r\n",
        b"MAIL FROM:<app@contoso.test>\r\n",
        b"RCPT TO:" + path + b"\r\n",
        b"VRFY " + path + b"\r\n",
    ]
    replies = converse(ours, lines)
    assert replies[1:4] == ["553 5.1.3 Error: malformed address", "250 OK", "553 5.1.3 Error: malformed address"]
    assert replies[4].startswith("502 Could not VRFY")
