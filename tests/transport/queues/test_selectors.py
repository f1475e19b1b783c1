"""The queue viewer's reads: the queue list and its aggregates, identities, messages, and query counts."""

from datetime import timedelta

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sendconn.transport import opath, tracking
from sendconn.transport.models import Message, Recipient, RecipientStatus, TrackingEventId, TrackingSource
from sendconn.transport.queueing import UNREACHABLE_RESPONSE
from sendconn.transport.queues import selectors
from sendconn.transport.queues.objects import QueueNotFound
from tests.factories import DEFERRED, SENDER, delivered, queued, retrying, unreachable

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tracking_log_dir", "woken")]


# -- queues --------------------------------------------------------------------------------------------------


def test_one_queue_per_next_hop_plus_submission_and_unreachable(internet, relay):
    queued("a@contoso.test", "b@contoso.test")
    queued("c@contoso.test")
    queued("d@fabrikam.test")
    unreachable("e@nowhere.test")
    queues = selectors.queue_list()
    assert [queue.identity for queue in queues] == [
        "EX01\\contoso.test",
        "EX01\\relay.contoso.test",
        "EX01\\Submission",
        "EX01\\Unreachable",
    ]
    contoso, relayed, submission, lost = queues
    assert (contoso.message_count, contoso.recipients, contoso.status) == (2, 3, "Ready")
    assert (contoso.delivery_type, contoso.next_hop_domain, contoso.next_hop_connector) == (
        "DnsConnectorDelivery",
        "contoso.test",
        "To internet",
    )
    assert (relayed.delivery_type, relayed.next_hop_connector, relayed.message_count) == (
        "SmartHostConnectorDelivery",
        "Fabrikam relay",
        1,
    )
    # Routing happens at submission: the Submission queue exists, empty.
    assert (submission.message_count, submission.delivery_type, submission.status) == (0, "Undefined", "Ready")
    assert (lost.message_count, lost.delivery_type, lost.last_error) == (1, "Unreachable", UNREACHABLE_RESPONSE)


def test_final_rows_are_in_no_queue(internet):
    queued("a@contoso.test", status=RecipientStatus.DELIVERED, next_attempt_at=None)
    queued("b@contoso.test", status=RecipientStatus.FAILED, next_attempt_at=None)
    assert [queue.identity for queue in selectors.queue_list()] == ["EX01\\Submission", "EX01\\Unreachable"]


def test_status_retry_with_last_error_and_retry_times(internet, by_identity):
    retrying("a@contoso.test", minutes_ago=5, last_response="421 4.4.2 Connection dropped")
    retrying("b@contoso.test", minutes_ago=1)
    queue = by_identity()["EX01\\contoso.test"]
    assert queue.status == "Retry"
    assert queue.last_error == DEFERRED  # the latest failed attempt's reply
    latest = Recipient.objects.get(address="b@contoso.test")
    earliest_next = Recipient.objects.get(address="a@contoso.test").next_attempt_at
    assert (queue.last_retry_time, queue.next_retry_time) == (latest.last_attempt_at, earliest_next)


def test_status_active_while_a_worker_holds_a_row_and_ready_when_only_its_messages_are_suspended(internet, by_identity):
    queued("a@contoso.test")
    retrying("b@contoso.test")
    Recipient.objects.filter(address="a@contoso.test").update(claimed_by="EX01/worker", claimed_at=timezone.now())
    queued("c@fabrikam.test", status=RecipientStatus.SUSPENDED, next_attempt_at=None)
    queues = by_identity()
    assert queues["EX01\\contoso.test"].status == "Active"
    # Suspend-Message suspends messages, not their queue (Exchange's queue status stays Ready).
    assert (queues["EX01\\fabrikam.test"].status, queues["EX01\\fabrikam.test"].suspended) == ("Ready", 1)


def test_queue_list_filters_by_status_and_next_hop(internet):
    retrying("a@contoso.test")
    queued("b@fabrikam.test")
    assert [q.identity for q in selectors.queue_list(status="retry")] == ["EX01\\contoso.test"]
    assert [q.identity for q in selectors.queue_list(next_hop="FABRIKAM")] == ["EX01\\fabrikam.test"]


