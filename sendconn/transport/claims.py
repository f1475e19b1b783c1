"""Claims: which worker holds which queued recipient rows, so two never send the same recipient.

A claim is ``claimed_by`` (a token naming the server, host, process and claimer) and ``claimed_at`` on the row.
Claims are taken by a conditional UPDATE (with SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL) and released by
the ledger with the outcome. A claimer that dies leaves its rows claimed: a delivery engine starting on the same
host releases the claims of processes that are gone (``release_claims_of_dead_processes``), and the sweeper
releases any claim older than SENDCONN_CLAIM_TIMEOUT as the last resort (a machine that never comes back).
"""

import logging
import os
import socket
import uuid
from contextlib import nullcontext
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from . import statements
from .models import Message, Recipient, RecipientStatus, SuspendedQueue

log = logging.getLogger(__name__)

DUE_STATUSES = (RecipientStatus.READY, RecipientStatus.RETRY)


def claim_token() -> str:
    """Who holds a claim: ``<server>/<host>:<pid>/<unique>``, for people reading the queue and for
    ``release_claims_of_dead_processes``."""
    return f"{settings.SENDCONN_SERVER_NAME}/{socket.gethostname()}:{os.getpid()}/{uuid.uuid4().hex[:12]}"


def holder_process(token: str) -> tuple[str, int] | None:
    """(host, pid) of the process a claim token names; None for a token of another shape."""
    _, _, holder = token.partition("/")
    holder, _, _ = holder.rpartition("/")
    host, _, pid = holder.rpartition(":")
    return (host, int(pid)) if host and pid.isdigit() else None


def claim(rows: QuerySet[Recipient], token: str, limit: int | None) -> list[Recipient]:
    """Claim up to ``limit`` (None: all) unclaimed rows of ``rows`` (a Recipient queryset saying which rows may be
    taken) for ``token``, and return them.

    The UPDATE repeats every condition and ``claimed_by = ''``, so a row another claimer took (or finished) since
    the SELECT is not taken again. On PostgreSQL the SELECT locks its rows and skips locked ones, so concurrent
    claimers take different rows instead of queueing on the same ones. SQLite has one writer at a time: the
    SELECT reads without taking the write lock (WAL) and only the UPDATE, one statement, holds it — a worker that
    finds nothing due never blocks smtpd's commits.
    """
    unclaimed = rows.filter(claimed_by="")
    now = timezone.now()
    skip_locked = connection.features.has_select_for_update_skip_locked
    with transaction.atomic() if skip_locked else nullcontext():
        candidates = unclaimed.select_for_update(skip_locked=True, of=("self",)) if skip_locked else unclaimed
        claimed = list(candidates[:limit])
        if not claimed:
            return []
        ids = [row.pk for row in claimed]
        taken = unclaimed.filter(id__in=ids).update(claimed_by=token, claimed_at=now)
    if taken != len(claimed):  # another claimer was quicker for some
        return list(Recipient.objects.filter(id__in=ids, claimed_by=token).select_related("message"))
    for row in claimed:
        row.claimed_by, row.claimed_at = token, now
    return claimed


