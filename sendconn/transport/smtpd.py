"""The submission listener: the organisation's receive connector, where clients and applications hand in mail.

Clients in ``SENDCONN_RELAY_NETWORKS``, and users who authenticated with their sendconn (Django) account, may
send anywhere; everyone else may only reach the accepted domains (no open relay). AUTH PLAIN/LOGIN is offered
only inside TLS: with ``SENDCONN_SMTP_TLS_CERT``/``_KEY`` set, STARTTLS is offered; without them, no AUTH.
The size limit is advertised with SIZE and enforced with 552. DATA is answered 250 only once the message and
all its recipients are committed. Messages of concurrent sessions are committed together (group commit) in a
worker thread, so the event loop keeps serving sessions and a busy listener writes many messages per transaction.

Hostile clients get Exchange's refusals: an EHLO/HELO name that isn't a domain or address literal (501 5.5.4), a
sender or recipient delivery couldn't carry (501 5.1.7 / 501 5.1.3), more than MaxRecipientsPerMessage recipients
(452 4.5.3), and connections beyond MaxInboundConnection or MaxInboundConnectionPerSource (421 4.3.2, then closed).
"""

import asyncio
import ctypes
import ipaddress
import logging
import multiprocessing
import os
import signal
import socket
import ssl
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import uvloop
from aiosmtpd.smtp import AuthResult, LoginPassword, syntax
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import authenticate
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connections, transaction

from sendconn.observability import metrics

from . import tracking
from .addresses import is_helo_name, validate_smtp_address
from .models import Message
from .queueing import Submission, queue_messages
from .routing import Router, recipient_domain
from .smtp_server import PlainPathSMTP

log = logging.getLogger(__name__)

SENDER_OK_REPLY = "250 2.1.0 Sender OK"
RECIPIENT_OK_REPLY = "250 2.1.5 Recipient OK"
INVALID_ADDRESS_REPLY = "501 5.1.3 Invalid address"
INVALID_SENDER_REPLY = "501 5.1.7 Invalid address"
INVALID_HELO_REPLY = "501 5.5.4 Invalid domain name"
TOO_MANY_RECIPIENTS_REPLY = "452 4.5.3 Too many recipients"
TOO_MANY_CONNECTIONS_REPLY = (
    "421 4.3.2 The maximum number of concurrent server connections has exceeded a limit, closing transmission channel"
)
TOO_MANY_CONNECTIONS_FROM_SOURCE_REPLY = (
    "421 4.3.2 The maximum number of concurrent connections has exceeded a limit, closing transmission channel"
)
RELAY_DENIED_REPLY = "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain"
SIZE_EXCEEDED_REPLY = "552 5.3.4 Message size exceeds fixed maximum message size"
TEMPORARY_ERROR_REPLY = "451 4.7.0 Temporary server error. Please try again later"
AUTH_FAILED_REPLY = "535 5.7.3 Authentication unsuccessful"
AUTH_UNAVAILABLE_REPLY = "454 4.7.0 Temporary authentication failure"
# The listener keeps its routing table this long: connector changes reach new submissions within it.
ROUTING_TABLE_MAX_AGE = 5.0
MAX_BATCH = 200
# Committed messages' RECEIVE events are recorded together this often (QueueWriter); while the database can't be
# written they are tried again this often, and at most this many wait.
RECEIVE_EVENTS_WITHIN = 0.2
RECEIVE_EVENTS_RETRY_AFTER = 1.0
MAX_UNRECORDED_RECEIVE_EVENTS = 100_000
# Connections the kernel holds for the listener while its processes are busy (asyncio's default, 100, drops a burst's
# SYNs); Linux caps it at net.core.somaxconn.
LISTEN_BACKLOG = 4096


def parse_listen(text):
    """``host:port`` or ``[ipv6]:port`` → (host, port); ValueError with a readable message otherwise."""
    host, sep, port = text.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(
            f"'{text}' isn't a valid listen address. Use host:port, for example 127.0.0.1:2525 or [::1]:2525."
        )
    return host, int(port)


def parse_networks(items):
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"SENDCONN_RELAY_NETWORKS: '{item}' isn't an IP address or network.") from None
    return networks


