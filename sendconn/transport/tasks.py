"""The transport's Celery tasks: thin wrappers around ``delivery`` and ``sweeper``.

Both are idempotent — ``deliver_next_hop`` sends only what it can claim, and every sweep step claims rows or
makes one conditional UPDATE — so a task delivered twice (acks_late, reject_on_worker_lost) does no harm, and
whatever a dead worker left behind the next sweep picks up. Time limits (settings) are above the SMTP and DNS
timeouts; a delivery task also hands its next hop on after ``delivery.TASK_BUDGET_SECONDS``.
"""
import logging
import time

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from sendconn.connectors.models import TransportServer

from . import delivery, sweeper, wakeups

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 60.0
_last_heartbeat = 0.0


@shared_task(ignore_result=True)
def deliver_next_hop(connector_id, next_hop_domain):
    """Deliver the due recipients of one next hop (connector + domain or smart-host set) that can be claimed."""
    heartbeat()
    wakeups.task_started(connector_id, next_hop_domain)
    delivery.deliver_next_hop(connector_id, next_hop_domain)


@shared_task(ignore_result=True)
def sweep():
    """Release stale claims, expire, send delay notifications, re-route Unreachable rows, wake due next hops."""
    heartbeat()
    done = sweeper.sweep()
    if any(done.values()):
        log.info("Sweep: %s", ", ".join(f"{name} {count}" for name, count in done.items()))


def heartbeat():
    """Refresh this server's last_seen_at now and then: wake-ups go to source servers seen recently."""
    global _last_heartbeat
    if time.monotonic() - _last_heartbeat < HEARTBEAT_SECONDS:
        return
    _last_heartbeat = time.monotonic()
    TransportServer.objects.filter(name__iexact=settings.SENDCONN_SERVER_NAME).update(last_seen_at=timezone.now())
