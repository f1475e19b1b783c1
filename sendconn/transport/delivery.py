"""Delivery: turning the due recipient rows of one next hop into mail handed to the remote server.

``deliver_next_hop(connector_id, next_hop_domain)`` is what a woken worker runs. It works in rounds:

1. claim up to SENDCONN_DELIVERY_BATCH_SIZE due rows of the next hop (``claim``: a conditional UPDATE, with
   SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL), so two workers never send the same recipient;
2. resolve the next hop when a connection is needed (MX records, or the connector's smart hosts), at most once
   per round, through the process's TTL cache;
3. send each message once, with all its claimed recipients, over a session reused for up to the connector's
   SmtpMaxMessagesPerConnection messages, across rounds, and kept open a moment for the next task of the same
   next hop in this process (``SessionCache``);
4. record the recipients' outcomes — Delivered, Retry with Exchange's timers, Failed with an NDR — with their
   tracking events and the release of their claims, one transaction (``Ledger``) per RECORD_EVERY recipients
   sent and one at the end of the round.

Rounds go on until nothing due is left to claim, so a wake-up that raced with the last round is never needed,
or until the task's time budget is spent; the task then wakes its next hop again and returns, so one busy next
hop doesn't hold a worker for ever. A worker that dies mid-round leaves its rows claimed: the sweeper releases
claims older than SENDCONN_CLAIM_TIMEOUT and the rows are sent again. Those it had sent but not recorded yet —
fewer than RECORD_EVERY per task — are the only recipients that ever get a message twice: RFC 5321 §6.1 prefers a
duplicate to a loss.
"""
import atexit
import logging
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from sendconn.connectors.crypto import CredentialKeyError
from sendconn.connectors.models import ProtocolLoggingLevel, SendConnector
from sendconn.connectors.servers import local_server

from . import dsn, statements, tracking, wakeups
from .dns import DnsError, get_resolver
from .models import Message, Recipient, RecipientStatus, SuspendedQueue, TrackingEventId, TrackingSource
from .protocol_log import ProtocolLog
from .queueing import SIZE_EXCEEDED_RESPONSE, UNREACHABLE_RESPONSE, queue_message
from .routing import Router
from .smtp_client import SessionOptions, SmtpSession, SmtpSessionError

log = logging.getLogger(__name__)

DUE_STATUSES = (RecipientStatus.READY, RecipientStatus.RETRY)
TASK_BUDGET_SECONDS = 60.0  # well below the soft time limit: then the next hop is handed on to a new task
MAX_SESSIONS_PER_NEXT_HOP = 20  # parallel claimers of one next hop (Postfix's destination concurrency limit)
# Outcomes are written at least this often (recipients) within a round: what a killed worker sent and had not
# recorded is sent again, so this bounds the duplicates; each write is a transaction, so it isn't 1.
RECORD_EVERY = 10
EXPIRED_RESPONSE = "550 4.4.7 QUEUE.Expired; message expired"

RECORDED_FIELDS = [
    "status", "connector", "next_hop_domain", "attempt_count", "first_attempt_at", "last_attempt_at",
    "next_attempt_at", "last_response", "delivered_at", "delay_notified", "claimed_by", "claimed_at",
]


@dataclass(frozen=True)
class Result:
    """What one attempt did for a recipient: an SMTP reply, or our own reply in the same shape."""

    code: int
    enhanced_status: str
    response: str  # the whole reply, stored as last_response: "451 4.4.0 DNS query failed. ..."
    source: str = TrackingSource.SMTP
    remote_host: str = ""  # the server that answered; "" when the failure was ours (DNS, expiry, size)
    remote_ip: str | None = None

    @classmethod
    def from_reply(cls, reply, remote_host="", remote_ip=None):
        return cls(reply.code, reply.enhanced_status, str(reply), TrackingSource.SMTP, remote_host, remote_ip or None)

    @classmethod
    def from_dns_error(cls, error):
        return cls(error.smtp_code, error.enhanced_status, error.response, TrackingSource.DNS)

    @classmethod
    def from_session_error(cls, error):
        return cls.from_reply(error.reply, error.remote_host, error.remote_ip)

    @classmethod
    def ours(cls, code, enhanced_status, text, source=TrackingSource.SMTP):
        return cls(code, enhanced_status, f"{code} {enhanced_status} {text}", source)

    @property
    def delivered(self):
        return 200 <= self.code < 300

    @property
    def permanent(self):
        return 500 <= self.code < 600


