"""The queue viewer's selectors and actions: aggregates, identities, query counts, and what each action does."""

import email
from datetime import timedelta
from email import policy

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sendconn.connectors.models import AdminAuditLogEntry
from sendconn.connectors.services import Caller
from sendconn.transport import opath, queue_admin, sweeper, tracking
from sendconn.transport.claims import claim, claim_due, due_rows
from sendconn.transport.models import (
    Message,
    Recipient,
    RecipientStatus,
    SuspendedQueue,
    TrackingEvent,
    TrackingEventId,
    TrackingSource,
)
from sendconn.transport.queue_admin import QueueError, QueueNotFound
from sendconn.transport.queueing import UNREACHABLE_RESPONSE
from tests.factories import DEFERRED, SENDER, UNREACHABLE, queued, retry_values

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tracking_log_dir", "woken")]

CALLER = Caller("kim", "Shell")


@pytest.fixture
def internet(make_connector):
    return make_connector("To internet", ["*"])


@pytest.fixture
def relay(make_connector):
    return make_connector(
        "Fabrikam relay", ["fabrikam.test"], dns_routing_enabled=False, smart_hosts=["relay.contoso.test"]
    )


def retrying(*recipients, minutes_ago=1, **row_values):
    values = retry_values(attempt_count=2, attempted_ago=timedelta(minutes=minutes_ago), retry_in=timedelta(minutes=10))
    return queued(*recipients, **{**values, **row_values})


def unreachable(*recipients, **row_values):
    return queued(*recipients, **UNREACHABLE, next_attempt_at=None, **row_values)


def by_identity():
    return {queue.identity: queue for queue in queue_admin.queue_list()}


def rows_of(message):
    return list(Recipient.objects.filter(message=message).order_by("id"))


# -- queues --------------------------------------------------------------------------------------------------


def test_one_queue_per_next_hop_plus_submission_and_unreachable(internet, relay):
    queued("a@contoso.test", "b@contoso.test")
    queued("c@contoso.test")
    queued("d@fabrikam.test")
    unreachable("e@nowhere.test")
    queues = queue_admin.queue_list()
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
    assert [queue.identity for queue in queue_admin.queue_list()] == ["EX01\\Submission", "EX01\\Unreachable"]


def test_status_retry_with_last_error_and_retry_times(internet):
    retrying("a@contoso.test", minutes_ago=5, last_response="421 4.4.2 Connection dropped")
    retrying("b@contoso.test", minutes_ago=1)
    queue = by_identity()["EX01\\contoso.test"]
    assert queue.status == "Retry"
    assert queue.last_error == DEFERRED  # the latest failed attempt's reply
    latest = Recipient.objects.get(address="b@contoso.test")
    earliest_next = Recipient.objects.get(address="a@contoso.test").next_attempt_at
    assert (queue.last_retry_time, queue.next_retry_time) == (latest.last_attempt_at, earliest_next)


def test_status_active_while_a_worker_holds_a_row_and_ready_when_only_its_messages_are_suspended(internet):
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
    assert [q.identity for q in queue_admin.queue_list(status="retry")] == ["EX01\\contoso.test"]
    assert [q.identity for q in queue_admin.queue_list(next_hop="FABRIKAM")] == ["EX01\\fabrikam.test"]


def test_two_connectors_on_one_next_hop_are_named_with_their_connector(internet, make_connector):
    queued("a@contoso.test")
    partner = make_connector("Partner", ["contoso.test"])
    queued("b@contoso.test")
    queues = by_identity()
    assert {"EX01\\contoso.test\\To internet", "EX01\\contoso.test\\Partner"} <= set(queues)
    with pytest.raises(QueueNotFound, match="matches more than one queue"):
        queue_admin.get_queue("EX01\\contoso.test")
    assert queue_admin.get_queue("EX01\\CONTOSO.test\\partner").connector == partner
    assert queue_admin.get_queue(f"EX01\\contoso.test\\{partner.guid}").connector == partner


