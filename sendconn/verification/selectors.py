"""Reads of Verify delivery: the runs of a connector, its latest one, and the next hops a run tests."""

from datetime import timedelta

from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from sendconn.connectors.models import SendConnector, TransportServer
from sendconn.connectors.servers import local_server
from sendconn.transport.routing import Router, recipient_domain

from .models import VerificationRun

WAITING_TOO_LONG = timedelta(minutes=2)  # no worker took the run by then: the page says which server to check


def next_hops(
    connector: SendConnector, addresses: list[str], server: TransportServer | None = None
) -> dict[str, list[str]]:
    """{next hop: [recipients]} as the connector routes them: one per recipient domain (MX), or its smart-host set."""
    router = Router(server or local_server())
    hops: dict[str, list[str]] = {}
    for address in addresses:
        hops.setdefault(router.next_hop_domain(connector, recipient_domain(address)), []).append(address)
    return hops


def remembered_recipients(connector: SendConnector) -> list[str]:
    """The recipients of the connector's latest run: the form's default (Exchange's ValidationRecipients)."""
    return connector.verification_runs.values_list("recipients", flat=True).first() or []


def with_last_verification(connectors: QuerySet) -> QuerySet:
    """Annotate each connector with its latest run (status, requested at, by whom, id): no extra query."""
    latest = VerificationRun.objects.filter(connector=OuterRef("pk")).order_by("-requested_at", "-id")
    return connectors.annotate(
        **{
            f"last_verification_{name}": Subquery(latest.values(column)[:1])
            for name, column in (("status", "status"), ("at", "requested_at"), ("by", "requested_by"), ("id", "pk"))
        }
    )


def runs_for(connector: SendConnector) -> QuerySet:
    return VerificationRun.objects.filter(connector=connector).select_related("failed_step")


def get_run(run_id: int) -> VerificationRun | None:
    return VerificationRun.objects.select_related("connector").prefetch_related("steps").filter(pk=run_id).first()


def waiting_too_long(run: VerificationRun) -> bool:
    """No worker has taken the run for a while: the source server's worker is probably not running."""
    return run.is_running and run.started_at is None and timezone.now() - run.requested_at > WAITING_TOO_LONG
