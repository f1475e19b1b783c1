"""The sweeper's steps, called directly: stale claims, expiry, delay notifications, re-routing, wake-ups."""

import email
from datetime import timedelta
from email import policy

import pytest
from django.utils import timezone

from sendconn.connectors.servers import local_server
from sendconn.transport import sweeper
from sendconn.transport.models import Message, Recipient, RecipientStatus, TrackingEvent
from sendconn.transport.queueing import queue_message
from tests.factories import CONTENT, DEFERRED, SENDER, UNREACHABLE, queued, retry_values

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tracking_log_dir", "woken")]


@pytest.fixture
def internet(make_connector):
    return make_connector("To internet", ["*"])


def retrying(*recipients, age, sender=SENDER, **row_values):
    return queued(*recipients, sender=sender, age=age, **{**retry_values(attempt_count=3), **row_values})


def notifications():
    return list(Message.objects.filter(is_dsn=True))


def delivery_status(message):
    report = email.message_from_bytes(bytes(message.content), policy=policy.default)
    return [dict(block.items()) for block in report.get_payload()[1].get_payload()[1:]]


# --- stale claims ---------------------------------------------------------------------------------------------


def test_claims_older_than_the_claim_timeout_are_released(internet, settings):
    settings.SENDCONN_CLAIM_TIMEOUT = timedelta(minutes=15)
    now = timezone.now()
    queued("dead@fabrikam.test", claimed_by="EX01/host:1/dead", claimed_at=now - timedelta(minutes=16))
    queued("alive@fabrikam.test", claimed_by="EX01/host:2/alive", claimed_at=now - timedelta(minutes=14))

    assert sweeper.release_stale_claims(now) == 1

    claims = dict(Recipient.objects.values_list("address", "claimed_by"))
    assert claims == {"dead@fabrikam.test": "", "alive@fabrikam.test": "EX01/host:2/alive"}
    assert Recipient.objects.get(address="dead@fabrikam.test").status == RecipientStatus.READY  # due again


def test_the_default_claim_timeout_outlasts_the_task_time_limit(settings):
    assert settings.SENDCONN_CLAIM_TIMEOUT.total_seconds() > settings.CELERY_TASK_TIME_LIMIT


# --- expiry ---------------------------------------------------------------------------------------------------


def test_recipients_still_queued_after_the_expiration_timeout_fail_with_an_ndr(internet):
    now = timezone.now()
    old = retrying("kim@fabrikam.test", age=timedelta(days=2, minutes=1))
    unreachable = queued("lee@nowhere.test", age=timedelta(days=3), **UNREACHABLE)
    young = retrying("ann@fabrikam.test", age=timedelta(days=1))

    assert sweeper.expire(local_server(), now) == 2

    kim = Recipient.objects.get(message=old)
    assert kim.status == RecipientStatus.FAILED
    assert kim.last_response == f"550 4.4.7 QUEUE.Expired; message expired [LastError: {DEFERRED}]"
    assert Recipient.objects.get(message=unreachable).status == RecipientStatus.FAILED
    assert Recipient.objects.get(message=young).status == RecipientStatus.RETRY
    fail = TrackingEvent.objects.get(event_id="FAIL", recipient="kim@fabrikam.test")
    assert (fail.source, fail.connector_name) == ("QUEUE", "To internet")
    ndrs = {ndr.original_message_id: ndr for ndr in notifications()}
    assert set(ndrs) == {old.pk, unreachable.pk}
    [fields] = delivery_status(ndrs[old.pk])
    assert (fields["Action"], fields["Status"]) == ("failed", "4.4.7")
    assert fields["Diagnostic-Code"].startswith("smtp; 550 4.4.7 QUEUE.Expired; message expired")


def test_expiry_leaves_claimed_rows_to_their_worker_and_sends_no_ndr_for_a_null_sender(internet):
    now = timezone.now()
    retrying("kim@fabrikam.test", age=timedelta(days=3), claimed_by="EX01/host:1/busy", claimed_at=now)
    bounce = retrying("lee@fabrikam.test", age=timedelta(days=3), sender="")

    assert sweeper.expire(local_server(), now) == 1

    assert Recipient.objects.get(message=bounce).status == RecipientStatus.FAILED
    assert Recipient.objects.get(address="kim@fabrikam.test").status == RecipientStatus.RETRY
    assert notifications() == []


# --- delay notifications --------------------------------------------------------------------------------------


