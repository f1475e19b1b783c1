"""The ledger: writing the outcomes of claimed recipient rows.

``Ledger`` collects outcomes — Delivered, Retry with Exchange's timers, Failed with an NDR, a new route, a delay
notification — and ``commit()`` writes them in one transaction with their tracking events and notifications,
releasing the rows' claims; then the tracking log file and the wake-ups of re-routed rows. Rows are written only
while still claimed with the ledger's token: if a claim was released under us (the claimer was presumed dead),
the new claimer's outcome stands.
"""

import logging
from collections import defaultdict
from typing import Any, cast

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Field, QuerySet
from django.utils import timezone

from sendconn.connectors.models import TransportServer
from sendconn.connectors.servers import local_server

from . import notifications, statements, tracking, wakeups
from .claims import claim, claim_token
from .models import Message, Recipient, RecipientStatus, TrackingEvent, TrackingEventId
from .outcomes import Result, expired, expires_at, retry_interval, size_exceeded
from .queueing import UNREACHABLE_RESPONSE, queue_notification
from .routing import Route, Router

log = logging.getLogger(__name__)

RECORDED_FIELDS = (
    "status",
    "connector",
    "next_hop_domain",
    "attempt_count",
    "first_attempt_at",
    "last_attempt_at",
    "next_attempt_at",
    "last_response",
    "delivered_at",
    "delay_notified",
    "claimed_by",
    "claimed_at",
)


class Ledger:
    def __init__(self, token: str, server: TransportServer | None = None) -> None:
        self.token = token
        self._server = server
        self.now = timezone.now()
        self.rows: list[Recipient] = []
        self.released: list[int] = []  # primary keys
        self.events: list[TrackingEvent] = []
        self.next_hops: set[tuple[int, str]] = set()
        # message → [(row, result, connector name)]
        self._failures: defaultdict[Message, list[tuple[Recipient, Result, str]]] = defaultdict(list)
        self._delays: defaultdict[Message, list[tuple[Recipient, str]]] = defaultdict(list)  # [(row, connector name)]

    def __len__(self) -> int:
        return len(self.rows) + len(self.released)

    @property
    def server(self) -> TransportServer:
        """This transport server (the NDR's reporting MTA and receiving server), read only when needed."""
        if self._server is None:
            self._server = local_server()
        return self._server

    def attempted(self, row: Recipient, message: Message, result: Result, connector_name: str) -> None:
        """One delivery attempt's result: Delivered, Retry (Failed 4.4.7 once expired) or Failed."""
        row.attempt_count += 1
        row.first_attempt_at = row.first_attempt_at or self.now
        row.last_attempt_at = self.now
        if result.delivered:
            self._finish(row, RecipientStatus.DELIVERED, result)
            row.delivered_at = self.now
            self._event(TrackingEventId.SEND, row, message, result, connector_name)
        elif not result.permanent and self.now < expires_at(message):
            self._finish(row, RecipientStatus.RETRY, result)
            row.next_attempt_at = self.now + retry_interval(row.attempt_count)
            self._event(TrackingEventId.DEFER, row, message, result, connector_name)
        else:
            self.failed(row, message, result if result.permanent else expired(result.response), connector_name)

    def failed(self, row: Recipient, message: Message, result: Result, connector_name: str) -> None:
        """Failed for good (no attempt counted here): FAIL event, and an NDR unless the sender is null."""
        self._finish(row, RecipientStatus.FAILED, result)
        self._event(TrackingEventId.FAIL, row, message, result, connector_name)
        self._failures[message].append((row, result, connector_name))

    def routed(self, row: Recipient, route: Route, message: Message) -> None:
        """A new routing decision (the sweeper's re-route of Unreachable rows, a disabled connector's rows)."""
        if route.connector is not None:
            row.status, row.connector, row.next_hop_domain = (
                RecipientStatus.READY,
                route.connector,
                route.next_hop_domain,
            )
            row.next_attempt_at = self.now
            row.claimed_by, row.claimed_at = "", None
            self.rows.append(row)
            self.next_hops.add((route.connector.pk, route.next_hop_domain))
        elif route.too_big:
            row.connector, row.next_hop_domain = None, ""
            self.failed(row, message, size_exceeded(), "")
        else:
            row.status, row.connector, row.next_hop_domain = RecipientStatus.UNREACHABLE, None, ""
            row.next_attempt_at, row.last_response = None, UNREACHABLE_RESPONSE
            row.claimed_by, row.claimed_at = "", None
            self.rows.append(row)

    def delay_notified(self, row: Recipient, message: Message, connector_name: str) -> None:
        """Still not delivered after DelayNotificationTimeout: one delay DSN per message, once per recipient."""
        row.delay_notified = True
        row.claimed_by, row.claimed_at = "", None
        self.rows.append(row)
        self._delays[message].append((row, connector_name))

    def release(self, row: Recipient) -> None:
        """Give a claimed row back untouched (its attempt never happened)."""
        self.released.append(row.pk)

    def commit(self) -> None:
        with transaction.atomic():
            if self.rows:
                written = _write_claimed(self.rows, self.token)
                if written != len(self.rows):
                    log.warning(
                        "%d recipient(s) were claimed by another worker meanwhile; their outcome stands",
                        len(self.rows) - written,
                    )
            if self.released:
                Recipient.objects.filter(id__in=self.released, claimed_by=self.token).update(
                    claimed_by="", claimed_at=None
                )
            self._queue_notifications()
            tracking.record(self.events)
        tracking.write_log(self.events)
        if self.next_hops:
            wakeups.wake_next_hops(sorted(self.next_hops))

    def _finish(self, row: Recipient, status: str, result: Result) -> None:
        row.status = status
        row.last_response = result.response
        row.next_attempt_at = None
        row.claimed_by, row.claimed_at = "", None
        self.rows.append(row)

    def _event(self, event_id: str, row: Recipient, message: Message, result: Result, connector_name: str) -> None:
        self.events.append(
            tracking.event(
                event_id,
                result.source,
                message,
                row.address,
                recipient_status=result.response,
                connector_name=connector_name,
                remote_host=result.remote_host,
                remote_ip=result.remote_ip,
                timestamp=self.now,
            )
        )

    def _queue_notifications(self) -> None:
        for message, failures in self._failures.items():
            self.events += queue_notification(notifications.ndr(message, failures, self.server), self.server, self.now)
        for message, delays in self._delays.items():
            self.events += queue_notification(
                notifications.delay_notification(message, delays, self.server), self.server, self.now
            )


