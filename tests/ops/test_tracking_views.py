from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from sendconn.ops.search_forms import TrackingSearchForm
from sendconn.transport import tracking
from sendconn.transport.models import Message, RecipientStatus, TrackingEvent, TrackingEventId, TrackingSource
from sendconn.transport.queueing import queue_message

SEARCH_URL = reverse("ops:tracking")


def message_url(pk):
    return reverse("ops:tracking-message", args=[pk])


def content(message_id, subject):
    return f"Message-ID: {message_id}\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()


def outcome(event_id, message, recipient, at, status="", connector="To internet", **extra):
    source = TrackingSource.DSN if event_id == TrackingEventId.DSN else TrackingSource.SMTP
    return tracking.event(
        event_id, source, message, recipient, recipient_status=status, connector_name=connector, timestamp=at, **extra
    )


@pytest.fixture
def history(make_connector):
    """Two messages: the report two days ago (kim delivered after a deferral, lee failed, with an NDR), and
    the invoice an hour ago (still waiting for ann)."""
    make_connector("To internet", ["*"])
    now = timezone.now()
    report = queue_message(
        "Julia@Contoso.test",
        ["kim@fabrikam.test", "lee@tailspin.test"],
        content("<report@contoso.test>", "Quarterly report"),
    )
    received = now - timedelta(days=2)
    TrackingEvent.objects.filter(queued_message=report).update(timestamp=received)
    tracking.record(
        [
            outcome(
                TrackingEventId.DEFER,
                report,
                "kim@fabrikam.test",
                received + timedelta(minutes=1),
                "451 4.4.0 DNS query failed",
                remote_host="mx.fabrikam.test",
            ),
            outcome(
                TrackingEventId.FAIL,
                report,
                "lee@tailspin.test",
                received + timedelta(minutes=1),
                "550 5.1.1 User unknown",
                remote_host="mx.tailspin.test",
                remote_ip="127.0.0.3",
            ),
            outcome(
                TrackingEventId.DSN,
                report,
                "lee@tailspin.test",
                received + timedelta(minutes=1, seconds=1),
                "550 5.1.1 User unknown",
            ),
            outcome(
                TrackingEventId.SEND,
                report,
                "kim@fabrikam.test",
                received + timedelta(minutes=6),
                "250 2.0.0 OK queued as 4ABC",
                remote_host="mx.fabrikam.test",
                remote_ip="127.0.0.2",
            ),
        ]
    )
    invoice = queue_message("ann@contoso.test", ["ann@fabrikam.test"], content("<invoice@contoso.test>", "Invoice 42"))
    TrackingEvent.objects.filter(queued_message=invoice).update(timestamp=now - timedelta(hours=1))
    return report, invoice


def listed(response):
    assert response.status_code == 200
    return [summary.subject for summary in response.context["summaries"]]


# --- search ------------------------------------------------------------------------------------------------------


def test_lists_every_message_newest_first_with_recipient_states_and_connector(helpdesk_client, history):
    report, invoice = history
    response = helpdesk_client.get(SEARCH_URL)
    assert listed(response) == ["Invoice 42", "Quarterly report"]
    summary = response.context["summaries"][1]
    assert summary.recipient_states == {"kim@fabrikam.test": "Delivered", "lee@tailspin.test": "Failed"}
    assert summary.connectors == ["To internet"]
    assert summary.submitted_at == report.tracking_events.order_by("timestamp").first().timestamp
    assertContains(response, 'kim@fabrikam.test: <span class="state-delivered">Delivered</span>', html=True)
    assertContains(response, 'ann@fabrikam.test: <span class="state-ready">Ready</span>', html=True)
    assertContains(response, f'href="{message_url(report.pk)}"')


