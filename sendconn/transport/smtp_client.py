"""One outbound SMTP session, the way a Send connector speaks it (RFC 5321, 3207, 4954; mail-delivery.md §2, §5, §6).

    session = SmtpSession(targets, SessionOptions.for_connector(connector, server_fqdn), transcript=log,
                          recipient_domain="fabrikam.com")
    outcome = session.send("alice@contoso.com", ["bob@fabrikam.com"], raw_bytes)   # opens on first use
    outcome.per_recipient["bob@fabrikam.com"]  -> Reply(250, "2.6.0", "Queued mail for delivery")
    if not session.can_send_more(): session.close()

Opening tries the targets in order and moves to the next one on a connection failure, a 4xx or 5xx greeting
(Postfix's smtp_skip_5xx_greeting), a failed EHLO/HELO, a TLS or certificate failure and an AUTH failure; when
every target fails, ``open()`` raises an ``SmtpSessionError`` naming the stage. Once open, ``send()`` always
returns a ``MessageOutcome`` with one ``Reply`` per recipient; if the connection dies mid-transaction the
recipients get Exchange's ``450 4.4.318 Connection was closed abruptly`` (or 4.4.315 on a timeout) and
``outcome.error`` says where; ``send()`` itself raises only when it has to open a connection and can't.
Recipients a server defers (4xx at MAIL, RCPT or DATA, or the connection lost) go on to the next targets in the
same attempt, over a second session kept beside the first; only the last target's deferral stands
(``outcome.remote(address)`` names the server that answered each recipient).
A reused connection that the server closed while idle is reopened transparently. MAIL and every RCPT go in one
write when the server offers PIPELINING; RSET is sent only after a transaction that ended without DATA (a
completed DATA already resets the state, RFC 5321 §4.1.1.4). The null sender is ``""``. Every socket operation
has a timeout.

AUTH failures (535 included) are transient, as Postfix's smtp_sasl_auth_soft_bounce: a wrong smart-host password
is a configuration error to fix, not a reason to bounce mail; the queue shows the server's answer meanwhile.
"""

import base64
import functools
import hashlib
import ipaddress
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn, Protocol, Self

from cryptography import x509
from django.conf import settings

from sendconn.connectors.models import SmartHostAuthMechanism

from .addresses import validate_smtp_address

if TYPE_CHECKING:
    from sendconn.connectors.models import SendConnector

    from .dns import Target

QUIT_TIMEOUT = 2.0  # we don't wait long for 221 (Postfix doesn't wait at all)
DATA_DONE_FACTOR = 2  # the reply to the end of data may take twice the command timeout (Postfix: 600 s vs 300 s)
MAX_ADDRESSES = 5  # targets tried per open(): Postfix's smtp_mx_address_limit

CONNECT, GREETING, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA = (
    "connect",
    "greeting",
    "ehlo",
    "starttls",
    "auth",
    "mail",
    "rcpt",
    "data",
)

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?:\s+|$)")
_EOLS = re.compile(rb"\r\n|\n|\r(?!\n)")
_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class Reply:
    """An SMTP reply, or one we made up in the same shape (connection failures, size limit)."""

    code: int
    enhanced_status: str
    text: str
    stage: str = field(default="", compare=False)  # the command it answered

    @classmethod
    def from_server(cls, code: int, message: bytes | str, stage: str = "") -> Self:
        """Split a reply as smtplib returns it. An enhanced code out of step with the reply code is replaced by
        one made from the reply code, as Postfix does (the 3-digit code always wins)."""
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        text = " ".join(line.strip() for line in message.splitlines())
        match = _ENHANCED.match(text)
        if match and str(code)[:1] == match.group(1):
            return cls(code, ".".join(match.groups()), text[match.end() :], stage)
        klass = str(code)[:1] if str(code)[:1] in "245" else "4"
        return cls(code, f"{klass}.0.0", text, stage)

    @property
    def is_success(self) -> bool:
        return 200 <= self.code < 300

    @property
    def is_transient(self) -> bool:
        return not (self.is_success or self.is_permanent)  # 4xx, and anything out of range (RFC 5321 §4.2)

    @property
    def is_permanent(self) -> bool:
        return 500 <= self.code < 600

    def softened(self) -> "Reply":
        """The same reply as a 4xx: for failures that must retry rather than bounce."""
        if 400 <= self.code < 500:
            return self
        return Reply(450, "4" + self.enhanced_status[1:], self.text, self.stage)

    def __str__(self) -> str:
        return f"{self.code} {self.enhanced_status} {self.text}".rstrip()


def connection_timed_out(stage: str = "") -> Reply:
    return Reply(450, "4.4.315", "Connection timed out", stage)


