"""Charts: the SVG geometry, and the dashboard and connector page drawing them from recorded mail."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from sendconn.observability import charts, flow
from sendconn.observability.models import QueueDepthSample
from sendconn.transport import tracking
from sendconn.transport.models import TrackingEventId, TrackingSource
from sendconn.transport.queueing import queue_message

START = datetime(2026, 12, 3, 0, 0, tzinfo=UTC)


def flow_periods(*counts):
    return [flow.FlowPeriod(START + flow.PERIOD * index, *numbers) for index, numbers in enumerate(counts)]


@pytest.mark.parametrize("value, step", [(0, 1), (0.25, 1), (1, 1), (1.5, 2), (3, 5), (7, 10), (45, 50), (501, 1000)])
def test_gridlines_are_a_round_whole_number_apart(value, step):
    assert charts.nice_step(value) == step


def test_flow_bars_stack_delivered_deferred_and_failed_to_scale():
    chart = charts.flow_chart(flow_periods((12, 6, 2), (0, 0, 0), (10, 0, 0), *[(0, 0, 0)] * 285))

    assert [bar.title for bar in chart.bars] == [
        "00:00 UTC: 12 delivered, 6 deferred, 2 failed",
        "00:10 UTC: 10 delivered, 0 deferred, 0 failed",
    ]
    first, third = chart.bars
    plot = chart.axes.bottom - chart.axes.top
    assert [rect.css_class for rect in first.rects] == ["flow-delivered", "flow-deferred", "flow-failed"]
    assert [rect.height for rect in first.rects] == [round(plot * 0.6, 2), round(plot * 0.3, 2), round(plot * 0.1, 2)]
    assert first.rects[0].y + first.rects[0].height == chart.axes.bottom  # delivered sits on the axis
    assert first.rects[1].y + first.rects[1].height == pytest.approx(first.rects[0].y)
    assert third.rects[0].x > first.rects[0].x and third.rects[0].height == plot / 2  # the axis goes to 20
    assert [tick.label for tick in chart.axes.ticks] == ["0", "5", "10", "15", "20"]
    assert [label.label for label in chart.axes.time_labels] == [f"{hour:02}:00" for hour in range(0, 24, 3)]
    assert (chart.delivered, chart.deferred, chart.failed, chart.empty) == (22, 6, 2, False)


def test_depth_line_breaks_where_no_sample_was_taken():
    samples = [
        flow.DepthPoint(START + flow.PERIOD * index, depth)
        for index, depth in enumerate([4, 8, None, None, 2, *[None] * 283])
    ]

    chart = charts.depth_chart(samples)

    assert len(chart.lines) == 2
    assert chart.lines[0].startswith("M") and " L" in chart.lines[0] and "L" not in chart.lines[1]
    assert [point.title for point in chart.points] == [
        "00:00 UTC: 4 recipients waiting",
        "00:05 UTC: 8 recipients waiting",
        "00:20 UTC: 2 recipients waiting",
    ]
    assert (chart.latest, chart.peak) == (2, 8)
    assert charts.depth_chart([flow.DepthPoint(START, None)] * 288).empty


# --- on the pages ----------------------------------------------------------------------------------------------


@pytest.fixture
def recorded(make_connector):
    """Mail through two connectors in the last hour, and queue depth samples of the last 15 minutes."""
    make_connector("To internet", ["*"])
    make_connector("To partners", ["fabrikam.test"])
    message = queue_message("julia@contoso.test", ["kim@implicit.test"], b"Subject: Hi\r\n\r\nHello\r\n")
    now = timezone.now()

    def outcome(event_id, status, connector, count, ago):
        return [
            tracking.event(
                event_id,
                TrackingSource.SMTP,
                message,
                f"user{n}@fabrikam.test",
                recipient_status=status,
                connector_name=connector,
                timestamp=now - ago,
            )
            for n in range(count)
        ]

    tracking.record(
        [
            *outcome(TrackingEventId.SEND, "250 2.6.0 Queued", "To internet", 7, timedelta(minutes=20)),
            *outcome(TrackingEventId.DEFER, "451 4.4.0 DNS query failed", "To internet", 2, timedelta(minutes=20)),
            *outcome(TrackingEventId.FAIL, "550 5.1.1 User unknown", "To partners", 3, timedelta(hours=2)),
            *outcome(TrackingEventId.SEND, "250 2.6.0 Queued", "To partners", 4, timedelta(hours=2)),
        ]
    )
    for ago, internet, partners in ((15, 5, 1), (10, 3, 0), (5, 9, 2)):
        start = flow.period_start(now - timedelta(minutes=ago))
        QueueDepthSample.objects.bulk_create(
            [
                QueueDepthSample(period_start=start, connector_name="To internet", recipients=internet),
                QueueDepthSample(period_start=start, connector_name="To partners", recipients=partners),
            ]
        )
    return now


def svg_of(html, chart_id):
    return re.search(rf'<figure class="chart" id="{chart_id}">(.*?)</figure>', html, re.S).group(1)


def test_dashboard_draws_24_hours_of_mail_flow_and_queue_depth(helpdesk_client, recorded):
    html = helpdesk_client.get(reverse("ops:dashboard")).content.decode()

    mail = svg_of(html, "mail-flow")
    assert mail.count('<rect class="flow-delivered"') == 2  # two periods with deliveries
    assert mail.count('<rect class="flow-failed"') == 1
    assert "7 delivered, 2 deferred, 0 failed</title>" in mail
    assert "4 delivered, 0 deferred, 3 failed</title>" in mail
    assert re.search(
        r"Delivered <strong>11</strong>.*Deferred <strong>2</strong>.*Failed <strong>3</strong>", mail, re.S
    )
    depth = svg_of(html, "queue-depth")
    assert depth.count('<circle class="depth-point"') == 3
    assert (
        "6 recipients waiting</title>" in depth
        and "3 recipients waiting</title>" in depth
        and "11 recipients waiting</title>" in depth
    )
    assert "Now <strong>11</strong> waiting; at most 11" in depth
    # Our Content-Security-Policy: no script, no style attribute.
    for chart in (mail, depth):
        assert "<script" not in chart and "style=" not in chart


def test_connector_page_draws_its_own_mail_and_queue(admin_client, recorded):
    from sendconn.connectors.models import SendConnector

    partners = SendConnector.objects.get(name="To partners")
    html = admin_client.get(reverse("connectors:detail", args=[partners.guid])).content.decode()

    mail = svg_of(html, "mail-flow")
    assert "4 delivered, 0 deferred, 3 failed</title>" in mail
    assert "7 delivered" not in mail
    assert "Mail through this connector, last 24 hours" in mail
    depth = svg_of(html, "queue-depth")
    assert "Now <strong>2</strong> waiting; at most 2" in depth


def test_charts_say_when_there_is_nothing_to_draw(helpdesk_client, db):
    html = helpdesk_client.get(reverse("ops:dashboard")).content.decode()

    assert "No mail was delivered, deferred or failed in the last 24 hours." in svg_of(html, "mail-flow")
    assert "No samples in the last 24 hours" in svg_of(html, "queue-depth")
