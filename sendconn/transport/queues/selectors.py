"""Reads of the queues and the messages in them, for Get-Queue, Get-Message and the queue viewer pages.

Reads are aggregate queries (GROUP BY next hop, counting per status): the queue list costs the same few queries
with ten or a hundred thousand queued recipients, and the messages of a queue are paged.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Set
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from django.conf import settings
from django.db.models import Case, Count, F, Max, Min, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Lower, StrIndex, Substr
from django.utils import timezone

from sendconn.connectors import selectors as connector_selectors
from sendconn.connectors.models import SendConnector
from sendconn.connectors.servers import local_server

from ..claims import DUE_STATUSES
from ..models import QUEUED_STATUSES, Recipient, RecipientStatus, SuspendedQueue, TrackingEvent, TrackingEventId
from ..queueing import UNREACHABLE_RESPONSE
from ..routing import Router
from . import identities
from .objects import (
    ACTIVE,
    NEXT_HOP,
    READY,
    RETRY,
    SUBMISSION,
    SUSPENDED,
    UNREACHABLE,
    Queue,
    QueuedMessage,
    QueueNotFound,
    queue_rows,
)

if TYPE_CHECKING:  # django-stubs' helper, a lint-time dependency
    from django_stubs_ext import WithAnnotations

RATE_WINDOW = timedelta(minutes=1)  # IncomingRate / OutgoingRate: messages per second over the last minute

_QueueKey = tuple[str, int | None, str]  # Queue.key: (kind, connector id, next hop)


class _QueueKeyAnnotations(TypedDict):
    """What ``_with_queue_key`` adds to each row."""

    queue_kind: str
    queue_hop: str


# -- queues ------------------------------------------------------------------------------------------------------


def _with_queue_key(rows: QuerySet[Recipient]) -> "QuerySet[WithAnnotations[Recipient, _QueueKeyAnnotations]]":
    """``rows`` annotated with the queue each is in: ``queue_kind``, ``connector_id``, ``queue_hop``."""
    return rows.annotate(
        queue_kind=Case(
            When(connector__isnull=False, then=Value(NEXT_HOP)),
            When(status__in=DUE_STATUSES, then=Value(SUBMISSION)),
            default=Value(UNREACHABLE),
        ),
        queue_hop=Case(When(connector__isnull=False, then=F("next_hop_domain")), default=Value("")),
    )


def _status_count(status: str) -> Count:
    return Count("id", filter=Q(status=status))


def _queue_groups(rows: QuerySet[Recipient]) -> QuerySet[Recipient, Mapping[str, Any]]:
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


def _incoming(since: datetime) -> dict[_QueueKey, int]:
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


def _recipient_domain() -> Lower:
    """A tracking event's recipient domain, lower-case, computed in the database."""
    return Lower(Substr("recipient", StrIndex("recipient", Value("@")) + 1))


def _outgoing(since: datetime) -> dict[tuple[str, str], int]:
    """{(connector name, recipient domain): messages sent since ``since``}, from the SEND tracking events."""
    groups = (
        TrackingEvent.objects.filter(event_id=TrackingEventId.SEND, timestamp__gte=since)
        .annotate(domain=_recipient_domain())
        .values("connector_name", "domain")
        .annotate(messages=Count("internal_message_id", distinct=True))
        .order_by()
    )
    return {(group["connector_name"], group["domain"]): group["messages"] for group in groups}


def _sent(outgoing: dict[tuple[str, str], int], queue: Queue) -> int:
    if queue.kind != NEXT_HOP:
        return 0
    assert queue.connector is not None  # a NextHop queue is a connector's
    name = queue.connector.name
    if queue.connector.dns_routing_enabled:  # a DNS next hop is the recipient domain
        return outgoing.get((name, queue.next_hop_domain.lower()), 0)
    return sum(count for (connector_name, _), count in outgoing.items() if connector_name == name)


def _rate(count: int) -> float:
    return round(count / RATE_WINDOW.total_seconds(), 3)


def _suspended_keys(**lookups: Any) -> set[_QueueKey]:
    """The keys of the suspended queues (SuspendedQueue rows matching ``lookups``)."""
    return {
        (NEXT_HOP if connector_id else UNREACHABLE, connector_id, hop)
        for connector_id, hop in SuspendedQueue.objects.filter(**lookups).values_list("connector_id", "next_hop_domain")
    }


def _recently_active_keys() -> set[_QueueKey]:
    """Keys of the delivery queues that sent or failed mail within SENDCONN_QUEUE_MAX_IDLE_TIME: (connector,
    recipient domain) pairs from the tracking log (one query), then their connectors with their smart hosts and the
    local server, whose Router names each pair's next hop (three more when there are any)."""
    since = timezone.now() - settings.SENDCONN_QUEUE_MAX_IDLE_TIME
    pairs = set(
        TrackingEvent.objects.filter(event_id__in=[TrackingEventId.SEND, TrackingEventId.FAIL], timestamp__gte=since)
        .exclude(connector_name="")
        .annotate(domain=_recipient_domain())
        .values_list("connector_name", "domain")
        .distinct()
    )
    if not pairs:
        return set()
    connectors = SendConnector.objects.filter(name__in={name for name, _ in pairs}).prefetch_related("smart_hosts")
    by_name = {connector.name: connector for connector in connectors}
    router = Router(local_server())
    return {
        (NEXT_HOP, by_name[name].pk, router.next_hop_domain(by_name[name], domain))
        for name, domain in pairs
        if name in by_name  # else a connector renamed or removed since: its queue is gone
    }


