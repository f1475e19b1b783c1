"""Exchange's property names for the connector's Python fields, and Exchange's way of showing their values.

The one map between the two vocabularies: cmdlets parse parameters through it, Get-SendConnector and the
audit log's command lines render through it.
"""
from .values import format_byte_quantity, format_timespan

# Python field → Exchange parameter/property name, in Get-SendConnector | Format-List order.
EXCHANGE_NAMES = {
    "name": "Name",
    "usage": "Usage",
    "address_spaces": "AddressSpaces",
    "enabled": "Enabled",
    "comment": "Comment",
    "dns_routing_enabled": "DNSRoutingEnabled",
    "smart_hosts": "SmartHosts",
    "port": "Port",
    "use_external_dns_servers_enabled": "UseExternalDNSServersEnabled",
    "smart_host_auth_mechanism": "SmartHostAuthMechanism",
    "authentication_credential": "AuthenticationCredential",
    "is_scoped_connector": "IsScopedConnector",
    "source_transport_servers": "SourceTransportServers",
    "fqdn": "Fqdn",
    "force_helo": "ForceHELO",
    "require_tls": "RequireTLS",
    "tls_auth_level": "TlsAuthLevel",
    "tls_domain": "TlsDomain",
    "ignore_starttls": "IgnoreSTARTTLS",
    "domain_secure_enabled": "DomainSecureEnabled",
    "frontend_proxy_enabled": "FrontendProxyEnabled",
    "max_message_size": "MaxMessageSize",
    "connection_inactivity_timeout": "ConnectionInactivityTimeOut",
    "smtp_max_messages_per_connection": "SmtpMaxMessagesPerConnection",
    "protocol_logging_level": "ProtocolLoggingLevel",
    "error_policies": "ErrorPolicies",
}
FIELD_NAMES = {exchange.lower(): field for field, exchange in EXCHANGE_NAMES.items()}

ERROR_POLICY_FLAGS = {
    "downgrade_dns_failures": "DowngradeDnsFailures",
    "downgrade_custom_failures": "DowngradeCustomFailures",
    "upgrade_custom_failures": "UpgradeCustomFailures",
}


def error_policies_text(flags):
    """``Default`` or the comma list of set flags, from a {field: bool} mapping or a connector."""
    get = flags.get if isinstance(flags, dict) else (lambda field: getattr(flags, field))
    names = [exchange for field, exchange in ERROR_POLICY_FLAGS.items() if get(field)]
    return ", ".join(names) or "Default"


def exchange_value(field, value):
    """A Python value as Exchange shows it (strings, numbers, booleans, lists of strings)."""
    if field == "max_message_size":
        return format_byte_quantity(value)
    if field == "connection_inactivity_timeout":
        return format_timespan(value)
    if field in ("address_spaces", "smart_hosts", "source_transport_servers"):
        return [str(item) for item in value]
    return value


def connector_properties(connector):
    """Every Get-SendConnector property of ``connector`` (prefetch address_spaces, smart_hosts, servers)."""
    values = {
        "name": connector.name,
        "usage": connector.usage,
        "address_spaces": list(connector.address_spaces.all()),
        "enabled": connector.enabled,
        "comment": connector.comment,
        "dns_routing_enabled": connector.dns_routing_enabled,
        "smart_hosts": list(connector.smart_hosts.all()),
        "port": connector.port,
        "use_external_dns_servers_enabled": connector.use_external_dns_servers_enabled,
        "smart_host_auth_mechanism": connector.smart_host_auth_mechanism,
        "authentication_credential": connector.auth_username or None,
        "is_scoped_connector": connector.is_scoped_connector,
        "source_transport_servers": list(connector.source_transport_servers.all()),
        "fqdn": connector.fqdn or None,
        "force_helo": connector.force_helo,
        "require_tls": connector.require_tls,
        "tls_auth_level": connector.tls_auth_level or None,
        "tls_domain": connector.tls_domain or None,
        "ignore_starttls": connector.ignore_starttls,
        "domain_secure_enabled": connector.domain_secure_enabled,
        "frontend_proxy_enabled": connector.frontend_proxy_enabled,
        "max_message_size": connector.max_message_size,
        "connection_inactivity_timeout": connector.connection_inactivity_timeout,
        "smtp_max_messages_per_connection": connector.smtp_max_messages_per_connection,
        "protocol_logging_level": connector.protocol_logging_level,
        "error_policies": error_policies_text(connector),
    }
    shown = {"Identity": connector.name}
    shown.update({EXCHANGE_NAMES[field]: exchange_value(field, value) for field, value in values.items()})
    shown["SmartHostsString"] = ",".join(shown["SmartHosts"])
    shown["Guid"] = str(connector.guid)
    shown["WhenCreatedUTC"] = connector.created_at.strftime("%Y-%m-%dT%H:%M:%S")
    shown["WhenChangedUTC"] = connector.changed_at.strftime("%Y-%m-%dT%H:%M:%S")
    return shown
