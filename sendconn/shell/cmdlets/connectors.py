"""New-, Get-, Set- and Remove-SendConnector.

Parameter names come from ``properties.EXCHANGE_NAMES`` (the one map between Exchange's and Python's names),
values are read with ``sendconn.connectors.values``, and every write goes through
``sendconn.connectors.services`` as the shell's caller: validation, defaults and the audit log are the
browser's.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from sendconn.connectors import selectors, services, values
from sendconn.connectors.models import (
    ConnectorType,
    ProtocolLoggingLevel,
    SendConnector,
    SmartHostAuthMechanism,
    TlsAuthLevel,
    Usage,
)
from sendconn.connectors.properties import ERROR_POLICY_FLAGS, EXCHANGE_NAMES, FIELD_NAMES, connector_properties
from sendconn.connectors.servers import local_server, resolve_transport_servers

from ..output import Record
from ..registry import CmdletError, Parameter, boolean, choice, cmdlet, converter, integer, parsed, switch, text

TABLE = ("Identity", "AddressSpaces", "Enabled")


@dataclass(frozen=True)
class ListChange:
    """``@{Add=…; Remove=…}`` for a multi-valued property, applied to the connector's current list on Set."""

    add: list
    remove: list


def _items(value):
    items = [] if value is None else value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, (list, dict)):
            raise ValidationError("Each value must be a single string.")
    return [str(item) for item in items]


def multi_valued(parse_item):
    """A comma list, ``$null`` (empty), or on Set a ``@{Add=…;Remove=…}`` table; items read by ``parse_item``."""

    @converter("MultiValuedProperty", nullable=True)
    def convert(value, session):
        if not isinstance(value, dict):
            return [parse_item(item) for item in _items(value)]
        parts: dict[str, list[Any]] = {"add": [], "remove": []}
        for key, items in value.items():
            if key.lower() not in parts:
                raise ValidationError(f'The hash table can only contain the keys Add and Remove, not "{key}".')
            parts[key.lower()] = [parse_item(item) for item in _items(items)]
        return ListChange(parts["add"], parts["remove"])

    return convert


def transport_server(name):
    """A source server by name or, as Exchange's server identities allow, by FQDN."""
    local_server()  # registered on first use; it must be nameable before then too
    by_fqdn = selectors.transport_servers().filter(fqdn__iexact=name.strip()).first()
    if by_fqdn is not None:
        return by_fqdn
    try:
        return resolve_transport_servers([name])[0]
    except ValidationError as error:
        raise ValidationError(error.message_dict["source_transport_servers"]) from None


ERROR_POLICY_NAMES = ("Default", *ERROR_POLICY_FLAGS.values())
_error_policy_name = choice(ERROR_POLICY_NAMES, "ErrorPolicies")


@converter("ErrorPolicies")
def error_policies(value, session):
    """``DowngradeDnsFailures,UpgradeCustomFailures`` → the three flag fields; ``Default`` sets none."""
    names = [_error_policy_name(part, session) for item in _items(value) for part in item.split(",") if part.strip()]
    return {field: exchange in names for field, exchange in ERROR_POLICY_FLAGS.items()}


@converter("SmtpX509Identifier", nullable=True)
def certificate_name(value, session):
    """``<I>issuer<S>subject``, checked by the services (``$null`` clears it)."""
    return text(value, session)


@converter("System.Management.Automation.PSCredential", nullable=True)
def credential(value, session):
    """``(Get-Credential)``, or a user name whose password is read from standard input; ``$null`` clears it."""
    if value is None or isinstance(value, services.Credential):
        return value
    if isinstance(value, str) and value.strip():
        username = value.strip()
        password = session.ask_secret(f"Password for user {username}: ")
        if password is None:
            raise ValidationError(f'No password was read from standard input for the user "{username}".')
        return services.Credential(username, password)
    raise ValidationError('Cannot convert the value to type "PSCredential". Use (Get-Credential) or a user name.')