def retry_interval(attempt_count):
    """Exchange's timers: TransientFailureRetryCount attempts TransientFailureRetryInterval apart, then
    OutboundConnectionFailureRetryInterval."""
    if attempt_count <= settings.SENDCONN_TRANSIENT_FAILURE_RETRY_COUNT:
        return settings.SENDCONN_TRANSIENT_FAILURE_RETRY_INTERVAL
    return settings.SENDCONN_OUTBOUND_CONNECTION_FAILURE_RETRY_INTERVAL


def expires_at(message):
    return message.submitted_at + settings.SENDCONN_MESSAGE_EXPIRATION_TIMEOUT


def expired(last_response=""):
    """Exchange's expiry NDR reply, carrying the last error when there was one."""
    text = f"{EXPIRED_RESPONSE} [LastError: {last_response}]" if last_response else EXPIRED_RESPONSE
    return Result(550, "4.4.7", text, TrackingSource.QUEUE)


def size_exceeded():
    return Result(550, "5.3.4", SIZE_EXCEEDED_RESPONSE, TrackingSource.ROUTING)


# --- claiming -------------------------------------------------------------------------------------------------


def claim_token():
    """Who holds a claim: server, host and process (for people reading the queue), and a unique part."""
    return f"{settings.SENDCONN_SERVER_NAME}/{socket.gethostname()}:{os.getpid()}/{uuid.uuid4().hex[:12]}"


def claim(rows, token, limit):
    """Claim up to ``limit`` unclaimed rows of ``rows`` (a Recipient queryset saying which rows may be taken)
    for ``token``, and return them.

    The UPDATE repeats every condition and ``claimed_by = ''``, so a row another claimer took (or finished) since
    the SELECT is not taken again. On PostgreSQL the SELECT locks its rows and skips locked ones, so concurrent
    claimers take different rows instead of queueing on the same ones. SQLite has one writer at a time: the
    SELECT reads without taking the write lock (WAL) and only the UPDATE, one statement, holds it — a worker that
    finds nothing due never blocks smtpd's commits.
    """
    unclaimed = rows.filter(claimed_by="")
    now = timezone.now()
    skip_locked = connection.features.has_select_for_update_skip_locked
    with transaction.atomic() if skip_locked else nullcontext():
        candidates = unclaimed.select_for_update(skip_locked=True, of=("self",)) if skip_locked else unclaimed
        claimed = list(candidates[:limit])
        if not claimed:
            return []
        ids = [row.pk for row in claimed]
        taken = unclaimed.filter(id__in=ids).update(claimed_by=token, claimed_at=now)
    if taken != len(claimed):  # another claimer was quicker for some
        return list(Recipient.objects.filter(id__in=ids, claimed_by=token).select_related("message"))
    for row in claimed:
        row.claimed_by, row.claimed_at = token, now
    return claimed


