"""Reads of Send connectors, shaped for the pages and cmdlets that show them (constant query counts)."""
import uuid


from .models import AdminAuditLogEntry, SendConnector, TransportServer


def connectors_with_details():
    """Connectors with everything Get-SendConnector shows, prefetched: 4 queries however many rows."""
    return SendConnector.objects.prefetch_related("address_spaces", "smart_hosts", "source_transport_servers")


def search_connectors(query=""):
    connectors = connectors_with_details()
    if query:
        connectors = connectors.filter(name__icontains=query.strip())
    return connectors


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