# Python field → how its parameter's value is read. Names come from EXCHANGE_NAMES.
CONVERTERS = {
    "name": text,
    "usage": choice(Usage.values, "Usage"),
    "address_spaces": multi_valued(values.parse_address_space),
    "enabled": boolean,
    "comment": text,
    "dns_routing_enabled": boolean,
    "smart_hosts": multi_valued(values.parse_smart_host),
    "port": parsed(values.parse_port, "System.Int32"),
    "use_external_dns_servers_enabled": boolean,
    "smart_host_auth_mechanism": choice(SmartHostAuthMechanism.values, "SmartHostAuthMechanism"),
    "authentication_credential": credential,
    "is_scoped_connector": boolean,
    "source_transport_servers": multi_valued(transport_server),
    "fqdn": text,
    "force_helo": boolean,
    "require_tls": boolean,
    "tls_auth_level": choice(TlsAuthLevel.values, "TlsAuthLevel", nullable=True),
    "tls_domain": text,
    "ignore_starttls": boolean,
    "domain_secure_enabled": boolean,
    "frontend_proxy_enabled": boolean,
    "max_message_size": parsed(values.parse_byte_quantity, "Unlimited"),
    "connection_inactivity_timeout": parsed(values.parse_timespan, "EnhancedTimeSpan"),
    "smtp_max_messages_per_connection": integer,
    "protocol_logging_level": choice(ProtocolLoggingLevel.values, "ProtocolLoggingLevel"),
    "error_policies": error_policies,
    "connector_type": choice(ConnectorType.values, "TenantConnectorType"),
    "cloud_services_mail_enabled": boolean,
    "tls_certificate_name": certificate_name,
    "source_ip_address": parsed(values.parse_source_ip_address, "System.Net.IPAddress"),
    "require_oorg": boolean,
}
IDENTITY = Parameter("Identity", text, mandatory=True, position=0, pipeline=True)
# Accepted for scripts written for Exchange; a single database has no domain controller to pick.
DOMAIN_CONTROLLER = Parameter("DomainController", text)


def _property_parameters(*, exclude=()):
    return tuple(
        Parameter(EXCHANGE_NAMES[field], convert) for field, convert in CONVERTERS.items() if field not in exclude
    )


def service_arguments(params):
    """Bound parameters (Exchange's names) → the services' keyword arguments (Python's field names)."""
    arguments = {}
    for name, value in params.items():
        field = FIELD_NAMES.get(name.lower())
        if field == "error_policies":
            arguments.update(value)
        elif field:
            arguments[field] = value
    return arguments


def find_connector(identity):
    connector = selectors.get_connector(identity) if identity else None
    if connector is None:
        raise CmdletError(f"The operation couldn't be performed because object '{identity}' couldn't be found.")
    return connector


def connector_record(connector):
    return Record(connector_properties(connector), table=TABLE)


def report_warnings(invocation, saved):
    for warning in saved.warnings:
        invocation.session.warn(warning)


# -- New-SendConnector -----------------------------------------------------------------------------------


def usage_of(params):
    """The usage type from ``-Custom``/``-Internal``/``-Internet``/``-Partner`` or ``-Usage``; at most one."""
    chosen = [usage for usage in Usage.values if params.get(usage)]
    if "Usage" in params:
        chosen.append(params["Usage"])
    if len(chosen) > 1:
        raise CmdletError(
            "Only one usage type can be specified. Use one of the Custom, Internal, Internet or Partner switches, "
            "or the Usage parameter."
        )
    return chosen[0] if chosen else None


@cmdlet(
    "New-SendConnector",
    Parameter("Name", text, mandatory=True, position=0),
    Parameter("AddressSpaces", CONVERTERS["address_spaces"], mandatory=True),
    *_property_parameters(exclude=("name", "address_spaces")),
    *(switch(usage) for usage in Usage.values),
    switch("Force"),
    DOMAIN_CONTROLLER,
    should_process=True,
)
def new_send_connector(invocation):
    """Use the New-SendConnector cmdlet to create a new Send connector."""
    usage = usage_of(invocation.params)
    arguments = service_arguments(invocation.params)
    arguments.pop("usage", None)
    for field, value in arguments.items():
        if isinstance(value, ListChange):
            raise CmdletError(
                f"{EXCHANGE_NAMES[field]}: @{{Add=...;Remove=...}} can only change an existing "
                f"connector (Set-SendConnector). List the values instead."
            )
    name = arguments.pop("name")
    address_spaces = arguments.pop("address_spaces")

    def write():
        return services.new_send_connector(
            invocation.session.caller, name=name, address_spaces=address_spaces, usage=usage, **arguments
        )

    if not invocation.should_process(f'Creating Send connector "{name}".', rehearse=write):
        return []
    saved = write()
    report_warnings(invocation, saved)
    return [connector_record(saved.connector)]


