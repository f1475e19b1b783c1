"""Delivery status notifications to a message's sender: the NDR for recipients that failed, and Exchange's delay
notification for recipients still waiting after DelayNotificationTimeout. Built here, queued by
``queueing.queue_notification`` like any message (from the null sender)."""

from dataclasses import dataclass

from . import dsn
from .models import Message
from .outcomes import expires_at


@dataclass(frozen=True)
class Notification:
    original: Message  # the message it reports on
    content: bytes
    statuses: list[dsn.RecipientStatus]


def ndr(message, failures, server):
    """The NDR for ``failures`` — [(recipient row, Result, connector name)] — of ``message``; None when no
    notification may be sent (null sender, or one of our own notifications: no bounce loops)."""
    statuses = [
        dsn.RecipientStatus(
            address=row.address,
            status=result.enhanced_status,
            action="failed",
            diagnostic=result.response,
            remote_mta=result.remote_host or None,
            connector_name=connector_name,
            last_attempt_at=row.last_attempt_at,
        )
        for row, result, connector_name in failures
    ]
    return _notification(message, statuses, dsn.build_ndr, server)


def delay_notification(message, delays, server):
    """The delay DSN for ``delays`` — [(recipient row, connector name)] — of ``message``, or None."""
    statuses = [
        dsn.RecipientStatus(
            address=row.address,
            status=_enhanced_status(row.last_response, "4.4.7"),
            action="delayed",
            diagnostic=row.last_response or "400 4.4.7 Delivery delayed",
            remote_mta=None,
            connector_name=connector_name,
            last_attempt_at=row.last_attempt_at,
            will_retry_until=expires_at(message),
        )
        for row, connector_name in delays
    ]
    return _notification(message, statuses, dsn.build_delay_notification, server)


def _notification(message, statuses, build, server):
    if message.is_dsn or not dsn.should_send_ndr(message.sender):
        return None
    content = build(
        bytes(message.content),
        envelope_sender=message.sender,
        reporting_mta=server.fqdn,
        recipients=statuses,
        arrival_date=message.submitted_at,
    )
    return Notification(message, content, statuses)


def _enhanced_status(response, default):
    """The enhanced status code in a stored reply ("451 4.4.0 ..." → "4.4.0"), else ``default``."""
    parts = (response or "").split()
    if len(parts) > 1 and parts[1][:2] == "4." and parts[1].count(".") == 2:
        return parts[1]
    return default
