"""aiosmtpd sinks on 127.0.0.x that accept, refuse or misbehave on demand, and record what they received; and a
raw-socket client that sends bytes as a hostile client would.

    with SmtpSink("127.0.0.2", rcpt_replies={"gone@contoso.test": "550 5.1.1 User unknown"}) as sink:
        ...  # deliver to sink.host:sink.port
        assert sink.messages[0].rcpt_tos == ["ok@contoso.test"] and sink.sessions == 1
"""

import asyncio
import logging
import socket
import ssl
from typing import NamedTuple

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from sendconn.transport.smtp_server import PlainPathSMTP

from . import Peer, free_port


class ReceivedMessage(NamedTuple):
    mail_from: str  # "" for the null sender
    rcpt_tos: list
    data: bytes
    tls: bool
    auth_user: str | None


class SmtpSink(Peer):
    """An SMTP receiver. ``sessions`` counts TCP connections, ``quits`` the QUITs; ``messages`` holds accepted
    transactions.

    greeting_code: answer the connection with this code (e.g. 421, 554) and close it.
    rcpt_replies: {address or domain: "450 4.2.1 ..."}; other recipients are accepted.
    max_recipients: RCPTs accepted per transaction; later ones get "452 4.5.3 Too many recipients".
    data_reply: the reply to the end of DATA instead of 250 (the message is then not recorded).
    drop_during_data: close the connection after the message body arrives, before any reply.
    data_delay: seconds to wait before answering the end of data; ``in_data`` counts the sessions waiting so (a
    slow server), ``max_in_data`` the most at once.
    ehlo_reply / helo_reply: answer EHLO / HELO with this instead (e.g. "502 5.5.1 Command not implemented").
    idle_timeout: seconds after which an idle connection is closed without a word (aiosmtpd's timeout).
    tls_context: a server SSLContext to use instead of one built from tls_cert.
    auth: {user: password} enables AUTH (LOGIN and PLAIN unless auth_exclude lists one); offered only after
    STARTTLS when auth_require_tls. pipelining: advertise PIPELINING (aiosmtpd reads pipelined commands fine).
    """

    def __init__(
        self,
        host="127.0.0.2",
        port=0,
        *,
        tls_cert=None,
        tls_context=None,
        auth=None,
        auth_require_tls=True,
        auth_exclude=(),
        greeting_code=None,
        greeting_text=None,
        ehlo_reply=None,
        helo_reply=None,
        rcpt_replies=None,
        max_recipients=None,
        data_reply=None,
        drop_during_data=False,
        size_limit=33554432,
        pipelining=True,
        idle_timeout=300,
        hostname="sink.test",
        data_delay=0.0,
    ):
        self.host = host
        self.port = port
        self.tls_cert = tls_cert
        self.tls_context = tls_context
        self.auth = auth
        self.auth_require_tls = auth_require_tls
        self.auth_exclude = list(auth_exclude)
        greeting_text = greeting_text or f"{hostname} Service not available, closing transmission channel"
        self.greeting = f"{greeting_code} {greeting_text}" if greeting_code else None
        self.ehlo_reply = ehlo_reply
        self.helo_reply = helo_reply
        self.idle_timeout = idle_timeout
        self.rcpt_replies = {k.lower(): v for k, v in (rcpt_replies or {}).items()}
        self.max_recipients = max_recipients
        self.data_reply = data_reply
        self.drop_during_data = drop_during_data
        self.data_delay = data_delay
        self.in_data = 0
        self.max_in_data = 0
        self.size_limit = size_limit
        self.pipelining = pipelining
        self.hostname = hostname
        self.messages = []
        self.sessions = 0
        self.quits = 0
        self.helo_names = []  # ("EHLO" | "HELO", name) per greeting command received
        self._controller = None

    def recipients(self):
        """Every recipient of every message accepted so far."""
        return {address for message in list(self.messages) for address in message.rcpt_tos}

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def start(self):
        fixed_port = self.port
        for _ in range(3):
            self.port = fixed_port or free_port(self.host)
            controller = _SinkController(
                self, self._handler(), hostname=self.host, port=self.port, **self._smtp_parameters()
            )
            try:
                controller.start()
            except OSError:
                if fixed_port:
                    raise
                continue
            self._controller = controller
            self.sessions = 0  # the controller's own start-up probe connected once
            return
        raise RuntimeError(f"could not start an SMTP sink on {self.host}")

    def stop(self):
        if self._controller:
            self._controller.stop()
            self._controller = None

    def _smtp_parameters(self):
        parameters = {
            "server_hostname": self.hostname,
            "data_size_limit": self.size_limit,
            "ready_timeout": 5.0,
            "timeout": self.idle_timeout,
        }
        context = self.tls_context
        if self.tls_cert and context is None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.tls_cert.cert_file, self.tls_cert.key_file)
        if context is not None:
            parameters.update(tls_context=context, require_starttls=False)
        if self.auth is not None:
            parameters.update(
                authenticator=self._authenticate,
                auth_require_tls=self.auth_require_tls,
                auth_exclude_mechanism=self.auth_exclude,
            )
        return parameters

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if self.auth.get(user) == password:
                return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)

    def _handler(self):
        sink = self

        class Handler:
            async def handle_EHLO(self, server, session, envelope, hostname, responses):
                sink.helo_names.append(("EHLO", hostname))
                if sink.ehlo_reply:
                    return [sink.ehlo_reply]
                session.host_name = hostname
                if sink.pipelining:
                    responses.insert(-1, "250-PIPELINING")
                return responses

            async def handle_HELO(self, server, session, envelope, hostname):
                sink.helo_names.append(("HELO", hostname))
                if sink.helo_reply:
                    return sink.helo_reply
                session.host_name = hostname
                return f"250 {sink.hostname}"

            async def handle_QUIT(self, server, session, envelope):
                sink.quits += 1
                return "221 Bye"

            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                lowered = address.lower()
                reply = sink.rcpt_replies.get(lowered) or sink.rcpt_replies.get(lowered.rpartition("@")[2])
                if reply:
                    return reply
                if sink.max_recipients is not None and len(envelope.rcpt_tos) >= sink.max_recipients:
                    return "452 4.5.3 Too many recipients"
                envelope.rcpt_tos.append(address)
                return "250 2.1.5 Recipient OK"

            async def handle_DATA(self, server, session, envelope):
                if sink.drop_during_data:
                    server.transport.abort()
                    return "250 2.6.0 never seen by the client"
                if sink.data_delay:
                    sink.in_data += 1
                    sink.max_in_data = max(sink.max_in_data, sink.in_data)
                    try:
                        await asyncio.sleep(sink.data_delay)
                    finally:
                        sink.in_data -= 1
                if sink.data_reply:
                    return sink.data_reply
                mail_from = "" if envelope.mail_from == "<>" else envelope.mail_from  # null sender as ""
                sink.messages.append(
                    ReceivedMessage(
                        mail_from,
                        list(envelope.rcpt_tos),
                        envelope.content,
                        session.ssl is not None,
                        session.auth_data if session.authenticated else None,
                    )
                )
                return "250 2.6.0 Queued mail for delivery"

        return Handler()