def test_get_queue_accepts_exchange_identities_and_refuses_unknown_ones(internet):
    queued("a@contoso.test")
    assert queue_admin.get_queue("EX01\\contoso.test").identity == "EX01\\contoso.test"
    assert queue_admin.get_queue("contoso.test").identity == "EX01\\contoso.test"  # the local server
    assert queue_admin.get_queue("ex01.contoso.test\\Contoso.Test").message_count == 1
    assert queue_admin.get_queue("EX01\\submission").identity == "EX01\\Submission"
    assert queue_admin.get_queue("EX01\\Unreachable").message_count == 0
    # Still the long form for a queue no other connector shares.
    assert queue_admin.get_queue("EX01\\contoso.test\\To internet").identity == "EX01\\contoso.test"
    for unknown in (
        "EX01\\fabrikam.test",
        "BR01\\contoso.test",
        "EX01\\contoso.test\\Nope",
        "",
        "EX01\\",
        "EX01\\Unreachable\\x",
    ):
        with pytest.raises(QueueNotFound, match="couldn't be found"):
            queue_admin.get_queue(unknown)


def test_rates_are_messages_per_second_over_the_last_minute(internet):
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


# -- messages ------------------------------------------------------------------------------------------------


def test_messages_of_a_queue_with_their_recipients(internet):
    first = queued("a@contoso.test", "b@contoso.test", "c@fabrikam.test")
    second = retrying("d@contoso.test")
    queue = queue_admin.get_queue("EX01\\contoso.test")
    messages = queue_admin.load_messages(queue_admin.message_rows(queue), {queue.key: queue})
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
    found = queue_admin.get_message(f"EX01\\fabrikam.test\\{message.pk}")
    assert [row.address for row in found.recipients] == ["b@fabrikam.test"]
    for unknown in (
        f"EX01\\nowhere.test\\{message.pk}",
        "EX01\\fabrikam.test\\999999",
        "EX01\\fabrikam.test\\x",
        str(message.pk),
    ):
        with pytest.raises(QueueNotFound):
            queue_admin.get_message(unknown)


def test_message_rows_filter_in_the_database(internet):
    queued("a@contoso.test", sender="kim@contoso.com")
    retrying("b@contoso.test", sender="julia@fabrikam.com")
    queued("c@contoso.test", sender="")
    rows = queue_admin.message_rows()
    fields = queue_admin.MESSAGE_FILTER_FIELDS

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
        queue = queue_admin.get_queue("EX01\\contoso.test")
        page = Paginator(queue_admin.message_rows(queue), 50).get_page(1)
        messages = queue_admin.load_messages(page.object_list, {queue.key: queue})
    return len(captured), messages


def _queue_list_queries():
    with CaptureQueriesContext(connection) as captured:
        queues = queue_admin.queue_list()
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


# -- actions -------------------------------------------------------------------------------------------------


def test_retry_queue_makes_retry_rows_due_now_and_wakes_the_next_hop(internet, woken):
    retrying("a@contoso.test", "b@contoso.test")
    Recipient.objects.filter(address="b@contoso.test").update(claimed_by="EX01/worker", claimed_at=timezone.now())
    queue = queue_admin.get_queue("EX01\\contoso.test")
    before = timezone.now()
    outcome = queue_admin.retry_queue(CALLER, queue)
    assert outcome == queue_admin.Outcome(changed=1, active=1)
    a, b = Recipient.objects.order_by("address")
    assert before <= a.next_attempt_at <= timezone.now()
    assert b.next_attempt_at > timezone.now()  # a worker holds it: left alone
    assert woken == [[(internet.pk, "contoso.test")]]
    entry = AdminAuditLogEntry.objects.get(cmdlet="Retry-Queue")
    assert (entry.command_line, entry.object_name, entry.connector_guid, entry.caller, entry.source) == (
        "Retry-Queue -Identity 'EX01\\contoso.test'",
        "EX01\\contoso.test",
        internet.guid,
        "kim",
        "Shell",
    )


def test_retry_unreachable_needs_resubmit_and_then_routes_again(make_connector, woken):
    unreachable("a@contoso.test")
    parked = unreachable("b@contoso.test")
    Recipient.objects.filter(message=parked).update(status=RecipientStatus.SUSPENDED)
    queue = queue_admin.get_queue("EX01\\Unreachable")
    with pytest.raises(QueueError, match="-Resubmit"):
        queue_admin.retry_queue(CALLER, queue)
    connector = make_connector("Contoso", ["contoso.test"])
    assert queue_admin.retry_queue(CALLER, queue, resubmit=True).changed == 1
    rows = {row.address: row for row in Recipient.objects.all()}
    assert (rows["a@contoso.test"].status, rows["a@contoso.test"].connector) == (RecipientStatus.READY, connector)
    assert rows["b@contoso.test"].status == RecipientStatus.SUSPENDED  # suspended messages are skipped
    assert woken == [[(connector.pk, "contoso.test")]]
    assert AdminAuditLogEntry.objects.get(cmdlet="Retry-Queue").command_line == (
        "Retry-Queue -Identity 'EX01\\Unreachable' -Resubmit $true"
    )


