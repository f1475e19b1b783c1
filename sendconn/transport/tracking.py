"""Message tracking: one event per recipient (RECEIVE, SEND, DEFER, FAIL, DSN), stored and searched.

``event()`` builds an unsaved entry from the queued message, ``record()`` writes a batch in one insert (inside
the caller's transaction), ``write_log()`` appends them to the tracking log file once committed, ``search()``
is Get-MessageTrackingLog. ``search_messages()``, ``message_summaries()`` and ``message_timeline()`` are the
browser's "did my message go out?": the same entries seen per message (entries outlive the queued message).
"""

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from django.conf import settings
from django.db.models import Max, Min
from django.db.models.functions import Lower

from sendconn.observability import flow, metrics

from . import statements, tracking_log
from .models import RecipientStatus, TrackingEvent, TrackingEventId

logger = logging.getLogger(__name__)

DEFAULT_RESULT_SIZE = 1000  # Get-MessageTrackingLog's default -ResultSize


def event(
    event_id,
    source,
    message,
    recipient,
    *,
    recipient_status="",
    connector_name="",
    remote_host="",
    remote_ip=None,
    server_name=None,
    timestamp=None,
):
    """An unsaved tracking entry for ``recipient`` (an address) of ``message``."""
    entry = TrackingEvent(
        event_id=event_id,
        source=source,
        queued_message=message,
        internal_message_id=message.pk,
        message_id=message.message_id,
        sender=message.sender,
        subject=message.subject,
        recipient=recipient,
        recipient_status=recipient_status,
        connector_name=connector_name,
        server_name=server_name or settings.SENDCONN_SERVER_NAME,
        remote_host=remote_host,
        remote_ip=remote_ip,
        total_bytes=message.size,
    )
    if timestamp is not None:
        entry.timestamp = timestamp
    return entry


def record(events):
    """Store ``events`` in the caller's transaction, with the charts' per-period counts; the metrics count them
    once it commits."""
    statements.insert(events)
    flow.count_events(events)
    metrics.count_tracked(events)


def log_fields(entry):
    """A stored event as a message tracking log row (``tracking_log`` field names).

    The remote end is the client for RECEIVE and the server for the other events, as in Exchange's log.
    """
    receive = entry.event_id == TrackingEventId.RECEIVE
    return {
        "date-time": entry.timestamp,
        "client-ip": entry.remote_ip if receive else None,
        "client-hostname": entry.remote_host if receive else entry.server_name,
        "server-ip": None if receive else entry.remote_ip,
        "server-hostname": entry.server_name if receive else entry.remote_host,
        "connector-id": entry.connector_name,
        "source": entry.source,
        "event-id": entry.event_id,
        "internal-message-id": entry.internal_message_id,
        "message-id": entry.message_id,
        "recipient-address": entry.recipient,
        "recipient-status": entry.recipient_status,
        "total-bytes": entry.total_bytes,
        "recipient-count": 1,
        "message-subject": entry.subject,
        "sender-address": entry.sender,
        "return-path": entry.sender,
        "directionality": "Originating",
    }


def write_log(events):
    """Append stored events to the tracking log file (after their transaction committed). A log folder that
    can't be written is reported, never allowed to stop mail: the database keeps the events."""
    try:
        tracking_log.write_events([log_fields(entry) for entry in events])
    except OSError:
        logger.exception("Can't write the message tracking log in %s", settings.SENDCONN_TRACKING_LOG_DIR)


def normalise_message_id(value):
    """Exchange matches -MessageId with or without the angle brackets."""
    value = value.strip()
    return value if value.startswith("<") else f"<{value}>"


def _matching(
    events,
    *,
    sender=None,
    recipients=(),
    message_id=None,
    event_id=None,
    subject=None,
    start=None,
    end=None,
    internal_message_id=None,
    server_name=None,
):
    """``events`` narrowed by Get-MessageTrackingLog's criteria (shared by the shell and the browser)."""
    if sender is not None:
        # Lower(...) = lower-cased value uses the functional indexes; __iexact would not.
        events = events.alias(sender_lower=Lower("sender")).filter(sender_lower=sender.strip().lower())
    if recipients:
        events = events.alias(recipient_lower=Lower("recipient")).filter(
            recipient_lower__in=[address.strip().lower() for address in recipients]
        )
    if message_id:
        events = events.filter(message_id=normalise_message_id(message_id))
    if event_id:
        events = events.filter(event_id=event_id.upper())
    if subject:
        events = events.filter(subject__icontains=subject)  # -MessageSubject matches part of the subject
    if internal_message_id is not None:
        events = events.filter(internal_message_id=internal_message_id)
    if server_name:
        events = events.filter(server_name__iexact=server_name)
    if start is not None:
        events = events.filter(timestamp__gte=start)
    if end is not None:
        events = events.filter(timestamp__lt=end)
    return events


def search(*, result_size=DEFAULT_RESULT_SIZE, **criteria):
    """Entries oldest first; addresses match case-insensitively, Start inclusive, End exclusive. ``criteria``:
    sender, recipients, message_id, event_id, subject, start, end, internal_message_id, server_name.

    ``result_size`` None is Exchange's ``-ResultSize Unlimited``.
    """
    events = _matching(TrackingEvent.objects.order_by("timestamp", "id"), **criteria)
    return events if result_size is None else events[:result_size]


# --- per message (the browser's message tracking) -------------------------------------------------------------

