"""Charts bench: the 24-hour mail flow and queue depth with 1 million tracking events.

    python bench/charts.py [--events N] [--postgres] [--runs N]

Records N tracking events (default 1,000,000) spread over the last 7 days, across 5 connectors (80 % SEND,
12 % DEFER, 8 % FAIL), through ``tracking.record`` in batches of 1,000, the way workers record outcomes (so the
per-period counts are filled as in production), and a week of queue depth samples. Then it times the dashboard's
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
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONNECTORS = ["To internet", "To partners", "To relay", "Fabrikam", "Tailspin"]
OUTCOMES = [("SEND", "250 2.6.0 Queued mail for delivery", 80), ("DEFER", "451 4.4.0 DNS query failed", 12),
            ("FAIL", "550 5.1.1 User unknown", 8)]
BATCH = 1000


def setup_django(var_dir, database_url):
    sys.path.insert(0, str(ROOT))
    os.environ.pop("DATABASE_URL", None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.update(SENDCONN_VAR_DIR=var_dir, SECRET_KEY="bench-only-secret-key-not-for-production",
                      DJANGO_SETTINGS_MODULE="sendconn.settings", LOG_LEVEL="WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fill(events):
    from django.db import connection, transaction
    from django.utils import timezone

    from sendconn.observability import flow
    from sendconn.observability.models import QueueDepthSample
    from sendconn.transport import tracking
    from sendconn.transport.models import Message

    message = Message.objects.create(sender="julia@contoso.test", content=b"Subject: bench\r\n\r\n", size=18,
                                     message_id="<bench@contoso.test>", subject="bench")
    now = timezone.now()
    span = int(flow.KEPT.total_seconds()) - 600
    kinds = [(event_id, status) for event_id, status, weight in OUTCOMES for _ in range(weight)]
    rng = random.Random(25)
    started = time.perf_counter()
    for offset in range(0, events, BATCH):
        batch = []
        for _ in range(min(BATCH, events - offset)):
            event_id, status = rng.choice(kinds)
            batch.append(tracking.event(event_id, "SMTP", message, f"user{rng.randrange(10**6)}@implicit.test",
                                        recipient_status=status, connector_name=rng.choice(CONNECTORS),
                                        timestamp=now - timedelta(seconds=rng.randrange(span))))
        with transaction.atomic():
            tracking.record(batch)
    print(f"recorded {events:,} events in {time.perf_counter() - started:.0f} s")
    QueueDepthSample.objects.bulk_create(
        [QueueDepthSample(period_start=start, connector_name=name, recipients=rng.randrange(500))
         for start in flow.periods(now, flow.KEPT) for name in ["", *CONNECTORS]], batch_size=5000,
        ignore_conflicts=True)
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
    from django.db.models import Count
    from django.template.loader import render_to_string
    from django.utils import timezone

    from sendconn.observability import charts, flow
    from sendconn.transport.models import TrackingEvent

    def dashboard(name=None):
        flow_chart = charts.flow_chart(flow.mail_flow(connector_name=name))
        depth_chart = charts.depth_chart(flow.queue_depth(connector_name=name))
        render_to_string("observability/_flow_chart.html", {"chart": flow_chart, "chart_id": "f", "caption": ""})
        render_to_string("observability/_depth_chart.html", {"chart": depth_chart, "chart_id": "d", "caption": ""})

    def from_events(name=None):
        events = TrackingEvent.objects.filter(timestamp__gte=timezone.now() - flow.WINDOW,
                                              event_id__in=flow.FLOW_EVENTS)
        if name:
            events = events.filter(connector_name=name)
        return list(events.values("event_id").annotate(count=Count("pk")).order_by())

    since = timezone.now() - flow.WINDOW
    print(f"database: {connection.vendor}; {TrackingEvent.objects.count():,} tracking events")
    print(f"dashboard charts (data + SVG): {median_ms(dashboard, runs):.1f} ms")
    print(f"connector page charts (data + SVG): {median_ms(lambda: dashboard('To partners'), runs):.1f} ms")
    print(f"for comparison, 24-hour totals counted from the events: {median_ms(from_events, 3):.0f} ms")
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