def claim_due(connector_id, next_hop_domain, token, limit):
    """``claim(due_rows(connector_id, next_hop_domain).select_related("message"), token, limit)`` as three
    hand-written statements: the delivery hot path (every task runs it at least twice, once to find nothing),
    where compiling the ORM's queries cost more than running them. Same conditions, same guarantees.
    """
    now = timezone.now()
    q = connection.ops.quote_name
    due = (f"{q('connector_id')} = %s AND {q('next_hop_domain')} = %s AND {q('status')} IN (%s, %s) "
           f"AND {q('next_attempt_at')} <= %s AND {q('claimed_by')} = %s")
    due_params = [connector_id, next_hop_domain, *DUE_STATUSES, _db_datetime(now), ""]
    not_suspended = (f"NOT EXISTS (SELECT 1 FROM {q(SuspendedQueue._meta.db_table)} "
                     f"WHERE {q('connector_id')} = %s AND {q('next_hop_domain')} = %s)")
    table = q(Recipient._meta.db_table)
    skip_locked = connection.features.has_select_for_update_skip_locked
    with transaction.atomic() if skip_locked else nullcontext(), connection.cursor() as cursor:
        lock = " FOR UPDATE SKIP LOCKED" if skip_locked else ""
        cursor.execute(f"SELECT {q('id')} FROM {table} WHERE {due} AND {not_suspended} ORDER BY {q('id')} "
                       f"LIMIT %s{lock}", [*due_params, connector_id, next_hop_domain, limit])
        ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return []
        cursor.execute(
            f"UPDATE {table} SET {q('claimed_by')} = %s, {q('claimed_at')} = %s "
            f"WHERE {q('id')} IN ({', '.join(['%s'] * len(ids))}) AND {due}",
            [token, _db_datetime(now), *ids, *due_params],
        )
    message_table = q(Message._meta.db_table)
    claimed = statements.load(
        [Recipient, Message],
        f"SELECT {statements.columns(Recipient, 'r')}, {statements.columns(Message, 'm')} FROM {table} r "
        f"JOIN {message_table} m ON m.{q('id')} = r.{q('message_id')} "
        f"WHERE r.{q('id')} IN ({', '.join(['%s'] * len(ids))}) AND r.{q('claimed_by')} = %s ORDER BY r.{q('id')}",
        [*ids, token],
    )
    for row, message in claimed:
        row.message = message
    return [row for row, _ in claimed]


def _db_datetime(moment):
    return Recipient._meta.get_field("claimed_at").get_db_prep_value(moment, connection)


def in_suspended_queue():
    """True for a Recipient row whose delivery queue Suspend-Queue stopped."""
    return Exists(SuspendedQueue.objects.filter(connector_id=OuterRef("connector_id"),
                                                next_hop_domain=OuterRef("next_hop_domain")))


def due_rows(connector_id, next_hop_domain, now=None):
    """The rows of the next hop that may be sent now (none while its queue is suspended)."""
    return Recipient.objects.filter(
        connector_id=connector_id, next_hop_domain=next_hop_domain, status__in=DUE_STATUSES,
        next_attempt_at__lte=now or timezone.now(),
    ).exclude(in_suspended_queue())


# --- recording outcomes ---------------------------------------------------------------------------------------


