"""The queue viewer's actions: what each does to the rows, the wake-ups, the audit log and the NDRs."""

import email
from datetime import timedelta
from email import policy

import pytest
from django.db import DatabaseError
from django.utils import timezone

from sendconn.connectors import audit
from sendconn.connectors.models import AdminAuditLogEntry
from sendconn.connectors.servers import local_server
from sendconn.connectors.services import Caller
from sendconn.transport import sweeper
from sendconn.transport.claims import claim, claim_due_many, due_rows
from sendconn.transport.models import (
    Message,
    Recipient,
    RecipientStatus,
    SuspendedQueue,
    TrackingEvent,
    TrackingEventId,
)
from sendconn.transport.queues import selectors, services
from sendconn.transport.queues.objects import QueueError
from tests.factories import SENDER, delivered, queued, retrying, unreachable

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tracking_log_dir", "woken")]


def claim_due(connector_id, next_hop_domain, token, limit):
    """What a worker's claim for the next hop takes."""
    return claim_due_many({(connector_id, next_hop_domain): limit}, token).get((connector_id, next_hop_domain), [])


CALLER = Caller("kim", "Shell")


@pytest.fixture
def failing_audit_log(monkeypatch):
    """The admin audit log, which every action writes last, can't be written."""

    def fail(*args, **kwargs):
        raise DatabaseError("the audit log can't be written")

    monkeypatch.setattr(audit, "record_command", fail)


def test_retry_queue_makes_retry_rows_due_now_and_wakes_the_next_hop(internet, woken):
    retrying("a@contoso.test", "b@contoso.test")
    Recipient.objects.filter(address="b@contoso.test").update(claimed_by="EX01/worker", claimed_at=timezone.now())
    queue = selectors.get_queue("EX01\\contoso.test")
    before = timezone.now()
    outcome = services.retry_queue(CALLER, queue)
    assert outcome == services.Outcome(changed=1, active=1)
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
    queue = selectors.get_queue("EX01\\Unreachable")
    with pytest.raises(QueueError, match="-Resubmit"):
        services.retry_queue(CALLER, queue)
    connector = make_connector("Contoso", ["contoso.test"])
    assert services.retry_queue(CALLER, queue, resubmit=True).changed == 1
    rows = {row.address: row for row in Recipient.objects.all()}
    assert (rows["a@contoso.test"].status, rows["a@contoso.test"].connector) == (RecipientStatus.READY, connector)
    assert rows["b@contoso.test"].status == RecipientStatus.SUSPENDED  # suspended messages are skipped
    assert woken == [[(connector.pk, "contoso.test")]]
    assert AdminAuditLogEntry.objects.get(cmdlet="Retry-Queue").command_line == (
        "Retry-Queue -Identity 'EX01\\Unreachable' -Resubmit $true"
    )


def test_resubmitting_a_delivery_queue_routes_its_messages_again(internet, make_connector, woken):
    retrying("a@contoso.test")
    queue = selectors.get_queue("EX01\\contoso.test")
    partner = make_connector("Partner", ["contoso.test"])
    assert services.retry_queue(CALLER, queue, resubmit=True).changed == 1
    row = Recipient.objects.get()
    assert (row.connector, row.status, row.attempt_count) == (partner, RecipientStatus.READY, 2)
    assert row.next_attempt_at <= timezone.now()


@pytest.mark.parametrize("identity", ["EX01\\contoso.test", "EX01\\Unreachable"])
def test_resubmitting_is_one_transaction_that_a_failure_undoes(internet, make_connector, failing_audit_log, identity):
    retrying("a@contoso.test")
    unreachable("b@fabrikam.test")
    queue = selectors.get_queue(identity)
    make_connector("Partner", ["contoso.test", "fabrikam.test"])
    with pytest.raises(DatabaseError):
        services.retry_queue(CALLER, queue, resubmit=True)
    rows = {row.address: row for row in Recipient.objects.all()}
    assert (rows["a@contoso.test"].connector, rows["a@contoso.test"].status) == (internet, RecipientStatus.RETRY)
    assert (rows["b@fabrikam.test"].connector, rows["b@fabrikam.test"].status) == (None, RecipientStatus.UNREACHABLE)
    assert {row.claimed_by for row in rows.values()} == {""}


