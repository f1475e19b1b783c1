"""Message tracking: one event per recipient (RECEIVE, SEND, DEFER, FAIL, DSN), stored and searched.

``event()`` builds an unsaved entry from the queued message, ``record()`` writes a batch in one insert (inside
the caller's transaction), ``write_log()`` appends them to the tracking log file once committed, ``search()``
is Get-MessageTrackingLog.
"""
import logging

from django.conf import settings
from django.db.models.functions import Lower

from . import tracking_log
from .models import TrackingEvent, TrackingEventId

logger = logging.getLogger(__name__)

DEFAULT_RESULT_SIZE = 1000  # Get-MessageTrackingLog's default -ResultSize


def event(event_id, source, message, recipient, *, recipient_status="", connector_name="", remote_host="",
          remote_ip=None, server_name=None, timestamp=None):
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
    return TrackingEvent.objects.bulk_create(events)


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


def search(*, sender=None, recipients=(), message_id=None, event_id=None, start=None, end=None,
           result_size=DEFAULT_RESULT_SIZE):
    """Entries oldest first; addresses match case-insensitively, Start inclusive, End exclusive.

    ``result_size`` None is Exchange's ``-ResultSize Unlimited``.
    """
    events = TrackingEvent.objects.order_by("timestamp", "id")
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
    if start is not None:
        events = events.filter(timestamp__gte=start)
    if end is not None:
        events = events.filter(timestamp__lt=end)
    return events if result_size is None else events[:result_size]
