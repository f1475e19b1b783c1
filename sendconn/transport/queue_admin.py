"""The queue viewer: queues as Exchange shows them, the messages in them, and the actions on both.

Queues aren't stored. A delivery queue is the set of queued Recipient rows (Ready, Retry, Suspended) with the
same next hop — Exchange's NextHopSolutionKey: the connector plus ``next_hop_domain``. Two more queues always
exist:

- ``Submission``: messages received but not routed yet. Routing happens while a message is queued
  (``queueing.queue_messages``), so the only rows waiting here are those whose connector was removed (or that an
  administrator resubmitted) until they are routed again; the queue is normally empty.
- ``Unreachable``: recipients no Send connector matches, and suspended rows without a connector.

Suspend-Queue suspends the queue itself (a ``SuspendedQueue`` row), as Exchange does: its messages keep their
status, mail routed to it later waits in it too, and it is listed, as Suspended, even while empty. A delivery
queue that emptied stays listed for SENDCONN_QUEUE_MAX_IDLE_TIME (Exchange's QueueMaxIdleTime, 3 minutes), found
from the SEND and FAIL entries of the tracking log, so that it can still be suspended.

Identities
----------
``EX01\\contoso.com`` is the queue of next hop ``contoso.com`` (a recipient domain, or a smart-host set such as
``relay.contoso.com,[10.0.0.1]``): Exchange's ``Server\\NextHopDomain``. When two connectors have queues for the
same next hop (an address space moved while mail was queued), each is named with its connector as a third part,
``EX01\\contoso.com\\To internet``; that long form (connector name or GUID) is accepted for every queue, so
scripts may always use it. A next hop never contains a backslash, so the first two parts split unambiguously.
The special queues are ``EX01\\Submission`` and ``EX01\\Unreachable``. The server part is the local server's name
(all servers share the one queue database; the console shows it as the server it runs on); an identity without a
server part means the local server. A queued message is ``<queue identity>\\<message id>``, e.g.
``EX01\\contoso.com\\1234``, the message id being the queue id of ``Message``.

Reads are aggregate queries (GROUP BY next hop, counting per status): the queue list costs the same few queries
with ten or a hundred thousand queued recipients, and the messages of a queue are paged. Writes are conditional
UPDATEs (or claims, for removal), so a row a worker is delivering (claimed: Exchange's Active) is never changed
under it; it is counted as active and left alone, as Exchange's PendingSuspend / PendingRemove would finish the
attempt first. Every action is written to the admin audit log as its cmdlet line.
"""

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Count, F, Max, Min, OuterRef, Prefetch, Q, Subquery, Value, When
from django.db.models.functions import Lower, StrIndex, Substr
from django.utils import timezone

from sendconn.connectors import audit
from sendconn.connectors import selectors as connector_selectors
from sendconn.connectors.models import SendConnector, SmartHost
from sendconn.connectors.servers import local_server

from . import sweeper, tracking, wakeups
from .claims import DUE_STATUSES, claim, claim_token
from .ledger import reroute_claimed
from .models import (
    QUEUED_STATUSES,
    Message,
    Recipient,
    RecipientStatus,
    SuspendedQueue,
    TrackingEvent,
    TrackingEventId,
    TrackingSource,
)
from .outcomes import Result
from .queueing import UNREACHABLE_RESPONSE, queue_ndr
from .routing import smart_host_set

NEXT_HOP, SUBMISSION, UNREACHABLE = "NextHop", "Submission", "Unreachable"  # the kinds of queue
ACTIVE, READY, RETRY, SUSPENDED = "Active", "Ready", "Retry", "Suspended"  # queue and message statuses
QUEUE_STATUSES = (ACTIVE, READY, RETRY, SUSPENDED)

MAX_MESSAGE_ID = 2**63 - 1  # Message ids are BigAutoField: a larger number names no message (and overflows SQLite)
RATE_WINDOW = timedelta(minutes=1)  # IncomingRate / OutgoingRate: messages per second over the last minute
REMOVED = Result.ours(550, "4.3.2", "QUEUE.Admin; message deleted by administrative action", TrackingSource.QUEUE)


class QueueError(Exception):
    """An action that can't be done as asked; the message says why, in Exchange's words."""