def connection_refused(stage: str = "") -> Reply:
    return Reply(450, "4.4.316", "Connection refused", stage)


def cannot_connect(reason: str, stage: str = "") -> Reply:
    return Reply(450, "4.4.317", f"Cannot connect to remote server [{reason}]", stage)


def connection_closed_abruptly(stage: str = "") -> Reply:
    return Reply(450, "4.4.318", "Connection was closed abruptly", stage)


def certificate_validation_failed(reason: str, stage: str = STARTTLS) -> Reply:
    return Reply(450, "4.7.320", f"Certificate validation failed [{reason}]", stage)


class _RemoteTarget:
    """The remote end of ``self.target`` (the MX or smart host address tried), empty while there is none."""

    target: "Target | None" = None

    @property
    def remote_host(self) -> str:
        return self.target.hostname if self.target else ""

    @property
    def remote_ip(self) -> str:
        return self.target.address if self.target else ""

    @property
    def remote_port(self) -> int | None:
        return self.target.port if self.target else None


class SmtpSessionError(_RemoteTarget, Exception):
    """The session could not (or can no longer) talk to the remote server; ``stage`` says where it stopped."""

    transient: bool | None = None

    def __init__(self, stage: str, reply: Reply, target: "Target | None" = None, detail: str = "") -> None:
        super().__init__(str(reply))
        self.stage = stage
        self.reply = reply
        self.target = target
        self.detail = detail  # the underlying error, for the verify page
        self.attempts: list[SmtpSessionError] = []  # errors from targets tried before this one

    @property
    def response(self) -> str:
        return str(self.reply)


class SmtpTransientError(SmtpSessionError):
    transient = True


class SmtpPermanentError(SmtpSessionError):
    transient = False


def session_error(stage: str, reply: Reply, target: "Target | None" = None, detail: str = "") -> SmtpSessionError:
    cls = SmtpPermanentError if reply.is_permanent else SmtpTransientError
    return cls(stage, reply, target, detail)


@dataclass
class MessageOutcome:
    per_recipient: dict[str, Reply]  # by address
    remote_host: str
    remote_ip: str
    error: SmtpSessionError | None = None  # set when the connection failed during this message
    # address -> (host, ip) of a later target that answered for it, after this one deferred it
    answered_elsewhere: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def delivered(self) -> list[str]:
        return [address for address, reply in self.per_recipient.items() if reply.is_success]

    def remote(self, address: str) -> tuple[str, str]:
        """(host, ip) of the server whose reply ``address`` got."""
        return self.answered_elsewhere.get(address, (self.remote_host, self.remote_ip))


@dataclass(frozen=True)
class TlsInfo:
    protocol: str
    cipher: str
    bits: int
    peer_subject: str
    peer_issuer: str
    peer_not_after: datetime | None
    peer_serial: str
    peer_thumbprint: str  # SHA-1, upper-case hex, as Exchange shows thumbprints
    peer_names: tuple[str, ...]
    verified: bool  # the chain was checked against the CA store


@dataclass(frozen=True)
class SessionOptions:
    """What a Send connector decides about a session. ``for_connector`` reads them off a SendConnector."""

    helo_name: str
    force_helo: bool = False
    ignore_starttls: bool = False
    require_tls: bool = False
    tls_auth_level: str = ""  # "" / EncryptionOnly / CertificateValidation / DomainValidation (with RequireTLS)
    tls_domain: str = ""  # DomainValidation: the name (or *.domain) the certificate must carry
    auth_mechanism: str = SmartHostAuthMechanism.NONE  # those that need a credential send username + password
    username: str = ""
    password: str = field(default="", repr=False)
    max_messages_per_connection: int = 20
    inactivity_timeout: float = 600.0
    # seconds for the TCP connect (SENDCONN_SMTP_CONNECT_TIMEOUT), and for each whole reply, the greeting included
    # (SENDCONN_SMTP_COMMAND_TIMEOUT): a deadline, so a server dribbling continuation lines can't hold on for ever
    connect_timeout: float = field(default_factory=lambda: settings.SENDCONN_SMTP_CONNECT_TIMEOUT.total_seconds())
    command_timeout: float = field(default_factory=lambda: settings.SENDCONN_SMTP_COMMAND_TIMEOUT.total_seconds())
    ca_file: str | None = None  # None: settings.SENDCONN_TLS_CA_FILE, else the system store
    max_addresses: int = MAX_ADDRESSES

    @classmethod
    def for_connector(cls, connector: "SendConnector", server_fqdn: str, **overrides: Any) -> Self:
        """The connector's Fqdn (else the server's), ForceHELO, TLS and AUTH settings and reuse limits.
        Decrypts the smart-host password (CredentialKeyError if the key changed)."""
        basic_auth = SmartHostAuthMechanism.needs_credential(connector.smart_host_auth_mechanism)
        values: dict[str, Any] = dict(
            helo_name=connector.fqdn or server_fqdn,
            force_helo=connector.force_helo,
            ignore_starttls=connector.ignore_starttls,
            require_tls=connector.require_tls,
            tls_auth_level=connector.tls_auth_level or "",
            tls_domain=connector.tls_domain or "",
            auth_mechanism=connector.smart_host_auth_mechanism,
            username=connector.auth_username if basic_auth else "",
            password=connector.get_password() if basic_auth else "",
            max_messages_per_connection=connector.smtp_max_messages_per_connection,
            inactivity_timeout=connector.connection_inactivity_timeout.total_seconds(),
        )
        values.update(overrides)
        return cls(**values)

    @property
    def basic_auth(self) -> bool:
        return SmartHostAuthMechanism.needs_credential(self.auth_mechanism)


