"""Fixtures for the observability tests: the transport's loopback peers (nsd, SMTP sinks), and /metrics read back."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.transport.conftest import dns_settings, nsd, sink  # noqa: F401  (fixtures, shared)


def parse_metrics(text):
    """``{(sample name, frozenset of label items): value}`` of an exposition."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def scrape(client):
    """GET /metrics from loopback, parsed."""

    def get():
        response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
        assert response.status_code == 200, response.content
        return parse_metrics(response.content.decode())

    return get
