"""Reads of Send connectors, shaped for the pages and cmdlets that show them (constant query counts)."""

import uuid

from django.db.models import Prefetch, Q, QuerySet, Value
from django.db.models.functions import Lower

from .models import AdminAuditLogEntry, SendConnector, TransportServer


def connectors_with_details() -> QuerySet[SendConnector]:
    """Connectors with everything Get-SendConnector shows, prefetched: 4 queries however many rows."""
    return SendConnector.objects.prefetch_related("address_spaces", "smart_hosts", "source_transport_servers")


def _named_like(connectors: QuerySet[SendConnector], query: str | None) -> QuerySet[SendConnector]:
    """The list's search box: names containing ``query``, ignoring case."""
    query = (query or "").strip()
    return connectors.filter(name__icontains=query) if query else connectors


def connector_rows(query: str | None = "") -> QuerySet[SendConnector]:
    """The list page's rows: searched by name, sorted as the EAC sorts (ignoring case), with what each row shows.

    The prefetches go to plain lists (``address_space_list``, ``smart_host_list``): 3 queries per page, and
    no queryset built per row, which is most of a page's cost.
    """
    connectors = SendConnector.objects.prefetch_related(
        Prefetch("address_spaces", to_attr="address_space_list"),
        Prefetch("smart_hosts", to_attr="smart_host_list"),
    )
    return _named_like(connectors, query).order_by(Lower("name"))


def position_of(connectors: QuerySet[SendConnector], guid: uuid.UUID | str) -> int | None:
    """Zero-based place of connector ``guid`` in ``connector_rows()``; None when it isn't among them.

    Lets the list open on the page that shows a connector just created or changed (2 queries).
    """
    connectors = connectors.prefetch_related(None)
    name = connectors.filter(guid=guid).values_list("name", flat=True).first()
    if name is None:
        return None
    # Names are unique case-insensitively, so "sorts before" is a strict order.
    return connectors.alias(sort_name=Lower("name")).filter(sort_name__lt=Lower(Value(name))).count()


def split_server_identity(identity: str) -> tuple[str | None, str]:
    """``EX01\\To internet`` → ("EX01", "To internet"); without a server part → (None, identity).

    Exchange accepts ``Server\\Connector`` identities; Send connectors belong to the organisation, so the server
    part only has to name a transport server (by name or FQDN).
    """
    server, separator, name = str(identity).strip().partition("\\")
    if not separator:
        return None, str(identity).strip()
    return server.strip(), name.strip()


def is_transport_server(name: str) -> bool:
    return TransportServer.objects.filter(Q(name__iexact=name) | Q(fqdn__iexact=name)).exists()


def get_connector(identity: str) -> SendConnector | None:
    """By name (case-insensitive), GUID or ``Server\\Name``, as Exchange's -Identity; None when there is none."""
    connectors = connectors_with_details()
    server, identity = split_server_identity(identity)
    if server is not None and not is_transport_server(server):
        return None
    found = connectors.filter(name__iexact=identity).first()
    if found is None:
        try:
            found = connectors.filter(guid=uuid.UUID(identity)).first()
        except ValueError:
            pass
    return found


def transport_servers() -> QuerySet[TransportServer]:
    return TransportServer.objects.all()


def audit_log_for(connector: SendConnector) -> QuerySet[AdminAuditLogEntry]:
    return AdminAuditLogEntry.objects.filter(connector_guid=connector.guid)