class Ledger:
    """The outcomes of claimed rows, written together by ``commit()``: the rows (claims released), their
    tracking events, the NDRs and delay notifications they call for, all in one transaction; then the tracking
    log file and the wake-ups of re-routed rows.

    Rows written are only those still claimed with ``token``: if a claim was released under us (the worker was
    presumed dead), the new claimer's outcome stands.
    """

    def __init__(self, token, server=None):
        self.token = token
        self._server = server
        self.now = timezone.now()
        self.rows = []
        self.released = []
        self.events = []
        self.next_hops = set()
        self._failures = defaultdict(list)  # message → [(row, result, connector name)]
        self._delays = defaultdict(list)  # message → [(row, connector name)]

    def __len__(self):
        return len(self.rows) + len(self.released)

    @property
    def server(self):
        """This transport server (the NDR's reporting MTA and receiving server), read only when needed."""
        if self._server is None:
            self._server = local_server()
        return self._server

    def attempted(self, row, message, result, connector_name):
        """One delivery attempt's result: Delivered, Retry (Failed 4.4.7 once expired) or Failed."""
        row.attempt_count += 1
        row.first_attempt_at = row.first_attempt_at or self.now
        row.last_attempt_at = self.now
        if result.delivered:
            self._finish(row, RecipientStatus.DELIVERED, result)
            row.delivered_at = self.now
            self._event(TrackingEventId.SEND, row, message, result, connector_name)
        elif not result.permanent and self.now < expires_at(message):
            self._finish(row, RecipientStatus.RETRY, result)
            row.next_attempt_at = self.now + retry_interval(row.attempt_count)
            self._event(TrackingEventId.DEFER, row, message, result, connector_name)
        else:
            self.failed(row, message, result if result.permanent else expired(result.response), connector_name)

    def failed(self, row, message, result, connector_name):
        """Failed for good (no attempt counted here): FAIL event, and an NDR unless the sender is null."""
        self._finish(row, RecipientStatus.FAILED, result)
        self._event(TrackingEventId.FAIL, row, message, result, connector_name)
        self._failures[message].append((row, result, connector_name))

    def routed(self, row, route, message):
        """A new routing decision (the sweeper's re-route of Unreachable rows, a disabled connector's rows)."""
        if route.connector is not None:
            row.status, row.connector, row.next_hop_domain = RecipientStatus.READY, route.connector, route.next_hop_domain
            row.next_attempt_at = self.now
            row.claimed_by, row.claimed_at = "", None
            self.rows.append(row)
            self.next_hops.add((route.connector.pk, route.next_hop_domain))
        elif route.too_big:
            row.connector, row.next_hop_domain = None, ""
            self.failed(row, message, size_exceeded(), "")
        else:
            row.status, row.connector, row.next_hop_domain = RecipientStatus.UNREACHABLE, None, ""
            row.next_attempt_at, row.last_response = None, UNREACHABLE_RESPONSE
            row.claimed_by, row.claimed_at = "", None
            self.rows.append(row)

    def delay_notified(self, row, message, connector_name):
        """Still not delivered after DelayNotificationTimeout: one delay DSN per message, once per recipient."""
        row.delay_notified = True
        row.claimed_by, row.claimed_at = "", None
        self.rows.append(row)
        self._delays[message].append((row, connector_name))

    def release(self, row):
        """Give a claimed row back untouched (its attempt never happened)."""
        self.released.append(row.pk)

    def commit(self):
        with transaction.atomic():
            if self.rows:
                written = _write_claimed(self.rows, self.token)
                if written != len(self.rows):
                    log.warning("%d recipient(s) were claimed by another worker meanwhile; their outcome stands",
                                len(self.rows) - written)
            if self.released:
                Recipient.objects.filter(id__in=self.released, claimed_by=self.token).update(
                    claimed_by="", claimed_at=None)
            self._queue_notifications()
            tracking.record(self.events)
        tracking.write_log(self.events)
        if self.next_hops:
            wakeups.wake_next_hops(sorted(self.next_hops))

    def _finish(self, row, status, result):
        row.status = status
        row.last_response = result.response
        row.next_attempt_at = None
        row.claimed_by, row.claimed_at = "", None
        self.rows.append(row)

    def _event(self, event_id, row, message, result, connector_name):
        self.events.append(tracking.event(
            event_id, result.source, message, row.address, recipient_status=result.response,
            connector_name=connector_name, remote_host=result.remote_host, remote_ip=result.remote_ip,
            timestamp=self.now,
        ))

    def _queue_notifications(self):
        for message, failures in self._failures.items():
            self.events += queue_ndr(message, failures, self.server, self.now)
        for message, delays in self._delays.items():
            statuses = [
                dsn.RecipientStatus(
                    address=row.address, status=_enhanced_status(row.last_response, "4.4.7"), action="delayed",
                    diagnostic=row.last_response or "400 4.4.7 Delivery delayed", remote_mta=None,
                    connector_name=connector_name, last_attempt_at=row.last_attempt_at,
                    will_retry_until=expires_at(message),
                )
                for row, connector_name in delays
            ]
            self.events += _queue_notification(message, statuses, dsn.build_delay_notification, self.server,
                                               self.now)


def queue_ndr(message, failures, server, timestamp=None):
    """Queue the NDR for ``failures`` — [(recipient row, Result, connector name)] — of ``message`` from the null
    sender to its envelope sender, in the caller's transaction; return the DSN tracking events to record.
    Nothing for a message from the null sender or one of our own notifications (no bounce loops)."""
    statuses = [
        dsn.RecipientStatus(
            address=row.address, status=result.enhanced_status, action="failed", diagnostic=result.response,
            remote_mta=result.remote_host or None, connector_name=connector_name, last_attempt_at=row.last_attempt_at,
        )
        for row, result, connector_name in failures
    ]
    return _queue_notification(message, statuses, dsn.build_ndr, server, timestamp)


