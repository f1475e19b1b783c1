"""Wake-ups: tell the workers of a next hop that it has due recipients.

The database is the queue; Celery only carries "deliver what is due for next hop X" (``tasks.deliver_next_hop``),
sent to the queue of one source server of the connector (``TransportServer.queue_name``). A lost wake-up costs
only latency, because the sweeper re-wakes every next hop with due rows; so a broker error is logged, never
raised to the caller (smtpd has already committed the message).

Wake-ups are coalesced per process: a next hop woken in the last ``COALESCE_SECONDS`` is not woken again at
once; instead one wake-up is scheduled for the end of that window (a countdown), and every request until then
rides on it. A wake-up sent after a row was committed always sees the row, so none is lost, and a busy next hop
costs about one task per window instead of one per message. The woken worker drains every due row it can claim
before it returns.

Across processes, a *pending mark* per next hop says "a wake-up is queued and its task hasn't started": while
it is there, no other process queues another (the task clears the mark before it claims anything, so it sees
every row committed before the mark was found). Without it, wake-ups pile up whenever workers fall behind or
are down, and each costs a task — and the filesystem broker lists its whole folder for every message it takes.
Marks live in Redis (SET NX with an expiry) or, with the filesystem broker, as files beside its queue folder;
they expire after PENDING_MARK_SECONDS, so a wake-up that was lost blocks others only that long.

A delivery engine that keeps finding mail for a next hop looks again on its own every few tenths of a second, so it
*holds* the mark meanwhile (``hold``, refreshed while it lingers): smtpd then sends no wake-ups for that next hop,
which cost a publish in smtpd and a task in the worker each. When the engine stops lingering it drops the mark and
claims once more, so a row committed while the mark was held is never left without a wake-up.
"""

import hashlib
import logging
import os
import random
import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.utils import timezone

from sendconn.connectors.models import SendConnector, TransportServer

log = logging.getLogger(__name__)

DELIVER_TASK = "sendconn.transport.tasks.deliver_next_hop"
COALESCE_SECONDS = 1.0
RECENTLY_SEEN = timedelta(minutes=5)  # source servers seen this recently share the work; else the latest seen
SOURCE_SERVERS_CACHE_SECONDS = 30.0  # connector → source servers, re-read this often
PENDING_MARK_SECONDS = 10  # a pending mark older than this is taken for a lost wake-up

_lock = threading.Lock()
_next_slot: dict[tuple[int, str], float] = {}  # next hop → monotonic time from which a wake-up may go out at once
# next hop → monotonic time of the wake-up already scheduled (countdown) for it
_scheduled_until: dict[tuple[int, str], float] = {}
_source_servers: dict[int, tuple[float, list[TransportServer]]] = {}  # connector id → (expires at, [TransportServer])
_marks: dict[str, "RedisMarks | FileMarks | NoMarks"] = {}  # broker URL → its pending marks


def wake_next_hops(next_hops: Iterable[tuple[int, str]], *, coalesce=True) -> None:
    """Wake the workers of each ``(connector_id, next_hop_domain)``, once each.

    ``coalesce=False`` sends at once whatever was sent recently (a worker handing its next hop on).
    """
    wanted = list(dict.fromkeys((connector_id, domain) for connector_id, domain in next_hops if connector_id))
    if not wanted:
        return
    try:
        servers = source_servers({connector_id for connector_id, _ in wanted})
    except Exception:  # the database went away: the sweeper will wake these next hops
        log.exception("Can't read the source servers to wake %d next hop(s)", len(wanted))
        return
    for next_hop in wanted:
        server = choose_server(servers.get(next_hop[0], []))
        if server is None:
            log.warning(
                "Send connector %s has no source server: nothing can deliver next hop %s", next_hop[0], next_hop[1]
            )
            continue
        countdown = _countdown(next_hop, coalesce)
        if countdown is not None:
            _send(next_hop, server.queue_name, countdown)


def _countdown(next_hop, coalesce):
    """None: a wake-up already scheduled covers this one; else the delay (0: now) to send it with."""
    with _lock:
        now = time.monotonic()
        if not coalesce:
            _next_slot[next_hop] = max(_next_slot.get(next_hop, 0.0), now + COALESCE_SECONDS)
            return 0.0
        if _scheduled_until.get(next_hop, 0.0) > now:
            return None
        slot = _next_slot.get(next_hop, 0.0)
        if now >= slot:
            _next_slot[next_hop] = now + COALESCE_SECONDS
            return 0.0
        _scheduled_until[next_hop] = slot
        _next_slot[next_hop] = slot + COALESCE_SECONDS
        return slot - now


def _send(next_hop, queue, countdown):
    if not pending_marks().add(next_hop):
        # A wake-up for this next hop is queued already and its task hasn't started: it will see our rows. We
        # sent nothing, so later requests must not ride on a wake-up of ours (the mark holds them back instead).
        with _lock:
            _next_slot.pop(next_hop, None)
            _scheduled_until.pop(next_hop, None)
        return
    options = {"queue": queue}
    if countdown > 0:
        options["countdown"] = countdown
    try:
        publish_wake_up(next_hop, **options)
    except Exception:  # broker down or unreachable: the sweeper re-wakes what is due
        log.exception("Can't send the wake-up for next hop %s of connector %s to %s", next_hop[1], next_hop[0], queue)
        pending_marks().discard(next_hop)
        with _lock:  # nothing went out: the next request must try again
            _next_slot.pop(next_hop, None)
            _scheduled_until.pop(next_hop, None)


