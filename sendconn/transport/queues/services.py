"""The queue viewer's actions: Retry-Queue, Suspend-/Resume-Queue and Suspend-/Resume-/Remove-Message.

Writes are conditional UPDATEs (or claims, for removal), so a row a worker is delivering (claimed: Exchange's
Active) is never changed under it; it is counted as active and left alone, as Exchange's PendingSuspend /
PendingRemove would finish the attempt first. Every action is written to the admin audit log as its cmdlet line,
in the action's one transaction: a failure leaves nothing half-done.
"""

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Case, QuerySet, Value, When
from django.utils import timezone

from sendconn.connectors import audit
from sendconn.connectors.models import SendConnector
from sendconn.connectors.servers import local_server
from sendconn.connectors.services import Caller

from .. import sweeper, tracking, wakeups
from ..claims import DUE_STATUSES, claim, claim_token
from ..ledger import reroute_claimed
from ..models import Message, Recipient, RecipientStatus, SuspendedQueue, TrackingEventId, TrackingSource
from ..outcomes import Result
from ..queueing import queue_ndr
from .objects import NEXT_HOP, SUBMISSION, UNREACHABLE, Queue, QueuedMessage, QueueError, queue_rows

REMOVED = Result.ours(550, "4.3.2", "QUEUE.Admin; message deleted by administrative action", TrackingSource.QUEUE)


@dataclass(frozen=True)
class Outcome:
    """What an action did: recipients changed, and those left alone because a worker was delivering them."""

    changed: int
    active: int = 0


def _audit(
    caller: Caller,
    cmdlet: str,
    identity: str,
    connector: SendConnector | None,
    parameters: dict[str, Any] | None = None,
) -> None:
    audit.record_command(caller, cmdlet, identity, parameters, connector=connector)


def _active(rows: QuerySet[Recipient]) -> int:
    return rows.exclude(claimed_by="").count()


def _wake(queue: Queue) -> None:
    if queue.kind == NEXT_HOP:
        assert queue.connector is not None  # a NextHop queue is a connector's
        wakeups.wake_next_hops([(queue.connector.pk, queue.next_hop_domain)], coalesce=False)


def retry_queue(caller: Caller, queue: Queue, resubmit: bool = False) -> Outcome:
    """Retry-Queue: the queue's Retry rows are due now and its workers are woken. With ``resubmit`` (always for
    Submission; required for Unreachable, as in Exchange) the queue's messages are routed again instead:
    Unreachable recipients whose domain a connector now matches, or every waiting row of a delivery queue."""
    if queue.kind == UNREACHABLE and not resubmit:
        raise QueueError(
            f"The queue '{queue.identity}' can only be retried with -Resubmit $true: its messages need a route, "
            f"not a new connection."
        )
    server = local_server()
    retrying = queue.kind == NEXT_HOP and not resubmit
    # One transaction, so that a failure leaves the queue as it was. The ledger wakes the next hops of the messages
    # it routes again before this commits: a worker that looks too early finds nothing, and the sweeper wakes the
    # next hop again (only latency is lost).
    with transaction.atomic():
        if retrying:
            changed = queue.rows.filter(status=RecipientStatus.RETRY, claimed_by="").update(
                next_attempt_at=timezone.now()
            )
        elif queue.kind == UNREACHABLE:
            changed = sweeper.reroute(server)  # suspended rows are skipped, as Exchange skips suspended messages
        else:
            if queue.kind == NEXT_HOP:
                # Back to Submission (no connector), from where they are routed like new mail; a claimed row is
                # skipped.
                queue.rows.filter(status__in=DUE_STATUSES, claimed_by="").update(
                    connector=None, next_attempt_at=timezone.now()
                )
            changed = reroute_claimed(queue_rows(SUBMISSION, None, ""), server)
        _audit(caller, "Retry-Queue", queue.identity, queue.connector, {"Resubmit": True} if resubmit else None)
    if retrying and changed:
        _wake(queue)
    return Outcome(changed, _active(queue.rows))


def _refuse_submission(queue: Queue) -> None:
    if queue.kind == SUBMISSION:
        raise QueueError(
            "Messages in the Submission queue are routed within seconds and can't be suspended there; suspend "
            "them in the queue they are routed to."
        )


def _suspend(caller: Caller, cmdlet: str, identity: str, queue: Queue, rows: QuerySet[Recipient]) -> Outcome:
    _refuse_submission(queue)
    waiting = (*DUE_STATUSES, RecipientStatus.UNREACHABLE)
    with transaction.atomic():
        changed = rows.filter(status__in=waiting, claimed_by="").update(
            status=RecipientStatus.SUSPENDED, next_attempt_at=None
        )
        _audit(caller, cmdlet, identity, queue.connector)
    return Outcome(changed, _active(rows))


def _resume(caller: Caller, cmdlet: str, identity: str, queue: Queue, rows: QuerySet[Recipient]) -> Outcome:
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


def suspend_queue(caller: Caller, queue: Queue) -> Outcome:
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


def resume_queue(caller: Caller, queue: Queue) -> Outcome:
    """Resume-Queue: the queue delivers again, from now (its workers are woken). ``changed`` is 1 when it was
    suspended. Messages suspended one by one stay suspended, as in Exchange: Resume-Message resumes them."""
    with transaction.atomic():
        changed = min(queue.suspension.delete()[0], 1)
        _audit(caller, "Resume-Queue", queue.identity, queue.connector)
    if changed:
        _wake(queue)
    return Outcome(changed)


def suspend_message(caller: Caller, message: QueuedMessage) -> Outcome:
    """Suspend-Message: the message's recipients in its queue (not in other queues) are suspended."""
    return _suspend(
        caller, "Suspend-Message", message.identity, message.queue, message.queue.rows.filter(message_id=message.pk)
    )


def resume_message(caller: Caller, message: QueuedMessage) -> Outcome:
    return _resume(
        caller, "Resume-Message", message.identity, message.queue, message.queue.rows.filter(message_id=message.pk)
    )


def remove_message(caller: Caller, message: QueuedMessage, with_ndr: bool = True) -> Outcome:
    """Remove-Message: the message's recipients in its queue fail with Exchange's ``550 4.3.2 QUEUE.Admin``
    reply (FAIL tracking events), and with ``with_ndr`` the sender gets an NDR — unless the message is itself a
    notification or from the null sender. Rows are claimed first so that an attempt in flight isn't undone."""
    rows = message.queue.rows.filter(message_id=message.pk)
    server = local_server()
    now = timezone.now()
    connector_name = message.queue.next_hop_connector
    original = Message.objects.get(pk=message.pk)
    token = claim_token()
    with transaction.atomic():
        claimed = claim(rows, token, None)
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