def tls_context_from_settings():
    """The STARTTLS certificate, or None when ``SENDCONN_SMTP_TLS_CERT`` is not set (then no STARTTLS, no AUTH)."""
    if not settings.SENDCONN_SMTP_TLS_CERT:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.SENDCONN_SMTP_TLS_CERT, settings.SENDCONN_SMTP_TLS_KEY or None)
    except (OSError, ssl.SSLError) as error:
        raise ImproperlyConfigured(f"SENDCONN_SMTP_TLS_CERT / SENDCONN_SMTP_TLS_KEY can't be loaded: {error}") from None
    return context


def client_address(peer):
    """The client's IP address from a socket peer name (scope id dropped, IPv4-mapped IPv6 as IPv4)."""
    return _ip_address(peer[0])


@lru_cache(maxsize=4096)  # asked at every RCPT and DATA; clients come back
def _ip_address(host):
    ip = ipaddress.ip_address(host.split("%")[0])
    return getattr(ip, "ipv4_mapped", None) or ip


class InboundConnections:
    """The connections the listener serves, in all and per client address, within Exchange's MaxInboundConnection
    and MaxInboundConnectionPerSource (None: unlimited).

    The counts are in shared memory made before the listener forks, so all its processes count together. Sources
    are counted in SOURCE_SLOTS slots by a hash of their address: two sources sharing a slot (rare) share a limit.
    """

    SOURCE_SLOTS = 65536

    def __init__(self, max_connections=None, max_per_source=None):
        self.max_connections = max_connections
        self.max_per_source = max_per_source
        self._lock = multiprocessing.Lock()
        self._count = multiprocessing.RawValue(ctypes.c_int, 0)
        self._per_source = multiprocessing.RawArray(ctypes.c_int, self.SOURCE_SLOTS)

    @classmethod
    def from_settings(cls):
        return cls(
            settings.SENDCONN_SMTP_MAX_INBOUND_CONNECTIONS, settings.SENDCONN_SMTP_MAX_INBOUND_CONNECTIONS_PER_SOURCE
        )

    def _slot(self, source):
        return zlib.crc32(source.packed) % self.SOURCE_SLOTS

    def open(self, source):
        """Count a new connection from ``source`` (an IP address); or, beyond a limit, return the refusal (and count
        nothing)."""
        slot = self._slot(source)
        with self._lock:  # held for a few reads and writes: never long enough to stall an event loop
            if self.max_connections is not None and self._count.value >= self.max_connections:
                return TOO_MANY_CONNECTIONS_REPLY
            if self.max_per_source is not None and self._per_source[slot] >= self.max_per_source:
                return TOO_MANY_CONNECTIONS_FROM_SOURCE_REPLY
            self._count.value += 1
            self._per_source[slot] += 1
        return None

    def close(self, source):
        slot = self._slot(source)
        with self._lock:
            self._count.value -= 1
            self._per_source[slot] -= 1


def _hand_over_credentials(server, session, envelope, mechanism, auth_data):
    """aiosmtpd's PLAIN/LOGIN parsers call this synchronously, on the event loop: only pass the credentials on.

    ``SubmissionSMTP`` checks them afterwards in a worker thread (a password hash takes a while).
    """
    return AuthResult(success=False, handled=False, auth_data=auth_data)


def authenticated_username(credentials):
    """The user name if the credentials are an active sendconn user's, else None (runs in a pool thread)."""
    try:
        user = authenticate(
            username=credentials.login.decode("utf-8", "replace"),
            password=credentials.password.decode("utf-8", "replace"),
        )
        return user.get_username() if user is not None else None
    finally:
        connections.close_all()  # AUTH is rare: no connection left behind in a pool thread


