"""The delivery engine: one per worker process, driving many SMTP sessions at once.

Celery carries wake-ups ("next hop X has due mail"); the engine does the delivering. It has one *dispatcher*
(the only thread that touches the database: one connection per process, whatever the number of sessions) and a
thread per open SMTP session (network only: DNS, TCP, TLS, SMTP):

- a wake-up makes the dispatcher check the connector and claim due rows of the next hop, a message with its
  claimed recipients being one *job* in the next hop's backlog; each round of claims is one write transaction for
  every next hop that wants more (``claims.claim_due_many``), so SQLite's write lock is taken once per round;
- sessions are started for a next hop while it has jobs nobody waits for and its backlog would take the sessions
  it has longer than DRAIN_WITHIN to send (at the time a message has been taking there), up to its concurrency
  *window*: one message, one session at most; the window starts at 5 and grows by one with each delivery, shrinks
  by one with each connection failure, and the next hop is *dead* once a whole window of connections failed in a
  row (Postfix's
  destination concurrency feedback, mail-delivery.md §4), or at once on a DNS failure: its jobs and new mail
  are then deferred with that reason for TransientFailureRetryInterval, without connecting;
- every session takes jobs of its next hop one after another over one connection (SmtpMaxMessagesPerConnection
  messages, then a new one), and waits a while for more before it says QUIT;
- outcomes go back to the dispatcher, which records them (``ledger.Ledger``) at least every RECORD_EVERY
  recipients; sessions that sent wait while MAX_UNRECORDED are unrecorded, so a worker killed with SIGKILL sends
  again at most that many recipients, plus one message per session that was in the middle of one.
- the server's MaxOutboundConnections and MaxPerDomainOutboundConnections (Set-TransportService) are shared among
  the live engines of the server, which register themselves (``DeliveryEngineRecord``) and heartbeat.

A slow or silent server thus holds only its own sessions (each waits out the connect and reply timeouts and its
mail is retried on the timers), while every other next hop goes on at full speed.

Threads, not asyncio: the SMTP client (STARTTLS, AUTH, pipelining, next MX after a soft error, the transcript)
is blocking code shared with Verify delivery, and a blocked thread costs memory, not CPU: 1,000 idle sessions
measured well under the 512 MiB budget (README, "The delivery engine").
"""

import logging
import math
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from sendconn.connectors.crypto import CredentialKeyError
from sendconn.connectors.models import ProtocolLoggingLevel, SendConnector, TransportServer
from sendconn.connectors.servers import local_server
from sendconn.observability import metrics

from . import wakeups
from .addresses import validate_smtp_address
from .claims import (
    claim_due_many,
    claim_token,
    due_rows,
    next_hops_with_rows_after,
    release_claims_of_dead_processes,
)
from .dns import DnsError, resolve_next_hop
from .ledger import Ledger, reroute_claimed
from .models import DeliveryEngineRecord, Recipient
from .outcomes import Result, size_exceeded
from .protocol_log import ProtocolLog
from .smtp_client import SessionOptions, SmtpSession, SmtpSessionError

log = logging.getLogger(__name__)