def _queue_notification(message, statuses, build, server, timestamp):
    if message.is_dsn or not dsn.should_send_ndr(message.sender):
        return []
    content = build(
        bytes(message.content), envelope_sender=message.sender, reporting_mta=server.fqdn, recipients=statuses,
        arrival_date=message.submitted_at,
    )
    try:
        queue_message("", [message.sender], content, server, is_dsn=True, original_message=message)
    except ValueError:  # a sender address nothing can be sent to
        log.warning("No delivery status notification for message %s: bad sender <%s>", message.pk, message.sender)
        return []
    return [
        tracking.event(
            TrackingEventId.DSN, TrackingSource.DSN, message, status.address, recipient_status=status.diagnostic,
            connector_name=status.connector_name, server_name=server.name, timestamp=timestamp,
        )
        for status in statuses
    ]


def _write_claimed(rows, token):
    """Write RECORDED_FIELDS of ``rows`` that are still claimed by ``token``: one prepared UPDATE run for every row
    (executemany), where Django's bulk_update would build a CASE per field and row at several times the cost."""
    fields = [Recipient._meta.get_field(name) for name in RECORDED_FIELDS]
    table, quote = Recipient._meta.db_table, connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    sql = f"UPDATE {quote(table)} SET {assignments} WHERE {quote('id')} = %s AND {quote('claimed_by')} = %s"
    params = [
        [field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields] + [row.pk, token]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
        return cursor.rowcount


def _enhanced_status(response, default):
    """The enhanced status code in a stored reply ("451 4.4.0 ..." → "4.4.0"), else ``default``."""
    parts = (response or "").split()
    if len(parts) > 1 and parts[1][:2] == "4." and parts[1].count(".") == 2:
        return parts[1]
    return default


# --- one next hop -------------------------------------------------------------------------------------------


_connectors = {}  # connector id → (its changed_at as stored, the SendConnector): this process's copies


def current_connector(connector_id):
    """The connector as stored now, None once removed. Every change to a connector (its address spaces, smart
    hosts and source servers included) saves it, so a copy is current while its ``changed_at`` is: one indexed
    read per task instead of the whole row through the ORM."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quote('changed_at')} FROM {quote(SendConnector._meta.db_table)} "
                       f"WHERE {quote('id')} = %s", [connector_id])
        stored = cursor.fetchone()
    if stored is None:
        _connectors.pop(connector_id, None)
        return None
    version, connector = _connectors.get(connector_id, (None, None))
    if version != stored[0]:
        connector = SendConnector.objects.filter(pk=connector_id).first()
        _connectors[connector_id] = (stored[0], connector)
    return connector


def deliver_next_hop(connector_id, next_hop_domain, budget=TASK_BUDGET_SECONDS):
    """Deliver what this worker can claim of the next hop's due rows; return the number of rows it handled."""
    connector = current_connector(connector_id)
    if connector is None:  # removed: its rows lost their connector, and the sweeper routes them again
        return 0
    if not connector.enabled:
        return reroute_claimed(due_rows(connector_id, next_hop_domain), local_server())
    sources = wakeups.source_servers({connector.pk})[connector.pk]  # cached for a few seconds
    if not any(server.name.lower() == settings.SENDCONN_SERVER_NAME.lower() for server in sources):
        # The source servers changed since the wake-up was sent: hand it to one of them.
        wakeups.wake_next_hops([(connector_id, next_hop_domain)], coalesce=False)
        return 0
    return NextHopDelivery(connector, next_hop_domain).run(budget)


def reroute_claimed(rows, server, router=None):
    """Claim ``rows`` and route them again as ``server`` does (Ready on a new next hop, Unreachable, or Failed
    when too big for every matching connector); return how many were routed."""
    token = claim_token()
    router = router or Router(server)
    handled = 0
    while claimed := claim(rows, token, settings.SENDCONN_DELIVERY_BATCH_SIZE):
        messages = Message.objects.in_bulk({row.message_id for row in claimed})
        ledger = Ledger(token, server)
        for row in claimed:
            message = messages[row.message_id]
            ledger.routed(row, router.route(row.domain, message.size), message)
        ledger.commit()
        handled += len(claimed)
    return handled


class SessionCache:
    """Open sessions kept between the tasks of this process, so a next hop woken again soon goes on over the same
    connection: Exchange keeps an idle Send connector connection for its ConnectionInactivityTimeOut (10 minutes
    by default, which ``can_send_more`` applies), Postfix for 2 seconds; here ``keep_for`` at most, and no more
    than ``max_idle`` connections per process, so idle workers don't hold remote servers' slots for long.

    A session is owned either by the cache or by the task that took it. The key holds the connector's change
    time, so a session opened with settings since changed is never reused. A reaper thread closes what waited
    too long (QUIT included) and stops when the cache is empty.
    """

    def __init__(self, keep_for, max_idle):
        self.keep_for = keep_for
        self.max_idle = max_idle
        self._lock = threading.Lock()
        self._idle = {}  # key → (session, transcript, parked at)
        self._reaper = None

    def take(self, key):
        with self._lock:
            session, transcript, _ = self._idle.pop(key, (None, None, None))
        if session is not None and not session.can_send_more():
            _close_session(session, transcript)
            return None, None
        return session, transcript

    def park(self, key, session, transcript):
        if not session.can_send_more():
            _close_session(session, transcript)
            return
        with self._lock:
            evicted = [self._idle.pop(key)] if key in self._idle else []
            while len(self._idle) >= self.max_idle:  # the one parked longest ago makes room
                evicted.append(self._idle.pop(next(iter(self._idle))))
            self._idle[key] = (session, transcript, time.monotonic())
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, name="smtp-session-reaper", daemon=True)
                self._reaper.start()
        for old_session, old_transcript, _ in evicted:
            _close_session(old_session, old_transcript)

    def close_all(self):
        with self._lock:
            entries, self._idle = list(self._idle.values()), {}
        for session, transcript, _ in entries:
            _close_session(session, transcript)

    def _reap(self):
        while True:
            time.sleep(min(self.keep_for, 0.25))
            with self._lock:
                now = time.monotonic()
                expired = [key for key, (_, _, parked) in self._idle.items() if now - parked >= self.keep_for]
                entries = [self._idle.pop(key) for key in expired]
                done = not self._idle
                if done:
                    self._reaper = None  # the next park() starts another
            for session, transcript, _ in entries:
                _close_session(session, transcript)
            if done:
                return


