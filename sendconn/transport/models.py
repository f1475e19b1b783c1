"""The mail queue and message tracking, in the database.

The database is the queue: a message is stored once, each recipient is a row with its own state, and the
delivery queue a recipient sits in is its next hop — the chosen connector plus ``next_hop_domain`` (Exchange's
NextHopSolutionKey). Celery only carries wake-ups naming a next hop; workers claim due rows of that next hop.
"""

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone

from sendconn.connectors.models import SendConnector, TransportServer

MAX_ADDRESS_LENGTH = 320  # RFC 5321: 64-octet local part, "@", 255-octet domain
MAX_HEADER_LENGTH = 998  # RFC 5322 line length


class Message(models.Model):
    """One submitted message; its content is stored once whatever the number of recipients."""

    sender = models.CharField(max_length=MAX_ADDRESS_LENGTH, blank=True)  # "" is the null sender <>
    content = models.BinaryField()
    size = models.PositiveBigIntegerField()
    message_id = models.CharField(max_length=MAX_HEADER_LENGTH, db_index=True)  # the Message-ID header
    subject = models.TextField(blank=True)
    submitted_at = models.DateTimeField(default=timezone.now, db_index=True)
    received_by = models.ForeignKey(TransportServer, null=True, on_delete=models.SET_NULL, related_name="+")
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    client_hostname = models.CharField(max_length=255, blank=True)
    # An NDR or delay notification we generated; never answered by another NDR (no bounce loops).
    is_dsn = models.BooleanField(default=False)
    original_message = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.message_id} from <{self.sender}>"


class RecipientStatus(models.TextChoices):
    """Exchange's message status words, as Get-Message / Queue Viewer show them."""

    READY = "Ready", "Ready"
    RETRY = "Retry", "Retry"
    DELIVERED = "Delivered", "Delivered"
    FAILED = "Failed", "Failed"
    SUSPENDED = "Suspended", "Suspended"
    UNREACHABLE = "Unreachable", "Unreachable"


# The statuses of a recipient still waiting in a queue (Delivered and Failed are done).
QUEUED_STATUSES = (RecipientStatus.READY, RecipientStatus.RETRY, RecipientStatus.SUSPENDED, RecipientStatus.UNREACHABLE)


class Recipient(models.Model):
    """One recipient of a message and its delivery state.

    Ready and Retry rows are due when ``next_attempt_at`` has passed (Ready rows get the submission time);
    final and parked rows (Delivered, Failed, Suspended, Unreachable) have none. A worker owns a row while
    ``claimed_by``/``claimed_at`` are set; a claim older than the task time limit belongs to a dead worker.
    """

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="recipients")
    address = models.CharField(max_length=MAX_ADDRESS_LENGTH)
    domain = models.CharField(max_length=255, db_index=True)  # lower-case, no trailing dot
    status = models.CharField(max_length=16, choices=RecipientStatus.choices, default=RecipientStatus.READY)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_response = models.TextField(blank=True)  # e.g. "451 4.4.0 DNS query failed"
    # The delivery queue: connector + next hop (the recipient domain for DNS routing, the smart-host set text
    # such as "relay.contoso.com,[10.0.0.1]" for smart-host routing) — Exchange's NextHopSolutionKey.
    # No index of its own: recipient_next_hop_due starts with it. With one, SQLite's planner (no statistics on a
    # new queue) reads the claim's "due rows of a next hop, oldest first" through it, every row the connector ever
    # had, as the queue grows.
    connector = models.ForeignKey(
        SendConnector,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="queued_recipients",
        db_index=False,
    )
    next_hop_domain = models.CharField(max_length=1024, blank=True)
    claimed_by = models.CharField(max_length=255, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    delay_notified = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        # The queue viewer's actions (Retry-Queue, Suspend-/Resume-Queue and -Message, Remove-Message).
        permissions = [("manage_queues", "Can manage queues and messages")]
        indexes = [
            # "Due rows of next hop X": what a woken worker claims.
            models.Index(
                fields=["connector", "next_hop_domain", "status", "next_attempt_at"], name="recipient_next_hop_due"
            ),
            # The sweeper: due Retry rows, Unreachable rows to re-route, expiry.
            models.Index(fields=["status", "next_attempt_at"], name="recipient_status_due"),
            # Stale claims of dead workers; only claimed rows are indexed.
            models.Index(fields=["claimed_at"], condition=Q(claimed_at__isnull=False), name="recipient_claimed"),
        ]

    def __str__(self):
        return f"{self.address} ({self.status})"


class SuspendedQueue(models.Model):
    """A delivery queue (connector + next hop) or the Unreachable queue (no connector) that Suspend-Queue stopped.

    As in Exchange the queue is suspended, not its messages: they keep their status, mail routed to the queue
    afterwards waits in it too, and workers take nothing from it until Resume-Queue removes this row.
    """

    connector = models.ForeignKey(SendConnector, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    next_hop_domain = models.CharField(max_length=1024, blank=True)
    suspended_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["connector", "next_hop_domain"], name="suspended_queue_next_hop")]

    def __str__(self):
        return f"{self.next_hop_domain or 'Unreachable'} (suspended)"


