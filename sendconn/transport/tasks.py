"""The transport's Celery tasks: thin wrappers around the delivery engine and the sweeper.

Both are idempotent — a wake-up only asks this process's engine to claim what is due, and every sweep step claims
rows or makes one conditional UPDATE — so a task delivered twice (acks_late, reject_on_worker_lost) does no harm,
and whatever a dead worker left behind the next sweep picks up.
"""

import logging

from celery import shared_task

from . import sweeper, wakeups
from .engine import get_engine

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def deliver_next_hop(connector_id, next_hop_domain):
    """Wake-up: the next hop (connector + domain or smart-host set) has due recipients; the engine claims them."""
    wakeups.task_started(connector_id, next_hop_domain)
    get_engine().wake(connector_id, next_hop_domain)


@shared_task(ignore_result=True)
def sweep():
    """Release stale claims, expire, send delay notifications, re-route Unreachable rows, wake due next hops."""
    done = {step: count for step, count in sweeper.sweep().items() if count}
    if not done:
        return
    # Waking the next hops whose retry time has come is the sweeper's routine (the deliveries log themselves);
    # anything else changed the queue and is worth a line at INFO.
    level = logging.DEBUG if set(done) == {"woken"} else logging.INFO
    log.log(level, "Sweep: %s", ", ".join(f"{step} {count}" for step, count in done.items()))