def test_resubmitting_a_delivery_queue_routes_its_messages_again(internet, make_connector, woken):
    retrying("a@contoso.test")
    queue = queue_admin.get_queue("EX01\\contoso.test")
    partner = make_connector("Partner", ["contoso.test"])
    assert queue_admin.retry_queue(CALLER, queue, resubmit=True).changed == 1
    row = Recipient.objects.get()
    assert (row.connector, row.status, row.attempt_count) == (partner, RecipientStatus.READY, 2)
    assert row.next_attempt_at <= timezone.now()


def test_a_suspended_queue_holds_its_mail_and_mail_routed_to_it_later(internet, woken):
    queued("a@contoso.test", "b@contoso.test")
    queue = queue_admin.get_queue("EX01\\contoso.test")
    assert queue_admin.suspend_queue(CALLER, queue) == queue_admin.Outcome(changed=1)
    later = queued("c@contoso.test")
    other = queued("d@fabrikam.test")
    suspended = queue_admin.get_queue("EX01\\contoso.test")
    assert (suspended.status, suspended.message_count, suspended.can_resume) == ("Suspended", 2, True)
    # The messages keep their status; nothing of the queue is claimed or woken, other queues go on.
    assert set(Recipient.objects.filter(domain="contoso.test").values_list("status", flat=True)) == {"Ready"}
    tomorrow = timezone.now() + timedelta(days=1)
    assert claim(due_rows(internet.pk, "contoso.test", tomorrow), "tester", 100) == []
    assert claim_due(internet.pk, "contoso.test", "tester", 100) == []
    assert [row.message for row in claim_due(internet.pk, "fabrikam.test", "tester", 100)] == [other]
    woken.clear()
    assert sweeper.wake_due_next_hops(tomorrow) == 0
    assert woken == [[]]
    assert later.recipients.get().status == RecipientStatus.READY
    assert AdminAuditLogEntry.objects.get(cmdlet="Suspend-Queue").command_line == (
        "Suspend-Queue -Identity 'EX01\\contoso.test'"
    )


def test_suspending_a_suspended_queue_changes_nothing(internet):
    queued("a@contoso.test")
    queue_admin.suspend_queue(CALLER, queue_admin.get_queue("EX01\\contoso.test"))
    assert queue_admin.suspend_queue(CALLER, queue_admin.get_queue("EX01\\contoso.test")).changed == 0
    assert SuspendedQueue.objects.count() == 1


def test_suspend_counts_a_row_a_worker_is_delivering(internet):
    queued("a@contoso.test", "b@contoso.test")
    Recipient.objects.filter(address="b@contoso.test").update(claimed_by="EX01/worker", claimed_at=timezone.now())
    outcome = queue_admin.suspend_queue(CALLER, queue_admin.get_queue("EX01\\contoso.test"))
    assert outcome == queue_admin.Outcome(changed=1, active=1)  # that delivery finishes, as in Exchange


def test_an_emptied_suspended_queue_is_still_listed_and_can_be_resumed(internet, woken):
    message = queued("a@contoso.test")
    queue_admin.suspend_queue(CALLER, queue_admin.get_queue("EX01\\contoso.test"))
    message.delete()
    queue = by_identity()["EX01\\contoso.test"]
    assert (queue.status, queue.message_count, queue.connector) == ("Suspended", 0, internet)
    assert queue_admin.resume_queue(CALLER, queue_admin.get_queue("EX01\\contoso.test")).changed == 1
    assert "EX01\\contoso.test" not in by_identity()


def test_resume_queue_delivers_again_and_leaves_suspended_messages_suspended(internet, woken):
    queued("a@contoso.test")
    retrying("b@contoso.test")
    parked = queued("c@contoso.test", status=RecipientStatus.SUSPENDED, next_attempt_at=None)
    queue_admin.suspend_queue(CALLER, queue_admin.get_queue("EX01\\contoso.test"))
    woken.clear()
    assert queue_admin.resume_queue(CALLER, queue_admin.get_queue("EX01\\contoso.test")).changed == 1
    assert not SuspendedQueue.objects.exists()
    assert queue_admin.get_queue("EX01\\contoso.test").status == "Ready"
    assert [row.address for row in claim_due(internet.pk, "contoso.test", "tester", 100)] == ["a@contoso.test"]
    assert parked.recipients.get().status == RecipientStatus.SUSPENDED  # Resume-Message resumes it
    assert woken == [[(internet.pk, "contoso.test")]]
    assert queue_admin.resume_queue(CALLER, queue_admin.get_queue("EX01\\contoso.test")).changed == 0
    assert (
        list(AdminAuditLogEntry.objects.filter(cmdlet="Resume-Queue").values_list("command_line", flat=True))
        == ["Resume-Queue -Identity 'EX01\\contoso.test'"] * 2
    )


