"""The dashboard's numbers, each one aggregate query whatever the size of the queue or the tracking log."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from sendconn.connectors.models import SendConnector
from sendconn.transport.models import (
    QUEUED_STATUSES,
    Message,
    Recipient,
    SuspendedQueue,
    TrackingEvent,
    TrackingEventId,
)
from sendconn.verification.models import VerificationStatus
from sendconn.verification.selectors import with_last_verification

FAILING_SHOWN = 5  # connectors named on the tile; the count covers them all


def connector_counts():
    """``{"enabled": n, "disabled": n, "failing": n}``: failing = the latest Verify delivery run failed."""
    counts = with_last_verification(SendConnector.objects.all()).aggregate(
        enabled_count=Count("pk", filter=Q(enabled=True)),
        disabled_count=Count("pk", filter=Q(enabled=False)),
        failing_count=Count("pk", filter=Q(last_verification_status=VerificationStatus.FAILED)),
    )
    return {
        "enabled": counts["enabled_count"],
        "disabled": counts["disabled_count"],
        "failing": counts["failing_count"],
    }


def failing_connectors(limit=FAILING_SHOWN):
    """Connectors whose latest verification failed, most recent failure first: name, guid and the run's id."""
    return list(
        with_last_verification(SendConnector.objects.all())
        .filter(last_verification_status=VerificationStatus.FAILED)
        .order_by("-last_verification_at", "name")
        .values("guid", "name", "last_verification_at", "last_verification_id")[:limit]
    )


def queue_totals():
    """``[(state, recipients)]`` for every state of a queued recipient (Delivered and Failed are done), zeros
    included."""
    counts = dict(
        Recipient.objects.filter(status__in=QUEUED_STATUSES)
        .values_list("status")
        .annotate(count=Count("pk"))
        .order_by()
    )
    return [(state, counts.get(state, 0)) for state in QUEUED_STATUSES]


def suspended_queue_count():
    """Queues Suspend-Queue stopped: their mail, whatever its state, waits until Resume-Queue."""
    return SuspendedQueue.objects.count()


@dataclass(frozen=True)
class RecentOutcomes:
    since: datetime
    delivered: int  # SEND entries: one per recipient delivered
    failed: int  # FAIL entries: one per recipient that failed for good


def recent_outcomes(now=None, window=timedelta(hours=1)):
    """Recipients delivered and failed since the start of the minute one ``window`` ago (whole minutes, so a
    tracking search from that time finds the same entries)."""
    since = ((now or timezone.now()) - window).replace(second=0, microsecond=0)
    counts = TrackingEvent.objects.filter(
        timestamp__gte=since, event_id__in=[TrackingEventId.SEND, TrackingEventId.FAIL]
    ).aggregate(
        delivered=Count("pk", filter=Q(event_id=TrackingEventId.SEND)),
        failed=Count("pk", filter=Q(event_id=TrackingEventId.FAIL)),
    )
    return RecentOutcomes(since, counts["delivered"], counts["failed"])


def oldest_waiting_message():
    """The message submitted first that still has a recipient waiting (``{pk, submitted_at, sender, subject}``),
    or None. Walks messages by submission time and stops at the first with a waiting recipient."""
    waiting = Recipient.objects.filter(message=OuterRef("pk"), status__in=QUEUED_STATUSES)
    return (
        Message.objects.filter(Exists(waiting))
        .order_by("submitted_at", "pk")
        .values("pk", "submitted_at", "sender", "subject")
        .first()
    )