class QueueNotFound(QueueError):
    """No queue or message has the identity (or several queues do)."""


def not_found(identity):
    return QueueNotFound(f"The operation couldn't be performed because object '{identity}' couldn't be found.")


def server_name():
    return settings.SENDCONN_SERVER_NAME


# -- queues ------------------------------------------------------------------------------------------------------


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
    def key(self):
        return (self.kind, self.connector.pk if self.connector else None, self.next_hop_domain)

    @property
    def status(self):
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
    def delivery_type(self):
        if self.kind == UNREACHABLE:
            return "Unreachable"
        if self.kind == SUBMISSION:
            return "Undefined"
        return "DnsConnectorDelivery" if self.connector.dns_routing_enabled else "SmartHostConnectorDelivery"

    @property
    def next_hop_connector(self):
        return self.connector.name if self.connector else ""

    @property
    def velocity(self):
        """Exchange's drain rate: OutgoingRate − IncomingRate."""
        return round(self.outgoing_rate - self.incoming_rate, 3)

    @property
    def rows(self):
        """The Recipient rows in this queue."""
        return queue_rows(self.kind, self.key[1], self.next_hop_domain)

    # What the queue viewer offers for this queue.
    @property
    def can_retry(self):
        return self.kind == NEXT_HOP and self.retry > 0 and not self.is_suspended

    @property
    def can_resubmit(self):
        return self.kind in (SUBMISSION, UNREACHABLE) or self.ready + self.retry > 0

    @property
    def can_suspend(self):
        return self.kind != SUBMISSION and not self.is_suspended

    @property
    def can_resume(self):
        return self.is_suspended

    @property
    def suspension(self):
        """The queue's SuspendedQueue rows (none unless Suspend-Queue ran)."""
        return SuspendedQueue.objects.filter(connector=self.connector, next_hop_domain=self.next_hop_domain)


def queue_rows(kind, connector_id, next_hop_domain):
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


def _with_queue_key(rows):
    """``rows`` annotated with the queue each is in: ``queue_kind``, ``connector_id``, ``queue_hop``."""
    return rows.annotate(
        queue_kind=Case(
            When(connector__isnull=False, then=Value(NEXT_HOP)),
            When(status__in=DUE_STATUSES, then=Value(SUBMISSION)),
            default=Value(UNREACHABLE),
        ),
        queue_hop=Case(When(connector__isnull=False, then=F("next_hop_domain")), default=Value("")),
    )


def _status_count(status):
    return Count("id", filter=Q(status=status))


def _queue_groups(rows):
    """One aggregate row per queue among ``rows``: message and per-status recipient counts, retry times, and
    the reply of its latest failed attempt (LastError)."""
    latest_failure = (
        Recipient.objects.filter(
            connector_id=OuterRef("connector_id"), next_hop_domain=OuterRef("queue_hop"), status=RecipientStatus.RETRY
        )
        .order_by("-last_attempt_at", "-id")
        .values("last_response")[:1]
    )
    return (
        _with_queue_key(rows.filter(status__in=QUEUED_STATUSES))
        .values("queue_kind", "connector_id", "queue_hop")
        .annotate(
            message_count=Count("message_id", distinct=True),
            recipients=Count("id"),
            ready=_status_count(RecipientStatus.READY),
            retry=_status_count(RecipientStatus.RETRY),
            suspended=_status_count(RecipientStatus.SUSPENDED),
            unreachable=_status_count(RecipientStatus.UNREACHABLE),
            active=Count("id", filter=~Q(claimed_by="")),
            last_retry_time=Max("last_attempt_at", filter=Q(status=RecipientStatus.RETRY)),
            next_retry_time=Min("next_attempt_at", filter=Q(status=RecipientStatus.RETRY)),
        )
        .annotate(last_error=Subquery(latest_failure))
        .order_by()
    )


def _incoming(since):
    """{queue key: messages that entered it since ``since``} (those still queued and those gone out already)."""
    rows = Recipient.objects.filter(message__submitted_at__gte=since).filter(
        Q(connector__isnull=False) | Q(status__in=QUEUED_STATUSES)
    )
    groups = (
        _with_queue_key(rows)
        .values("queue_kind", "connector_id", "queue_hop")
        .annotate(messages=Count("message_id", distinct=True))
        .order_by()
    )
    return {(group["queue_kind"], group["connector_id"], group["queue_hop"]): group["messages"] for group in groups}