class DeliveryEngineRecord(models.Model):
    """A live delivery engine (one per worker process): the engines of a server share its outbound connection
    limits, each taking its part while its heartbeat is fresh."""

    server = models.ForeignKey(TransportServer, on_delete=models.CASCADE, related_name="delivery_engines")
    token = models.CharField(max_length=128, unique=True)  # the engine's claim token
    heartbeat_at = models.DateTimeField()
    sessions_open = models.PositiveIntegerField(default=0)

    def __str__(self):
        return self.token


class TrackingEventId(models.TextChoices):
    RECEIVE = "RECEIVE", "RECEIVE"
    SEND = "SEND", "SEND"
    DEFER = "DEFER", "DEFER"
    FAIL = "FAIL", "FAIL"
    DSN = "DSN", "DSN"


class TrackingSource(models.TextChoices):
    SMTP = "SMTP", "SMTP"
    DNS = "DNS", "DNS"
    ROUTING = "ROUTING", "ROUTING"
    QUEUE = "QUEUE", "QUEUE"
    DSN = "DSN", "DSN"


class TrackingEvent(models.Model):
    """One message tracking log entry for one recipient (Get-MessageTrackingLog's rows).

    Message facts are copied so the entry outlives the queued message.
    """

    timestamp = models.DateTimeField(default=timezone.now, db_index=True)
    event_id = models.CharField(max_length=16, choices=TrackingEventId.choices)
    source = models.CharField(max_length=16, choices=TrackingSource.choices)
    queued_message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="tracking_events"
    )
    internal_message_id = models.BigIntegerField(null=True, blank=True)  # the queue id, kept after deletion
    message_id = models.CharField(max_length=MAX_HEADER_LENGTH, blank=True)  # the Message-ID header
    sender = models.CharField(max_length=MAX_ADDRESS_LENGTH, blank=True)
    subject = models.TextField(blank=True)
    recipient = models.CharField(max_length=MAX_ADDRESS_LENGTH, blank=True)
    recipient_status = models.TextField(blank=True)  # the remote server's reply or our reason
    connector_name = models.CharField(max_length=64, blank=True)
    server_name = models.CharField(max_length=64, blank=True)  # the transport server that logged the event
    # The other end: the submitting client for RECEIVE, the destination host for SEND/DEFER/FAIL.
    remote_host = models.CharField(max_length=255, blank=True)
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    total_bytes = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["timestamp", "id"]
        indexes = [
            models.Index(Lower("sender"), F("timestamp"), name="tracking_sender"),
            models.Index(Lower("recipient"), F("timestamp"), name="tracking_recipient"),
            models.Index(fields=["message_id", "timestamp"], name="tracking_message_id"),
            models.Index(fields=["internal_message_id", "timestamp"], name="tracking_internal_message_id"),
            models.Index(fields=["event_id", "timestamp"], name="tracking_event_id"),
        ]

    def __str__(self):
        return f"{self.timestamp:%Y-%m-%d %H:%M:%S} {self.event_id} {self.recipient}"