def test_two_connectors_on_one_next_hop_are_named_with_their_connector(internet, make_connector, by_identity):
    queued("a@contoso.test")
    partner = make_connector("Partner", ["contoso.test"])
    queued("b@contoso.test")
    queues = by_identity()
    assert {"EX01\\contoso.test\\To internet", "EX01\\contoso.test\\Partner"} <= set(queues)
    with pytest.raises(QueueNotFound, match="matches more than one queue"):
        selectors.get_queue("EX01\\contoso.test")
    assert selectors.get_queue("EX01\\CONTOSO.test\\partner").connector == partner
    assert selectors.get_queue(f"EX01\\contoso.test\\{partner.guid}").connector == partner


def test_get_queue_accepts_exchange_identities_and_refuses_unknown_ones(internet):
    queued("a@contoso.test")
    assert selectors.get_queue("EX01\\contoso.test").identity == "EX01\\contoso.test"
    assert selectors.get_queue("contoso.test").identity == "EX01\\contoso.test"  # the local server
    assert selectors.get_queue("ex01.contoso.test\\Contoso.Test").message_count == 1
    assert selectors.get_queue("EX01\\submission").identity == "EX01\\Submission"
    assert selectors.get_queue("EX01\\Unreachable").message_count == 0
    # Still the long form for a queue no other connector shares.
    assert selectors.get_queue("EX01\\contoso.test\\To internet").identity == "EX01\\contoso.test"
    for unknown in (
        "EX01\\fabrikam.test",
        "BR01\\contoso.test",
        "EX01\\contoso.test\\Nope",
        "",
        "EX01\\",
        "EX01\\Unreachable\\x",
    ):
        with pytest.raises(QueueNotFound, match="couldn't be found"):
            selectors.get_queue(unknown)


def test_rates_are_messages_per_second_over_the_last_minute(internet, by_identity):
    queued("a@contoso.test", "b@contoso.test")
    queued("c@contoso.test")
    sent = queued("d@contoso.test", age=timedelta(minutes=5))
    events = [
        tracking.event(TrackingEventId.SEND, TrackingSource.SMTP, sent, address, connector_name="To internet")
        for address in ("x@contoso.test", "y@contoso.test", "z@fabrikam.test")
    ]
    tracking.record(events)
    queue = by_identity()["EX01\\contoso.test"]
    assert queue.incoming_rate == round(2 / 60, 3)
    assert queue.outgoing_rate == round(1 / 60, 3)  # one message, to two recipients of contoso.test
    assert queue.velocity == round(queue.outgoing_rate - queue.incoming_rate, 3)


def test_an_emptied_smart_host_queue_is_named_by_its_smart_hosts(relay, settings, by_identity):
    delivered(queued("a@fabrikam.test"), relay)
    assert by_identity()["EX01\\relay.contoso.test"].connector == relay
    settings.SENDCONN_QUEUE_MAX_IDLE_TIME = timedelta(0)
    assert "EX01\\relay.contoso.test" not in by_identity()


# -- messages ------------------------------------------------------------------------------------------------


def test_messages_of_a_queue_with_their_recipients(internet):
    first = queued("a@contoso.test", "b@contoso.test", "c@fabrikam.test")
    second = retrying("d@contoso.test")
    queue = selectors.get_queue("EX01\\contoso.test")
    messages = selectors.load_messages(selectors.message_rows(queue), {queue.key: queue})
    assert [message.identity for message in messages] == [
        f"EX01\\contoso.test\\{first.pk}",
        f"EX01\\contoso.test\\{second.pk}",
    ]
    assert [row.address for row in messages[0].recipients] == ["a@contoso.test", "b@contoso.test"]
    assert (messages[0].status, messages[0].from_address, messages[0].subject) == ("Ready", SENDER, "Quarterly report")
    assert (messages[1].status, messages[1].last_error, messages[1].retry_count) == ("Retry", DEFERRED, 2)
    assert messages[1].expiration_time == second.submitted_at + timedelta(days=2)


def test_get_message_finds_it_in_its_queue_only(internet):
    message = queued("a@contoso.test", "b@fabrikam.test")
    found = selectors.get_message(f"EX01\\fabrikam.test\\{message.pk}")
    assert [row.address for row in found.recipients] == ["b@fabrikam.test"]
    for unknown in (
        f"EX01\\nowhere.test\\{message.pk}",
        "EX01\\fabrikam.test\\999999",
        "EX01\\fabrikam.test\\x",
        str(message.pk),
    ):
        with pytest.raises(QueueNotFound):
            selectors.get_message(unknown)


