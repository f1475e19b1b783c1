"""Mail flow and queue depth per five minutes, kept for the charts: a few rows per period whatever the traffic."""

from django.db import models

from sendconn.transport.models import TrackingEventId


class OutcomeCount(models.Model):
    """Delivery outcomes (SEND, DEFER, FAIL events) of one five-minute period, connector and status class.

    Added to in the transaction that records the events (``flow.count_events``), so it never disagrees with
    the tracking log; the 24-hour chart reads at most 288 periods of it instead of the events themselves.
    """

    period_start = models.DateTimeField()
    connector_name = models.CharField(max_length=64, blank=True)
    event_id = models.CharField(max_length=16, choices=TrackingEventId.choices)
    status_class = models.CharField(max_length=1, blank=True)  # "2", "4" or "5" of "451 4.4.0 …"; "" if none
    recipients = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            # Also the index of the charts' range scan: period_start leads.
            models.UniqueConstraint(
                fields=["period_start", "connector_name", "event_id", "status_class"], name="outcome_count_key"
            ),
        ]

    def __str__(self):
        return f"{self.period_start:%Y-%m-%d %H:%M} {self.connector_name} {self.event_id}: {self.recipients}"


class QueueDepthSample(models.Model):
    """Recipients waiting in a connector's queues (connector_name "" is the Unreachable queue) at the start of a
    five-minute period: the sweeper takes one sample per period."""

    period_start = models.DateTimeField()
    connector_name = models.CharField(max_length=64, blank=True)
    recipients = models.PositiveBigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["period_start", "connector_name"], name="queue_depth_sample_key"),
        ]

    def __str__(self):
        return f"{self.period_start:%Y-%m-%d %H:%M} {self.connector_name or 'Unreachable'}: {self.recipients}"
