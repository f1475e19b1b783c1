"""The message tracking log file: Exchange's ``MSGTRKyyyymmdd-nnnn.log``, one CSV row per tracking event.

The database holds the searchable events (Get-MessageTrackingLog); this file is the same record in the form
Exchange admins' scripts and log tools read. Callers write a batch after committing it:

    write_events([{"event-id": "SEND", "recipient-address": "bob@fabrikam.test", "source": "SMTP", ...}])
"""

from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from .logfiles import LogFormat, Retention, circular_log, format_timestamp

FIELDS = (
    "date-time",
    "client-ip",
    "client-hostname",
    "server-ip",
    "server-hostname",
    "source-context",
    "connector-id",
    "source",
    "event-id",
    "internal-message-id",
    "message-id",
    "network-message-id",
    "recipient-address",
    "recipient-status",
    "total-bytes",
    "recipient-count",
    "related-recipient-address",
    "reference",
    "message-subject",
    "sender-address",
    "return-path",
    "message-info",
    "directionality",
    "tenant-id",
    "original-client-ip",
    "original-server-ip",
    "custom-data",
    "transport-traffic-type",
    "log-id",
    "schema-version",
)
_FIELD_NAMES = frozenset(FIELDS)
MESSAGE_TRACKING_LOG = LogFormat(prefix="MSGTRK", log_type="Message Tracking Log", fields=FIELDS)


def write_events(events, *, directory=None) -> None:
    """Append one row per event. Each event is a dict keyed by field name (``message-id``; ``message_id``
    works too); missing fields are empty, a missing date-time is now. Datetimes are written in UTC,
    lists and tuples joined with ``;`` (multi-valued fields such as recipient-address), None as empty.
    Unknown keys raise ValueError (a misspelt field would otherwise vanish silently)."""
    rows = [_row(event) for event in events]
    if not rows:
        return
    log = circular_log(
        Path(directory or settings.SENDCONN_TRACKING_LOG_DIR),
        MESSAGE_TRACKING_LOG,
        Retention(
            max_file_size=settings.SENDCONN_TRACKING_LOG_MAX_FILE_SIZE,
            max_directory_size=settings.SENDCONN_TRACKING_LOG_MAX_DIRECTORY_SIZE,
            max_age=settings.SENDCONN_TRACKING_LOG_MAX_AGE,
        ),
    )
    log.write_rows(rows)


def _row(event):
    if not _FIELD_NAMES.issuperset(event):
        event = {key.replace("_", "-"): value for key, value in event.items()}
        unknown = sorted(set(event) - _FIELD_NAMES)
        if unknown:
            raise ValueError(f"Unknown message tracking field(s): {', '.join(unknown)}.")
    if event.get("date-time") is None:
        event = {**event, "date-time": datetime.now(UTC)}
    return [_text(event.get(field)) for field in FIELDS]


def _text(value):
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, (list, tuple)):
        return ";".join(_text(item) for item in value)
    return str(value)
