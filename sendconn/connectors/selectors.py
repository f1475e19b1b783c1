"""Reads of Send connectors, shaped for the pages and cmdlets that show them (constant query counts)."""
import uuid

from django.db.models import Prefetch, Value
from django.db.models.functions import Lower

from .models import AdminAuditLogEntry, SendConnector, TransportServer


def connectors_with_details():
    """Connectors with everything Get-SendConnector shows, prefetched: 4 queries however many rows."""
    return SendConnector.objects.prefetch_related("address_spaces", "smart_hosts", "source_transport_servers")


def _named_like(connectors, query):
    """The search box and Get-SendConnector's filter: names containing ``query``, ignoring case."""
    query = (query or "").strip()
    return connectors.filter(name__icontains=query) if query else connectors


def search_connectors(query=""):
    return _named_like(connectors_with_details(), query)


def connector_rows(query=""):
    """The list page's rows: searched by name, sorted as the EAC sorts (ignoring case), with what each row shows.

    The prefetches go to plain lists (``address_space_list``, ``smart_host_list``): 3 queries per page, and
    no queryset built per row, which is most of a page's cost.
    """
    connectors = SendConnector.objects.prefetch_related(
        Prefetch("address_spaces", to_attr="address_space_list"),
        Prefetch("smart_hosts", to_attr="smart_host_list"),
    )
    return _named_like(connectors, query).order_by(Lower("name"))


def position_of(connectors, guid):
    """Zero-based place of connector ``guid`` in ``connector_rows()``; None when it isn't among them.

    Lets the list open on the page that shows a connector just created or changed (2 queries).
    """
    connectors = connectors.prefetch_related(None)
    name = connectors.filter(guid=guid).values_list("name", flat=True).first()
    if name is None:
        return None
    # Names are unique case-insensitively, so "sorts before" is a strict order.
    return connectors.alias(sort_name=Lower("name")).filter(sort_name__lt=Lower(Value(name))).count()


def get_connector(identity):
    """By name (case-insensitive) or GUID, as Exchange's -Identity; None when there is no such connector."""
    connectors = connectors_with_details()
    identity = str(identity).strip()
    found = connectors.filter(name__iexact=identity).first()
    if found is None:
        try:
            found = connectors.filter(guid=uuid.UUID(identity)).first()
        except ValueError:
            pass
    return found


def transport_servers():
    return TransportServer.objects.all()


def audit_log_for(connector):
    return AdminAuditLogEntry.objects.filter(connector_guid=connector.guid)
