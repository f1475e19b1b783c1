"""Get-TransportService and Set-TransportService: the registered transport servers (the EAC's "Select a Server"
list) and their outbound connection limits."""

from django.db.models import Q

from sendconn.connectors import selectors, values
from sendconn.connectors.servers import CONNECTION_LIMITS, local_server, set_transport_service

from ..output import Record, utc_text
from ..registry import CmdletError, Parameter, cmdlet, parsed, text


def server_record(server):
    return Record(
        {
            "Name": server.name,
            "Site": server.site,
            "Fqdn": server.fqdn,
            "Identity": server.name,
            "WhenCreatedUTC": utc_text(server.registered_at),
            "LastSeenUTC": utc_text(server.last_seen_at),
            **{name: values.format_unlimited(getattr(server, field)) for field, name in CONNECTION_LIMITS.items()},
        },
        table=("Name", "Site", "Fqdn"),
    )


def find_servers(identity, *, required=False):
    """The servers named ``identity`` (name or FQDN, any case); all of them when it is empty and not ``required``."""
    local_server()  # a fresh install lists its own server
    servers = selectors.transport_servers()
    identity = (identity or "").strip()
    if identity or required:
        servers = servers.filter(Q(name__iexact=identity) | Q(fqdn__iexact=identity))
        if not servers:
            raise CmdletError(f"The operation couldn't be performed because object '{identity}' couldn't be found.")
    return list(servers)


IDENTITY = Parameter("Identity", text, position=0, pipeline=True)
DOMAIN_CONTROLLER = Parameter("DomainController", text)


@cmdlet("Get-TransportService", IDENTITY, DOMAIN_CONTROLLER)
def get_transport_service(invocation):
    return [server_record(server) for server in find_servers(invocation.params.get("Identity"))]


@cmdlet(
    "Set-TransportService",
    Parameter("Identity", text, mandatory=True, position=0, pipeline=True),
    *(Parameter(name, parsed(values.parse_unlimited_count, "Unlimited")) for name in CONNECTION_LIMITS.values()),
    DOMAIN_CONTROLLER,
    should_process=True,
)
def set_transport_service_cmdlet(invocation):
    server = find_servers(invocation.params["Identity"], required=True)[0]
    limits = {field: invocation.params[name] for field, name in CONNECTION_LIMITS.items() if name in invocation.params}
    if not limits:
        invocation.session.warn(
            f"The command completed successfully but no settings of '{server.name}' have been modified."
        )
        return []

    def write():
        return set_transport_service(invocation.session.caller, server, **limits)

    if invocation.should_process(f'Configuring transport service "{server.name}".', rehearse=write):
        write()
    return []