def test_a_deferred_recipient_reads_retry_as_in_the_queue(helpdesk_client, history):
    _, invoice = history
    tracking.record(
        [
            outcome(
                TrackingEventId.DEFER,
                invoice,
                "ann@fabrikam.test",
                timezone.now(),
                "451 4.4.0 DNS query failed. The error was: SERVFAIL",
            )
        ]
    )
    response = helpdesk_client.get(SEARCH_URL, {"sender": "ann@contoso.test"})
    assertContains(response, f'ann@fabrikam.test: <span class="state-retry">{RecipientStatus.RETRY}</span>', html=True)
    timeline = helpdesk_client.get(message_url(invoice.pk))
    assert timeline_rows(timeline)[0][1] == RecipientStatus.RETRY


def test_search_by_sender_ignores_case_and_angle_brackets(helpdesk_client, history):
    assert listed(helpdesk_client.get(SEARCH_URL, {"sender": "julia@contoso.TEST"})) == ["Quarterly report"]
    assert listed(helpdesk_client.get(SEARCH_URL, {"sender": " <ann@contoso.test> "})) == ["Invoice 42"]
    assert listed(helpdesk_client.get(SEARCH_URL, {"sender": "nobody@contoso.test"})) == []


def test_null_sender_finds_the_ndr(helpdesk_client, history, make_connector):
    report, _ = history
    queue_message(
        "",
        ["julia@contoso.test"],
        content("<ndr@ex01.contoso.test>", "Undeliverable: Quarterly report"),
        is_dsn=True,
        original_message=report,
    )
    assert listed(helpdesk_client.get(SEARCH_URL, {"sender": "<>"})) == ["Undeliverable: Quarterly report"]


def test_search_by_recipient(helpdesk_client, history):
    assert listed(helpdesk_client.get(SEARCH_URL, {"recipient": "LEE@tailspin.test"})) == ["Quarterly report"]
    assert listed(helpdesk_client.get(SEARCH_URL, {"recipient": "ann@fabrikam.test"})) == ["Invoice 42"]


def test_search_by_message_id_with_or_without_brackets(helpdesk_client, history):
    assert listed(helpdesk_client.get(SEARCH_URL, {"message_id": "<invoice@contoso.test>"})) == ["Invoice 42"]
    assert listed(helpdesk_client.get(SEARCH_URL, {"message_id": "report@contoso.test"})) == ["Quarterly report"]


def test_search_by_part_of_the_subject(helpdesk_client, history):
    assert listed(helpdesk_client.get(SEARCH_URL, {"subject": "quarterly"})) == ["Quarterly report"]


def test_search_by_time_window(helpdesk_client, history):
    now = timezone.now()
    recent = {"start": f"{now - timedelta(hours=3):%Y-%m-%d %H:%M}"}
    assert listed(helpdesk_client.get(SEARCH_URL, recent)) == ["Invoice 42"]
    days_ago = {
        "start": f"{now - timedelta(days=3):%Y-%m-%dT%H:%M}",
        "end": f"{now - timedelta(days=1):%Y-%m-%dT%H:%M}",
    }
    assert listed(helpdesk_client.get(SEARCH_URL, days_ago)) == ["Quarterly report"]


def test_search_by_event(helpdesk_client, history):
    assert listed(helpdesk_client.get(SEARCH_URL, {"event_id": "FAIL"})) == ["Quarterly report"]


def test_criteria_combine(helpdesk_client, history):
    assert listed(helpdesk_client.get(SEARCH_URL, {"sender": "julia@contoso.test", "subject": "invoice"})) == []


