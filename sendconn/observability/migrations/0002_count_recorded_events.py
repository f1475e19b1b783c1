"""Count the tracking events recorded before the per-period counts existed (the last KEPT days), so the charts
show them too."""
from collections import Counter

from django.db import migrations
from django.utils import timezone

from sendconn.observability.flow import FLOW_EVENTS, KEPT, period_start, status_class


def count_recorded_events(apps, schema_editor):
    TrackingEvent = apps.get_model("transport", "TrackingEvent")
    OutcomeCount = apps.get_model("observability", "OutcomeCount")
    counts = Counter()
    events = TrackingEvent.objects.filter(timestamp__gte=timezone.now() - KEPT, event_id__in=FLOW_EVENTS).values_list(
        "timestamp", "connector_name", "event_id", "recipient_status"
    )
    for timestamp, connector_name, event_id, recipient_status in events.iterator(chunk_size=10000):
        counts[period_start(timestamp), connector_name, event_id, status_class(recipient_status)] += 1
    OutcomeCount.objects.bulk_create(
        [OutcomeCount(period_start=start, connector_name=name, event_id=event_id, status_class=klass, recipients=n)
         for (start, name, event_id, klass), n in counts.items()],
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("observability", "0001_initial"),
        ("transport", "0004_suspended_queue"),
    ]

    operations = [migrations.RunPython(count_recorded_events, migrations.RunPython.noop)]
