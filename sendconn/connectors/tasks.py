"""Diagnostics a worker runs on request: what a transport server sees of the connector configuration."""

from typing import Any

from celery import shared_task
from django.conf import settings

from .models import SendConnector
from .properties import connector_properties
from .selectors import get_connector


@shared_task(ignore_result=False)
def ping_connectors(identity=None):
    """The worker's server name and the connectors it can read; with ``identity``, that connector's properties.

    Send it to a server's own queue to check that server end to end (broker, database, configuration):
    ``ping_connectors.apply_async(queue="server.ex01").get(timeout=30)``.
    """
    reply: dict[str, Any] = {
        "server": settings.SENDCONN_SERVER_NAME,
        "connectors": list(SendConnector.objects.order_by("name").values_list("name", flat=True)),
    }
    if identity is not None:
        connector = get_connector(identity)
        reply["properties"] = connector_properties(connector) if connector else None
    return reply