def test_a_suspended_unreachable_queue_is_not_rerouted(internet, make_connector):
    unreachable("a@nowhere.test")
    queue_admin.suspend_queue(CALLER, queue_admin.get_queue("EX01\\Unreachable"))
    make_connector("Nowhere", ["nowhere.test"])
    assert sweeper.reroute(queue_admin.local_server()) == 0
    assert queue_admin.get_queue("EX01\\Unreachable").status == "Suspended"
    queue_admin.resume_queue(CALLER, queue_admin.get_queue("EX01\\Unreachable"))
    assert sweeper.reroute(queue_admin.local_server()) == 1


def delivered(message, connector, minutes_ago=0):
    """``message``'s recipients delivered through ``connector``: Delivered rows and their SEND entries."""
    when = timezone.now() - timedelta(minutes=minutes_ago)
    Recipient.objects.filter(message=message).update(status=RecipientStatus.DELIVERED, next_attempt_at=None)
    tracking.record(
        [
            tracking.event(
                TrackingEventId.SEND,
                TrackingSource.SMTP,
                message,
                row.address,
                connector_name=connector.name,
                timestamp=when,
            )
            for row in message.recipients.all()
        ]
    )


def test_an_emptied_queue_stays_listed_for_queue_max_idle_time_and_can_be_suspended(internet, woken):
    delivered(queued("a@Contoso.test"), internet)
    delivered(queued("b@fabrikam.test"), internet, minutes_ago=4)  # longer ago than QueueMaxIdleTime (3 minutes)
    queue = by_identity()["EX01\\contoso.test"]
    assert (queue.message_count, queue.status, queue.connector) == (0, "Ready", internet)
    assert "EX01\\fabrikam.test" not in by_identity()

    queue_admin.suspend_queue(CALLER, queue_admin.get_queue("EX01\\contoso.test"))
    queued("c@contoso.test")
    assert claim_due(internet.pk, "contoso.test", "tester", 100) == []
    assert queue_admin.get_queue("EX01\\contoso.test").message_count == 1


def test_an_emptied_smart_host_queue_is_named_by_its_smart_hosts(relay, settings):
    delivered(queued("a@fabrikam.test"), relay)
    assert by_identity()["EX01\\relay.contoso.test"].connector == relay
    settings.SENDCONN_QUEUE_MAX_IDLE_TIME = timedelta(0)
    assert "EX01\\relay.contoso.test" not in by_identity()


def test_removing_a_connector_ends_the_suspension_of_its_queues(internet):
    queued("a@contoso.test")
    queue_admin.suspend_queue(CALLER, queue_admin.get_queue("EX01\\contoso.test"))
    internet.delete()
    assert not SuspendedQueue.objects.exists()


def test_suspend_and_resume_unreachable_messages(internet):
    message = unreachable("a@nowhere.test")
    found = queue_admin.get_message(f"EX01\\Unreachable\\{message.pk}")
    queue_admin.suspend_message(CALLER, found)
    assert Recipient.objects.get().status == RecipientStatus.SUSPENDED
    assert queue_admin.get_queue("EX01\\Unreachable").suspended == 1
    assert sweeper.reroute(queue_admin.local_server()) == 0  # only an administrator resumes it
    queue_admin.resume_message(CALLER, queue_admin.get_message(f"EX01\\Unreachable\\{message.pk}"))
    row = Recipient.objects.get()
    assert (row.status, row.next_attempt_at) == (RecipientStatus.UNREACHABLE, None)