INITIAL_CONCURRENCY = 5  # Postfix's initial_destination_concurrency
# A next hop whose claims keep finding mail is looked at again every LOOK_AGAIN_AFTER seconds for LINGER_FOR
# seconds after the last that did: wake-ups are coalesced (and may be lost), a busy next hop needn't wait for one.
LOOK_AGAIN_AFTER = 0.2
LINGER_FOR = 2.0
# Meanwhile the rows committed since are looked for this often (one cheap query for every lingering next hop), so
# mail that smtpd queued without a wake-up (the mark is held) is claimed within this, not LOOK_AGAIN_AFTER.
LOOK_FOR_NEW_ROWS_EVERY = 0.05
HOLD_REFRESH_SECONDS = 1.0  # a lingering next hop's wake-up mark is renewed this often (wakeups.hold)
DRAIN_WITHIN = 0.25  # seconds: more sessions are opened for a next hop whose backlog would take longer than this
RECORD_EVERY = 10  # recipients: outcomes are recorded at least this often
# Sessions that sent wait while this many outcomes are unrecorded (the records behind one commit under way):
# it bounds what a killed worker sends twice, without making every session wait for every commit.
MAX_UNRECORDED = 4 * RECORD_EVERY
RECORD_WITHIN = 0.2  # seconds: and no outcome waits longer than this
# Seconds a session with nothing to send waits for more before QUIT: Postfix's smtp_connection_cache_time_limit.
# Longer, and hundreds of idle connections sit on servers that host many domains (and have their own limits).
KEEP_IDLE_FOR = 2.0
HEARTBEAT_SECONDS = 5.0
ENGINE_ALIVE_FOR = 3 * HEARTBEAT_SECONDS  # an engine silent longer than this no longer shares the limits
CONNECTOR_CHECK_SECONDS = 1.0  # a next hop's connector is re-read at most this often while it is busy
# Claims held this long are renewed, so a slow next hop's backlog is never taken for a dead worker's
# (SENDCONN_CLAIM_TIMEOUT) and sent twice.
CLAIM_RENEWAL_SECONDS = 60.0
FORGET_AFTER_SECONDS = 600.0  # a next hop with nothing going on for this long is forgotten (window and all)


@dataclass
class Job:
    """One message with its claimed recipient rows of one next hop."""

    key: tuple  # (connector id, next hop domain)
    message: object
    rows: list


@dataclass(frozen=True)
class Plan:
    """What a session of a next hop needs from the connector, read by the dispatcher (sessions never touch the
    database). A new Plan (the connector changed) means sessions opened under the old one are not reused."""

    connector_id: int
    connector_name: str
    next_hop_domain: str
    options: SessionOptions | None
    failure: Result | None  # why no session can be opened (the smart-host credential can't be decrypted)
    dns_routing: bool
    smart_hosts: tuple
    port: int
    external_dns: bool
    downgrade_dns_failures: bool
    verbose: bool
    max_message_size: int | None

    @classmethod
    def for_connector(cls, connector, next_hop_domain):
        options, failure = None, None
        try:
            options = SessionOptions.for_connector(connector, settings.SENDCONN_SERVER_FQDN)
        except CredentialKeyError as error:
            failure = Result.ours(451, "4.7.0", f"The smart host credential can't be decrypted [{error}]")
        hosts = (
            ()
            if connector.dns_routing_enabled
            else tuple(connector.smart_hosts.order_by("position").values_list("host", flat=True))
        )
        return cls(
            connector.pk,
            connector.name,
            next_hop_domain,
            options,
            failure,
            connector.dns_routing_enabled,
            hosts,
            connector.port,
            connector.use_external_dns_servers_enabled,
            connector.downgrade_dns_failures,
            connector.protocol_logging_level == ProtocolLoggingLevel.VERBOSE,
            connector.max_message_size,
        )

    def resolve(self):
        """The targets to try, in order (DnsError when there are none)."""
        return resolve_next_hop(
            self.next_hop_domain,
            dns_routing=self.dns_routing,
            smart_hosts=self.smart_hosts,
            port=self.port,
            external_dns=self.external_dns,
            downgrade_dns_failures=self.downgrade_dns_failures,
        )


