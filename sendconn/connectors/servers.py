"""Transport servers: each worker registers the machine it runs on; connectors name them as source servers."""
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from .models import TransportServer


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