class SubmissionSMTP(PlainPathSMTP):
    """aiosmtpd's SMTP session with Exchange's reply text where aiosmtpd hard-codes its own, and AUTH checked
    against sendconn's users off the event loop."""

    EXCHANGE_REPLIES = {
        "552 Error: message size exceeds fixed maximum message size": SIZE_EXCEEDED_REPLY,  # MAIL ... SIZE=
        "552 Error: Too much mail data": SIZE_EXCEEDED_REPLY,  # DATA beyond the limit
    }

    async def push(self, status):
        status = self.EXCHANGE_REPLIES.get(status, status) if isinstance(status, str) else status
        metrics.smtpd_reply(status)
        await super().push(status)

    async def _handle_client(self):
        """Serve the session within the connection limits; beyond them, answer 421 and close."""
        assert self.session is not None and self.transport is not None  # connection_made set them
        source = client_address(self.session.peer)
        refusal = self.event_handler.connections.open(source)
        if refusal:
            log.warning("Refused a connection from %s: %s", source, refusal)
            try:
                await self.push(refusal)
            except OSError:
                pass  # the client has gone already
            self.transport.close()
            return
        try:
            await super()._handle_client()
        finally:
            self.event_handler.connections.close(source)

    # aiosmtpd takes any text after EHLO/HELO, and it ends up in our Received header: only a domain or an address
    # literal passes (a CR or a NUL in it would forge header lines at the next hop).
    @syntax("HELO hostname")
    async def smtp_HELO(self, hostname):
        if hostname and not is_helo_name(hostname):
            await self.push(INVALID_HELO_REPLY)
            return
        await super().smtp_HELO(hostname)

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname):
        if hostname and not is_helo_name(hostname):
            await self.push(INVALID_HELO_REPLY)
            return
        await super().smtp_EHLO(hostname)

    async def auth_PLAIN(self, _, args):
        return await self._check_credentials(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _, args):
        return await self._check_credentials(await super().auth_LOGIN(_, args))

    async def _check_credentials(self, parsed):
        if not isinstance(parsed.auth_data, LoginPassword):
            return parsed  # aborted or malformed: aiosmtpd has answered
        try:
            username = await sync_to_async(authenticated_username, thread_sensitive=False)(parsed.auth_data)
        except DatabaseError as error:
            assert self.session is not None  # set by connection_made
            log.warning("Couldn't check the credentials of %s: %s", client_address(self.session.peer), error)
            return AuthResult(success=False, handled=False, message=AUTH_UNAVAILABLE_REPLY)
        if username is None:
            return AuthResult(success=False, handled=False, message=AUTH_FAILED_REPLY)
        return AuthResult(success=True, auth_data=username)