def test_one_delay_notification_after_the_delay_notification_timeout(internet):
    now = timezone.now()
    late = retrying("kim@fabrikam.test", "lee@fabrikam.test", age=timedelta(hours=4, minutes=1))
    retrying("ann@fabrikam.test", age=timedelta(hours=3))

    assert sweeper.send_delay_notifications(local_server(), now) == 2
    assert sweeper.send_delay_notifications(local_server(), now) == 0  # once per recipient

    [notice] = notifications()
    assert (notice.sender, notice.original_message, notice.subject) == ("", late, "Delivery delayed: Quarterly report")
    assert list(notice.recipients.values_list("address", flat=True)) == [SENDER]
    blocks = delivery_status(notice)
    assert [(b["Final-Recipient"], b["Action"], b["Status"]) for b in blocks] == [
        ("rfc822; kim@fabrikam.test", "delayed", "4.4.0"),
        ("rfc822; lee@fabrikam.test", "delayed", "4.4.0"),
    ]
    assert all("Will-Retry-Until" in block for block in blocks)
    rows = Recipient.objects.filter(message=late)
    assert all(row.delay_notified and row.status == RecipientStatus.RETRY and not row.claimed_by for row in rows)
    assert not Recipient.objects.get(address="ann@fabrikam.test").delay_notified
    assert TrackingEvent.objects.filter(event_id="DSN").count() == 2


def test_no_delay_notification_to_the_null_sender(internet):
    retrying("kim@fabrikam.test", age=timedelta(hours=5), sender="")

    assert sweeper.send_delay_notifications(local_server(), timezone.now()) == 1

    assert notifications() == []
    assert Recipient.objects.get().delay_notified


# --- re-routing -----------------------------------------------------------------------------------------------


def test_unreachable_recipients_are_routed_once_a_connector_covers_them(make_connector, woken):
    message = queue_message(SENDER, ["kim@fabrikam.test", "lee@tailspin.test"], CONTENT)
    assert set(Recipient.objects.values_list("status", flat=True)) == {RecipientStatus.UNREACHABLE}
    assert sweeper.reroute(local_server()) == 0

    connector = make_connector("To Fabrikam", ["fabrikam.test"])
    assert sweeper.reroute(local_server()) == 1

    kim = Recipient.objects.get(message=message, address="kim@fabrikam.test")
    assert (kim.status, kim.connector, kim.next_hop_domain, kim.claimed_by) == (
        RecipientStatus.READY,
        connector,
        "fabrikam.test",
        "",
    )
    assert kim.next_attempt_at <= timezone.now()
    assert Recipient.objects.get(address="lee@tailspin.test").status == RecipientStatus.UNREACHABLE
    assert woken == [[(connector.pk, "fabrikam.test")]]


def test_rows_of_a_removed_connector_are_routed_again(make_connector):
    first = make_connector("First", ["*"])
    queue_message(SENDER, ["kim@fabrikam.test"], CONTENT)
    second = make_connector("Second", ["fabrikam.test"])
    first.delete()  # the row keeps its status, loses its connector

    assert sweeper.reroute(local_server()) == 1

    row = Recipient.objects.get()
    assert (row.status, row.connector, row.next_hop_domain) == (RecipientStatus.READY, second, "fabrikam.test")


# --- wake-ups -------------------------------------------------------------------------------------------------


def test_every_next_hop_with_due_unclaimed_rows_is_woken_once(make_connector, woken):
    internet = make_connector("To internet", ["*"])
    now = timezone.now()
    queued("a@fabrikam.test", "b@fabrikam.test")
    queued("c@fabrikam.test")
    queued("d@tailspin.test", status=RecipientStatus.RETRY, next_attempt_at=now - timedelta(seconds=1))
    queued("e@later.test", status=RecipientStatus.RETRY, next_attempt_at=now + timedelta(minutes=5))
    queued("f@busy.test", claimed_by="EX01/host:1/x", claimed_at=now)
    queued("g@done.test", status=RecipientStatus.DELIVERED, next_attempt_at=None)

    assert sweeper.wake_due_next_hops(timezone.now()) == 2

    assert sorted(woken[0]) == [(internet.pk, "fabrikam.test"), (internet.pk, "tailspin.test")]


def test_a_sweep_runs_every_step(internet, woken, settings):
    settings.SENDCONN_CLAIM_TIMEOUT = timedelta(seconds=5)
    queued("kim@fabrikam.test", claimed_by="EX01/host:1/dead", claimed_at=timezone.now() - timedelta(seconds=6))

    done = sweeper.sweep()

    assert done == {"released": 1, "expired": 0, "delay_notified": 0, "rerouted": 0, "woken": 1}
    assert woken == [[(internet.pk, "fabrikam.test")]]