# A recipient's state in the queue's words (Get-Message, the queue viewer): received and not yet tried is Ready,
# deferred is Retry.
READY, RETRY, DELIVERED, FAILED = (
    RecipientStatus.READY.value,
    RecipientStatus.RETRY.value,
    RecipientStatus.DELIVERED.value,
    RecipientStatus.FAILED.value,
)
# What a recipient's latest event says about it. DSN only reports on a recipient (an NDR or a delay
# notification went to the sender): it never changes the recipient's state, so it is left out.
STATE_OF_EVENT: dict[str, str] = {
    TrackingEventId.RECEIVE: READY,
    TrackingEventId.DEFER: RETRY,
    TrackingEventId.SEND: DELIVERED,
    TrackingEventId.FAIL: FAILED,
}
# Events of one recipient with the same timestamp (RECEIVE and a routing FAIL are written together): later wins.
_EVENT_ORDER: dict[str, int] = {
    TrackingEventId.RECEIVE: 0,
    TrackingEventId.DEFER: 1,
    TrackingEventId.SEND: 2,
    TrackingEventId.FAIL: 2,
}


@dataclass
class MessageSummary:
    """One message as the tracking search lists it."""

    internal_message_id: int
    message_id: str
    sender: str
    subject: str
    submitted_at: datetime | None = None  # the first entry: RECEIVE
    recipient_states: dict[str, str] = field(default_factory=dict)  # address → Ready / Retry / Delivered / Failed
    connectors: list[str] = field(default_factory=list)  # the Send connectors that carried (or tried) it

    @property
    def state_counts(self):
        """``[("Delivered", 2), ("Failed", 1)]``, in the order the states read best."""
        counts = Counter(self.recipient_states.values())
        return [(state, counts[state]) for state in (DELIVERED, READY, RETRY, FAILED) if counts[state]]


def search_messages(**criteria):
    """The internal message ids (queue ids) of messages with an entry matching ``criteria`` (as ``search()``),
    newest first: one row per message, for a Paginator; ``message_summaries()`` then describes a page."""
    events = _matching(TrackingEvent.objects.filter(internal_message_id__isnull=False), **criteria)
    return events.order_by("-internal_message_id").values_list("internal_message_id", flat=True).distinct()


def message_summaries(internal_message_ids):
    """``MessageSummary`` per id, in the given order, from all of each message's entries: one query, one row per
    recipient, event and connector rather than per entry (a recipient deferred 30 times is still a few rows)."""
    ids = list(internal_message_ids)
    summaries: dict[int, MessageSummary] = {}
    latest: dict[tuple[int, str], tuple[datetime, int, str]] = {}  # (message, recipient) → (timestamp, order, state)
    connectors: defaultdict[int, set[str]] = defaultdict(set)
    rows = (
        TrackingEvent.objects.filter(internal_message_id__in=ids)
        .values("internal_message_id", "message_id", "sender", "subject", "recipient", "event_id", "connector_name")
        .annotate(first=Min("timestamp"), last=Max("timestamp"))
        .order_by()
    )
    for row in rows:
        pk = cast(int, row["internal_message_id"])  # never None: filtered by id
        summary = summaries.get(pk)
        if summary is None:
            summary = summaries[pk] = MessageSummary(pk, row["message_id"], row["sender"], row["subject"])
        if summary.submitted_at is None or row["first"] < summary.submitted_at:
            summary.submitted_at = row["first"]
        if row["connector_name"]:
            connectors[pk].add(row["connector_name"])
        state = STATE_OF_EVENT.get(row["event_id"])
        if state is not None:
            key = (pk, row["recipient"])
            candidate = (row["last"], _EVENT_ORDER[row["event_id"]], state)
            if key not in latest or candidate[:2] > latest[key][:2]:
                latest[key] = candidate
    for (pk, recipient), (_, _, state) in sorted(latest.items()):
        summaries[pk].recipient_states[recipient] = state
    for pk, names in connectors.items():
        summaries[pk].connectors = sorted(names, key=str.lower)
    return [summaries[pk] for pk in ids if pk in summaries]


@dataclass
class RecipientTimeline:
    address: str
    state: str  # Ready / Retry / Delivered / Failed
    events: list[TrackingEvent]


@dataclass
class MessageTimeline:
    """All entries of one message: the summary, and per recipient (in order of appearance) its entries in time
    order."""

    summary: MessageSummary
    recipients: list[RecipientTimeline]
    size: int  # bytes


def message_timeline(internal_message_id):
    """The timeline of message ``internal_message_id`` (its queue id), or None when nothing was tracked."""
    events = list(TrackingEvent.objects.filter(internal_message_id=internal_message_id).order_by("timestamp", "id"))
    if not events:
        return None
    first = events[0]
    summary = MessageSummary(internal_message_id, first.message_id, first.sender, first.subject, first.timestamp)
    recipients: dict[str, RecipientTimeline] = {}
    for entry in events:
        recipient = recipients.setdefault(entry.recipient, RecipientTimeline(entry.recipient, READY, []))
        recipient.events.append(entry)
        recipient.state = STATE_OF_EVENT.get(entry.event_id, recipient.state)  # in time order: the latest wins
        summary.recipient_states[entry.recipient] = recipient.state
    summary.connectors = sorted({entry.connector_name for entry in events if entry.connector_name}, key=str.lower)
    return MessageTimeline(summary, list(recipients.values()), first.total_bytes)