def _outgoing(since):
    """{(connector name, recipient domain): messages sent since ``since``}, from the SEND tracking events."""
    domain = Lower(Substr("recipient", StrIndex("recipient", Value("@")) + 1))
    groups = (
        TrackingEvent.objects.filter(event_id=TrackingEventId.SEND, timestamp__gte=since)
        .annotate(domain=domain)
        .values("connector_name", "domain")
        .annotate(messages=Count("internal_message_id", distinct=True))
        .order_by()
    )
    return {(group["connector_name"], group["domain"]): group["messages"] for group in groups}


def _sent(outgoing, queue):
    if queue.kind != NEXT_HOP:
        return 0
    name = queue.connector.name
    if queue.connector.dns_routing_enabled:  # a DNS next hop is the recipient domain
        return outgoing.get((name, queue.next_hop_domain.lower()), 0)
    return sum(count for (connector_name, _), count in outgoing.items() if connector_name == name)


def _rate(count):
    return round(count / RATE_WINDOW.total_seconds(), 3)


def _identity(kind, next_hop_domain, connector, shared):
    if kind != NEXT_HOP:
        return f"{server_name()}\\{kind}"
    identity = f"{server_name()}\\{next_hop_domain}"
    return f"{identity}\\{connector.name}" if shared else identity


def _suspended_keys(**lookups):
    """The keys of the suspended queues (SuspendedQueue rows matching ``lookups``)."""
    return {
        (NEXT_HOP if connector_id else UNREACHABLE, connector_id, hop)
        for connector_id, hop in SuspendedQueue.objects.filter(**lookups).values_list("connector_id", "next_hop_domain")
    }


def _recently_active_keys():
    """Keys of the delivery queues that sent or failed mail within SENDCONN_QUEUE_MAX_IDLE_TIME: (connector, recipient
    domain) pairs from the tracking log (one query), their connectors and smart hosts (two more when there are any)."""
    since = timezone.now() - settings.SENDCONN_QUEUE_MAX_IDLE_TIME
    pairs = set(
        TrackingEvent.objects.filter(event_id__in=[TrackingEventId.SEND, TrackingEventId.FAIL], timestamp__gte=since)
        .exclude(connector_name="")
        .annotate(domain=Lower(Substr("recipient", StrIndex("recipient", Value("@")) + 1)))
        .values_list("connector_name", "domain")
        .distinct()
    )
    if not pairs:
        return set()
    connectors = SendConnector.objects.filter(name__in={name for name, _ in pairs}).prefetch_related(
        Prefetch("smart_hosts", queryset=SmartHost.objects.order_by("position"))
    )
    by_name = {connector.name: connector for connector in connectors}
    keys = set()
    for name, domain in pairs:
        connector = by_name.get(name)
        if connector is not None:  # a connector renamed or removed since: its queue is gone
            hop = domain if connector.dns_routing_enabled else smart_host_set(connector.smart_hosts.all())
            keys.add((NEXT_HOP, connector.pk, hop))
    return keys