class QueueWriter:
    """Group commit: the messages of concurrent sessions are queued in one transaction per batch.

    One batch is written at a time, in the writer's own thread (which keeps its database connection); what
    arrives meanwhile forms the next batch. A lone client waits for exactly its own commit; a busy listener
    commits up to MAX_BATCH messages at once.

    The RECEIVE tracking events are not in those commits: they go in later, RECEIVE_EVENTS_WITHIN at the latest,
    many batches' in one transaction, then into the tracking log file (Exchange writes that log behind the
    mail too). A listener that is killed loses that much of the log, never a message.
    """

    def __init__(self, server):
        self.server = server
        self.router = Router(server, max_age=ROUTING_TABLE_MAX_AGE)
        self._pending = []  # (Submission, Future) not yet being written
        self._writer = None  # the task writing batches, while there are any
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtpd-queue")
        self._receive_events = []  # committed messages' RECEIVE events not recorded yet (the writer thread's)
        self._receive_events_since = 0.0  # when the oldest of them was committed (monotonic)
        self._record_timer = None  # the event loop's call to record them, while one is due
        self._loop = None  # the event loop the sessions run on

    def close(self):
        """Record what is left, close the writer thread's database connection and end the thread."""
        if self._record_timer is not None:
            self._record_timer.cancel()
        self._thread.submit(self._record_receive_events).result()
        self._thread.submit(connections.close_all).result()
        self._thread.shutdown()

    async def queue(self, submission):
        """The committed Message; raises what queuing raised."""
        self._loop = asyncio.get_running_loop()
        future = self._loop.create_future()
        self._pending.append((submission, future))
        if self._writer is None:
            self._writer = self._loop.create_task(self._write_pending())
        return await future

    async def _write_pending(self):
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    await loop.run_in_executor(self._thread, self._write_batch, loop, batch)
                except Exception as error:  # the writer thread itself failed
                    _resolve(batch, [error] * len(batch))
            self._record_in(RECEIVE_EVENTS_WITHIN)  # the mail stopped: what it left is recorded meanwhile
        finally:
            self._writer = None

    def _record_in(self, seconds):
        """(Event loop) Record the RECEIVE events that wait in ``seconds``, unless that is planned already."""
        if self._record_timer is None:
            self._record_timer = asyncio.get_running_loop().call_later(seconds, self._record_later)

    def _record_later(self):
        self._record_timer = None
        self._thread.submit(self._record_receive_events)

    def _write_batch(self, loop, batch):
        """In the writer thread: queue the batch, hand the outcomes to the event loop (the 250s go out), then run
        what follows the commits (the tracking log, the wake-ups): one trip to the thread per batch."""
        follow_ups: list[Callable[[], None]] = []
        outcomes = self._write([submission for submission, _ in batch], follow_ups)
        loop.call_soon_threadsafe(_resolve, batch, outcomes)
        _run_follow_ups(follow_ups)
        if self._receive_events and time.monotonic() - self._receive_events_since >= RECEIVE_EVENTS_WITHIN:
            self._record_receive_events()

    def _record_receive_events(self):
        """Record the RECEIVE events of committed messages in one transaction, then log them. While the database
        can't be written they wait for the next try (up to MAX_UNRECORDED_RECEIVE_EVENTS)."""
        events, self._receive_events = self._receive_events, []
        if not events:
            return
        close_old_connections()
        try:
            with transaction.atomic():
                tracking.record(events)
        except (OperationalError, InterfaceError) as error:  # the database is away: try again with the next
            kept = events[-MAX_UNRECORDED_RECEIVE_EVENTS:]
            log.warning("Can't record %d RECEIVE event(s) now, will retry: %s", len(events), error)
            if len(kept) < len(events):
                log.error("Dropped %d RECEIVE event(s): too many waiting", len(events) - len(kept))
            self._receive_events = kept + self._receive_events
            try:  # no new mail may come to retry them
                if self._loop is not None:
                    self._loop.call_soon_threadsafe(self._record_in, RECEIVE_EVENTS_RETRY_AFTER)
            except RuntimeError:
                pass  # the loop has closed: close() records what is left
            return
        except Exception:
            log.exception("Dropped %d RECEIVE event(s) that can't be recorded", len(events))
            return
        finally:
            close_old_connections()
        tracking.write_log(events)

    def _write(self, submissions, follow_ups):
        """A Message or an exception per submission; a failed batch is retried message by message (a lone message
        too: the first write after a database restart fails on the connection the restart broke). What follows the
        commits is appended to ``follow_ups``."""
        close_old_connections()  # the connection may be past its age, or broken
        try:
            try:
                return self._queue(submissions, follow_ups)
            except Exception:
                self.router.forget()  # a connector may have changed under the routing table
                close_old_connections()  # and a broken connection is replaced
            outcomes: list[Message | Exception] = []
            for submission in submissions:
                try:
                    queued = self._queue([submission], follow_ups)
                    outcomes.append(queued[0])
                except Exception as error:
                    outcomes.append(error)
            return outcomes
        finally:
            close_old_connections()

    def _queue(self, submissions, follow_ups):
        if not self._receive_events:
            self._receive_events_since = time.monotonic()
        return queue_messages(
            submissions,
            self.server,
            router=self.router,
            after_commit=follow_ups,
            receive_events=self._receive_events,
        )


def _resolve(batch, outcomes):
    """Settle each session's future with its Message or exception (in the event loop)."""
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        if future.done():
            continue  # the session went away while its message was written
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _run_follow_ups(follow_ups):
    """Run each, whatever the others do: the messages are committed already (as Django's robust on_commit)."""
    for follow_up in follow_ups:
        try:
            follow_up()
        except Exception:
            log.exception("After queuing: %r failed", follow_up)