FULL_ADDRESS = "Enter a full address such as kim@contoso.com."
DATE_TIME = "Enter a date and time such as 2026-11-27 09:00 (UTC)."


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"start": "yesterday"}, "start", DATE_TIME),
        ({"end": "2026-02-30 10:00"}, "end", DATE_TIME),
        (
            {"start": "2026-11-27 10:00", "end": "2026-11-27 09:00"},
            "end",
            "The end time must be later than the start time.",
        ),
        ({"sender": "julia"}, "sender", f'"julia" isn\'t a valid sender address. {FULL_ADDRESS}'),
        ({"recipient": "a b@c"}, "recipient", f'"a b@c" isn\'t a valid recipient address. {FULL_ADDRESS}'),
        (
            {"message_id": "<a b>"},
            "message_id",
            '"<a b>" isn\'t a valid Message-ID. Copy it from the message header, such as <1234@contoso.com>.',
        ),
        ({"event_id": "BOUNCE"}, "event_id", "Select a valid choice. BOUNCE is not one of the available choices."),
    ],
)
def test_bad_input_is_explained_next_to_its_field(helpdesk_client, history, params, field, message):
    response = helpdesk_client.get(SEARCH_URL, params)
    assert response.status_code == 200
    assert response.context["form"].errors[field] == [message]
    assert response.context["page"] is None
    assertContains(response, '<ul class="errorlist', count=1)
    assertNotContains(response, "Quarterly report")


def test_the_form_shows_what_was_searched(helpdesk_client, history):
    response = helpdesk_client.get(SEARCH_URL, {"sender": "julia@contoso.test", "start": "2026-11-27T09:00"})
    assertContains(response, 'value="julia@contoso.test"')
    assertContains(response, 'value="2026-11-27T09:00"')


@pytest.mark.parametrize(
    "typed", ["2026-11-27 09:00", "2026-11-27T09:00", "2026-11-27T09:00:00Z", "2026-11-27 09:00 UTC"]
)
def test_dates_are_read_as_utc_in_the_format_the_help_shows(settings, typed):
    settings.TIME_ZONE = "America/New_York"  # the server's zone doesn't matter
    form = TrackingSearchForm({"start": typed})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["start"] == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert form.fields["start"].help_text == "UTC, for example 2026-11-27 09:00"
    shown = TrackingSearchForm(initial={"start": form.cleaned_data["start"]})["start"]
    assert 'type="text"' in str(shown) and 'value="2026-11-27 09:00"' in str(shown)
    assert 'placeholder="2026-11-27 09:00"' in str(shown)


def make_messages(count):
    """``count`` tracked messages (RECEIVE for two recipients, SEND for one), written directly: fast."""
    start = (
        TrackingEvent.objects.order_by("-internal_message_id").values_list("internal_message_id", flat=True).first()
        or 0
    ) + 1
    now = timezone.now()
    events = []
    for pk in range(start, start + count):
        common = {
            "internal_message_id": pk,
            "message_id": f"<m{pk}@contoso.test>",
            "sender": "julia@contoso.test",
            "subject": f"Message {pk}",
            "server_name": "EX01",
            "total_bytes": 100,
        }
        events += [
            TrackingEvent(event_id="RECEIVE", source="SMTP", recipient="kim@fabrikam.test", timestamp=now, **common),
            TrackingEvent(event_id="RECEIVE", source="SMTP", recipient="lee@tailspin.test", timestamp=now, **common),
            TrackingEvent(
                event_id="SEND",
                source="SMTP",
                recipient="kim@fabrikam.test",
                connector_name="To internet",
                recipient_status="250 2.0.0 OK",
                timestamp=now + timedelta(seconds=1),
                **common,
            ),
        ]
    TrackingEvent.objects.bulk_create(events)


def count_queries(client, params):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(SEARCH_URL, params)
    assert response.status_code == 200
    assert response.context["summaries"]
    return len(queries)


@pytest.mark.parametrize(
    "params", [{}, {"sender": "julia@contoso.test"}, {"recipient": "kim@fabrikam.test", "page": "2"}]
)
def test_query_count_does_not_grow_with_the_number_of_messages(helpdesk_client, params):
    make_messages(10)
    helpdesk_client.get(SEARCH_URL)  # warm the session and permission caches
    with_10 = count_queries(helpdesk_client, {**params, "page": "1"})
    make_messages(190)
    with_200 = count_queries(helpdesk_client, params)
    assert with_200 == with_10
    assert with_10 <= 8