def _build_queues(groups, *, special=True, suspended=frozenset(), recently_active=frozenset()):
    """Queue objects from ``_queue_groups`` rows, the ``suspended`` queue keys (a suspended queue is listed even
    when empty) and the ``recently_active`` ones (listed, empty if need be, for QueueMaxIdleTime), with their
    connectors (one query) and rates (two)."""
    groups = list(groups)
    keys = {(group["queue_kind"], group["connector_id"], group["queue_hop"]) for group in groups}
    keys |= suspended | recently_active
    connectors = SendConnector.objects.in_bulk({connector_id for _, connector_id, _ in keys if connector_id})
    hops = Counter(hop.lower() for kind, _, hop in keys if kind == NEXT_HOP)
    since = timezone.now() - RATE_WINDOW
    incoming, outgoing = _incoming(since), _outgoing(since)
    by_key = {}
    for group in groups:
        kind, connector = group["queue_kind"], connectors.get(group["connector_id"])
        if kind == NEXT_HOP and connector is None:  # removed since the count: its rows wait for the sweeper
            continue
        hop = group["queue_hop"]
        counts = {
            name: group[name]
            for name in (
                "message_count",
                "recipients",
                "ready",
                "retry",
                "suspended",
                "unreachable",
                "active",
                "last_retry_time",
                "next_retry_time",
            )
        }
        queue = Queue(kind, connector, hop, _identity(kind, hop, connector, hops[hop.lower()] > 1), **counts)
        queue.last_error = group["last_error"] or (UNREACHABLE_RESPONSE if queue.unreachable else "")
        by_key[queue.key] = queue
    for kind, connector_id, hop in suspended:
        connector = connectors.get(connector_id)
        if kind == NEXT_HOP and connector is None:
            continue
        queue = by_key.setdefault(
            (kind, connector_id, hop),
            Queue(kind, connector, hop, _identity(kind, hop, connector, hops[hop.lower()] > 1)),
        )
        queue.is_suspended = True
    for kind, connector_id, hop in recently_active:
        connector = connectors.get(connector_id)
        if connector is not None:
            by_key.setdefault(
                (kind, connector_id, hop),
                Queue(kind, connector, hop, _identity(kind, hop, connector, hops[hop.lower()] > 1)),
            )
    if special:
        for kind in (SUBMISSION, UNREACHABLE):
            by_key.setdefault((kind, None, ""), Queue(kind, None, "", _identity(kind, "", None, False)))
    for key, queue in by_key.items():
        queue.incoming_rate = _rate(incoming.get(key, 0))
        queue.outgoing_rate = _rate(_sent(outgoing, queue))
    order = {NEXT_HOP: 0, SUBMISSION: 1, UNREACHABLE: 2}
    return sorted(by_key.values(), key=lambda queue: (order[queue.kind], queue.identity.lower()))


def queue_list(*, status=None, next_hop=None):
    """Every queue (delivery queues by identity, then Submission and Unreachable, which always exist), optionally
    only those with ``status`` or whose next hop or identity contains ``next_hop``. Six queries, eight when mail left recently."""
    queues = _build_queues(
        _queue_groups(Recipient.objects.all()), suspended=_suspended_keys(), recently_active=_recently_active_keys()
    )
    if status:
        queues = [queue for queue in queues if queue.status.lower() == status.lower()]
    if next_hop:
        wanted = next_hop.strip().lower()
        queues = [
            queue for queue in queues if wanted in queue.next_hop_domain.lower() or wanted in queue.identity.lower()
        ]
    return queues


def _split_server(identity):
    """(queue part, rest) of ``[Server\\]Queue[\\more]``; QueueNotFound for another server's identity."""
    parts = identity.strip().split("\\", 1)
    if len(parts) == 1:
        return parts[0], None
    server, rest = parts
    if server.strip().lower() not in (server_name().lower(), settings.SENDCONN_SERVER_FQDN.lower()):
        raise not_found(identity)
    return rest, server


def get_queue(identity):
    """The queue named ``identity`` (see the module docstring); QueueNotFound when there is none, or when a
    short identity names several queues (the message lists their long identities)."""
    identity = (identity or "").strip()
    if "\0" in identity:  # from a URL: no queue has one, and PostgreSQL can't compare text holding it
        raise not_found(identity)
    rest, _ = _split_server(identity)
    queue_part, _, connector_part = rest.partition("\\")
    queue_part = queue_part.strip()
    if not queue_part:
        raise not_found(identity)
    for kind in (SUBMISSION, UNREACHABLE):
        if queue_part.lower() == kind.lower():
            if connector_part:
                raise not_found(identity)
            queues = _build_queues(
                _queue_groups(queue_rows(kind, None, "")), suspended=_suspended_keys(connector__isnull=True)
            )
            return next(queue for queue in queues if queue.kind == kind)
    rows = Recipient.objects.filter(connector__isnull=False, next_hop_domain__iexact=queue_part)
    groups = list(_queue_groups(rows))
    suspended = _suspended_keys(connector__isnull=False, next_hop_domain__iexact=queue_part)
    # Only a queue with nothing in it needs the tracking log (the costlier read) to be found.
    recently_active = (
        set()
        if groups or suspended
        else {key for key in _recently_active_keys() if key[2].lower() == queue_part.lower()}
    )
    queues = _build_queues(groups, special=False, suspended=suspended, recently_active=recently_active)
    if connector_part:
        connector = connector_selectors.get_connector(connector_part)
        queues = [queue for queue in queues if connector is not None and queue.connector.pk == connector.pk]
    if len(queues) > 1:
        raise QueueNotFound(
            f"The identity '{identity}' matches more than one queue: "
            f"{', '.join(queue.identity for queue in queues)}. Use one of these identities."
        )
    if not queues:
        raise not_found(identity)
    return queues[0]