def reroute_claimed(rows: QuerySet[Recipient], server: TransportServer, router: Router | None = None) -> int:
    """Claim ``rows`` and route them again as ``server`` does (Ready on a new next hop, Unreachable, or Failed
    when too big for every matching connector); return how many were routed."""
    token = claim_token()
    router = router or Router(server)
    handled = 0
    while claimed := claim(rows, token, settings.SENDCONN_DELIVERY_BATCH_SIZE):
        messages = Message.objects.in_bulk({row.message_id for row in claimed})
        ledger = Ledger(token, server)
        for row in claimed:
            message = messages[row.message_id]
            ledger.routed(row, router.route(row.domain, message.size), message)
        ledger.commit()
        handled += len(claimed)
    return handled


def _write_claimed(rows: list[Recipient], token: str) -> int:
    """Write RECORDED_FIELDS of ``rows`` that are still claimed by ``token``: one prepared UPDATE run for every row
    (executemany), where Django's bulk_update would build a CASE per field and row at several times the cost."""
    recorded = statements.adapters(Recipient, RECORDED_FIELDS)
    quote = connection.ops.quote_name
    # Every recorded field is concrete, with a column (django-stubs types get_field() more loosely).
    columns = [cast("Field[Any, Any]", Recipient._meta.get_field(name)).column for name in RECORDED_FIELDS]
    assignments = ", ".join(f"{quote(cast(str, column))} = %s" for column in columns)
    table = quote(Recipient._meta.db_table)
    sql = f"UPDATE {table} SET {assignments} WHERE {quote('id')} = %s AND {quote('claimed_by')} = %s"
    params = [
        [adapt(getattr(row, attname), connection) for attname, adapt in recorded] + [row.pk, token] for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
        return cursor.rowcount