def test_paging_keeps_the_search(helpdesk_client):
    make_messages(60)
    first = helpdesk_client.get(SEARCH_URL, {"sender": "julia@contoso.test"})
    assert len(first.context["summaries"]) == 50
    assertContains(first, "60 messages")
    assertContains(first, '<a href="?sender=julia%40contoso.test&amp;page=2">Next</a>', html=True)
    second = helpdesk_client.get(SEARCH_URL, {"sender": "julia@contoso.test", "page": "2"})
    assert len(second.context["summaries"]) == 10


# --- one message -------------------------------------------------------------------------------------------------


def timeline_rows(response):
    return [
        (recipient.address, recipient.state, [(entry.event_id, entry.recipient_status) for entry in recipient.events])
        for recipient in response.context["timeline"].recipients
    ]


def test_timeline_per_recipient_in_time_order(helpdesk_client, history):
    report, _ = history
    response = helpdesk_client.get(message_url(report.pk))
    assert response.status_code == 200
    assert timeline_rows(response) == [
        (
            "kim@fabrikam.test",
            "Delivered",
            [
                ("RECEIVE", ""),
                ("DEFER", "451 4.4.0 DNS query failed"),
                ("SEND", "250 2.0.0 OK queued as 4ABC"),
            ],
        ),
        (
            "lee@tailspin.test",
            "Failed",
            [
                ("RECEIVE", ""),
                ("FAIL", "550 5.1.1 User unknown"),
                ("DSN", "550 5.1.1 User unknown"),
            ],
        ),
    ]
    for text in (
        "Quarterly report",
        "&lt;report@contoso.test&gt;",
        "Julia@Contoso.test",
        "To internet",
        "250 2.0.0 OK queued as 4ABC",
        "451 4.4.0 DNS query failed",
        "mx.fabrikam.test [127.0.0.2]",
    ):
        assertContains(response, text)
    assertContains(response, '<span class="state-failed">Failed</span>', html=True)


def test_timeline_links_the_ndr_and_back(helpdesk_client, history):
    report, _ = history
    ndr = queue_message(
        "",
        ["julia@contoso.test"],
        content("<ndr@ex01.contoso.test>", "Undeliverable: Quarterly report"),
        is_dsn=True,
        original_message=report,
    )
    assertContains(helpdesk_client.get(message_url(report.pk)), f'href="{message_url(ndr.pk)}"')
    response = helpdesk_client.get(message_url(ndr.pk))
    assertContains(response, f'href="{message_url(report.pk)}"')
    assertContains(response, "&lt;&gt; (null sender")


def test_timeline_outlives_the_queued_message(helpdesk_client, history):
    report, _ = history
    pk = report.pk
    Message.objects.filter(pk=pk).delete()
    response = helpdesk_client.get(message_url(pk))
    assert response.status_code == 200
    assert [row[1] for row in timeline_rows(response)] == ["Delivered", "Failed"]
    assert listed(helpdesk_client.get(SEARCH_URL, {"subject": "report"})) == ["Quarterly report"]


@pytest.mark.parametrize("pk", [999999, 2**63, 10**25])  # beyond 64 bits: no row, not an OverflowError
def test_unknown_message_is_404(helpdesk_client, history, pk):
    response = helpdesk_client.get(f"/tracking/messages/{pk}/")
    assert response.status_code == 404


# --- who may look ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("client_fixture", ["admin_client", "server_client", "helpdesk_client"])
def test_all_three_role_groups_read_tracking(request, history, client_fixture):
    client = request.getfixturevalue(client_fixture)
    report, _ = history
    assert client.get(SEARCH_URL).status_code == 200
    assert client.get(message_url(report.pk)).status_code == 200


def test_a_user_in_no_role_group_is_refused(client, nobody, history):
    report, _ = history
    client.force_login(nobody)
    assert client.get(SEARCH_URL).status_code == 403
    assert client.get(message_url(report.pk)).status_code == 403


def test_signed_out_goes_to_the_login_page(client, history):
    response = client.get(SEARCH_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_searching_does_not_change_anything(helpdesk_client, history):
    assert helpdesk_client.post(SEARCH_URL, {"sender": "julia@contoso.test"}).status_code == 405