def _build_queues(
    groups: Iterable[Mapping[str, Any]],
    *,
    special: bool = True,
    suspended: Set[_QueueKey] = frozenset(),
    recently_active: Set[_QueueKey] = frozenset(),
) -> list[Queue]:
    """Queue objects from ``_queue_groups`` rows, the ``suspended`` queue keys (a suspended queue is listed even
    when empty) and the ``recently_active`` ones (listed, empty if need be, for QueueMaxIdleTime), with their
    connectors (one query) and rates (two)."""
    groups = list(groups)
    keys = {(group["queue_kind"], group["connector_id"], group["queue_hop"]) for group in groups}
    keys |= suspended | recently_active
    connectors = SendConnector.objects.in_bulk({connector_id for _, connector_id, _ in keys if connector_id})
    hops = Counter(hop.lower() for kind, _, hop in keys if kind == NEXT_HOP)

    def identity(kind: str, hop: str, connector: SendConnector | None) -> str:
        return identities.queue_identity(kind, hop, connector, shared=hops[hop.lower()] > 1)

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
        queue = Queue(kind, connector, hop, identity(kind, hop, connector), **counts)
        queue.last_error = group["last_error"] or (UNREACHABLE_RESPONSE if queue.unreachable else "")
        by_key[queue.key] = queue
    for kind, connector_id, hop in suspended:
        connector = connectors.get(connector_id)
        if kind == NEXT_HOP and connector is None:
            continue
        queue = by_key.setdefault(
            (kind, connector_id, hop), Queue(kind, connector, hop, identity(kind, hop, connector))
        )
        queue.is_suspended = True
    for kind, connector_id, hop in recently_active:
        connector = connectors.get(connector_id)
        if connector is not None:
            by_key.setdefault((kind, connector_id, hop), Queue(kind, connector, hop, identity(kind, hop, connector)))
    if special:
        for kind in (SUBMISSION, UNREACHABLE):
            by_key.setdefault((kind, None, ""), Queue(kind, None, "", identity(kind, "", None)))
    for key, queue in by_key.items():
        queue.incoming_rate = _rate(incoming.get(key, 0))
        queue.outgoing_rate = _rate(_sent(outgoing, queue))
    order = {NEXT_HOP: 0, SUBMISSION: 1, UNREACHABLE: 2}
    return sorted(by_key.values(), key=lambda queue: (order[queue.kind], queue.identity.lower()))


def queue_list(*, status: str | None = None, next_hop: str | None = None) -> list[Queue]:
    """Every queue (delivery queues by identity, then Submission and Unreachable, which always exist), optionally
    only those with ``status`` or whose next hop or identity contains ``next_hop``. Six queries, nine when mail
    left recently."""
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


def get_queue(identity: str | None) -> Queue:
    """The queue named ``identity`` (see ``identities``); QueueNotFound when there is none, or when a short
    identity names several queues (the message lists their long identities)."""
    identity = (identity or "").strip()
    queue_part, connector_part = identities.parse_queue_identity(identity)
    for kind in (SUBMISSION, UNREACHABLE):
        if queue_part.lower() == kind.lower():
            if connector_part:
                raise identities.not_found(identity)
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
        queues = [queue for queue in queues if connector is not None and queue.connector == connector]
    if len(queues) > 1:
        raise QueueNotFound(
            f"The identity '{identity}' matches more than one queue: "
            f"{', '.join(queue.identity for queue in queues)}. Use one of these identities."
        )
    if not queues:
        raise identities.not_found(identity)
    return queues[0]


# -- messages in queues ------------------------------------------------------------------------------------------


# Get-Message -Filter properties → (annotation of ``message_rows``, is numeric).
MESSAGE_FILTER_FIELDS = {
    "FromAddress": ("from_address", False),
    "Subject": ("subject", False),
    "Status": ("message_status", False),
    "Size": ("size", True),
    "InternetMessageId": ("internet_message_id", False),
    "RetryCount": ("retry_count", True),
}


def message_rows(queue: Queue | None = None) -> QuerySet[Recipient, Mapping[str, Any]]:
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


def load_messages(groups: Iterable[Mapping[str, Any]], queues: dict[tuple, Queue] | None = None) -> list[QueuedMessage]:
    """QueuedMessages for a page of ``message_rows``, with their recipients (one query; two more to find the
    queues when ``queues`` — {key: Queue} — isn't given)."""
    groups = list(groups)
    if not groups:
        return []
    if queues is None:
        queues = {queue.key: queue for queue in queue_list()}
    recipients: defaultdict[tuple, list[Recipient]] = defaultdict(list)
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


def get_message(identity: str | None) -> QueuedMessage:
    """The message ``<queue identity>\\<message id>``; QueueNotFound when it isn't in that queue."""
    identity = (identity or "").strip()
    queue_identity, message_id = identities.parse_message_identity(identity)
    try:
        queue = get_queue(queue_identity)
    except QueueNotFound:
        raise identities.not_found(identity) from None
    found = load_messages(message_rows(queue).filter(message_id=message_id), {queue.key: queue})
    if not found:
        raise identities.not_found(identity)
    return found[0]
