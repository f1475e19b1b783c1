"""Mail flow and queue depth over time, per five minutes: written as mail moves, read by the charts.

``count_events`` adds tracking events to ``OutcomeCount`` in the transaction that records them;
``sample_queue_depth`` stores the queues' depth once per period (the sweeper calls it); ``mail_flow`` and
``queue_depth`` read a window of periods back for the dashboard and the connector page.
"""

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Count, Sum
from django.utils import timezone

from sendconn.connectors.models import SendConnector
from sendconn.transport.models import QUEUED_STATUSES, Recipient, TrackingEventId

from .models import OutcomeCount, QueueDepthSample

PERIOD = timedelta(minutes=5)
WINDOW = timedelta(hours=24)  # what the charts show
KEPT = timedelta(days=7)  # periods older than this are deleted when the queue depth is sampled
FLOW_EVENTS = (TrackingEventId.SEND, TrackingEventId.DEFER, TrackingEventId.FAIL)

# "250 2.6.0 <id> Queued", "451 4.4.0 DNS query failed": the enhanced status code's class, else the reply code's.
_STATUS = re.compile(r"^\s*([245])\d\d(?:[ -]+([245])\.\d{1,3}\.\d{1,3}\b)?")


def status_class(recipient_status):
    """The RFC 3463 class ("2", "4", "5") of a reply such as "550 5.1.1 User unknown"; "" for none."""
    match = _STATUS.match(recipient_status or "")
    if match is None:
        return ""
    return match.group(2) or match.group(1)


def period_start(moment):
    """The start of the five-minute period holding ``moment`` (aware, UTC)."""
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % int(PERIOD.total_seconds()), tz=UTC)


def periods(now, window=WINDOW):
    """The starts of the periods of the last ``window`` up to the one holding ``now``, oldest first."""
    last = period_start(now)
    count = int(window / PERIOD)
    return [last - PERIOD * back for back in range(count - 1, -1, -1)]


# --- writes ---------------------------------------------------------------------------------------------------


def count_events(events):
    """Add the delivery outcomes among ``events`` (tracking entries being recorded) to their periods' counts, in
    the caller's transaction.

    One upsert per distinct key, in key order, so two transactions adding to the same rows never deadlock.
    """
    counts = Counter(
        (period_start(entry.timestamp), entry.connector_name, entry.event_id, status_class(entry.recipient_status))
        for entry in events
        if entry.event_id in FLOW_EVENTS
    )
    if not counts:
        return
    db = connections[DEFAULT_DB_ALIAS]
    period_field = OutcomeCount._meta.get_field("period_start")
    table = db.ops.quote_name(OutcomeCount._meta.db_table)
    sql = (
        f"INSERT INTO {table} (period_start, connector_name, event_id, status_class, recipients) "
        "VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (period_start, connector_name, event_id, status_class) "
        f"DO UPDATE SET recipients = {table}.recipients + excluded.recipients"
    )
    rows = [
        [period_field.get_db_prep_save(start, db), name, event_id, klass, count]
        for (start, name, event_id, klass), count in sorted(counts.items())
    ]
    with db.cursor() as cursor:
        cursor.executemany(sql, rows)


_last_sampled = None  # this process's last sampled period: most sweeps need no query at all


def sample_queue_depth(now=None):
    """Store the recipients waiting per connector (and in the Unreachable queue) once per period; delete periods
    older than ``KEPT``. Several sweepers may race: the first sample of a period stands."""
    global _last_sampled
    now = now or timezone.now()
    start = period_start(now)
    if start == _last_sampled or QueueDepthSample.objects.filter(period_start=start).exists():
        _last_sampled = start
        return False
    waiting = dict(
        Recipient.objects.filter(status__in=QUEUED_STATUSES)
        .values_list("connector__name")
        .annotate(count=Count("pk"))
        .order_by()
    )
    names = {name: 0 for name in SendConnector.objects.values_list("name", flat=True)}
    names.update({name or "": count for name, count in waiting.items()})
    names.setdefault("", 0)
    QueueDepthSample.objects.bulk_create(
        [QueueDepthSample(period_start=start, connector_name=name, recipients=count) for name, count in names.items()],
        ignore_conflicts=True,
    )
    QueueDepthSample.objects.filter(period_start__lt=start - KEPT).delete()
    OutcomeCount.objects.filter(period_start__lt=start - KEPT).delete()
    _last_sampled = start
    return True


# --- reads ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowPeriod:
    start: datetime
    delivered: int
    deferred: int
    failed: int

    @property
    def total(self):
        return self.delivered + self.deferred + self.failed


def outcome_counts(start, connector_name=None):
    """The ``OutcomeCount`` query behind ``mail_flow``: recipients per period and event since ``start``."""
    rows = OutcomeCount.objects.filter(period_start__gte=start, event_id__in=FLOW_EVENTS)
    if connector_name is not None:
        rows = rows.filter(connector_name=connector_name)
    return rows.values("period_start", "event_id").annotate(count=Sum("recipients")).order_by()


def mail_flow(now=None, connector_name=None, window=WINDOW):
    """Recipients delivered (SEND), deferred (DEFER) and failed (FAIL) per period of the last ``window``, zeros
    included, oldest first; of one connector when ``connector_name`` is given."""
    starts = periods(now or timezone.now(), window)
    counts: Counter[tuple[datetime, str]] = Counter()
    for row in outcome_counts(starts[0], connector_name):
        counts[row["period_start"], row["event_id"]] += row["count"]
    return [
        FlowPeriod(
            start,
            counts[start, TrackingEventId.SEND],
            counts[start, TrackingEventId.DEFER],
            counts[start, TrackingEventId.FAIL],
        )
        for start in starts
    ]


@dataclass(frozen=True)
class DepthPoint:
    start: datetime
    recipients: int | None  # None: no sample for that period (no sweeper was running)


def queue_depth(now=None, connector_name=None, window=WINDOW):
    """Recipients waiting at each period of the last ``window`` (all queues, or one connector's), oldest first."""
    starts = periods(now or timezone.now(), window)
    samples = QueueDepthSample.objects.filter(period_start__gte=starts[0])
    if connector_name is not None:
        samples = samples.filter(connector_name=connector_name)
    depth = dict(samples.values_list("period_start").annotate(total=Sum("recipients")).order_by())
    return [DepthPoint(start, depth.get(start)) for start in starts]
