"""Prometheus metrics: what the processes count, and what /metrics reads from the database when scraped.

Every process (gunicorn and Celery workers, smtpd listeners) counts into prometheus_client's multiprocess files
in ``settings.SENDCONN_METRICS_DIR``; ``exposition()`` adds them up and adds the gauges that describe the queues
as they are now, read from the database. Files are named by host and process id, so the containers of the
compose topology can share the folder. Delivery outcomes are counted from the tracking events once their
transaction commits: a rolled-back transaction counts nothing.
"""

import os
import socket
from datetime import datetime

from celery import signals as celery_signals
from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess, values
from prometheus_client.core import GaugeMetricFamily

from sendconn.transport.models import QUEUED_STATUSES, Recipient, TrackingEventId

from . import flow

SWEEP_TASK = "sendconn.transport.tasks.sweep"


# The client splits file names at "_", so the host name keeps none.
HOST_NAME = socket.gethostname().replace("_", "-")


def process_identifier():
    """Unique among the processes writing to the folder, even across containers (each has its own pid 1). The
    client asks at every count (to notice a fork): the host name is read once."""
    return f"{HOST_NAME}-{os.getpid()}"


values.ValueClass = values.MultiProcessValue(process_identifier)

OUTCOMES = {TrackingEventId.SEND: "delivered", TrackingEventId.DEFER: "deferred", TrackingEventId.FAIL: "failed"}

recipients_total = Counter(
    "sendconn_recipients",
    "Recipients delivered, deferred or failed, by Send connector and enhanced status class.",
    ["connector", "outcome", "status_class"],
)
delivery_latency = Histogram(
    "sendconn_delivery_latency_seconds",
    "Time from submission to the remote server's 250, per delivered recipient.",
    ["connector"],
    buckets=(1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 48 * 3600),
)
smtp_sessions_open = Gauge(
    "sendconn_smtp_sessions_open",
    "Outbound SMTP sessions open now.",
    multiprocess_mode="livesum",
)
smtpd_accepted = Counter("sendconn_smtpd_accepted_messages", "Messages smtpd accepted (250 after DATA).")
smtpd_refused = Counter(
    "sendconn_smtpd_refused",
    "Commands smtpd refused, by reply code (550 5.7.54 Unable to relay is 550).",
    ["code"],
)
verify_delivery_runs = Counter(
    "sendconn_verify_delivery_runs",
    "Verify delivery runs finished, by result (Succeeded, Failed).",
    ["result"],
)
sweeper_runs = Counter("sendconn_sweeper_runs", "Queue sweeper runs, by result (success, failure).", ["result"])


# --- what the processes count ---------------------------------------------------------------------------------


def count_tracked(events):
    """Count delivery outcomes and latencies of ``events`` (being recorded) once the transaction commits."""
    outcomes = [entry for entry in events if entry.event_id in OUTCOMES]
    if outcomes:
        transaction.on_commit(lambda: _count_outcomes(outcomes))


def _count_outcomes(events):
    for entry in events:
        recipients_total.labels(
            entry.connector_name, OUTCOMES[entry.event_id], flow.status_class(entry.recipient_status)
        ).inc()
        if entry.event_id == TrackingEventId.SEND and entry.queued_message is not None:
            latency = (entry.timestamp - entry.queued_message.submitted_at).total_seconds()
            delivery_latency.labels(entry.connector_name).observe(max(latency, 0.0))


def smtp_session_opened():
    smtp_sessions_open.inc()


def smtp_session_closed():
    smtp_sessions_open.dec()


def smtpd_reply(reply):
    """Count smtpd's reply: 4xx and 5xx are refusals."""
    if isinstance(reply, str) and reply[:1] in ("4", "5"):
        smtpd_refused.labels(reply[:3]).inc()


def smtpd_message_accepted():
    smtpd_accepted.inc()


def verification_finished(status):
    verify_delivery_runs.labels(status).inc()


def connect_task_signals():
    """Sweeper runs counted from Celery's task signals; a worker (the process of the threads pool, or a prefork
    pool process) that stops takes its open sessions along."""
    celery_signals.task_success.connect(_sweep_succeeded, weak=False, dispatch_uid="sendconn.metrics.sweep_ok")
    celery_signals.task_failure.connect(_sweep_failed, weak=False, dispatch_uid="sendconn.metrics.sweep_failed")
    celery_signals.worker_shutdown.connect(_process_stopped, weak=False, dispatch_uid="sendconn.metrics.worker_stopped")
    celery_signals.worker_process_shutdown.connect(
        _process_stopped, weak=False, dispatch_uid="sendconn.metrics.process_stopped"
    )


def _sweep_succeeded(sender=None, **kwargs):
    if getattr(sender, "name", None) == SWEEP_TASK:
        sweeper_runs.labels("success").inc()
        flow.sample_queue_depth()


def _sweep_failed(sender=None, **kwargs):
    if getattr(sender, "name", None) == SWEEP_TASK:
        sweeper_runs.labels("failure").inc()


def _process_stopped(**kwargs):
    multiprocess.mark_process_dead(process_identifier())


def reset_directory(path):
    """Empty the multiprocess folder before the processes start, as prometheus_client requires."""
    path.mkdir(parents=True, exist_ok=True)
    for file in path.glob("*.db"):
        file.unlink()


# --- what /metrics reads from the database ---------------------------------------------------------------------


class QueueCollector:
    """Messages waiting per connector, next hop and status, and the age of the oldest, from the database."""

    def collect(self):
        messages = GaugeMetricFamily(
            "sendconn_queue_messages",
            "Messages waiting, by Send connector, next hop and status (the Unreachable queue has no connector).",
            labels=["connector", "next_hop", "status"],
        )
        oldest = GaugeMetricFamily(
            "sendconn_queue_oldest_message_age_seconds",
            "Age of the oldest message waiting, by connector and next hop.",
            labels=["connector", "next_hop"],
        )
        now = timezone.now()
        oldest_by_queue: dict[tuple[str, str], datetime] = {}
        rows = (
            Recipient.objects.filter(status__in=QUEUED_STATUSES)
            .values_list("connector__name", "next_hop_domain", "status")
            .annotate(messages=Count("message", distinct=True), submitted=Min("message__submitted_at"))
            .order_by("connector__name", "next_hop_domain", "status")
        )
        for connector, next_hop, status, count, submitted in rows:
            messages.add_metric([connector or "", next_hop, status], count)
            queue = (connector or "", next_hop)
            oldest_by_queue[queue] = min(submitted, oldest_by_queue.get(queue, submitted))
        for queue, submitted in oldest_by_queue.items():
            oldest.add_metric(list(queue), max((now - submitted).total_seconds(), 0.0))
        yield messages
        yield oldest


def exposition():
    """The text /metrics serves: every process's counters added up, and the queue gauges."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(QueueCollector())
    return generate_latest(registry)
