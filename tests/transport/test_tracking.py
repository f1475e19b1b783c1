from datetime import timedelta

import pytest
from django.utils import timezone

from sendconn.transport import tracking
from sendconn.transport.models import Message, TrackingEvent, TrackingEventId, TrackingSource
from sendconn.transport.queueing import queue_message

pytestmark = pytest.mark.django_db


def content(message_id, subject="Hello"):
    return f"Message-ID: {message_id}\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()


@pytest.fixture
def history(make_connector):
    """Two messages received an hour apart; the first was then sent to one recipient and failed for the other."""
    make_connector("Internet", ["*"])
    earlier = timezone.now() - timedelta(hours=1)
    first = queue_message(
        "Julia@Contoso.test", ["kim@fabrikam.test", "lee@tailspin.test"], content("<one@contoso.test>")
    )
    TrackingEvent.objects.filter(queued_message=first).update(timestamp=earlier)
    second = queue_message("ann@contoso.test", ["kim@fabrikam.test"], content("<two@contoso.test>", "Other"))
    tracking.record(
        [
            tracking.event(
                TrackingEventId.SEND,
                TrackingSource.SMTP,
                first,
                "kim@fabrikam.test",
                recipient_status="250 2.0.0 OK",
                connector_name="Internet",
                remote_host="mx.fabrikam.test",
                remote_ip="127.0.0.2",
            ),
            tracking.event(
                TrackingEventId.FAIL,
                TrackingSource.SMTP,
                first,
                "lee@tailspin.test",
                recipient_status="550 5.1.1 User unknown",
                connector_name="Internet",
            ),
        ]
    )
    return first, second, earlier


def rows(events):
    return [(event.event_id, event.recipient, event.message_id) for event in events]


def test_event_copies_the_message_facts(history):
    first, _, _ = history
    sent = TrackingEvent.objects.get(event_id="SEND")
    assert (sent.queued_message, sent.internal_message_id, sent.sender, sent.subject, sent.total_bytes) == (
        first,
        first.pk,
        "Julia@Contoso.test",
        "Hello",
        first.size,
    )
    assert (sent.server_name, sent.connector_name, sent.remote_host, sent.remote_ip) == (
        "EX01",
        "Internet",
        "mx.fabrikam.test",
        "127.0.0.2",
    )


def test_search_by_sender_is_case_insensitive(history):
    assert rows(tracking.search(sender="julia@contoso.TEST")) == [
        ("RECEIVE", "kim@fabrikam.test", "<one@contoso.test>"),
        ("RECEIVE", "lee@tailspin.test", "<one@contoso.test>"),
        ("SEND", "kim@fabrikam.test", "<one@contoso.test>"),
        ("FAIL", "lee@tailspin.test", "<one@contoso.test>"),
    ]


def test_search_by_recipients(history):
    assert rows(tracking.search(recipients=["KIM@fabrikam.test"], event_id="receive")) == [
        ("RECEIVE", "kim@fabrikam.test", "<one@contoso.test>"),
        ("RECEIVE", "kim@fabrikam.test", "<two@contoso.test>"),
    ]
    assert len(tracking.search(recipients=["kim@fabrikam.test", "lee@tailspin.test"])) == 5


def test_search_by_message_id_with_or_without_brackets(history):
    assert len(tracking.search(message_id="<two@contoso.test>")) == 1
    assert len(tracking.search(message_id="two@contoso.test")) == 1


def test_search_by_event_id(history):
    assert rows(tracking.search(event_id="FAIL")) == [("FAIL", "lee@tailspin.test", "<one@contoso.test>")]


def test_search_by_time_window(history):
    _, _, earlier = history
    assert len(tracking.search(end=earlier + timedelta(minutes=1))) == 2  # the first message's RECEIVE events
    assert len(tracking.search(start=earlier + timedelta(minutes=1))) == 3
    assert len(tracking.search(start=earlier, end=earlier)) == 0  # End is exclusive


def test_result_size(history):
    assert len(tracking.search(result_size=2)) == 2
    assert len(tracking.search(result_size=None)) == 5


def test_events_outlive_the_queued_message(history):
    first, _, _ = history
    Message.objects.filter(pk=first.pk).delete()
    event = tracking.search(event_id="SEND")[0]
    assert event.queued_message is None and event.internal_message_id == first.pk