def test_message_rows_filter_in_the_database(internet):
    queued("a@contoso.test", sender="kim@contoso.com")
    retrying("b@contoso.test", sender="julia@fabrikam.com")
    queued("c@contoso.test", sender="")
    rows = selectors.message_rows()
    fields = selectors.MESSAGE_FILTER_FIELDS

    def senders(text):
        tree = opath.parse(text, fields)
        return [row["from_address"] for row in rows.filter(opath.to_q(tree, fields))]

    assert senders("FromAddress -like '*@contoso.com'") == ["kim@contoso.com"]
    assert senders("Status -eq 'retry'") == ["julia@fabrikam.com"]
    assert senders("Status -ne 'Retry' -and -not (FromAddress -eq $null)") == ["kim@contoso.com"]
    assert senders("FromAddress -eq $null -or Subject -like 'nothing*'") == [""]
    assert senders("RetryCount -ge 2") == ["julia@fabrikam.com"]


# -- query counts --------------------------------------------------------------------------------------------


def _queue_page_queries():
    with CaptureQueriesContext(connection) as captured:
        queue = selectors.get_queue("EX01\\contoso.test")
        page = Paginator(selectors.message_rows(queue), 50).get_page(1)
        messages = selectors.load_messages(page.object_list, {queue.key: queue})
    return len(captured), messages


def _queue_list_queries():
    with CaptureQueriesContext(connection) as captured:
        queues = selectors.queue_list()
    return len(captured), queues


def _insert(model, columns, rows):
    """Rows inserted by one parameterised statement run many times: the ORM's bulk_create spends most of a
    minute building 100,000 objects on this machine; this takes seconds."""
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    marks = ", ".join(["%s"] * len(columns))
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)


def _bulk_queue(connector, recipients, per_message=5):
    """``recipients`` queued rows over three next hops and three statuses, one message per ``per_message``."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    _insert(
        Message,
        ("sender", "content", "size", "message_id", "subject", "submitted_at", "client_hostname", "is_dsn"),
        [(SENDER, b"x", 1, f"<bulk{n}@contoso.com>", "Bulk", now, "", False) for n in range(recipients // per_message)],
    )
    message_ids = list(Message.objects.filter(subject="Bulk").order_by("id").values_list("id", flat=True))
    hops = ["contoso.test", "fabrikam.test", "tailspin.test"]
    statuses = [RecipientStatus.READY, RecipientStatus.RETRY, RecipientStatus.SUSPENDED]
    _insert(
        Recipient,
        (
            "message_id",
            "address",
            "domain",
            "status",
            "attempt_count",
            "next_attempt_at",
            "last_attempt_at",
            "last_response",
            "connector_id",
            "next_hop_domain",
            "claimed_by",
            "delay_notified",
        ),
        [
            (
                message_ids[n // per_message],
                f"user{n}@{hops[n % 3]}",
                hops[n % 3],
                statuses[n % 3],
                n % 2,
                now,
                now,
                DEFERRED if n % 3 == 1 else "",
                connector.pk,
                hops[n % 3],
                "",
                False,
            )
            for n in range(recipients)
        ],
    )


def test_queue_list_and_a_queue_page_cost_the_same_queries_for_ten_or_100000_recipients(internet):
    for n in range(10):
        queued(f"user{n}@contoso.test")
    small_list, _ = _queue_list_queries()
    small_page, _ = _queue_page_queries()

    _bulk_queue(internet, 100_000)
    assert Recipient.objects.count() == 100_010
    large_list, queues = _queue_list_queries()
    large_page, messages = _queue_page_queries()
    assert (large_list, large_page) == (small_list, small_page)
    assert small_list <= 6 and small_page <= 9
    counts = {queue.identity: queue.recipients for queue in queues}
    assert counts["EX01\\contoso.test"] == 10 + 33_334
    assert len(messages) == 50 and all(message.recipients for message in messages)


def test_emptied_smart_host_queues_cost_the_same_queries_however_many_connectors(relay, make_connector):
    delivered(queued("a@fabrikam.test"), relay)
    one, _ = _queue_list_queries()
    for n in range(3):
        connector = make_connector(
            f"Relay {n}", [f"tailspin{n}.test"], dns_routing_enabled=False, smart_hosts=[f"relay{n}.contoso.test"]
        )
        delivered(queued(f"b@tailspin{n}.test"), connector)
    many, queues = _queue_list_queries()
    assert many == one <= 9
    assert [queue.identity for queue in queues if queue.kind == "NextHop"] == [
        "EX01\\relay.contoso.test",
        "EX01\\relay0.contoso.test",
        "EX01\\relay1.contoso.test",
        "EX01\\relay2.contoso.test",
    ]