class Destination:
    """One next hop in the engine: its claimed backlog, its sessions and its concurrency window."""

    def __init__(self, key, lock):
        self.key = key
        self.plan = None
        self.version = None  # the connector's changed_at the plan was made from
        self.checked_at = 0.0
        self.jobs: deque[Job] = deque()
        self.has_work = threading.Condition(lock)
        self.sessions = 0  # session threads running for this next hop
        self.idle = 0  # of which waiting for a job
        self.window = float(INITIAL_CONCURRENCY)
        self.failures_in_a_row = 0
        self.dead_until = 0.0
        self.dead_result = None
        # Woken, or new rows seen, or the last claim took a full batch: claim (again, once these are taken). After a
        # claim that found fewer, what comes next is seen by the look for new rows (it lingers meanwhile).
        self.claim_wanted = False
        self.more_waiting = False  # the last claim was a full batch: claim again before the backlog runs out
        self.claimed_at = 0.0
        self.linger_until = 0.0  # while mail keeps coming, look for more now and then without a wake-up
        self.held_at = None  # when its wake-up mark was last held (wakeups.hold): no wake-ups needed meanwhile
        self.handled = 0  # rows recorded (for deliver_now's answer)
        self.active_at = time.monotonic()
        self.send_seconds = None  # how long a message takes to send here, connecting included
        self.sending = {}  # session thread → when it began the message it is sending

    @property
    def forgettable(self):
        return (
            not (self.jobs or self.sessions or self.claim_wanted or self.dead)
            and time.monotonic() - self.active_at > FORGET_AFTER_SECONDS
        )

    def sessions_wanted(self):
        """Sessions that would send the backlog within DRAIN_WITHIN at the time a message has been taking here:
        a far or slow server gets many, a near one few (opening a session costs as much as a message)."""
        seconds = self.send_seconds or 0.0
        if self.sending:  # a message under way for longer says more than the mean: a slow or silent server
            seconds = max(seconds, time.monotonic() - min(self.sending.values()))
        if not seconds:
            return 1  # nothing measured yet: the first message tells how far the server is
        return math.ceil(len(self.jobs) * seconds / DRAIN_WITHIN)

    def sent(self, seconds):
        """A message took ``seconds`` (an exponentially weighted mean, so a change in the server shows soon)."""
        self.send_seconds = seconds if self.send_seconds is None else 0.8 * self.send_seconds + 0.2 * seconds

    def cap(self, per_domain_limit):
        window = int(self.window)
        return window if per_domain_limit is None else min(window, per_domain_limit)

    @property
    def dead(self):
        return self.dead_result is not None and time.monotonic() < self.dead_until