# -- Get-SendConnector -----------------------------------------------------------------------------------


def _wildcard_regex(identity):
    return "^" + ".*".join(re.escape(part) for part in identity.split("*")) + "$"


@cmdlet("Get-SendConnector", Parameter("Identity", text, position=0, pipeline=True), DOMAIN_CONTROLLER)
def get_send_connector(invocation):
    """Use the Get-SendConnector cmdlet to view the settings for a Send connector."""
    identity = (invocation.params.get("Identity") or "").strip()
    server, pattern = selectors.split_server_identity(identity)
    connectors: Iterable[SendConnector]
    if not identity:
        connectors = selectors.connectors_with_details()
    elif "*" in pattern and (server is None or selectors.is_transport_server(server)):
        connectors = selectors.connectors_with_details().filter(name__iregex=_wildcard_regex(pattern))
    else:
        connectors = [find_connector(identity)]
    return [connector_record(connector) for connector in connectors]


# -- Set-SendConnector -----------------------------------------------------------------------------------

# How two items of a multi-valued property are the same item (for @{Remove=…}).
_ITEM_KEYS = {
    "address_spaces": lambda space: (space.address_type.lower(), space.domain.lower()),
    "smart_hosts": lambda host: host.host.lower(),
    "source_transport_servers": lambda server: server.pk,
}


def _current_items(connector, field):
    if field == "address_spaces":
        return [
            values.AddressSpaceValue(space.address_type, space.domain, space.cost)
            for space in connector.address_spaces.all()
        ]
    if field == "smart_hosts":
        return [values.SmartHostValue(host.host, host.is_ip_address) for host in connector.smart_hosts.all()]
    return list(connector.source_transport_servers.all())


def apply_change(connector, field, change):
    """The connector's current list for ``field`` with ``change.remove`` taken out and ``change.add`` appended."""
    key = _ITEM_KEYS[field]
    items = _current_items(connector, field)
    for item in change.remove:
        if not any(key(existing) == key(item) for existing in items):
            raise CmdletError(
                f"{EXCHANGE_NAMES[field]}: \"{item}\" can't be removed because it isn't one of the connector's values."
            )
        items = [existing for existing in items if key(existing) != key(item)]
    return items + list(change.add)


@cmdlet(
    "Set-SendConnector",
    IDENTITY,
    *_property_parameters(exclude=("usage",)),
    switch("Force"),
    DOMAIN_CONTROLLER,
    should_process=True,
)
def set_send_connector(invocation):
    """Use the Set-SendConnector cmdlet to modify a Send connector."""
    connector = find_connector(invocation.params["Identity"])
    arguments = service_arguments(invocation.params)
    for field, value in arguments.items():
        if isinstance(value, ListChange):
            arguments[field] = apply_change(connector, field, value)

    def write():
        return services.set_send_connector(invocation.session.caller, connector, **arguments)

    if invocation.should_process(f'Configuring Send connector "{connector.name}".', rehearse=write):
        saved = write()
        if not saved.changed:
            invocation.session.warn(
                f"The command completed successfully but no settings of '{connector.name}' have been modified."
            )
        report_warnings(invocation, saved)
    return []


# -- Remove-SendConnector --------------------------------------------------------------------------------


@cmdlet("Remove-SendConnector", IDENTITY, DOMAIN_CONTROLLER, confirm=True)
def remove_send_connector(invocation):
    """Use the Remove-SendConnector cmdlet to delete a Send connector."""
    connector = find_connector(invocation.params["Identity"])
    if invocation.should_process(f'Removing Send connector "{connector.name}".'):
        services.remove_send_connector(invocation.session.caller, connector)
    return []
