"""Queued mail for the queue, sweeper and queue viewer tests: messages through the real queue_message, then the
recipient rows set to the state a test needs (Retry, Unreachable, claimed...)."""

from datetime import timedelta

from django.utils import timezone

from sendconn.transport import tracking
from sendconn.transport.models import Message, Recipient, RecipientStatus, TrackingEventId, TrackingSource
from sendconn.transport.queueing import UNREACHABLE_RESPONSE, queue_message

SENDER = "julia@contoso.com"
CONTENT = b"From: julia@contoso.com\r\nSubject: Quarterly report\r\nMessage-ID: <q3@contoso.com>\r\n\r\nHi\r\n"
DEFERRED = "451 4.4.0 DNS query failed. The error was: SERVFAIL"
# What queue_message gives a recipient no connector covers (a test parks routed rows there).
UNREACHABLE = dict(
    status=RecipientStatus.UNREACHABLE, connector=None, next_hop_domain="", last_response=UNREACHABLE_RESPONSE
)


def queued(*recipients, sender=SENDER, age=None, **row_values):
    """A message to ``recipients`` (submitted ``age`` ago, if given) whose recipient rows have ``row_values``."""
    message = queue_message(sender, list(recipients), CONTENT)
    if age is not None:
        Message.objects.filter(pk=message.pk).update(submitted_at=timezone.now() - age)
    if row_values:
        Recipient.objects.filter(message=message).update(**row_values)
    message.refresh_from_db()
    return message


def retry_values(attempt_count=1, attempted_ago=timedelta(0), retry_in=timedelta(minutes=5)):
    """Recipient row values after ``attempt_count`` attempts failed on DNS, the last one ``attempted_ago``."""
    attempted = timezone.now() - attempted_ago
    return dict(
        status=RecipientStatus.RETRY,
        attempt_count=attempt_count,
        last_response=DEFERRED,
        last_attempt_at=attempted,
        next_attempt_at=attempted + retry_in,
    )


def retrying(*recipients, minutes_ago=1, **row_values):
    """A message whose recipients failed twice, the last time ``minutes_ago``, and wait 10 minutes for a retry."""
    values = retry_values(attempt_count=2, attempted_ago=timedelta(minutes=minutes_ago), retry_in=timedelta(minutes=10))
    return queued(*recipients, **{**values, **row_values})


def unreachable(*recipients, **row_values):
    return queued(*recipients, **UNREACHABLE, next_attempt_at=None, **row_values)


def delivered(message, connector, minutes_ago=0):
    """``message``'s recipients delivered through ``connector``: Delivered rows and their SEND entries."""
    when = timezone.now() - timedelta(minutes=minutes_ago)
    Recipient.objects.filter(message=message).update(status=RecipientStatus.DELIVERED, next_attempt_at=None)
    tracking.record(
        [
            tracking.event(
                TrackingEventId.SEND,
                TrackingSource.SMTP,
                message,
                row.address,
                connector_name=connector.name,
                timestamp=when,
            )
            for row in message.recipients.all()
        ]
    )
