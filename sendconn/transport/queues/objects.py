"""What the queue viewer shows: a Queue and a QueuedMessage, with Get-Queue's and Get-Message's properties.

The selectors build them from aggregate rows; the services act on them.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import QuerySet

from sendconn.connectors.models import SendConnector

from ..claims import DUE_STATUSES
from ..models import Recipient, RecipientStatus, SuspendedQueue

NEXT_HOP, SUBMISSION, UNREACHABLE = "NextHop", "Submission", "Unreachable"  # the kinds of queue
ACTIVE, READY, RETRY, SUSPENDED = "Active", "Ready", "Retry", "Suspended"  # queue and message statuses
QUEUE_STATUSES = (ACTIVE, READY, RETRY, SUSPENDED)


class QueueError(Exception):
    """An action that can't be done as asked; the message says why, in Exchange's words."""


class QueueNotFound(QueueError):
    """No queue or message has the identity (or several queues do)."""


def queue_rows(kind: str, connector_id: int | None, next_hop_domain: str) -> QuerySet[Recipient]:
    """The Recipient rows in the queue of ``kind`` (and, for a delivery queue, of that next hop)."""
    if kind == NEXT_HOP:
        return Recipient.objects.filter(
            connector_id=connector_id,
            next_hop_domain=next_hop_domain,
            status__in=(*DUE_STATUSES, RecipientStatus.SUSPENDED),
        )
    if kind == SUBMISSION:
        return Recipient.objects.filter(connector__isnull=True, status__in=DUE_STATUSES)
    return Recipient.objects.filter(
        connector__isnull=True, status__in=(RecipientStatus.UNREACHABLE, RecipientStatus.SUSPENDED)
    )


@dataclass
class Queue:
    """One queue with Get-Queue's properties; recipient counts are per row status (and claimed rows)."""

    kind: str
    connector: SendConnector | None
    next_hop_domain: str
    identity: str
    message_count: int = 0
    recipients: int = 0
    ready: int = 0
    retry: int = 0
    suspended: int = 0
    unreachable: int = 0
    active: int = 0
    last_error: str = ""
    last_retry_time: datetime | None = None
    next_retry_time: datetime | None = None
    incoming_rate: float = 0.0
    outgoing_rate: float = 0.0
    is_suspended: bool = False  # by Suspend-Queue

    @property
    def key(self) -> tuple[str, int | None, str]:
        return (self.kind, self.connector.pk if self.connector else None, self.next_hop_domain)

    @property
    def status(self) -> str:
        """Suspended by Suspend-Queue; Active while a worker delivers; Retry when all that waits is waiting for
        its retry time (the last attempts failed); else Ready."""
        if self.is_suspended:
            return SUSPENDED
        if self.active:
            return ACTIVE
        if self.retry and not self.ready:
            return RETRY
        return READY

    @property
    def delivery_type(self) -> str:
        if self.kind == UNREACHABLE:
            return "Unreachable"
        if self.kind == SUBMISSION:
            return "Undefined"
        assert self.connector is not None  # a NextHop queue is a connector's
        return "DnsConnectorDelivery" if self.connector.dns_routing_enabled else "SmartHostConnectorDelivery"

    @property
    def next_hop_connector(self) -> str:
        return self.connector.name if self.connector else ""

    @property
    def velocity(self) -> float:
        """Exchange's drain rate: OutgoingRate − IncomingRate."""
        return round(self.outgoing_rate - self.incoming_rate, 3)

    @property
    def rows(self) -> QuerySet[Recipient]:
        """The Recipient rows in this queue."""
        return queue_rows(self.kind, self.key[1], self.next_hop_domain)

    # What the queue viewer offers for this queue.
    @property
    def can_retry(self) -> bool:
        return self.kind == NEXT_HOP and self.retry > 0 and not self.is_suspended

    @property
    def can_resubmit(self) -> bool:
        return self.kind in (SUBMISSION, UNREACHABLE) or self.ready + self.retry > 0

    @property
    def can_suspend(self) -> bool:
        return self.kind != SUBMISSION and not self.is_suspended

    @property
    def can_resume(self) -> bool:
        return self.is_suspended

    @property
    def suspension(self) -> QuerySet[SuspendedQueue]:
        """The queue's SuspendedQueue rows (none unless Suspend-Queue ran)."""
        return SuspendedQueue.objects.filter(connector=self.connector, next_hop_domain=self.next_hop_domain)


@dataclass
class QueuedMessage:
    """One message in one queue (Get-Message's object) with its recipient rows in that queue."""

    queue: Queue
    pk: int
    from_address: str
    subject: str
    size: int
    internet_message_id: str
    date_received: datetime
    source_ip: str | None
    is_dsn: bool
    status: str
    recipient_count: int
    recipients: list[Recipient] = field(default_factory=list)

    @property
    def identity(self) -> str:
        return f"{self.queue.identity}\\{self.pk}"

    @property
    def expiration_time(self) -> datetime:
        return self.date_received + settings.SENDCONN_MESSAGE_EXPIRATION_TIMEOUT

    @property
    def message_source_name(self) -> str:
        return "DSN" if self.is_dsn else "SMTP"

    @property
    def retry_count(self) -> int:
        return max((row.attempt_count for row in self.recipients), default=0)

    @property
    def last_error(self) -> str:
        """The reply to the latest attempt (or why the recipient is unreachable)."""
        answered = [row for row in self.recipients if row.last_response]
        latest = max(answered, key=lambda row: (row.last_attempt_at or self.date_received, row.pk), default=None)
        return latest.last_response if latest else ""

    @property
    def next_retry_time(self) -> datetime | None:
        return min((row.next_attempt_at for row in self.recipients if row.next_attempt_at), default=None)

    @property
    def can_suspend(self) -> bool:
        return any(row.status != RecipientStatus.SUSPENDED and not row.claimed_by for row in self.recipients)

    @property
    def can_resume(self) -> bool:
        return any(row.status == RecipientStatus.SUSPENDED for row in self.recipients)