class Transcript(Protocol):
    """What a session reports its conversation to (the Send protocol log's ``SessionTranscript``, Verify
    delivery's step details, a test's list); see ``SmtpSession`` for when each is called."""

    def connected(self, local_endpoint: str, remote_endpoint: str) -> None: ...

    def event(self, kind: str, data: str = "", context: str = "") -> None: ...

    def for_another_connection(self) -> "Transcript": ...


class _NoTranscript:
    """The transcript of a session nobody logs."""

    def connected(self, local_endpoint: str, remote_endpoint: str) -> None:
        pass

    def event(self, kind: str, data: str = "", context: str = "") -> None:
        pass

    def for_another_connection(self) -> Self:
        return self


class SmtpSession(_RemoteTarget):
    """A connection to the first target that works, reused for up to ``max_messages_per_connection`` messages.

    Transcript protocol: ``connected(local, remote)`` is called with an empty local endpoint before each
    connection attempt (for the ``* attempting to connect`` line) and again with both once TCP is up, followed by
    ``event("+")``; then ``event(kind, data, context)`` for every line sent (``>``) and received (``<``), ``*``
    for information (TLS, certificate, failures) and ``-`` when the connection closes (context Local/Remote).
    AUTH payloads are written as ``****``; message bodies are not written. ``for_another_connection()`` gives
    the transcript of the second session kept open beside this one (a protocol log session of its own).

    ``on_stage(stage)``, when given, is called as each opening stage succeeds: EHLO (or HELO), STARTTLS (TLS up,
    certificate checked, EHLO repeated) and AUTH; the verify-delivery page shows its steps live from these.
    """

    def __init__(
        self,
        targets: Iterable["Target"],
        options: SessionOptions,
        transcript: Transcript | None = None,
        recipient_domain: str = "",
        on_stage: Callable[[str], None] | None = None,
    ) -> None:
        self.targets = list(targets)
        self.options = options
        self.transcript = transcript or _NoTranscript()
        self.on_stage = on_stage or (lambda stage: None)
        self.recipient_domain = recipient_domain.lower().rstrip(".")
        self.target = None
        self.tls: TlsInfo | None = None  # once STARTTLS succeeded
        self.authenticated_as: str | None = None
        self.extensions: dict[str, str] = {}  # EHLO keywords (lower case) -> parameters
        self.messages_sent = 0
        self.idle_since: float | None = None
        self.attempts: list[SmtpSessionError] = []  # the targets that failed during the last open()
        self._client: _Client | None = None
        self._needs_rset = False
        self._later: SmtpSession | None = (
            None  # a session to the targets after this one, for the recipients this one deferred
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._client is not None and self._client.sock is not None

    @property
    def max_message_size(self) -> int | None:
        """The server's SIZE limit in bytes, or None when it announced none (or 0)."""
        value = self.extensions.get("size", "")
        return int(value) if value.isdigit() and int(value) > 0 else None

    def can_send_more(self) -> bool:
        return (
            self.is_open
            and self.idle_since is not None
            and self.messages_sent < self.options.max_messages_per_connection
            and time.monotonic() - self.idle_since < self.options.inactivity_timeout
        )

    def open(self) -> Self:
        """Connect to the first target that gets through greeting, EHLO, STARTTLS and AUTH."""
        self.close()
        self.attempts = []
        for target in self.targets[: self.options.max_addresses]:
            try:
                self._open(target, try_tls=not self.options.ignore_starttls)
                return self
            except _PlaintextRetry:
                try:  # opportunistic TLS failed to negotiate: the same host again, in the clear
                    self._open(target, try_tls=False)
                    return self
                except SmtpSessionError as error:
                    self.attempts.append(error)
            except SmtpSessionError as error:
                self.attempts.append(error)
        if not self.attempts:
            raise SmtpTransientError(CONNECT, cannot_connect("no address to connect to", CONNECT))
        transient = [error for error in self.attempts if error.transient]
        final = transient[-1] if transient else self.attempts[-1]  # one soft failure: retry rather than bounce
        final.attempts = [error for error in self.attempts if error is not final]
        raise final

    def send(self, mail_from: str, recipients: Sequence[str], data: bytes) -> MessageOutcome:
        """One message to its recipients: MAIL, RCPT per recipient, DATA; more transactions after a 452.

        Recipients this server deferred (a 4xx at MAIL, RCPT or DATA, or the connection lost) are offered at once
        to the next targets, as Postfix does after a soft error on a server that isn't the last; a 5xx stands.
        """
        validate_smtp_address(mail_from, null_allowed=True)
        for address in recipients:
            validate_smtp_address(address)
        if not self.is_open:
            self.open()
        try:
            outcome = self._send(mail_from, recipients, data, may_be_stale=self.messages_sent > 0)
        except _StaleConnection:
            self.open()  # the server closed the reused connection while it was idle: once more on a new one
            outcome = self._send(mail_from, recipients, data, may_be_stale=False)
        return self._offer_deferred_to_later_targets(mail_from, data, outcome)

    def _offer_deferred_to_later_targets(self, mail_from: str, data: bytes, outcome: MessageOutcome) -> MessageOutcome:
        deferred = [address for address, reply in outcome.per_recipient.items() if reply.is_transient]
        position = next(index for index, target in enumerate(self.targets) if target is self.target)
        later_targets = self.targets[position + 1 : self.options.max_addresses]
        if not deferred or not later_targets:
            return outcome
        if self._later is None or not self._later.can_send_more():
            self._close_later()
            self._later = SmtpSession(
                later_targets, self.options, self.transcript.for_another_connection(), self.recipient_domain
            )
        try:
            second = self._later.send(mail_from, deferred, data)
        except SmtpSessionError:  # no later target took a connection: this server's answers stand
            self._close_later()
            return outcome
        if second.error is not None:
            self._close_later()
        outcome.per_recipient.update(second.per_recipient)
        outcome.answered_elsewhere.update({address: second.remote(address) for address in deferred})
        return outcome

    def _close_later(self) -> None:
        later, self._later = self._later, None
        if later is not None:
            later.close()

    def close(self) -> None:
        self._close_later()
        client, self._client = self._client, None
        if client is None:
            return
        if client.sock is not None:
            try:
                client.sock.settimeout(QUIT_TIMEOUT)
                client.send_lines(["QUIT"])
                client.getreply()
            except (OSError, smtplib.SMTPException):
                pass
            client.close()
            self.transcript.event("-", "", "Local")
        self._needs_rset = False

    # --- opening -------------------------------------------------------------------------------------------

    def _open(self, target: "Target", try_tls: bool) -> None:
        options = self.options
        self.target, self.tls, self.authenticated_as, self.extensions = target, None, None, {}
        self.messages_sent, self._needs_rset = 0, False
        client = _Client(self.transcript, options)
        self._client = client
        self.transcript.connected("", target.endpoint)
        self.transcript.event("*", "", "attempting to connect")
        try:
            code, message = client.connect(target.address, target.port)
        except smtplib.SMTPServerDisconnected as error:  # closed (or silent) before the greeting
            self._fail(GREETING, _failure_reply(error, GREETING), str(error))
        except OSError as error:
            self._client = None
            reply = _failure_reply(error, CONNECT)
            self.transcript.event("*", reply.text, f"Failed to connect to {target.hostname}[{target.endpoint}]")
            raise session_error(CONNECT, reply, target, str(error)) from None
        if code != 220:  # 4xx or 5xx greeting: next host either way
            reply = Reply.from_server(code, message, GREETING)
            self._fail(GREETING, reply if reply.is_transient else cannot_connect(str(reply), GREETING))
        self._hello()
        self.on_stage(EHLO)
        if try_tls and "starttls" in self.extensions:
            self._starttls()
        if options.require_tls and self.tls is None:
            reason = "STARTTLS is ignored" if options.ignore_starttls else "the remote server did not offer STARTTLS"
            self._fail(STARTTLS, cannot_connect(f"TLS is required but {reason}", STARTTLS))
        if options.basic_auth:
            self._authenticate()
            self.on_stage(AUTH)
        self.idle_since = time.monotonic()

    def _hello(self) -> None:
        name = self.options.helo_name
        if not self.options.force_helo:
            reply = self._command(EHLO, f"EHLO {name}")
            if reply.is_success:
                self.extensions = _extensions(self._connection().last_message)
                return
            if reply.code == 421:
                self._fail(EHLO, reply)
        reply = self._command(EHLO, f"HELO {name}")  # EHLO refused, or ForceHELO
        if not reply.is_success:
            self._fail(EHLO, reply)  # 5xx HELO is a hard failure (Postfix bounces); 4xx retries
        self.extensions = {}

    def _starttls(self) -> None:
        options = self.options
        reply = self._command(STARTTLS, "STARTTLS")
        if reply.code != 220:
            if options.require_tls:
                self._fail(STARTTLS, cannot_connect(f"STARTTLS was refused: {reply}", STARTTLS))
            self.transcript.event("*", str(reply), "STARTTLS refused; continuing without TLS")
            return
        level = options.tls_auth_level if options.require_tls else ""
        verify = level in ("CertificateValidation", "DomainValidation")
        context = _tls_context(verify, options.ca_file or settings.SENDCONN_TLS_CA_FILE or "")
        client, target = self._connection(), self.target
        assert client.sock is not None and target is not None  # set by the connection
        server_name = target.hostname if not _is_ip(target.hostname) else None
        try:
            client.sock = context.wrap_socket(client.sock, server_hostname=server_name)
        except ssl.SSLCertVerificationError as error:
            reason = error.verify_message or str(error)
            self.transcript.event("*", reason, "TLS negotiation failed")
            self._fail(STARTTLS, certificate_validation_failed(reason), str(error), polite=False)
        except (ssl.SSLError, OSError) as error:
            self.transcript.event("*", str(error), "TLS negotiation failed")
            if not options.require_tls:
                self._drop()
                raise _PlaintextRetry() from None
            if isinstance(error, ssl.SSLError):
                reply = cannot_connect(f"TLS negotiation failed: {error}", STARTTLS)
            else:
                reply = _failure_reply(error, STARTTLS)
            self._fail(STARTTLS, reply, str(error), polite=False)
        client.file = None
        self.tls = _tls_info(client.sock, verify)
        self._log_tls(self.tls)
        if level == "DomainValidation":
            patterns = _domain_patterns(options.tls_domain, self.recipient_domain)
            if not any(_certificate_covers(n, p) for n in self.tls.peer_names for p in patterns):
                names = ", ".join(self.tls.peer_names) or "no DNS name"
                wanted = patterns[0] if patterns else "a domain"
                reason = f"SubjectMismatch: the certificate names {names}, not {wanted}"
                self.transcript.event("*", reason, "TLS domain validation failed")
                self._fail(STARTTLS, certificate_validation_failed(reason))
        reply = self._command(EHLO, f"EHLO {options.helo_name}")  # RFC 3207 §4.2: forget pre-TLS extensions
        if not reply.is_success:
            self._fail(EHLO, reply)
        self.extensions = _extensions(client.last_message)
        self.on_stage(STARTTLS)

    def _authenticate(self) -> None:
        options = self.options
        if options.auth_mechanism == SmartHostAuthMechanism.BASIC_AUTH_REQUIRE_TLS and self.tls is None:
            self._fail(AUTH, cannot_connect("BasicAuthRequireTLS: TLS was not negotiated, credentials not sent", AUTH))
        offered = self.extensions.get("auth", "").upper().split()
        user, password = options.username, options.password
        if "PLAIN" in offered:
            token = _b64(f"\0{user}\0{password}")
            reply = self._command(AUTH, f"AUTH PLAIN {token}", logged_as="AUTH PLAIN ****")
        elif "LOGIN" in offered:
            reply = self._command(AUTH, "AUTH LOGIN")
            if reply.code == 334:
                reply = self._command(AUTH, _b64(user), logged_as="****")
            if reply.code == 334:
                reply = self._command(AUTH, _b64(password), logged_as="****")
        else:
            self._fail(AUTH, cannot_connect("the remote server offered no AUTH PLAIN or LOGIN", AUTH))
        if reply.code != 235:
            failed = Reply(reply.code, reply.enhanced_status, f"Authentication failed [{reply}]", AUTH)
            self._fail(AUTH, failed.softened())
        self.authenticated_as = user

    # --- sending -------------------------------------------------------------------------------------------

    def _send(self, mail_from: str, recipients: Sequence[str], data: bytes, may_be_stale: bool) -> MessageOutcome:
        if not recipients:
            return self._outcome({})
        data = _LEADING_DOT.sub(b"..", _EOLS.sub(b"\r\n", data))
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        results: dict[str, Reply] = {}
        limit = self.max_message_size
        if limit and len(data) > limit:
            reply = Reply(
                552,
                "5.3.4",
                f"Message size exceeds fixed maximum message size of {self.remote_host} ({len(data)} > {limit} bytes)",
                MAIL,
            )
            return self._outcome({address: reply for address in recipients})
        utf8 = not (mail_from.isascii() and all(r.isascii() for r in recipients))
        if utf8 and "smtputf8" not in self.extensions:
            reply = Reply(553, "5.6.7", f"{self.remote_host} does not support SMTPUTF8 addresses", MAIL)
            return self._outcome({address: reply for address in recipients})
        pending, error = list(recipients), None
        while pending:
            replies, overflow, error = self._transaction(mail_from, pending, data, utf8, may_be_stale)
            may_be_stale = False
            results.update(replies)
            if error or not overflow or len(overflow) == len(pending) or not self.is_open:  # a 421 closed it
                results.update(overflow)
                break
            pending = list(overflow)  # 452 too many recipients: the rest in a new transaction (RFC 5321 §4.5.3.1.10)
        return self._outcome(results, error)

    def _transaction(
        self, mail_from: str, recipients: Sequence[str], data: bytes, utf8: bool, may_be_stale: bool
    ) -> tuple[dict[str, Reply], dict[str, Reply], SmtpSessionError | None]:
        """(replies, 452 overflow, connection error) for one MAIL transaction.

        ``may_be_stale``: the connection was reused, so a close or 421 before the first answer only means the
        server dropped it while idle (_StaleConnection: nothing was sent, open a new one)."""
        client, first_reply = self._connection(), may_be_stale
        self.messages_sent += 1
        mail = f"MAIL FROM:<{mail_from}>"
        if "size" in self.extensions:
            mail += f" SIZE={len(data)}"
        if "8bitmime" in self.extensions and not data.isascii():
            mail += " BODY=8BITMIME"
        if utf8:
            mail += " SMTPUTF8"
        rcpts = [f"RCPT TO:<{address}>" for address in recipients]
        replies: dict[str, Reply] = {}
        stage = MAIL
        try:
            if self._needs_rset:
                stage = "rset"
                first_reply = self._check_stale(self._command(stage, "RSET"), first_reply)
                self._needs_rset = False
            stage = MAIL
            data_reply: Reply | None = None
            if "pipelining" in self.extensions:
                # RFC 2920: DATA ends the group, so a message costs two round trips (Postfix's smtp client too).
                client.send_lines([mail, *rcpts, "DATA"])
                mail_reply = client.reply(MAIL)
                first_reply = self._check_stale(mail_reply, first_reply)
                stage = RCPT
                rcpt_replies = [client.reply(RCPT) for _ in rcpts]
                stage = DATA
                data_reply = client.reply(DATA)
            else:
                mail_reply = self._command(MAIL, mail)
                first_reply = self._check_stale(mail_reply, first_reply)
                stage = RCPT
                rcpt_replies = [self._command(RCPT, line) for line in rcpts] if mail_reply.is_success else []
            if not mail_reply.is_success:
                self._needs_rset = True
                self._end_unwanted_data(data_reply)
                return self._closing({address: mail_reply for address in recipients}, mail_reply), {}, None
            overflow: dict[str, Reply] = {}
            accepted: list[str] = []
            for address, reply in zip(recipients, rcpt_replies, strict=True):
                if reply.code == 452:
                    overflow[address] = reply
                elif reply.is_success:
                    accepted.append(address)
                else:
                    replies[address] = reply
            if not accepted:
                self._needs_rset = True
                self._end_unwanted_data(data_reply)
                return self._closing(replies, *rcpt_replies), overflow, None
            stage = DATA
            reply = data_reply or self._command(DATA, "DATA")
            if reply.code != 354:
                if reply.is_transient or reply.is_permanent:
                    self._needs_rset = True
                    replies.update({address: reply for address in accepted})
                    return self._closing(replies, reply), overflow, None
                # Anything else (a 250, say) is not "go ahead" (RFC 5321 §4.1.1.4): the body was never sent, and
                # where the server thinks we are is anybody's guess, so the connection goes.
                unexpected = Reply(451, "4.5.0", f"Unexpected reply to DATA [{reply}]", DATA)
                self._drop()
                replies.update({address: unexpected for address in accepted})
                return replies, overflow, session_error(DATA, unexpected, self.target)
            self.transcript.event("*", "", f"sending message ({len(data)} bytes)")
            client.send_body(data + b".\r\n")
            reply = client.reply(DATA, timeout=self.options.command_timeout * DATA_DONE_FACTOR)
            replies.update({address: reply for address in accepted})
            return self._closing(replies, reply), overflow, None
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            if first_reply:
                self._drop("Remote")
                raise _StaleConnection() from None
            lost = _failure_reply(error, stage)
            failure = session_error(stage, lost, self.target, str(error))
            self._drop("Remote")
            for address in recipients:
                replies.setdefault(address, lost)
            return replies, {}, failure
        finally:
            self.idle_since = time.monotonic()

    def _end_unwanted_data(self, data_reply: Reply | None) -> None:
        """A pipelined DATA the server said 354 to although no recipient was accepted (RFC 2920 says it must
        not): end it with an empty body, whose reply means nothing."""
        if data_reply is not None and data_reply.code == 354:
            client = self._connection()
            client.send_body(b".\r\n")
            client.reply(DATA)

    def _check_stale(self, reply: Reply, first_reply: bool) -> bool:
        """A 421 as the first answer on a reused connection: the server timed it out while we were idle."""
        if reply.code == 421 and first_reply:
            self._drop("Remote")
            raise _StaleConnection()
        return False

    def _closing(self, replies: dict[str, Reply], *server_replies: Reply) -> dict[str, Reply]:
        """A 421 anywhere means the server is closing the connection (RFC 5321 §3.8)."""
        if any(reply.code == 421 for reply in server_replies):
            self._drop("Remote")
        return replies

    def _outcome(self, per_recipient: dict[str, Reply], error: SmtpSessionError | None = None) -> MessageOutcome:
        return MessageOutcome(per_recipient, self.remote_host, self.remote_ip, error)

    # --- plumbing ------------------------------------------------------------------------------------------

    def _connection(self) -> "_Client":
        assert self._client is not None, "used only while the session is open"
        return self._client

    def _command(self, stage: str, line: str, logged_as: str | None = None) -> Reply:
        client = self._connection()
        try:
            client.send_lines([line], logged_as=logged_as)
            return client.reply(stage)
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            if stage in (MAIL, RCPT, DATA, "rset"):
                raise
            self._fail(stage, _failure_reply(error, stage), str(error))

    def _fail(self, stage: str, reply: Reply, detail: str = "", polite: bool = True) -> NoReturn:
        """Abandon this target: QUIT if the connection still works (polite), and raise the session error."""
        error = session_error(stage, reply, self.target, detail)
        if polite:
            self.close()
        else:
            self._drop()
        raise error

    def _drop(self, closed_by: str = "Local") -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
            self.transcript.event("-", "", closed_by)

    def _log_tls(self, tls: TlsInfo) -> None:
        event = self.transcript.event
        event("*", "", f"TLS protocol {tls.protocol} negotiation succeeded using cipher {tls.cipher} ({tls.bits} bits)")
        event("*", tls.peer_subject, "Certificate subject")
        event("*", tls.peer_issuer, "Certificate issuer name")
        event("*", tls.peer_serial, "Certificate serial number")
        event("*", tls.peer_thumbprint, "Certificate thumbprint")
        event("*", ";".join(tls.peer_names), "Certificate alternate names")
        if tls.peer_not_after:
            event("*", tls.peer_not_after.isoformat(), "Certificate expiration date")


class _StaleConnection(Exception):
    """A reused connection turned out to be closed before this transaction got any answer."""


class _PlaintextRetry(Exception):
    """Opportunistic TLS failed to negotiate; reconnect to the same host without STARTTLS."""


class _Client(smtplib.SMTP):
    """smtplib's socket and reply parsing, with every line reported to the transcript and upper-case commands."""

    def __init__(self, transcript: Transcript, options: SessionOptions) -> None:
        super().__init__(timeout=options.command_timeout)
        self.transcript = transcript
        self.connect_timeout = options.connect_timeout
        self.command_encoding = "utf-8"  # only non-ASCII when the server said SMTPUTF8
        self.last_message = b""
        self.reply_timeout = options.command_timeout

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((host, port), self.connect_timeout, self.source_address)
        sock.settimeout(timeout)
        self.transcript.connected(_endpoint(sock.getsockname()), _endpoint(sock.getpeername()))
        self.transcript.event("+")
        return sock

    def send_lines(self, lines: Sequence[str], logged_as: str | None = None) -> None:
        for line in lines:
            self.transcript.event(">", logged_as if logged_as is not None else line)
        self.send("".join(line + "\r\n" for line in lines))

    def send_body(self, data: bytes) -> None:
        self.send(data)

    def getreply(self) -> tuple[int, bytes]:
        """smtplib's reply parsing under a deadline for the whole reply, continuation lines included."""
        if self.sock is None:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        if self.file is None:
            self.file = self.sock.makefile("rb")
        lines = self.file
        self.file = _DeadlineReader(lines, self.sock, time.monotonic() + self.reply_timeout)
        try:
            code, message = super().getreply()
        finally:
            if self.file is not None:  # smtplib drops the file when the connection closes
                self.file = lines
            if self.sock is not None:
                self.sock.settimeout(self.timeout)
        self.last_message = message
        lines = message.decode("utf-8", "replace").split("\n")
        for index, line in enumerate(lines):
            separator = " " if index == len(lines) - 1 else "-"
            self.transcript.event("<", f"{code}{separator}{line}".rstrip())
        return code, message

    def reply(self, stage: str, timeout: float | None = None) -> Reply:
        self.reply_timeout = timeout or self.timeout
        try:
            code, message = self.getreply()
        finally:
            self.reply_timeout = self.timeout
        return Reply.from_server(code, message, stage)


class _DeadlineReader:
    """Reads reply lines for smtplib, each read given only the time left until the reply's deadline."""

    def __init__(self, lines: BinaryIO, sock: socket.socket, deadline: float) -> None:
        self._lines = lines
        self._sock = sock
        self._deadline = deadline

    def readline(self, size: int = -1) -> bytes:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out waiting for the whole reply")
        self._sock.settimeout(remaining)
        return self._lines.readline(size)

    def close(self) -> None:
        self._lines.close()


def _extensions(message: bytes) -> dict[str, str]:
    """EHLO keywords (lower case) -> parameters; AUTH mechanisms from every AUTH line, merged."""
    extensions: dict[str, str] = {}
    for line in message.decode("utf-8", "replace").split("\n")[1:]:
        keyword, _, parameters = line.strip().partition(" ")
        keyword = keyword.lower()
        if keyword.startswith("auth="):  # old-style AUTH=LOGIN PLAIN
            keyword, parameters = "auth", keyword[5:] + " " + parameters
        if keyword == "auth" and "auth" in extensions:
            parameters = extensions["auth"] + " " + parameters
        extensions[keyword] = parameters.strip()
    return extensions


def _failure_reply(error: BaseException, stage: str) -> Reply:
    """The Exchange-style reply for a socket that failed: timed out, refused, or closed."""
    causes = [error, getattr(error, "__cause__", None), getattr(error, "__context__", None)]
    if any(isinstance(cause, TimeoutError) for cause in causes):
        return connection_timed_out(stage)
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return connection_refused(stage)
    if stage == CONNECT:
        return cannot_connect(str(error), stage)
    return connection_closed_abruptly(stage)


@functools.lru_cache(maxsize=8)
def _tls_context(verify: bool, ca_file: str) -> ssl.SSLContext:
    """Client contexts, built once per process. Names are never checked by OpenSSL here: CertificateValidation
    checks only the chain (as Exchange does) and DomainValidation matches names itself, against the domain."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    if verify:
        context.verify_mode = ssl.CERT_REQUIRED
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        else:
            context.load_default_certs()
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


def _tls_info(sock: ssl.SSLSocket, verified: bool) -> TlsInfo:
    cipher, _, bits = sock.cipher() or ("", "", 0)  # None only before the handshake
    protocol = sock.version() or ""
    der = sock.getpeercert(binary_form=True)
    if not der:
        return TlsInfo(protocol, cipher, bits or 0, "", "", None, "", "", (), verified)
    certificate = x509.load_der_x509_certificate(der)
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    if not names:  # no DNS names in the SAN: fall back to the subject CN
        common_names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        names = tuple(name.value for name in common_names if isinstance(name.value, str))
    return TlsInfo(
        protocol=protocol,
        cipher=cipher,
        bits=bits or 0,
        peer_subject=certificate.subject.rfc4514_string(),
        peer_issuer=certificate.issuer.rfc4514_string(),
        peer_not_after=certificate.not_valid_after_utc,
        peer_serial=format(certificate.serial_number, "X"),
        peer_thumbprint=hashlib.sha1(der).hexdigest().upper(),
        peer_names=tuple(n.lower() for n in names),
        verified=verified,
    )


def _certificate_covers(name: str, pattern: str) -> bool:
    """Does one certificate name cover ``pattern``: a domain (exactly), or ``*.domain`` (any subdomain)?

    A wildcard in the certificate (``*.contoso.com``) covers exactly one label on top of its parent.
    """
    name, pattern = name.lower().rstrip("."), pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        base = pattern[2:]
        parent = name[2:] if name.startswith("*.") else name.partition(".")[2]
        return parent == base or parent.endswith("." + base)
    if name.startswith("*."):
        parent = name[2:]
        return "." in parent and pattern.partition(".")[2] == parent
    return name == pattern


def _domain_patterns(tls_domain: str, recipient_domain: str) -> list[str]:
    """TlsDomain as given; else the recipient domain and its subdomains (Postfix's "nexthop, dot-nexthop"), since
    an MX host of contoso.com is usually named mail.contoso.com."""
    if tls_domain:
        return [tls_domain]
    return [recipient_domain, f"*.{recipient_domain}"] if recipient_domain else []


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _endpoint(address: tuple[Any, ...]) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
