"""Starting a Verify delivery run: the recipients checked, the run and its steps created, the run sent to a worker.

``start_verification`` creates the run and its steps in one transaction and, once that commits, sends the run
to the ``verify.<server>`` queue of one of the connector's source servers (the worker consumes it next to its
mail queue, so a mail backlog never delays a verification); ``runner.run_verification`` takes it from there.
"""

import logging
import re
from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from sendconn.connectors.models import SendConnector
from sendconn.connectors.servers import local_server
from sendconn.connectors.services import Caller
from sendconn.observability import metrics
from sendconn.transport.routing import recipient_domain
from sendconn.transport.wakeups import choose_server

from . import tasks
from .models import StepName, StepStatus, VerificationRun, VerificationStatus, VerificationStep
from .selectors import next_hops

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 10

_LOCAL_PART = re.compile(r"^[\w!#$%&'*+/=?^`{|}~-]+(\.[\w!#$%&'*+/=?^`{|}~-]+)*$")


def parse_recipients(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Test recipients typed in a box (separated by commas, semicolons or spaces) or given as a list →
    addresses with lower-case domains, duplicates dropped; ValidationError listing every bad one."""
    items = value if isinstance(value, (list, tuple)) else re.split(r"[,;\s]+", value or "")
    addresses: list[str] = []
    errors: list[str] = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        try:
            address = _normalised_address(item)
        except ValueError as error:
            errors.append(str(error))
            continue
        if address.lower() not in (known.lower() for known in addresses):
            addresses.append(address)
    if errors:
        raise ValidationError(errors)
    if not addresses:
        raise ValidationError("Enter at least one recipient email address.")
    if len(addresses) > MAX_RECIPIENTS:
        raise ValidationError(f"Enter at most {MAX_RECIPIENTS} recipients.")
    return addresses


def _normalised_address(address: str) -> str:
    domain = recipient_domain(address)  # ValueError: "'x' isn't a valid SMTP address."
    local = address.rpartition("@")[0]
    if len(local) > 64 or len(address) > 254 or not _LOCAL_PART.match(local):
        raise ValueError(f"'{address}' isn't a valid SMTP address.")
    return f"{local}@{domain}"


def start_verification(
    caller: Caller, connector: SendConnector, recipients: str | list[str], *, run_here: bool = False
) -> VerificationRun:
    """Create a run of ``connector`` for ``recipients`` (a list or text) on behalf of ``caller``.

    The run goes to one of the connector's source servers, through its ``verify`` queue once the transaction
    commits. ``run_here``: the caller runs it in this process (the cmdlet), as the local server.
    """
    try:
        addresses = parse_recipients(recipients)
    except ValidationError as error:
        raise ValidationError({"recipients": error.messages}) from None
    server = local_server() if run_here else choose_server(list(connector.source_transport_servers.all()))
    if server is None:
        raise ValidationError(
            {
                "source_transport_servers": [
                    f"The Send connector '{connector.name}' has no source server to send the test message from."
                ]
            }
        )
    with transaction.atomic():
        run = VerificationRun.objects.create(
            connector=connector,
            connector_name=connector.name,
            requested_by=caller.username,
            server_name=server.name,
            recipients=addresses,
        )
        VerificationStep.objects.bulk_create(
            VerificationStep(run=run, position=position, name=name, next_hop=hop)
            for position, (hop, name) in enumerate(
                (hop, name) for hop in next_hops(connector, addresses, server) for name in StepName.values
            )
        )
        if not run_here:
            transaction.on_commit(partial(_send_to_worker, run.pk, server.verify_queue_name))
    return run


def publish_run(run_id: int, queue: str) -> None:
    """The verify task for run ``run_id``, to the worker queue ``queue``."""
    tasks.verify_connector.apply_async((run_id,), queue=queue)


def _send_to_worker(run_id: int, queue: str) -> None:
    try:
        publish_run(run_id, queue)
    except Exception as error:  # the broker is down: say so on the run rather than leave it waiting
        log.exception("Can't send verification %s to %s", run_id, queue)
        failed = VerificationRun.objects.filter(pk=run_id, started_at__isnull=True).update(
            status=VerificationStatus.FAILED,
            finished_at=timezone.now(),
            error=f"451 4.3.2 The verification couldn't be sent to the queue {queue} [{type(error).__name__}]",
            hint="Check that the message broker (CELERY_BROKER_URL) is reachable, then verify again.",
        )
        VerificationStep.objects.filter(run_id=run_id, status=StepStatus.PENDING).update(
            status=StepStatus.SKIPPED, details="Not run: the verification never reached a worker."
        )
        if failed:
            metrics.verification_finished(VerificationStatus.FAILED)
