"""Transport servers: each worker registers the machine it runs on; connectors name them as source servers."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from . import audit
from .models import TransportServer
from .values import MAX_INT32, format_unlimited


def register_transport_server(name, fqdn, site):
    """Create or refresh a server's row; called by every worker at start-up and for the local server."""
    server, _ = TransportServer.objects.update_or_create(
        name__iexact=name, defaults={"name": name, "fqdn": fqdn, "site": site, "last_seen_at": timezone.now()}
    )
    return server


def local_server():
    """This machine as a transport server, registered on first use (a fresh install has it)."""
    server = TransportServer.objects.filter(name__iexact=settings.SENDCONN_SERVER_NAME).first()
    return server or register_transport_server(
        settings.SENDCONN_SERVER_NAME, settings.SENDCONN_SERVER_FQDN, settings.SENDCONN_SITE
    )


def resolve_transport_servers(items):
    """TransportServer objects or names (case-insensitive) → servers, refusing names nobody registered."""
    servers, missing = [], []
    for item in items:
        if isinstance(item, TransportServer):
            servers.append(item)
            continue
        server = TransportServer.objects.filter(name__iexact=str(item).strip()).first()
        if server is None:
            missing.append(str(item).strip())
        elif server not in servers:
            servers.append(server)
    if missing:
        raise ValidationError(
            {"source_transport_servers": [f'The transport server "{name}" couldn\'t be found.' for name in missing]}
        )
    return servers


# Set-TransportService's settable properties: field → Exchange's parameter name.
CONNECTION_LIMITS = {
    "max_outbound_connections": "MaxOutboundConnections",
    "max_per_domain_outbound_connections": "MaxPerDomainOutboundConnections",
}


def _validate_connection_limits(server):
    for field, name in CONNECTION_LIMITS.items():
        value = getattr(server, field)
        if value is not None and not 1 <= value <= MAX_INT32:
            raise ValidationError(
                {
                    field: [
                        f"{name}: the value {value} is out of range. Enter a whole number from 1 "
                        f"through {MAX_INT32}, or unlimited."
                    ]
                }
            )
    total, per_domain = server.max_outbound_connections, server.max_per_domain_outbound_connections
    if total is not None and (per_domain is None or per_domain > total):
        raise ValidationError(
            {
                "max_per_domain_outbound_connections": [
                    f"The value of the MaxOutboundConnections parameter ({format_unlimited(total)}) must be greater "
                    "than or equal to the value of the MaxPerDomainOutboundConnections parameter "
                    f"({format_unlimited(per_domain)})."
                ]
            }
        )


def set_transport_service(caller, server, **limits):
    """Set-TransportService: the server's outbound connection limits (whole numbers, None = unlimited), checked
    together with the values not given, saved and written to the admin audit log; on error nothing is saved."""
    unknown = set(limits) - set(CONNECTION_LIMITS)
    if unknown:
        raise TypeError(f"unknown Set-TransportService parameters: {sorted(unknown)}")
    with transaction.atomic():
        server = TransportServer.objects.select_for_update().get(pk=server.pk)
        for field, value in limits.items():
            setattr(server, field, value)
        _validate_connection_limits(server)
        server.save(update_fields=list(limits))
        given = {name: format_unlimited(limits[field]) for field, name in CONNECTION_LIMITS.items() if field in limits}
        audit.record_command(caller, "Set-TransportService", server.name, given)
    return server