def publish_wake_up(next_hop, **options):
    """Send the delivery task by name: tasks import this module, not the other way round."""
    current_app.send_task(DELIVER_TASK, args=list(next_hop), **options)


def task_started(connector_id, next_hop_domain):
    """Called by the delivery task before it claims anything: wake-ups sent from now on are needed again."""
    pending_marks().discard((connector_id, next_hop_domain))


class RedisMarks:
    """Pending marks as Redis keys (SET NX EX) in the broker's database."""

    def __init__(self, url):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def add(self, next_hop):
        try:
            return bool(self.client.set(_mark_name(next_hop), b"1", nx=True, ex=PENDING_MARK_SECONDS))
        except Exception:  # noqa: BLE001 - no mark: send the wake-up (its own failure, if any, is logged)
            return True

    def hold(self, next_hop):
        try:
            self.client.set(_mark_name(next_hop), b"1", ex=PENDING_MARK_SECONDS)
        except Exception:  # noqa: BLE001 - without the mark smtpd wakes the next hop: only a wasted task
            log.warning("Can't hold the wake-up mark of next hop %s", next_hop[1])

    def discard(self, next_hop):
        try:
            self.client.delete(_mark_name(next_hop))
        except Exception:  # noqa: BLE001 - an expiring mark only delays a wake-up
            log.warning("Can't clear the pending wake-up mark of next hop %s", next_hop[1])


class FileMarks:
    """Pending marks as files beside the filesystem broker's queue folder (one machine shares them)."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def add(self, next_hop):
        path = os.path.join(self.directory, _mark_name(next_hop))
        # Most often the mark is there (a worker holds it while it drains the next hop): one stat says so.
        try:
            if time.time() - os.stat(path).st_mtime < PENDING_MARK_SECONDS:
                return False
            os.utime(path)  # a lost wake-up's mark: take it over
            return True
        except FileNotFoundError:
            pass
        except OSError:
            return True
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return False  # made meanwhile, for a wake-up that is on its way
        except OSError:
            pass
        return True

    def hold(self, next_hop):
        path = self.directory / _mark_name(next_hop)
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            os.utime(path)
        except OSError:  # without the mark smtpd wakes the next hop: only a wasted task
            pass

    def discard(self, next_hop):
        try:
            os.unlink(self.directory / _mark_name(next_hop))
        except OSError:
            pass


class NoMarks:
    """Other brokers: every process coalesces on its own only."""

    def add(self, next_hop):
        return True

    def hold(self, next_hop):
        pass

    def discard(self, next_hop):
        pass


def pending_marks():
    """The marks of the configured broker, one object per process and broker."""
    url = settings.CELERY_BROKER_URL
    marks = _marks.get(url)
    if marks is None:
        if url.startswith(("redis://", "rediss://")):
            marks = RedisMarks(url)
        elif url.startswith("filesystem://"):
            marks = FileMarks(Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]).parent / "wakeups")
        else:
            marks = NoMarks()
        _marks[url] = marks
    return marks


@lru_cache(maxsize=4096)  # smtpd names a next hop's mark for every message it queues
def _mark_name(next_hop):
    connector_id, domain = next_hop
    return f"sendconn-wake-{connector_id}-{hashlib.sha1(domain.encode()).hexdigest()[:20]}"


def source_servers(connector_ids):
    """{connector id: [TransportServer]}, from a per-process cache refreshed every few seconds."""
    now = time.monotonic()
    with _lock:
        cached = {cid: entry[1] for cid, entry in _source_servers.items() if cid in connector_ids and entry[0] > now}
    missing = set(connector_ids) - set(cached)
    if missing:
        found: dict[int, list[TransportServer]] = {connector_id: [] for connector_id in missing}
        links = SendConnector.source_transport_servers.through.objects.filter(sendconnector_id__in=missing)
        for link in links.select_related("transportserver"):
            found[link.sendconnector_id].append(link.transportserver)
        with _lock:
            for connector_id, servers in found.items():
                _source_servers[connector_id] = (now + SOURCE_SERVERS_CACHE_SECONDS, servers)
        cached.update(found)
    return cached


def choose_server(servers):
    """A random one of the servers seen recently (workers refresh ``last_seen_at``), else the one seen last."""
    if not servers:
        return None
    recent_since = timezone.now() - RECENTLY_SEEN
    recent = [server for server in servers if server.last_seen_at and server.last_seen_at >= recent_since]
    if recent:
        return random.choice(recent)
    return max(servers, key=lambda server: (server.last_seen_at is not None, server.last_seen_at or 0))


def forget():
    """Drop the coalescing state and the source-server cache (tests; after a fork)."""
    with _lock:
        _next_slot.clear()
        _scheduled_until.clear()
        _source_servers.clear()