def test_a_suspended_queue_holds_its_mail_and_mail_routed_to_it_later(internet, woken):
    queued("a@contoso.test", "b@contoso.test")
    queue = selectors.get_queue("EX01\\contoso.test")
    assert services.suspend_queue(CALLER, queue) == services.Outcome(changed=1)
    later = queued("c@contoso.test")
    other = queued("d@fabrikam.test")
    suspended = selectors.get_queue("EX01\\contoso.test")
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
    services.suspend_queue(CALLER, selectors.get_queue("EX01\\contoso.test"))
    assert services.suspend_queue(CALLER, selectors.get_queue("EX01\\contoso.test")).changed == 0
    assert SuspendedQueue.objects.count() == 1


def test_suspend_counts_a_row_a_worker_is_delivering(internet):
    queued("a@contoso.test", "b@contoso.test")
    Recipient.objects.filter(address="b@contoso.test").update(claimed_by="EX01/worker", claimed_at=timezone.now())
    outcome = services.suspend_queue(CALLER, selectors.get_queue("EX01\\contoso.test"))
    assert outcome == services.Outcome(changed=1, active=1)  # that delivery finishes, as in Exchange


def test_an_emptied_suspended_queue_is_still_listed_and_can_be_resumed(internet, woken, by_identity):
    message = queued("a@contoso.test")
    services.suspend_queue(CALLER, selectors.get_queue("EX01\\contoso.test"))
    message.delete()
    queue = by_identity()["EX01\\contoso.test"]
    assert (queue.status, queue.message_count, queue.connector) == ("Suspended", 0, internet)
    assert services.resume_queue(CALLER, selectors.get_queue("EX01\\contoso.test")).changed == 1
    assert "EX01\\contoso.test" not in by_identity()


def test_resume_queue_delivers_again_and_leaves_suspended_messages_suspended(internet, woken):
    queued("a@contoso.test")
    retrying("b@contoso.test")
    parked = queued("c@contoso.test", status=RecipientStatus.SUSPENDED, next_attempt_at=None)
    services.suspend_queue(CALLER, selectors.get_queue("EX01\\contoso.test"))
    woken.clear()
    assert services.resume_queue(CALLER, selectors.get_queue("EX01\\contoso.test")).changed == 1
    assert not SuspendedQueue.objects.exists()
    assert selectors.get_queue("EX01\\contoso.test").status == "Ready"
    assert [row.address for row in claim_due(internet.pk, "contoso.test", "tester", 100)] == ["a@contoso.test"]
    assert parked.recipients.get().status == RecipientStatus.SUSPENDED  # Resume-Message resumes it
    assert woken == [[(internet.pk, "contoso.test")]]
    assert services.resume_queue(CALLER, selectors.get_queue("EX01\\contoso.test")).changed == 0
    assert (
        list(AdminAuditLogEntry.objects.filter(cmdlet="Resume-Queue").values_list("command_line", flat=True))
        == ["Resume-Queue -Identity 'EX01\\contoso.test'"] * 2
    )


def test_a_suspended_unreachable_queue_is_not_rerouted(internet, make_connector):
    unreachable("a@nowhere.test")
    services.suspend_queue(CALLER, selectors.get_queue("EX01\\Unreachable"))
    make_connector("Nowhere", ["nowhere.test"])
    assert sweeper.reroute(local_server()) == 0
    assert selectors.get_queue("EX01\\Unreachable").status == "Suspended"
    services.resume_queue(CALLER, selectors.get_queue("EX01\\Unreachable"))
    assert sweeper.reroute(local_server()) == 1


def test_an_emptied_queue_stays_listed_for_queue_max_idle_time_and_can_be_suspended(internet, woken, by_identity):
    delivered(queued("a@Contoso.test"), internet)
    delivered(queued("b@fabrikam.test"), internet, minutes_ago=4)  # longer ago than QueueMaxIdleTime (3 minutes)
    queue = by_identity()["EX01\\contoso.test"]
    assert (queue.message_count, queue.status, queue.connector) == (0, "Ready", internet)
    assert "EX01\\fabrikam.test" not in by_identity()

    services.suspend_queue(CALLER, selectors.get_queue("EX01\\contoso.test"))
    queued("c@contoso.test")
    assert claim_due(internet.pk, "contoso.test", "tester", 100) == []
    assert selectors.get_queue("EX01\\contoso.test").message_count == 1


def test_removing_a_connector_ends_the_suspension_of_its_queues(internet):
    queued("a@contoso.test")
    services.suspend_queue(CALLER, selectors.get_queue("EX01\\contoso.test"))
    internet.delete()
    assert not SuspendedQueue.objects.exists()