class SubmissionHandler:
    """aiosmtpd hooks: relay control on RCPT, queuing on DATA."""

    def __init__(self, server, relay_networks, accepted_domains, connections=None):
        self.server = server  # the TransportServer this listener queues for
        self.relay_networks = parse_networks(relay_networks)
        networks = self.relay_networks
        # Asked at every RCPT: the answer per client address is kept.
        self._in_relay_networks = lru_cache(maxsize=4096)(lambda ip: any(ip in network for network in networks))
        self.accepted_domains = [domain.strip().lower() for domain in accepted_domains]
        self.connections = connections or InboundConnections.from_settings()
        self.writer = QueueWriter(server)

    def close(self):
        self.writer.close()

    @classmethod
    def from_settings(cls, server):
        return cls(server, settings.SENDCONN_RELAY_NETWORKS, settings.SENDCONN_ACCEPTED_DOMAINS)

    def may_relay(self, session):
        if session.authenticated:
            return True
        return self._in_relay_networks(client_address(session.peer))

    def is_accepted_domain(self, domain):
        for accepted in self.accepted_domains:
            if accepted.startswith("*."):
                if domain == accepted[2:] or domain.endswith(accepted[1:]):
                    return True
            elif domain == accepted:
                return True
        return False

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        try:
            validate_smtp_address("" if address == "<>" else address, null_allowed=True)
        except ValueError:
            return INVALID_SENDER_REPLY
        envelope.mail_from = address  # the null sender stays "<>" here: aiosmtpd takes "" for "no MAIL yet"
        envelope.mail_options.extend(mail_options)
        return SENDER_OK_REPLY

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if len(envelope.rcpt_tos) >= settings.SENDCONN_SMTP_MAX_RECIPIENTS_PER_MESSAGE:
            return TOO_MANY_RECIPIENTS_REPLY
        try:
            domain = recipient_domain(validate_smtp_address(address))
        except ValueError:
            return INVALID_ADDRESS_REPLY
        if not (self.may_relay(session) or self.is_accepted_domain(domain)):
            return RELAY_DENIED_REPLY
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return RECIPIENT_OK_REPLY

    async def handle_exception(self, error):
        """A command failed in a way no reply foresaw: say 451 (the client retries) rather than aiosmtpd's 500 with
        the exception's text."""
        log.error("An SMTP command failed", exc_info=error)
        return TEMPORARY_ERROR_REPLY

    async def handle_DATA(self, server, session, envelope):
        submission = Submission(
            sender="" if envelope.mail_from == "<>" else envelope.mail_from,
            recipients=list(envelope.rcpt_tos),
            content=envelope.content,
            client_ip=str(client_address(session.peer)),
            client_hostname=session.host_name or "",
        )
        try:
            message = await self.writer.queue(submission)
        except DatabaseError as error:  # unreachable or restarting: the client retries, no traceback per message
            log.warning("Couldn't queue the message from %s: %s", submission.client_ip, error)
            return TEMPORARY_ERROR_REPLY
        except Exception:
            log.exception("Couldn't queue the message from %s", submission.client_ip)
            return TEMPORARY_ERROR_REPLY
        metrics.smtpd_message_accepted()
        return (
            f"250 2.6.0 {message.message_id} [InternalId={message.pk}, Hostname={self.server.fqdn}] "
            f"Queued mail for delivery"
        )


def listening_socket(host, port):
    """A bound, listening socket for host:port, made before the listener forks so that its processes share it."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    except socket.gaierror as error:
        raise OSError(error.errno, error.strerror) from None
    sock = socket.create_server((host, port), family=family, backlog=LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


async def start_server(handler, host=None, port=None, tls_context=None, *, sock=None):
    """Listen on host:port (port 0 picks a free one; read it from the returned server's sockets), or on ``sock``."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SubmissionSMTP(
            handler,
            hostname=handler.server.fqdn,
            ident="sendconn ESMTP MAIL Service ready",
            data_size_limit=settings.SENDCONN_SMTP_MAX_MESSAGE_SIZE,
            tls_context=tls_context,
            auth_require_tls=True,
            authenticator=_hand_over_credentials,
            loop=loop,
        ),
        host=None if sock else host,
        port=None if sock else port,
        sock=sock,
        backlog=LISTEN_BACKLOG,  # create_server listens again, by default with 100
    )


def run(main):
    """Run the listener's coroutine on uvloop: libuv's event loop and transports take a quarter off smtpd's CPU per
    message (most of it the socket work of four replies a message), which on loopback sets its pace."""
    return uvloop.run(main)


def new_event_loop():
    """A loop like the one ``run`` uses (the tests' listeners)."""
    return uvloop.new_event_loop()


async def serve_until_stopped(handler, sock, tls_context=None, on_ready=None, parent_pid=None):
    """Serve on the listening ``sock`` until SIGTERM or SIGINT (or, with ``parent_pid``, until that process is
    gone: a forked listener process must not outlive the one that started it), then stop accepting and return."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = await start_server(handler, tls_context=tls_context, sock=sock)
    if on_ready:
        on_ready(server)
    async with server:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            except TimeoutError:
                if parent_pid is not None and os.getppid() != parent_pid:
                    break
    handler.close()
