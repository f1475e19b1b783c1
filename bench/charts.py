"""Charts bench: the 24-hour mail flow and queue depth with 1 million tracking events.

    python bench/charts.py [--events N] [--postgres] [--runs N]

Makes N tracking events (default 1,000,000) spread over the last 7 days, across 5 connectors (80 % SEND, 12 %
DEFER, 8 % FAIL), counts them per period as migration 0002 does (``tracking.record`` does the same per batch:
tests/observability/test_flow.py), and stores a week of queue depth samples. Then it times the dashboard's
and one connector's chart data and SVG (median of the runs) and prints each query's plan: EXPLAIN QUERY PLAN on
SQLite, EXPLAIN ANALYZE on PostgreSQL. For comparison it also times counting the same figures from the tracking
events themselves. SQLite is a throwaway file; --postgres uses a fresh database on 127.0.0.1:5432, dropped after.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONNECTORS = ["To internet", "To partners", "To relay", "Fabrikam", "Tailspin"]
OUTCOMES = [
    ("SEND", "250 2.6.0 Queued mail for delivery", 80),
    ("DEFER", "451 4.4.0 DNS query failed", 12),
    ("FAIL", "550 5.1.1 User unknown", 8),
]


def setup_django(var_dir, database_url):
    sys.path.insert(0, str(ROOT))
    os.environ.pop("DATABASE_URL", None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.update(
        SENDCONN_VAR_DIR=var_dir,
        SECRET_KEY="bench-only-secret-key-not-for-production",
        DJANGO_SETTINGS_MODULE="sendconn.settings",
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fill(events):
    """``events`` tracking events made by the database itself (Python would take minutes), then counted per period by
    the same function that counts the events recorded before the per-period counts existed (migration 0002)."""
    from importlib import import_module

    from django.apps import apps
    from django.db import connection
    from django.utils import timezone

    from sendconn.observability import flow
    from sendconn.observability.models import QueueDepthSample

    now = timezone.now()
    span = int(flow.KEPT.total_seconds()) - 600
    started = time.perf_counter()
    shares = " ".join(
        f"WHEN r < {sum(weight for _, _, weight in OUTCOMES[: i + 1])} THEN '{event_id}'"
        for i, (event_id, _, _) in enumerate(OUTCOMES)
    )
    replies = " ".join(
        f"WHEN r < {sum(weight for _, _, weight in OUTCOMES[: i + 1])} THEN '{reply}'"
        for i, (_, reply, _) in enumerate(OUTCOMES)
    )
    names = " ".join(f"WHEN {i} THEN '{name}'" for i, name in enumerate(CONNECTORS))
    columns = (
        "timestamp, event_id, source, internal_message_id, message_id, sender, subject, recipient, "
        "recipient_status, connector_name, server_name, remote_host, total_bytes"
    )
    values = (
        f"CASE {shares} END, 'SMTP', 1, '<bench@contoso.test>', 'julia@contoso.test', 'bench', "
        f"'user' || s || '@implicit.test', CASE {replies} END, CASE c {names} END, 'EX01', 'implicit.test', 18"
    )
    # Spread by multiplicative hashing of the row number: random() would be drawn anew for every use of a column
    # once SQLite flattens the subquery.
    spread = f"i * 7919 %% 100 AS r, i * 104729 %% {len(CONNECTORS)} AS c, (i * 2654435761) %% {span} AS s"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO transport_trackingevent ({columns}) SELECT %s - s * interval '1 second', {values} "
                f"FROM (SELECT {spread} FROM generate_series(1, %s::bigint) AS i) AS generated",
                [now, events],
            )
        else:
            cursor.execute(
                f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s) "
                f"INSERT INTO transport_trackingevent ({columns}) "
                f"SELECT strftime('%%Y-%%m-%%d %%H:%%M:%%f', %s, '-' || s || ' seconds'), {values} "
                f"FROM (SELECT {spread} FROM n)",
                [events, now.strftime("%Y-%m-%d %H:%M:%S")],
            )
    print(f"made {events:,} tracking events in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    import_module("sendconn.observability.migrations.0002_count_recorded_events").count_recorded_events(apps, None)
    print(f"counted them per period in {time.perf_counter() - started:.0f} s")
    rng = random.Random(25)
    QueueDepthSample.objects.bulk_create(
        [
            QueueDepthSample(period_start=start, connector_name=name, recipients=rng.randrange(500))
            for start in flow.periods(now, flow.KEPT)
            for name in ["", *CONNECTORS]
        ],
        batch_size=5000,
        ignore_conflicts=True,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def median_ms(function, runs):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def plan(queryset):
    from django.db import connection

    return queryset.explain(analyze=True) if connection.vendor == "postgresql" else queryset.explain()


def measure(runs):
    from django.db import connection
    from django.template.loader import render_to_string
    from django.utils import timezone

    from sendconn.observability import charts, flow
    from sendconn.observability.models import OutcomeCount
    from sendconn.transport.models import TrackingEvent

    def data(name=None):
        return flow.mail_flow(connector_name=name), flow.queue_depth(connector_name=name)

    def svg(data):
        flow_chart, depth_chart = charts.flow_chart(data[0]), charts.depth_chart(data[1])
        render_to_string("observability/_flow_chart.html", {"chart": flow_chart, "chart_id": "f", "caption": ""})
        render_to_string("observability/_depth_chart.html", {"chart": depth_chart, "chart_id": "d", "caption": ""})

    def from_events(name=None):
        """The same periods counted from the tracking events (no per-period table): index range, Python buckets."""
        events = TrackingEvent.objects.filter(
            timestamp__gte=flow.periods(timezone.now())[0], event_id__in=flow.FLOW_EVENTS
        )
        if name:
            events = events.filter(connector_name=name)
        return Counter(
            (flow.period_start(at), event_id) for at, event_id in events.values_list("timestamp", "event_id")
        )

    since = timezone.now() - flow.WINDOW
    print(
        f"database: {connection.vendor}; {TrackingEvent.objects.count():,} tracking events, "
        f"{OutcomeCount.objects.count():,} per-period counts"
    )
    for page, name in (("dashboard", None), ("connector page", "To partners")):
        drawn = data(name)
        print(
            f"{page}: chart data {median_ms(partial(data, name), runs):.1f} ms, "
            f"SVG {median_ms(partial(svg, drawn), runs):.1f} ms; "
            f"the same from the events: {median_ms(partial(from_events, name), 3):.0f} ms"
        )
    print("\nplan, dashboard mail flow:\n" + plan(flow.outcome_counts(since)))
    print("\nplan, connector page mail flow:\n" + plan(flow.outcome_counts(since, "To partners")))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sendconn-bench-charts-") as var_dir:
        database_url = None
        if args.postgres:
            sys.path.insert(0, str(ROOT))
            from tests.peers.stack import create_database

            database_url = create_database("bench_charts")
        try:
            setup_django(var_dir, database_url)
            fill(args.events)
            measure(args.runs)
        finally:
            if database_url:
                from django.db import connections

                connections.close_all()
                from tests.peers.stack import drop_database

                drop_database(database_url)


if __name__ == "__main__":
    main()
