"""Connectors and the queue list for the queue viewer's selector and service tests."""

import pytest

from sendconn.transport.queues import selectors


@pytest.fixture
def internet(make_connector):
    return make_connector("To internet", ["*"])


@pytest.fixture
def relay(make_connector):
    return make_connector(
        "Fabrikam relay", ["fabrikam.test"], dns_routing_enabled=False, smart_hosts=["relay.contoso.test"]
    )


@pytest.fixture
def by_identity():
    """``by_identity()``: the queue list as it is now, {identity: Queue}."""
    return lambda: {queue.identity: queue for queue in selectors.queue_list()}