def test_suspend_message_touches_only_that_message_in_that_queue(internet):
    target = queued("a@contoso.test", "b@fabrikam.test")
    other = queued("c@contoso.test")
    message = queue_admin.get_message(f"EX01\\contoso.test\\{target.pk}")
    assert queue_admin.suspend_message(CALLER, message).changed == 1
    statuses = dict(Recipient.objects.values_list("address", "status"))
    assert statuses == {"a@contoso.test": "Suspended", "b@fabrikam.test": "Ready", "c@contoso.test": "Ready"}
    assert queue_admin.get_message(f"EX01\\contoso.test\\{target.pk}").status == "Suspended"
    assert queue_admin.get_message(f"EX01\\contoso.test\\{other.pk}").status == "Ready"
    assert AdminAuditLogEntry.objects.get(cmdlet="Suspend-Message").command_line == (
        f"Suspend-Message -Identity 'EX01\\contoso.test\\{target.pk}'"
    )


def test_suspending_the_submission_queue_is_refused(internet):
    with pytest.raises(QueueError, match="Submission"):
        queue_admin.suspend_queue(CALLER, queue_admin.get_queue("EX01\\Submission"))
    assert not AdminAuditLogEntry.objects.filter(cmdlet="Suspend-Queue").exists()


def _ndr_of(message):
    notification = Message.objects.get(is_dsn=True, original_message=message)
    return notification, email.message_from_bytes(bytes(notification.content), policy=policy.default)


def test_remove_message_with_ndr_fails_its_recipients_and_tells_the_sender(internet):
    message = retrying("a@contoso.test", "b@contoso.test", "c@fabrikam.test")
    found = queue_admin.get_message(f"EX01\\contoso.test\\{message.pk}")
    assert queue_admin.remove_message(CALLER, found, with_ndr=True).changed == 2
    statuses = dict(Recipient.objects.filter(message=message).values_list("address", "status"))
    assert statuses == {"a@contoso.test": "Failed", "b@contoso.test": "Failed", "c@fabrikam.test": "Retry"}
    assert set(Recipient.objects.filter(status="Failed").values_list("last_response", flat=True)) == {
        "550 4.3.2 QUEUE.Admin; message deleted by administrative action"
    }
    fails = TrackingEvent.objects.filter(event_id=TrackingEventId.FAIL, queued_message=message)
    assert sorted(fails.values_list("recipient", flat=True)) == ["a@contoso.test", "b@contoso.test"]
    assert set(fails.values_list("source", flat=True)) == {"QUEUE"}
    assert TrackingEvent.objects.filter(event_id=TrackingEventId.DSN, queued_message=message).count() == 2
    notification, ndr = _ndr_of(message)
    assert list(notification.recipients.values_list("address", flat=True)) == [SENDER]
    assert notification.sender == ""
    assert ndr["Subject"] == "Undeliverable: Quarterly report"
    assert "4.3.2" in ndr.as_string() and "QUEUE.Admin" in ndr.as_string()
    assert AdminAuditLogEntry.objects.get(cmdlet="Remove-Message").command_line == (
        f"Remove-Message -Identity 'EX01\\contoso.test\\{message.pk}' -WithNDR $true"
    )


def test_remove_message_without_ndr_sends_nothing(internet):
    message = queued("a@contoso.test")
    found = queue_admin.get_message(f"EX01\\contoso.test\\{message.pk}")
    queue_admin.remove_message(CALLER, found, with_ndr=False)
    assert Recipient.objects.get(message=message).status == RecipientStatus.FAILED
    assert not Message.objects.filter(is_dsn=True).exists()
    assert AdminAuditLogEntry.objects.get(cmdlet="Remove-Message").command_line.endswith("-WithNDR $false")
    emptied = queue_admin.queue_list()[0]  # listed for QueueMaxIdleTime after its last message, as in Exchange
    assert (emptied.identity, emptied.message_count, emptied.status) == ("EX01\\contoso.test", 0, "Ready")


def test_remove_message_from_the_null_sender_never_sends_an_ndr(internet):
    message = queued("a@contoso.test", sender="")
    queue_admin.remove_message(CALLER, queue_admin.get_message(f"EX01\\contoso.test\\{message.pk}"), with_ndr=True)
    assert Recipient.objects.get(message=message).status == RecipientStatus.FAILED
    assert not Message.objects.filter(is_dsn=True).exists()


def test_remove_message_leaves_a_recipient_being_delivered(internet):
    message = queued("a@contoso.test", "b@contoso.test")
    Recipient.objects.filter(address="b@contoso.test").update(claimed_by="EX01/worker", claimed_at=timezone.now())
    found = queue_admin.get_message(f"EX01\\contoso.test\\{message.pk}")
    assert queue_admin.remove_message(CALLER, found, with_ndr=False) == queue_admin.Outcome(changed=1, active=1)
    assert Recipient.objects.get(address="b@contoso.test").status == RecipientStatus.READY