class DeliveryEngine:
    def __init__(self):
        self.token = claim_token()
        self._lock = threading.Lock()
        self._dispatcher_wakes = threading.Condition(self._lock)
        self._destinations = {}
        self._woken = set()
        self._finished = []  # (job, {row id: Result}, connector name) not recorded yet
        self._unrecorded = 0  # rows of _finished and of the commit under way
        self._recorded = threading.Condition(self._lock)
        self._held = {}  # id(job) → job: claimed and not recorded yet
        self._rerouted = defaultdict(int)  # next hop → rows routed elsewhere (its connector was disabled)
        self._claims_renewed_at = time.monotonic()
        self._newest_row = None  # the id of the newest recipient row at the last look for new ones
        self._oldest_finished = None
        self._sessions = 0
        self._idle = 0  # sessions waiting for a job
        self._starved = 0  # next hops with jobs that the global limit keeps without a session
        self._stopping = False
        self._thread = None
        self._heartbeat_at = 0.0
        self.keep_idle_for = KEEP_IDLE_FOR
        self.clock = time.monotonic  # what an idle session's keep_idle_for is measured by (tests move their own)
        self.max_sessions = None  # this engine's share of MaxOutboundConnections (None: unlimited)
        self.max_per_destination = None  # and of MaxPerDomainOutboundConnections

    # --- the doors: wake-ups from Celery, deliver_now for tests and tools ----------------------------------

    def wake(self, connector_id, next_hop_domain):
        """A next hop has due mail: claim it soon. Starts the dispatcher thread on first use."""
        with self._lock:
            self._woken.add((connector_id, next_hop_domain))
            self._dispatcher_wakes.notify()
        self.start()

    def deliver_now(self, connector_id, next_hop_domain):
        """Deliver what can be claimed of one next hop, the dispatcher's work done in the calling thread (and so
        in its database transaction); return the number of rows handled. Sessions stay open for the next call
        for ``keep_idle_for``, as in a worker."""
        key = (connector_id, next_hop_domain)
        with self._lock:
            self._woken.add(key)
            destination = self._destinations.get(key)
            handled_before = destination.handled if destination else 0
            self._rerouted.pop(key, None)
        while True:
            self._dispatch(wait=0.05)
            with self._lock:
                destination = self._destinations.get(key)
                if key in self._woken:
                    continue
                if destination is None:
                    return self._rerouted.pop(key, 0)
                busy = (
                    destination.claim_wanted
                    and not destination.dead
                    or destination.jobs
                    or destination.sessions > destination.idle
                    or self._finished
                )
                if not busy:
                    return destination.handled - handled_before + self._rerouted.pop(key, 0)

    def stop(self, timeout=30.0):
        """Warm shutdown: no new claims, sessions finish the message in hand, what wasn't sent is released."""
        with self._lock:
            self._stopping = True
            for destination in self._destinations.values():
                destination.has_work.notify_all()
            self._dispatcher_wakes.notify()
            self._recorded.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        else:
            self._shut_down(timeout)

    # --- the dispatcher -------------------------------------------------------------------------------------

    def start(self):
        """Run the dispatcher in a thread of its own: a worker's engine (registers, heartbeats, delivers)."""
        with self._lock:
            if self._thread is not None or self._stopping:
                return
            self._thread = threading.Thread(target=self._run, name="delivery-dispatcher", daemon=True)
        self._thread.start()

    def _run(self):
        released = False
        while not self._stopping:
            try:
                if not released:
                    release_claims_of_dead_processes()
                    released = True
                close_old_connections()
                self._dispatch(wait=RECORD_WITHIN)
            except Exception:  # the database went away, most likely: nothing is lost, try again in a moment
                log.exception("Delivery engine: dispatch failed; retrying in 1 s")
                connection.close()
                time.sleep(1.0)
        self._shut_down(30.0)

    def _dispatch(self, wait):
        with self._lock:
            now = time.monotonic()
            lingering = [d for d in self._destinations.values() if now < d.linger_until]
            if not self._woken and not self._record_due() and not self._claims_due():
                self._dispatcher_wakes.wait(min(wait, LOOK_FOR_NEW_ROWS_EVERY) if lingering else wait)
            woken, self._woken = self._woken, set()
        # Recording comes first and between claims: sessions that sent wait for it (_wait_until_recorded).
        self._record_if_due()
        if time.monotonic() - self._heartbeat_at >= HEARTBEAT_SECONDS:
            self._heartbeat()
        if time.monotonic() - self._claims_renewed_at >= CLAIM_RENEWAL_SECONDS:
            self._renew_claims()
        for key in woken:
            self._on_wake(key)
            self._record_if_due()
        if lingering:
            self._look_for_new_rows(lingering)
        wanting = []
        for destination in list(self._destinations.values()):
            self._release_mark_if_done(destination)
            if self._claim_wanted_now(destination) and self._connector_still_usable(destination):
                wanting.append(destination)
        if wanting:
            self._claim(wanting)
            self._record_if_due()
        self._start_sessions()

    def _record_if_due(self):
        with self._lock:
            due = self._record_due()  # in batches: each record is a transaction smtpd's commits wait for
        if due:
            self._record_finished()

    def _on_wake(self, key):
        connector_id, next_hop_domain = key
        connector = current_connector(connector_id)
        if connector is None:  # removed: its rows lost their connector, and the sweeper routes them again
            self._destinations.pop(key, None)
            return
        if not connector.enabled:
            self._rerouted[key] += reroute_claimed(due_rows(connector_id, next_hop_domain), local_server())
            return
        sources = wakeups.source_servers({connector.pk})[connector.pk]  # cached for a few seconds
        if not any(server.name.lower() == settings.SENDCONN_SERVER_NAME.lower() for server in sources):
            # The source servers changed since the wake-up was sent: hand it to one of them.
            wakeups.wake_next_hops([key], coalesce=False)
            return
        with self._lock:
            destination = self._destinations.get(key)
            if destination is None:
                destination = self._destinations[key] = Destination(key, self._lock)
        self._refresh_plan(destination, connector)
        destination.claim_wanted = destination.more_waiting = True

    def _refresh_plan(self, destination, connector):
        destination.checked_at = time.monotonic()
        if destination.version != connector.changed_at:
            destination.plan = Plan.for_connector(connector, destination.key[1])
            destination.version = connector.changed_at

    def _release_mark_if_done(self, destination):
        """A next hop that stopped lingering needs wake-ups again: drop its mark, then claim once more, for what
        was committed while smtpd saw the mark and sent none."""
        if destination.held_at is not None and time.monotonic() >= destination.linger_until:
            wakeups.pending_marks().discard(destination.key)
            destination.held_at = None
            destination.claim_wanted = True

    def _look_for_new_rows(self, lingering):
        """Lingering next hops with rows committed since the last look claim now. Rows committed out of id order
        (PostgreSQL's sequences) are not seen here: they wait for LOOK_AGAIN_AFTER, as before."""
        self._newest_row, next_hops = next_hops_with_rows_after(self._newest_row)
        for destination in lingering:
            if destination.key in next_hops:
                destination.claim_wanted = True

    def _claims_due(self):
        return any(self._claim_wanted_now(destination) for destination in self._destinations.values())

    def _claim_wanted_now(self, destination):
        """Claim when wanted once the sessions have taken the backlog; with more waiting (the last claim was a full
        batch), before they run out of it. A lingering next hop with nothing in hand is looked at every
        LOOK_AGAIN_AFTER too: for rows the look for new rows can't see (PostgreSQL's out-of-order ids, retries
        coming due)."""
        if self._stopping:
            return False
        if not destination.claim_wanted:
            now = time.monotonic()
            return (
                now < destination.linger_until
                and not destination.jobs
                and now - destination.claimed_at >= LOOK_AGAIN_AFTER
            )
        if destination.more_waiting:
            return len(destination.jobs) < max(1, destination.cap(self.max_per_destination))
        return not destination.jobs

    def _connector_still_usable(self, destination):
        """Re-read a busy next hop's connector now and then: a removed or disabled one goes to _on_wake."""
        if time.monotonic() - destination.checked_at <= CONNECTOR_CHECK_SECONDS:
            return True
        connector = current_connector(destination.key[0])
        if connector is None or not connector.enabled:
            destination.claim_wanted = False
            with self._lock:
                self._woken.add(destination.key)
            return False
        self._refresh_plan(destination, connector)
        return True

    def _claim(self, destinations):
        """One round of claims for every next hop that wants more: one write transaction for them all."""
        batch = settings.SENDCONN_DELIVERY_BATCH_SIZE
        claimed = claim_due_many({destination.key: batch for destination in destinations}, self.token)
        now = time.monotonic()
        for destination in destinations:
            rows = claimed.get(destination.key, [])
            destination.claim_wanted = destination.more_waiting = len(rows) == batch
            destination.claimed_at = now
            if rows:
                self._take(destination, rows)

    def _take(self, destination, rows):
        destination.active_at = destination.claimed_at
        destination.linger_until = destination.claimed_at + LINGER_FOR
        if destination.held_at is None or destination.claimed_at - destination.held_at >= HOLD_REFRESH_SECONDS:
            wakeups.pending_marks().hold(destination.key)
            destination.held_at = destination.claimed_at
        by_message = defaultdict(list)
        for row in rows:
            by_message[row.message_id].append(row)
        jobs = [Job(destination.key, group[0].message, group) for group in by_message.values()]
        with self._lock:
            self._held.update((id(job), job) for job in jobs)
            if destination.dead:  # deferred without connecting until the next hop may be tried again
                for job in jobs:
                    self._finish(job, {row.pk: destination.dead_result for row in job.rows}, destination.plan)
                return
            destination.jobs.extend(jobs)
            destination.has_work.notify(len(jobs))

    def _start_sessions(self):
        with self._lock:
            if self._stopping:
                return
            starved = 0
            for destination in self._destinations.values():
                if destination.dead or destination.plan is None:
                    continue
                waiting = len(destination.jobs) - destination.idle
                room = destination.cap(self.max_per_destination) - destination.sessions
                for _ in range(max(0, min(waiting, room, destination.sessions_wanted() - destination.sessions))):
                    if self.max_sessions is not None and self._sessions >= self.max_sessions:
                        starved += 1
                        break
                    destination.sessions += 1
                    self._sessions += 1
                    threading.Thread(
                        target=self._session, args=(destination,), daemon=True, name=f"smtp-{destination.key[1]}"
                    ).start()
            self._starved = starved
            if starved:  # idle sessions of other next hops make room
                for destination in self._destinations.values():
                    if destination.idle:
                        destination.has_work.notify_all()

    # --- recording ------------------------------------------------------------------------------------------

    def _finish(self, job, results, plan):
        """A job's outcome, to be recorded by the dispatcher (called with the lock held)."""
        self._finished.append((job, results, plan.connector_name if plan else ""))
        self._unrecorded += len(job.rows)
        if self._oldest_finished is None:
            self._oldest_finished = time.monotonic()
        if self._unrecorded >= RECORD_EVERY:
            self._dispatcher_wakes.notify()

    def _wait_until_recorded(self):
        """A session that sent a message waits while MAX_UNRECORDED recipients' outcomes are unrecorded: what a
        killed worker sent and had not recorded (and will send again) stays below that (called with the lock)."""
        while self._unrecorded >= MAX_UNRECORDED and not self._stopping:
            self._recorded.wait(1.0)

    def _record_due(self):
        return bool(self._finished) and (
            self._unrecorded >= RECORD_EVERY
            or time.monotonic() - (self._oldest_finished or 0.0) >= RECORD_WITHIN
            or self._idle == self._sessions
        )  # no session is sending: nothing to batch with

    def _record_finished(self):
        with self._lock:
            finished, self._finished, self._oldest_finished = self._finished, [], None
        if not finished:
            return
        ledger = Ledger(self.token)
        for job, results, connector_name in finished:
            for row in job.rows:
                ledger.attempted(row, job.message, results[row.pk], connector_name)
        try:
            ledger.commit()
        except Exception:
            with self._lock:  # keep them for the next try: a lost outcome would mean a duplicate
                self._finished[:0] = finished
                self._oldest_finished = time.monotonic()
            raise
        with self._lock:
            for job, _, _ in finished:
                self._held.pop(id(job), None)
                self._unrecorded -= len(job.rows)
            self._recorded.notify_all()
        for job, _, _ in finished:
            destination = self._destinations.get(job.key)
            if destination is not None:
                destination.handled += len(job.rows)

    def _renew_claims(self):
        self._claims_renewed_at = time.monotonic()
        with self._lock:
            ids = [row.pk for job in self._held.values() for row in job.rows]
        now = timezone.now()
        for start in range(0, len(ids), 500):
            Recipient.objects.filter(id__in=ids[start : start + 500], claimed_by=self.token).update(claimed_at=now)

    # --- sessions -------------------------------------------------------------------------------------------

    def _session(self, destination):
        """A session thread: jobs of one next hop over one connection at a time, until none is left."""
        connection = _Connection()
        metrics.smtp_session_opened()
        try:
            while (job := self._next_job(destination, connection.is_open)) is not None:
                plan = destination.plan
                if connection.plan is not plan:
                    connection.close()
                with self._lock:
                    started = destination.sending[threading.get_ident()] = time.monotonic()
                results, trouble = self._send(job, plan, connection, destination)
                with self._lock:
                    destination.sending.pop(threading.get_ident(), None)
                    if trouble is None:
                        destination.sent(time.monotonic() - started)
                    self._feedback(destination, trouble)
                    self._finish(job, results, plan)
                    self._wait_until_recorded()
                if trouble is not None:
                    connection.close()
        except Exception:
            log.exception("Delivery engine: a session of %s stopped unexpectedly", destination.key[1])
        finally:
            connection.close()
            metrics.smtp_session_closed()
            with self._lock:
                destination.sessions -= 1
                self._sessions -= 1
                self._dispatcher_wakes.notify()

    def _next_job(self, destination, connected):
        with self._lock:
            idle_since = None
            try:
                while True:
                    if self._stopping or destination.dead:
                        return None
                    if destination.sessions > max(1, destination.cap(self.max_per_destination)):
                        return None  # the window shrank
                    if destination.jobs:
                        job = destination.jobs.popleft()
                        if self._claim_wanted_now(destination):
                            self._dispatcher_wakes.notify()  # time to claim more
                        return job
                    if not connected or self._starved:
                        return None
                    now = self.clock()
                    if idle_since is None:
                        idle_since = now
                        destination.idle += 1
                        self._idle += 1
                        if self._idle == self._sessions and self._finished:
                            self._dispatcher_wakes.notify()  # nothing else is coming soon: record now
                    remaining = idle_since + self.keep_idle_for - now
                    if remaining <= 0:
                        return None
                    destination.has_work.wait(remaining)
            finally:
                if idle_since is not None:
                    destination.idle -= 1
                    self._idle -= 1

    def _feedback(self, destination, trouble):
        """Postfix's destination concurrency feedback (called with the lock held)."""
        if trouble is None:
            destination.failures_in_a_row = 0
            destination.window += 1
            if self.max_per_destination is not None:
                destination.window = min(destination.window, float(max(self.max_per_destination, 1)))
            return
        result, immediately_dead = trouble
        destination.failures_in_a_row += 1
        destination.window = max(1.0, destination.window - 1)
        if immediately_dead or destination.failures_in_a_row >= destination.window:
            destination.dead_result = result
            destination.dead_until = (
                time.monotonic() + settings.SENDCONN_TRANSIENT_FAILURE_RETRY_INTERVAL.total_seconds()
            )
            destination.window = float(INITIAL_CONCURRENCY)
            destination.failures_in_a_row = 0
            for job in destination.jobs:
                self._finish(job, {row.pk: result for row in job.rows}, destination.plan)
            destination.jobs.clear()
            destination.has_work.notify_all()

    def _send(self, job, plan, connection, destination):
        """Send one job; return ({row id: Result}, trouble), trouble being (Result, dead at once) when the next
        hop's servers failed us (connection, greeting, TLS, DNS…) and None otherwise."""
        message, rows = job.message, job.rows
        if plan.max_message_size is not None and message.size > plan.max_message_size:
            return {row.pk: size_exceeded() for row in rows}, None  # MaxMessageSize lowered since routing
        if plan.failure is not None:
            return {row.pk: plan.failure for row in rows}, (plan.failure, True)
        try:
            validate_smtp_address(message.sender, null_allowed=True)
        except ValueError as error:  # one recipient's address never fails another's; a sender fails them all
            return {row.pk: Result.ours(501, "5.1.7", f"Invalid address [{error}]") for row in rows}, None
        results = {}
        for row in rows:
            try:
                validate_smtp_address(row.address)
            except ValueError as error:
                results[row.pk] = Result.ours(501, "5.1.3", f"Invalid address [{error}]")
        sendable = [row for row in rows if row.pk not in results]
        if not sendable:
            return results, None
        if connection.session is None:
            try:
                connection.open(plan, plan.resolve())
            except DnsError as error:
                failure = Result.from_dns_error(error)
                return {**results, **{row.pk: failure for row in sendable}}, (failure, True)
        try:
            outcome = connection.session.send(message.sender, [row.address for row in sendable], bytes(message.content))
        except SmtpSessionError as error:  # no target would take a connection
            failure = Result.from_session_error(error)
            return {**results, **{row.pk: failure for row in sendable}}, (failure, False)
        except Exception as error:  # a bug or a surprise: this message waits, the others go on
            log.exception("Delivery of message %s to %s failed unexpectedly", message.pk, destination.key[1])
            failure = Result.ours(451, "4.3.0", f"Other or undefined mail system status [{type(error).__name__}]")
            return {**results, **{row.pk: failure for row in sendable}}, (failure, False)
        for row in sendable:
            results[row.pk] = Result.from_reply(outcome.per_recipient[row.address], *outcome.remote(row.address))
        if outcome.error is not None:  # the connection died or stalled mid-transaction
            return results, (Result.from_session_error(outcome.error), False)
        if not connection.session.can_send_more():
            connection.close()
        return results, None

    # --- registration, limits and shutdown ------------------------------------------------------------------

    def _heartbeat(self):
        """Register this engine and take its share of the server's limits."""
        self._heartbeat_at = time.monotonic()
        now = timezone.now()
        server = local_server()
        TransportServer.objects.filter(pk=server.pk).update(last_seen_at=now)  # wake-ups go to servers seen lately
        DeliveryEngineRecord.objects.update_or_create(
            token=self.token, defaults={"server": server, "heartbeat_at": now, "sessions_open": self._sessions}
        )
        alive = list(
            DeliveryEngineRecord.objects.filter(
                server=server, heartbeat_at__gte=now - timedelta(seconds=ENGINE_ALIVE_FOR)
            )
            .order_by("token")
            .values_list("token", flat=True)
        )
        index, count = alive.index(self.token), len(alive)
        self.max_sessions = share(server.max_outbound_connections, count, index)
        self.max_per_destination = share(server.max_per_domain_outbound_connections, count, index)
        with self._lock:
            for key in [key for key, destination in self._destinations.items() if destination.forgettable]:
                del self._destinations[key]

    def _shut_down(self, timeout):
        deadline = time.monotonic() + timeout
        while self._sessions and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            self._record_finished()
            with self._lock:
                left = [job for destination in self._destinations.values() for job in destination.jobs]
                for destination in self._destinations.values():
                    destination.jobs.clear()
            if left:
                ledger = Ledger(self.token)
                for job in left:
                    for row in job.rows:
                        ledger.release(row)
                ledger.commit()
            DeliveryEngineRecord.objects.filter(token=self.token).delete()
            for destination in self._destinations.values():
                if destination.held_at is not None:
                    wakeups.pending_marks().discard(destination.key)
        except Exception:  # the claims are released at the next start on this host, or by the sweeper
            log.exception("Delivery engine: could not record everything at shutdown")