def claim_due_many(wanted: dict[tuple[int, str], int], token: str) -> dict[tuple[int, str], list[Recipient]]:
    """Claim up to ``limit`` due rows of each next hop ``(connector id, next hop domain)`` of ``wanted``, with their
    messages loaded; return the claimed rows by next hop (next hops with none left out).

    The claim of ``claim``, for many next hops at once and in hand-written statements (the delivery hot path, where
    compiling the ORM's queries cost more than running them): the SELECTs find the candidates, then ONE write
    transaction takes them all, each UPDATE repeating its conditions, so SQLite's write lock is taken once per
    round of claims instead of once per next hop, and not at all when nothing is due.
    """
    now = _db_datetime(timezone.now())
    q = connection.ops.quote_name
    table = q(Recipient._meta.db_table)
    due = (
        f"{q('connector_id')} = %s AND {q('next_hop_domain')} = %s AND {q('status')} IN (%s, %s) "
        f"AND {q('next_attempt_at')} <= %s AND {q('claimed_by')} = %s"
    )
    not_suspended = (
        f"NOT EXISTS (SELECT 1 FROM {q(SuspendedQueue._meta.db_table)} "
        f"WHERE {q('connector_id')} = %s AND {q('next_hop_domain')} = %s)"
    )
    skip_locked = connection.features.has_select_for_update_skip_locked
    lock = " FOR UPDATE SKIP LOCKED" if skip_locked else ""
    found: dict[tuple[int, str], list[int]] = {}
    # PostgreSQL: the selected rows stay locked (others skip them) until the UPDATEs, in the same transaction.
    with transaction.atomic() if skip_locked else nullcontext(), connection.cursor() as cursor:
        for (connector_id, next_hop_domain), limit in wanted.items():
            cursor.execute(
                f"SELECT {q('id')} FROM {table} WHERE {due} AND {not_suspended} ORDER BY {q('id')} LIMIT %s{lock}",
                [connector_id, next_hop_domain, *DUE_STATUSES, now, "", connector_id, next_hop_domain, limit],
            )
            if ids := [row[0] for row in cursor.fetchall()]:
                found[(connector_id, next_hop_domain)] = ids
        if not found:
            return {}
        with nullcontext() if skip_locked else transaction.atomic():
            for (connector_id, next_hop_domain), ids in found.items():
                cursor.execute(
                    f"UPDATE {table} SET {q('claimed_by')} = %s, {q('claimed_at')} = %s "
                    f"WHERE {q('id')} IN ({', '.join(['%s'] * len(ids))}) AND {due}",
                    [token, now, *ids, connector_id, next_hop_domain, *DUE_STATUSES, now, ""],
                )
    ids = [row_id for next_hop_ids in found.values() for row_id in next_hop_ids]
    message_table = q(Message._meta.db_table)
    claimed: dict[tuple[int, str], list[Recipient]] = {}
    for row, message in statements.load(
        [Recipient, Message],
        f"SELECT {statements.columns(Recipient, 'r')}, {statements.columns(Message, 'm')} FROM {table} r "
        f"JOIN {message_table} m ON m.{q('id')} = r.{q('message_id')} "
        f"WHERE r.{q('id')} IN ({', '.join(['%s'] * len(ids))}) AND r.{q('claimed_by')} = %s ORDER BY r.{q('id')}",
        [*ids, token],
    ):
        row.message = message
        claimed.setdefault((row.connector_id, row.next_hop_domain), []).append(row)
    return claimed


def next_hops_with_rows_after(row_id: int | None) -> tuple[int, set[tuple[int, str]]]:
    """The newest recipient row's id, and the next hops (connector id, next hop domain) of the rows after
    ``row_id`` (None: the newest id only). One range scan of the primary key: cheap enough to ask often."""
    q = connection.ops.quote_name
    table = q(Recipient._meta.db_table)
    with connection.cursor() as cursor:
        if row_id is None:
            cursor.execute(f"SELECT MAX({q('id')}) FROM {table}")
            return cursor.fetchone()[0] or 0, set()  # 0: an empty queue, every row to come is newer
        cursor.execute(
            f"SELECT {q('connector_id')}, {q('next_hop_domain')}, MAX({q('id')}) FROM {table} "
            f"WHERE {q('id')} > %s GROUP BY {q('connector_id')}, {q('next_hop_domain')}",
            [row_id],
        )
        found = cursor.fetchall()
    newest = max((row[2] for row in found), default=row_id)
    return newest, {(connector_id, domain) for connector_id, domain, _ in found if connector_id is not None}


def _db_datetime(moment: datetime) -> Any:
    return Recipient._meta.get_field("claimed_at").get_db_prep_value(moment, connection)


def in_suspended_queue() -> Exists:
    """True for a Recipient row whose delivery queue Suspend-Queue stopped."""
    return Exists(
        SuspendedQueue.objects.filter(
            connector_id=OuterRef("connector_id"), next_hop_domain=OuterRef("next_hop_domain")
        )
    )


def due_rows(connector_id: int, next_hop_domain: str, now: datetime | None = None) -> QuerySet[Recipient]:
    """The rows of the next hop that may be sent now (none while its queue is suspended)."""
    return Recipient.objects.filter(
        connector_id=connector_id,
        next_hop_domain=next_hop_domain,
        status__in=DUE_STATUSES,
        next_attempt_at__lte=now or timezone.now(),
    ).exclude(in_suspended_queue())


def release_claims_of_dead_processes(server_name: str | None = None) -> int:
    """Release the claims held by processes of this host that no longer run (a worker killed with SIGKILL, a
    machine restarted): their rows go out again within seconds instead of after SENDCONN_CLAIM_TIMEOUT.
    Returns how many rows were released."""
    server_name = server_name or settings.SENDCONN_SERVER_NAME
    host = socket.gethostname()
    holders = (
        Recipient.objects.filter(claimed_by__startswith=f"{server_name}/{host}:")
        .order_by()
        .values_list("claimed_by", flat=True)
        .distinct()
    )
    dead = [token for token in holders if (holder := holder_process(token)) and not _running(holder[1])]
    if not dead:
        return 0
    released = Recipient.objects.filter(claimed_by__in=dead).update(claimed_by="", claimed_at=None)
    log.warning(
        "Released %d recipient(s) claimed by %d process(es) of this host that stopped before recording them",
        released,
        len(dead),
    )
    return released


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