def test_suspend_and_resume_unreachable_messages(internet):
    message = unreachable("a@nowhere.test")
    found = selectors.get_message(f"EX01\\Unreachable\\{message.pk}")
    services.suspend_message(CALLER, found)
    assert Recipient.objects.get().status == RecipientStatus.SUSPENDED
    assert selectors.get_queue("EX01\\Unreachable").suspended == 1
    assert sweeper.reroute(local_server()) == 0  # only an administrator resumes it
    services.resume_message(CALLER, selectors.get_message(f"EX01\\Unreachable\\{message.pk}"))
    row = Recipient.objects.get()
    assert (row.status, row.next_attempt_at) == (RecipientStatus.UNREACHABLE, None)


def test_suspend_message_touches_only_that_message_in_that_queue(internet):
    target = queued("a@contoso.test", "b@fabrikam.test")
    other = queued("c@contoso.test")
    message = selectors.get_message(f"EX01\\contoso.test\\{target.pk}")
    assert services.suspend_message(CALLER, message).changed == 1
    statuses = dict(Recipient.objects.values_list("address", "status"))
    assert statuses == {"a@contoso.test": "Suspended", "b@fabrikam.test": "Ready", "c@contoso.test": "Ready"}
    assert selectors.get_message(f"EX01\\contoso.test\\{target.pk}").status == "Suspended"
    assert selectors.get_message(f"EX01\\contoso.test\\{other.pk}").status == "Ready"
    assert AdminAuditLogEntry.objects.get(cmdlet="Suspend-Message").command_line == (
        f"Suspend-Message -Identity 'EX01\\contoso.test\\{target.pk}'"
    )


def test_suspending_the_submission_queue_is_refused(internet):
    with pytest.raises(QueueError, match="Submission"):
        services.suspend_queue(CALLER, selectors.get_queue("EX01\\Submission"))
    assert not AdminAuditLogEntry.objects.filter(cmdlet="Suspend-Queue").exists()


def _ndr_of(message):
    notification = Message.objects.get(is_dsn=True, original_message=message)
    return notification, email.message_from_bytes(bytes(notification.content), policy=policy.default)


def test_remove_message_with_ndr_fails_its_recipients_and_tells_the_sender(internet):
    message = retrying("a@contoso.test", "b@contoso.test", "c@fabrikam.test")
    found = selectors.get_message(f"EX01\\contoso.test\\{message.pk}")
    assert services.remove_message(CALLER, found, with_ndr=True).changed == 2
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
    found = selectors.get_message(f"EX01\\contoso.test\\{message.pk}")
    services.remove_message(CALLER, found, with_ndr=False)
    assert Recipient.objects.get(message=message).status == RecipientStatus.FAILED
    assert not Message.objects.filter(is_dsn=True).exists()
    assert AdminAuditLogEntry.objects.get(cmdlet="Remove-Message").command_line.endswith("-WithNDR $false")
    emptied = selectors.queue_list()[0]  # listed for QueueMaxIdleTime after its last message, as in Exchange
    assert (emptied.identity, emptied.message_count, emptied.status) == ("EX01\\contoso.test", 0, "Ready")


def test_remove_message_from_the_null_sender_never_sends_an_ndr(internet):
    message = queued("a@contoso.test", sender="")
    services.remove_message(CALLER, selectors.get_message(f"EX01\\contoso.test\\{message.pk}"), with_ndr=True)
    assert Recipient.objects.get(message=message).status == RecipientStatus.FAILED
    assert not Message.objects.filter(is_dsn=True).exists()


def test_remove_message_leaves_a_recipient_being_delivered(internet):
    message = queued("a@contoso.test", "b@contoso.test")
    Recipient.objects.filter(address="b@contoso.test").update(claimed_by="EX01/worker", claimed_at=timezone.now())
    found = selectors.get_message(f"EX01\\contoso.test\\{message.pk}")
    assert services.remove_message(CALLER, found, with_ndr=False) == services.Outcome(changed=1, active=1)
    assert Recipient.objects.get(address="b@contoso.test").status == RecipientStatus.READY


def test_remove_message_is_one_transaction_that_a_failure_undoes(internet, failing_audit_log):
    message = queued("a@contoso.test")
    found = selectors.get_message(f"EX01\\contoso.test\\{message.pk}")
    with pytest.raises(DatabaseError):
        services.remove_message(CALLER, found, with_ndr=True)
    row = Recipient.objects.get(message=message)
    assert (row.status, row.claimed_by) == (RecipientStatus.READY, "")
    assert not TrackingEvent.objects.filter(event_id=TrackingEventId.FAIL).exists()
    assert not Message.objects.filter(is_dsn=True).exists()