def share(limit, engines, index):
    """Engine ``index``'s part of a server-wide ``limit`` (None: unlimited) split among ``engines``."""
    if limit is None:
        return None
    return limit // engines + (1 if index < limit % engines else 0)


class _Connection:
    """A session thread's SMTP session and its protocol-log transcript, under the Plan it was opened with."""

    def __init__(self):
        self.session = None
        self.transcript = None
        self.plan = None

    @property
    def is_open(self):
        return self.session is not None and self.session.is_open

    def open(self, plan, targets):
        self.plan = plan
        self.transcript = ProtocolLog().session(plan.connector_name) if plan.verbose else None
        domain = plan.next_hop_domain if plan.dns_routing else ""
        self.session = SmtpSession(targets, plan.options, transcript=self.transcript, recipient_domain=domain)

    def close(self):
        session, transcript, self.session, self.transcript = self.session, self.transcript, None, None
        if session is not None:
            session.close()
        if transcript is not None:
            transcript.close()


# connector id → (its changed_at as stored, the SendConnector): this process's copies
_connectors: dict[int, tuple[Any, SendConnector | None]] = {}


def current_connector(connector_id):
    """The connector as stored now, None once removed. Every change to a connector (its address spaces, smart
    hosts and source servers included) saves it, so a copy is current while its ``changed_at`` is: one indexed
    read instead of the whole row through the ORM."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {quote('changed_at')} FROM {quote(SendConnector._meta.db_table)} WHERE {quote('id')} = %s",
            [connector_id],
        )
        stored = cursor.fetchone()
    if stored is None:
        _connectors.pop(connector_id, None)
        return None
    version, connector = _connectors.get(connector_id, (None, None))
    if version != stored[0]:
        connector = SendConnector.objects.filter(pk=connector_id).first()
        _connectors[connector_id] = (stored[0], connector)
    return connector


_engine = None
_engine_lock = threading.Lock()


def get_engine():
    """This process's engine (a forked child makes its own)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = DeliveryEngine()
        return _engine


def reset_engine():
    """Stop this process's engine and forget it (tests; worker shutdown)."""
    global _engine
    with _engine_lock:
        engine, _engine = _engine, None
    if engine is not None:
        engine.stop()
