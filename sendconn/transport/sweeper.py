"""The sweeper: the queue's housekeeping, run by Celery beat every SENDCONN_SWEEP_INTERVAL seconds (``tasks.sweep``).

Each step is a plain function, safe to run twice or on two servers at once (rows are claimed before they are
changed, or changed by one conditional UPDATE):

- ``release_stale_claims``: rows claimed longer ago than SENDCONN_CLAIM_TIMEOUT belong to a dead worker;
- ``expire``: recipients still queued MessageExpirationTimeout after submission fail with 4.4.7 and an NDR;
- ``send_delay_notifications``: one delay DSN per recipient still waiting after DelayNotificationTimeout;
- ``reroute``: Unreachable recipients whose domain a connector now covers (unless the Unreachable queue is
  suspended), and rows whose connector was removed;
- ``wake_due_next_hops``: one wake-up per next hop with due, unclaimed rows, suspended queues left out — lost
  wake-ups (a broker restart, a killed worker) and due retries thus cost at most one interval.
"""

import logging

from django.conf import settings
from django.utils import timezone

from sendconn.connectors.models import SendConnector
from sendconn.connectors.servers import local_server

from . import wakeups
from .claims import DUE_STATUSES, claim, claim_token, in_suspended_queue
from .ledger import Ledger, reroute_claimed
from .models import Message, Recipient, RecipientStatus, SuspendedQueue
from .outcomes import expired
from .routing import Router

log = logging.getLogger(__name__)

WAITING_STATUSES = (*DUE_STATUSES, RecipientStatus.UNREACHABLE)  # queued, not final, not suspended
DOMAINS_PER_QUERY = 500


def sweep(now=None):
    """Every step once; returns what each did (for the worker's log)."""
    now = now or timezone.now()
    server = local_server()
    return {
        "released": release_stale_claims(now),
        "expired": expire(server, now),
        "delay_notified": send_delay_notifications(server, now),
        "rerouted": reroute(server),
        "woken": wake_due_next_hops(now),
    }


def release_stale_claims(now):
    stale = Recipient.objects.filter(claimed_at__lt=now - settings.SENDCONN_CLAIM_TIMEOUT)
    released = stale.update(claimed_by="", claimed_at=None)
    if released:
        log.warning("Released %d recipient(s) claimed by a worker that stopped before recording them", released)
    return released


def expire(server, now):
    """Fail what is still queued MessageExpirationTimeout after submission (Exchange: 550 4.4.7 QUEUE.Expired)."""
    rows = Recipient.objects.filter(
        status__in=WAITING_STATUSES, message__submitted_at__lte=now - settings.SENDCONN_MESSAGE_EXPIRATION_TIMEOUT
    )

    def record(ledger, row, message, connector_name):
        ledger.failed(row, message, expired(row.last_response), connector_name)

    return _claimed_in_batches(rows, server, record)


def send_delay_notifications(server, now):
    """Tell the sender once when a recipient has waited DelayNotificationTimeout (Exchange's delay DSN)."""
    rows = Recipient.objects.filter(
        status__in=(RecipientStatus.RETRY, RecipientStatus.UNREACHABLE),
        delay_notified=False,
        message__submitted_at__lte=now - settings.SENDCONN_DELAY_NOTIFICATION_TIMEOUT,
    )
    return _claimed_in_batches(rows, server, Ledger.delay_notified)


def reroute(server):
    """Route again the Unreachable recipients of domains a connector now matches, and the queued rows whose
    connector was removed; they become Ready on their new next hop (and are woken)."""
    router = Router(server)
    rerouted = reroute_claimed(
        Recipient.objects.filter(status__in=DUE_STATUSES, connector__isnull=True), server, router
    )
    if SuspendedQueue.objects.filter(connector__isnull=True).exists():  # Suspend-Queue EX01\Unreachable
        return rerouted
    domains = list(
        Recipient.objects.filter(status=RecipientStatus.UNREACHABLE)
        .order_by()
        .values_list("domain", flat=True)
        .distinct()
    )
    routable = [domain for domain in domains if router.candidates(domain)]
    for start in range(0, len(routable), DOMAINS_PER_QUERY):
        chunk = routable[start : start + DOMAINS_PER_QUERY]
        rows = Recipient.objects.filter(status=RecipientStatus.UNREACHABLE, domain__in=chunk)
        rerouted += reroute_claimed(rows, server, router)
    return rerouted


def wake_due_next_hops(now):
    """One wake-up per next hop with due rows nobody has claimed, from one aggregate query."""
    next_hops = list(
        Recipient.objects.filter(
            status__in=DUE_STATUSES, next_attempt_at__lte=now, claimed_by="", connector__isnull=False
        )
        .exclude(in_suspended_queue())
        .order_by()
        .values_list("connector_id", "next_hop_domain")
        .distinct()
    )
    wakeups.wake_next_hops(next_hops)
    return len(next_hops)


def _claimed_in_batches(rows, server, record):
    """Claim ``rows`` batch by batch, ``record(ledger, row, message, connector name)`` each, commit each batch."""
    token = claim_token()
    handled = 0
    while claimed := claim(rows, token, settings.SENDCONN_DELIVERY_BATCH_SIZE):
        messages = Message.objects.in_bulk({row.message_id for row in claimed})
        names: dict[int | None, str] = dict(
            SendConnector.objects.filter(pk__in={row.connector_id for row in claimed}).values_list("pk", "name")
        )
        ledger = Ledger(token, server)
        for row in claimed:
            record(ledger, row, messages[row.message_id], names.get(row.connector_id, ""))
        ledger.commit()
        handled += len(claimed)
    return handled