def _close_session(session, transcript):
    session.close()
    if transcript is not None:
        transcript.close()


CONNECTION_CACHE_SECONDS = 30.0
MAX_IDLE_SESSIONS = 100
_sessions = SessionCache(CONNECTION_CACHE_SECONDS, MAX_IDLE_SESSIONS)
atexit.register(_sessions.close_all)


class NextHopDelivery:
    """One task's work on one next hop: rounds of claim → send → record, one session reused throughout (and
    kept open a moment for the next task of the same next hop in this process)."""

    def __init__(self, connector, next_hop_domain):
        self.connector = connector
        self.next_hop_domain = next_hop_domain
        self.token = claim_token()
        self._cache_key = (connector.pk, next_hop_domain, connector.changed_at)
        self.session, self._transcript = _sessions.take(self._cache_key)
        verbose = connector.protocol_logging_level == ProtocolLoggingLevel.VERBOSE
        self.protocol_log = ProtocolLog() if verbose else None
        self._options = None
        self._fanned_out = False

    def run(self, budget):
        started = time.monotonic()
        batch = settings.SENDCONN_DELIVERY_BATCH_SIZE
        handled = 0
        try:
            while rows := claim_due(self.connector.pk, self.next_hop_domain, self.token, batch):
                if len(rows) == batch:
                    self._fan_out()
                self.deliver(rows)
                handled += len(rows)
                if time.monotonic() - started > budget:
                    wakeups.wake_next_hops([(self.connector.pk, self.next_hop_domain)], coalesce=False)
                    break
        finally:
            if self.session is not None:
                _sessions.park(self._cache_key, self.session, self._transcript)
                self.session = self._transcript = None
        return handled

    def deliver(self, rows):
        """One round: send the claimed rows' messages, recording outcomes as they come (every RECORD_EVERY
        recipients) and the rest at the end; rows left without one, when the task is stopped mid-round, are
        released for another attempt."""
        messages = {row.message_id: row.message for row in rows}
        results = {}
        unrecorded = list(rows)

        def record(finished=False):
            nonlocal unrecorded
            ledger, waiting = Ledger(self.token), []
            for row in unrecorded:
                if row.pk in results:
                    ledger.attempted(row, messages[row.message_id], results[row.pk], self.connector.name)
                elif finished:
                    ledger.release(row)
                else:
                    waiting.append(row)
            unrecorded = waiting
            if len(ledger):
                ledger.commit()

        try:
            self._send_all(rows, messages, results, record)
        finally:
            record(finished=True)

    def close(self):
        if self.session is not None:
            _close_session(self.session, self._transcript)
            self.session = self._transcript = None

    def _send_all(self, rows, messages, results, record):
        by_message = defaultdict(list)
        for row in rows:
            by_message[row.message_id].append(row)
        targets, failure = None, None  # failure: why no session can be had this round (applies to the rest)
        record_at = RECORD_EVERY
        for message_id, group in by_message.items():
            if len(results) >= record_at:
                record()
                record_at = len(results) + RECORD_EVERY
            message = messages[message_id]
            limit = self.connector.max_message_size
            if limit is not None and message.size > limit:  # MaxMessageSize lowered since the message was routed
                results.update({row.pk: size_exceeded() for row in group})
                continue
            if failure is None and self.session is None:
                try:
                    targets = targets or self._resolve()
                    self._open_session(targets)
                except DnsError as error:
                    failure = Result.from_dns_error(error)
                except CredentialKeyError as error:
                    failure = Result.ours(451, "4.7.0", f"The smart host credential can't be decrypted [{error}]")
            if failure is not None:
                results.update({row.pk: failure for row in group})
                continue
            try:
                outcome = self.session.send(message.sender, [row.address for row in group], bytes(message.content))
            except SmtpSessionError as error:  # no target would take a connection
                failure = Result.from_session_error(error)
                results.update({row.pk: failure for row in group})
                self.close()
                continue
            except ValueError as error:  # an address SMTP can't carry
                results.update({row.pk: Result.ours(501, "5.1.3", f"Invalid address [{error}]") for row in group})
                continue
            except SoftTimeLimitExceeded:
                raise
            except Exception as error:  # a bug or a surprise: this message waits, the others go on
                log.exception("Delivery of message %s to %s failed unexpectedly", message_id, self.next_hop_domain)
                result = Result.ours(451, "4.3.0", f"Other or undefined mail system status [{type(error).__name__}]")
                results.update({row.pk: result for row in group})
                self.close()
                continue
            for row in group:
                reply = outcome.per_recipient[row.address]
                results[row.pk] = Result.from_reply(reply, *outcome.remote(row.address))
            if outcome.error is not None:
                # The connection died or stalled mid-transaction: the server is in trouble, so the rest of the
                # round waits for the retry timer too (Postfix's dead-destination rule) instead of each message
                # paying a reconnect or a timeout.
                failure = Result.from_session_error(outcome.error)
                self.close()
            elif not self.session.can_send_more():
                self.close()

    def _resolve(self):
        resolver = get_resolver(self.connector.use_external_dns_servers_enabled)
        if self.connector.dns_routing_enabled:
            return resolver.resolve_mx(self.next_hop_domain, port=self.connector.port,
                                       downgrade_dns_failures=self.connector.downgrade_dns_failures)
        hosts = self.connector.smart_hosts.order_by("position").values_list("host", flat=True)
        return resolver.resolve_smart_hosts(list(hosts), port=self.connector.port)

    def _open_session(self, targets):
        if self._options is None:
            self._options = SessionOptions.for_connector(self.connector, settings.SENDCONN_SERVER_FQDN)
        self._transcript = self.protocol_log.session(self.connector.name) if self.protocol_log else None
        domain = self.next_hop_domain if self.connector.dns_routing_enabled else ""
        self.session = SmtpSession(targets, self._options, transcript=self._transcript, recipient_domain=domain)

    def _fan_out(self):
        """A full batch means a backlog: wake one more worker for this next hop, up to the parallel limit."""
        if self._fanned_out:
            return
        self._fanned_out = True
        claimers = (
            Recipient.objects.filter(connector_id=self.connector.pk, next_hop_domain=self.next_hop_domain,
                                     claimed_at__isnull=False)
            .order_by().values("claimed_by").distinct().count()
        )
        if claimers < MAX_SESSIONS_PER_NEXT_HOP:
            wakeups.wake_next_hops([(self.connector.pk, self.next_hop_domain)], coalesce=False)
