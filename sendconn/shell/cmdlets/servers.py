"""Get-TransportService: the registered transport servers (the EAC's "Select a Server" list)."""
from django.db.models import Q

from sendconn.connectors import selectors
from sendconn.connectors.servers import local_server

from ..output import Record
from ..registry import CmdletError, Parameter, cmdlet, text


def _utc(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S") if moment else None


def server_record(server):
    return Record(
        {
            "Name": server.name,
            "Site": server.site,
            "Fqdn": server.fqdn,
            "Identity": server.name,
            "WhenCreatedUTC": _utc(server.registered_at),
            "LastSeenUTC": _utc(server.last_seen_at),
        },
        table=("Name", "Site", "Fqdn"),
    )


@cmdlet("Get-TransportService", Parameter("Identity", text, position=0, pipeline=True), Parameter("DomainController", text))
def get_transport_service(invocation):
    local_server()  # a fresh install lists its own server
    servers = selectors.transport_servers()
    identity = (invocation.params.get("Identity") or "").strip()
    if identity:
        servers = servers.filter(Q(name__iexact=identity) | Q(fqdn__iexact=identity))
        if not servers:
            raise CmdletError(f"The operation couldn't be performed because object '{identity}' couldn't be found.")
    return [server_record(server) for server in servers]