# -- messages in queues ------------------------------------------------------------------------------------------


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
    recipients: list = field(default_factory=list)

    @property
    def identity(self):
        return f"{self.queue.identity}\\{self.pk}"

    @property
    def expiration_time(self):
        return self.date_received + settings.SENDCONN_MESSAGE_EXPIRATION_TIMEOUT

    @property
    def message_source_name(self):
        return "DSN" if self.is_dsn else "SMTP"

    @property
    def retry_count(self):
        return max((row.attempt_count for row in self.recipients), default=0)

    @property
    def last_error(self):
        """The reply to the latest attempt (or why the recipient is unreachable)."""
        answered = [row for row in self.recipients if row.last_response]
        latest = max(answered, key=lambda row: (row.last_attempt_at or self.date_received, row.pk), default=None)
        return latest.last_response if latest else ""

    @property
    def next_retry_time(self):
        return min((row.next_attempt_at for row in self.recipients if row.next_attempt_at), default=None)

    @property
    def can_suspend(self):
        return any(row.status != RecipientStatus.SUSPENDED and not row.claimed_by for row in self.recipients)

    @property
    def can_resume(self):
        return any(row.status == RecipientStatus.SUSPENDED for row in self.recipients)


# Get-Message -Filter properties → (annotation of ``message_rows``, is numeric).
MESSAGE_FILTER_FIELDS = {
    "FromAddress": ("from_address", False),
    "Subject": ("subject", False),
    "Status": ("message_status", False),
    "Size": ("size", True),
    "InternetMessageId": ("internet_message_id", False),
    "RetryCount": ("retry_count", True),
}


def message_rows(queue=None):
    """One aggregate row per message per queue (of ``queue``, or of every queue), oldest message first; filter it
    with ``MESSAGE_FILTER_FIELDS`` names, page it, then turn a page into QueuedMessages with ``load_messages``."""
    rows = queue.rows if queue is not None else Recipient.objects.filter(status__in=QUEUED_STATUSES)
    return (
        _with_queue_key(rows)
        .values("queue_kind", "connector_id", "queue_hop", "message_id")
        .annotate(
            recipient_count=Count("id"),
            retrying=_status_count(RecipientStatus.RETRY),
            suspended=_status_count(RecipientStatus.SUSPENDED),
            active=Count("id", filter=~Q(claimed_by="")),
            retry_count=Max("attempt_count"),
            from_address=F("message__sender"),
            subject=F("message__subject"),
            size=F("message__size"),
            internet_message_id=F("message__message_id"),
            date_received=F("message__submitted_at"),
            source_ip=F("message__client_ip"),
            is_dsn=F("message__is_dsn"),
        )
        .annotate(
            # Exchange's message status: Active while delivered, Suspended when all of it is, Retry after a failure.
            message_status=Case(
                When(active__gt=0, then=Value(ACTIVE)),
                When(suspended=F("recipient_count"), then=Value(SUSPENDED)),
                When(retrying__gt=0, then=Value(RETRY)),
                default=Value(READY),
            )
        )
        .order_by("message_id", "queue_kind", "connector_id", "queue_hop")
    )