class _SinkSMTP(PlainPathSMTP):
    def __init__(self, sink, *args, **kwargs):
        self.sink = sink
        super().__init__(*args, **kwargs)

    def connection_made(self, transport):
        if self.transport is None:  # a new TCP connection, not the TLS layer after STARTTLS
            self.sink.sessions += 1
        super().connection_made(transport)

    async def _handle_client(self):
        if self.sink.greeting:
            await self.push(self.sink.greeting)
            self.transport.close()
            return
        await super()._handle_client()


class _SinkController(Controller):
    def __init__(self, sink, *args, **kwargs):
        self.sink = sink
        super().__init__(*args, **kwargs)

    def factory(self):
        return _SinkSMTP(self.sink, self.handler, **self.SMTP_kwargs)


# aiosmtpd logs a traceback for every client that rejects our throwaway certificates: expected in these tests.
logging.getLogger("mail.log").setLevel(logging.CRITICAL)


class RawClient:
    """Bytes as a hostile client sends them (nothing quoted or checked), and the server's replies."""

    def __init__(self, port, source="127.0.0.1", timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
        self.reader = self.sock.makefile("rb")
        self.greeting = self.reply()

    def reply(self):
        """One reply, its lines joined by newlines; "" when the server closed the connection instead."""
        lines = []
        while True:
            line = self.reader.readline()
            if not line:
                break
            lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
            if line[3:4] != b"-":
                break
        return "\n".join(lines)

    def command(self, line):
        """Send ``line`` (bytes) and CRLF; return the reply."""
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def is_closed_by_server(self):
        return self.reader.read() == b""

    def close(self):
        self.reader.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
