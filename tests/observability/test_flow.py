"""flow: per-period outcome counts written with the tracking events, queue depth samples, and the charts' reads."""

from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.db import connection, transaction

from sendconn.observability import flow
from sendconn.observability.models import OutcomeCount, QueueDepthSample
from sendconn.transport import tracking
from sendconn.transport.models import Recipient, RecipientStatus, TrackingEventId
from sendconn.transport.queueing import queue_message

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 3, 12, 7, 30, tzinfo=UTC)
CONTENT = b"Subject: Report\r\n\r\nHello\r\n"


@pytest.fixture
def message():
    return queue_message("julia@contoso.test", ["kim@implicit.test"], CONTENT)


def event(message, event_id, status, at, connector="To internet"):
    return tracking.event(
        event_id, "SMTP", message, "kim@implicit.test", recipient_status=status, connector_name=connector, timestamp=at
    )


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("250 2.6.0 <id@contoso.test> Queued mail for delivery", "2"),
        ("451 4.4.0 DNS query failed", "4"),
        ("550 5.1.1 User unknown", "5"),
        ("550-5.7.1 Relaying denied", "5"),
        ("421 Service not available", "4"),  # no enhanced code: the reply code's class
        ("", ""),
        ("Connection refused", ""),
    ],
)
def test_status_class_is_the_enhanced_codes_class(reply, expected):
    assert flow.status_class(reply) == expected


def test_periods_are_five_minutes_aligned_and_cover_24_hours():
    starts = flow.periods(NOW)
    assert len(starts) == 288
    assert starts[-1] == datetime(2026, 12, 3, 12, 5, tzinfo=UTC)
    assert starts[0] == datetime(2026, 12, 2, 12, 10, tzinfo=UTC)


def test_recorded_events_add_up_per_period_connector_event_and_class(message):
    with transaction.atomic():
        tracking.record(
            [
                event(message, TrackingEventId.SEND, "250 2.6.0 Queued", NOW),
                event(message, TrackingEventId.DEFER, "451 4.4.0 DNS query failed", NOW),
            ]
        )
    with transaction.atomic():
        tracking.record([event(message, TrackingEventId.SEND, "250 2.0.0 OK", NOW + timedelta(seconds=60))])

    rows = OutcomeCount.objects.values_list("period_start", "connector_name", "event_id", "status_class", "recipients")
    period = datetime(2026, 12, 3, 12, 5, tzinfo=UTC)
    assert sorted(rows) == [(period, "To internet", "DEFER", "4", 1), (period, "To internet", "SEND", "2", 2)]


def test_a_rolled_back_transaction_adds_nothing(message):
    with pytest.raises(RuntimeError), transaction.atomic():
        tracking.record([event(message, TrackingEventId.SEND, "250 2.6.0 Queued", NOW)])
        raise RuntimeError("the delivery's transaction fails")

    assert not OutcomeCount.objects.exists()


def test_mail_flow_gives_every_period_of_the_window_zeros_included(message):
    tracking.record(
        [
            event(message, TrackingEventId.SEND, "250 2.6.0 Queued", NOW - timedelta(minutes=1)),
            event(message, TrackingEventId.FAIL, "550 5.1.1 User unknown", NOW - timedelta(minutes=1)),
            event(message, TrackingEventId.DEFER, "451 4.4.0 DNS query failed", NOW - timedelta(hours=3)),
            event(message, TrackingEventId.SEND, "250 2.6.0 Queued", NOW - timedelta(hours=25)),  # outside
            event(message, TrackingEventId.SEND, "250 2.6.0 Queued", NOW, connector="To partners"),
            event(message, TrackingEventId.RECEIVE, "", NOW),  # not mail flow
        ]
    )

    periods = flow.mail_flow(NOW)

    assert len(periods) == 288
    assert (periods[-1].delivered, periods[-1].deferred, periods[-1].failed) == (2, 0, 1)
    assert periods[-37].start == datetime(2026, 12, 3, 9, 5, tzinfo=UTC) and periods[-37].deferred == 1
    assert sum(period.total for period in periods) == 4
    mine = flow.mail_flow(NOW, connector_name="To partners")
    assert sum(period.delivered for period in mine) == 1 and mine[-1].delivered == 1


def test_queue_depth_is_sampled_once_per_period_for_every_connector(make_connector, monkeypatch):
    monkeypatch.setattr(flow, "_last_sampled", None)
    make_connector("To internet", ["*"])
    make_connector("To partners", ["fabrikam.test"])
    queue_message("julia@contoso.test", ["kim@implicit.test", "lee@implicit.test"], CONTENT)

    assert flow.sample_queue_depth(NOW)
    Recipient.objects.update(status=RecipientStatus.DELIVERED)
    assert not flow.sample_queue_depth(NOW + timedelta(minutes=1))  # same period: the first sample stands
    monkeypatch.setattr(flow, "_last_sampled", None)  # another process, same period
    assert not flow.sample_queue_depth(NOW + timedelta(minutes=2))

    period = datetime(2026, 12, 3, 12, 5, tzinfo=UTC)
    assert sorted(QueueDepthSample.objects.values_list("period_start", "connector_name", "recipients")) == [
        (period, "", 0),
        (period, "To internet", 2),
        (period, "To partners", 0),
    ]

    assert flow.sample_queue_depth(NOW + timedelta(minutes=5))
    depth = flow.queue_depth(NOW + timedelta(minutes=5))
    assert [point.recipients for point in depth[-3:]] == [None, 2, 0]
    assert [point.recipients for point in flow.queue_depth(NOW + timedelta(minutes=5), "To partners")[-2:]] == [0, 0]


def test_periods_older_than_a_week_are_deleted_when_sampling(message, monkeypatch):
    monkeypatch.setattr(flow, "_last_sampled", None)
    tracking.record(
        [
            event(message, TrackingEventId.SEND, "250 2.6.0 Queued", NOW - timedelta(days=8)),
            event(message, TrackingEventId.SEND, "250 2.6.0 Queued", NOW - timedelta(days=6)),
        ]
    )
    QueueDepthSample.objects.create(period_start=NOW - timedelta(days=8), connector_name="", recipients=3)

    flow.sample_queue_depth(NOW)

    assert OutcomeCount.objects.count() == 1
    assert not QueueDepthSample.objects.filter(period_start__lt=NOW - flow.KEPT).exists()


def test_the_migration_counts_events_recorded_before_it(message):
    from importlib import import_module

    from sendconn.transport.statements import insert

    recent = datetime.now(UTC) - timedelta(hours=1)
    insert(
        [
            event(message, TrackingEventId.SEND, "250 2.6.0 Queued", recent),
            event(message, TrackingEventId.FAIL, "550 5.1.1 User unknown", recent),
            event(message, TrackingEventId.SEND, "250 2.6.0 Queued", recent - timedelta(days=30)),
        ]
    )  # too old

    import_module("sendconn.observability.migrations.0002_count_recorded_events").count_recorded_events(apps, None)

    assert sorted(OutcomeCount.objects.values_list("event_id", "status_class", "recipients")) == [
        ("FAIL", "5", 1),
        ("SEND", "2", 1),
    ]


def test_the_24_hour_query_reads_the_period_index(message):
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL plans by table statistics: bench/charts.py shows its plan with 1 million events")
    plan = flow.outcome_counts(NOW - flow.WINDOW).explain()
    # The unique constraint's index (period_start first), as SQLite names it.
    assert (
        "SEARCH observability_outcomecount USING INDEX sqlite_autoindex_observability_outcomecount_1 "
        "(period_start>?)" in plan
    )