def load_messages(groups, queues=None):
    """QueuedMessages for a page of ``message_rows``, with their recipients (one query; two more to find the
    queues when ``queues`` — {key: Queue} — isn't given)."""
    groups = list(groups)
    if not groups:
        return []
    if queues is None:
        queues = {queue.key: queue for queue in queue_list()}
    recipients = defaultdict(list)
    rows = _with_queue_key(
        Recipient.objects.filter(message_id__in={group["message_id"] for group in groups}, status__in=QUEUED_STATUSES)
    ).order_by("id")
    for row in rows:
        recipients[(row.queue_kind, row.connector_id, row.queue_hop, row.message_id)].append(row)
    messages = []
    for group in groups:
        key = (group["queue_kind"], group["connector_id"], group["queue_hop"])
        queue = queues.get(key)
        if queue is None:  # the queue emptied between the two queries
            continue
        messages.append(
            QueuedMessage(
                queue=queue,
                pk=group["message_id"],
                from_address=group["from_address"],
                subject=group["subject"],
                size=group["size"],
                internet_message_id=group["internet_message_id"],
                date_received=group["date_received"],
                source_ip=group["source_ip"],
                is_dsn=group["is_dsn"],
                status=group["message_status"],
                recipient_count=group["recipient_count"],
                recipients=recipients[(*key, group["message_id"])],
            )
        )
    return messages


def get_message(identity):
    """The message ``<queue identity>\\<message id>``; QueueNotFound when it isn't in that queue."""
    identity = (identity or "").strip()
    queue_identity, _, number = identity.rpartition("\\")
    if not queue_identity or not re.fullmatch(r"[0-9]{1,19}", number.strip()) or int(number) > MAX_MESSAGE_ID:
        raise not_found(identity)
    try:
        queue = get_queue(queue_identity)
    except QueueNotFound:
        raise not_found(identity) from None
    found = load_messages(message_rows(queue).filter(message_id=int(number)), {queue.key: queue})
    if not found:
        raise not_found(identity)
    return found[0]


# -- actions -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What an action did: recipients changed, and those left alone because a worker was delivering them."""

    changed: int
    active: int = 0


def _audit(caller, cmdlet, identity, connector, parameters=None):
    audit.record_command(caller, cmdlet, identity, parameters, connector=connector)


def _active(rows):
    return rows.exclude(claimed_by="").count()


def _wake(queue):
    if queue.kind == NEXT_HOP:
        wakeups.wake_next_hops([(queue.connector.pk, queue.next_hop_domain)], coalesce=False)


def retry_queue(caller, queue, resubmit=False):
    """Retry-Queue: the queue's Retry rows are due now and its workers are woken. With ``resubmit`` (always for
    Submission; required for Unreachable, as in Exchange) the queue's messages are routed again instead:
    Unreachable recipients whose domain a connector now matches, or every waiting row of a delivery queue."""
    if queue.kind == UNREACHABLE and not resubmit:
        raise QueueError(
            f"The queue '{queue.identity}' can only be retried with -Resubmit $true: its messages need a route, "
            f"not a new connection."
        )
    server = local_server()
    if queue.kind == UNREACHABLE:
        changed = sweeper.reroute(server)  # suspended rows are skipped, as Exchange skips suspended messages
    elif queue.kind == SUBMISSION or resubmit:
        if queue.kind == NEXT_HOP:
            # Back to Submission (no connector), from where they are routed like new mail; a claimed row is skipped.
            queue.rows.filter(status__in=DUE_STATUSES, claimed_by="").update(
                connector=None, next_attempt_at=timezone.now()
            )
        changed = reroute_claimed(queue_rows(SUBMISSION, None, ""), server)
    else:
        changed = queue.rows.filter(status=RecipientStatus.RETRY, claimed_by="").update(next_attempt_at=timezone.now())
        if changed:
            _wake(queue)
    _audit(caller, "Retry-Queue", queue.identity, queue.connector, {"Resubmit": True} if resubmit else None)
    return Outcome(changed, _active(queue.rows))


def _refuse_submission(queue):
    if queue.kind == SUBMISSION:
        raise QueueError(
            "Messages in the Submission queue are routed within seconds and can't be suspended there; suspend "
            "them in the queue they are routed to."
        )


def _suspend(caller, cmdlet, identity, queue, rows):
    _refuse_submission(queue)
    waiting = (*DUE_STATUSES, RecipientStatus.UNREACHABLE)
    with transaction.atomic():
        changed = rows.filter(status__in=waiting, claimed_by="").update(
            status=RecipientStatus.SUSPENDED, next_attempt_at=None
        )
        _audit(caller, cmdlet, identity, queue.connector)
    return Outcome(changed, _active(rows))


def _resume(caller, cmdlet, identity, queue, rows):
    """Suspended rows wait again: Unreachable without a connector (the sweeper routes them when it can), else
    Retry when attempted before and Ready when not, due now."""
    now = timezone.now()
    with transaction.atomic():
        changed = rows.filter(status=RecipientStatus.SUSPENDED, claimed_by="").update(
            status=Case(
                When(connector__isnull=True, then=Value(RecipientStatus.UNREACHABLE)),
                When(attempt_count__gt=0, then=Value(RecipientStatus.RETRY)),
                default=Value(RecipientStatus.READY),
            ),
            next_attempt_at=Case(When(connector__isnull=True, then=Value(None)), default=Value(now)),
        )
        _audit(caller, cmdlet, identity, queue.connector)
    if changed:
        _wake(queue)
    return Outcome(changed, _active(rows))


def suspend_queue(caller, queue):
    """Suspend-Queue: no message leaves the queue — neither those in it now nor those routed to it later — until
    Resume-Queue; deliveries under way finish (counted as active). The messages keep their status. ``changed``
    is 1 when the queue was not suspended yet."""
    _refuse_submission(queue)
    with transaction.atomic():
        changed = 0 if queue.suspension.exists() else 1
        if changed:
            SuspendedQueue.objects.create(connector=queue.connector, next_hop_domain=queue.next_hop_domain)
        _audit(caller, "Suspend-Queue", queue.identity, queue.connector)
    return Outcome(changed, _active(queue.rows))


def resume_queue(caller, queue):
    """Resume-Queue: the queue delivers again, from now (its workers are woken). ``changed`` is 1 when it was
    suspended. Messages suspended one by one stay suspended, as in Exchange: Resume-Message resumes them."""
    with transaction.atomic():
        changed = min(queue.suspension.delete()[0], 1)
        _audit(caller, "Resume-Queue", queue.identity, queue.connector)
    if changed:
        _wake(queue)
    return Outcome(changed)


def suspend_message(caller, message):
    """Suspend-Message: the message's recipients in its queue (not in other queues) are suspended."""
    return _suspend(
        caller, "Suspend-Message", message.identity, message.queue, message.queue.rows.filter(message_id=message.pk)
    )


def resume_message(caller, message):
    return _resume(
        caller, "Resume-Message", message.identity, message.queue, message.queue.rows.filter(message_id=message.pk)
    )


def remove_message(caller, message, with_ndr=True):
    """Remove-Message: the message's recipients in its queue fail with Exchange's ``550 4.3.2 QUEUE.Admin``
    reply (FAIL tracking events), and with ``with_ndr`` the sender gets an NDR — unless the message is itself a
    notification or from the null sender. Rows are claimed first so that an attempt in flight isn't undone."""
    rows = message.queue.rows.filter(message_id=message.pk)
    token = claim_token()
    claimed = claim(rows, token, None)
    server = local_server()
    now = timezone.now()
    connector_name = message.queue.next_hop_connector
    original = Message.objects.get(pk=message.pk)
    events = [
        tracking.event(
            TrackingEventId.FAIL,
            TrackingSource.QUEUE,
            original,
            row.address,
            recipient_status=REMOVED.response,
            connector_name=connector_name,
            server_name=server.name,
            timestamp=now,
        )
        for row in claimed
    ]
    with transaction.atomic():
        Recipient.objects.filter(id__in=[row.pk for row in claimed], claimed_by=token).update(
            status=RecipientStatus.FAILED,
            last_response=REMOVED.response,
            next_attempt_at=None,
            claimed_by="",
            claimed_at=None,
        )
        if with_ndr and claimed:
            events += queue_ndr(original, [(row, REMOVED, connector_name) for row in claimed], server, now)
        tracking.record(events)
        _audit(caller, "Remove-Message", message.identity, message.queue.connector, {"WithNDR": with_ndr})
    tracking.write_log(events)
    return Outcome(len(claimed), _active(rows))
