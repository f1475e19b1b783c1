"""Exchange's property names for the connector's Python fields, and Exchange's way of showing their values.

The one map between the two vocabularies: cmdlets parse parameters through it, the audit log's command lines
render through it, and ``connector_properties`` is what Get-SendConnector returns.
"""

import re
from datetime import UTC

from django.conf import settings
from django.utils import timezone

from .values import format_byte_quantity, format_timespan

# Python field → Exchange parameter name, in the order audit lines and Get-Help list them.
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
    "tls_certificate_name": "TlsCertificateName",
    "ignore_starttls": "IgnoreSTARTTLS",
    "domain_secure_enabled": "DomainSecureEnabled",
    "frontend_proxy_enabled": "FrontendProxyEnabled",
    "max_message_size": "MaxMessageSize",
    "connection_inactivity_timeout": "ConnectionInactivityTimeOut",
    "smtp_max_messages_per_connection": "SmtpMaxMessagesPerConnection",
    "protocol_logging_level": "ProtocolLoggingLevel",
    "error_policies": "ErrorPolicies",
    "connector_type": "ConnectorType",
    "cloud_services_mail_enabled": "CloudServicesMailEnabled",
    "source_ip_address": "SourceIPAddress",
    "require_oorg": "RequireOorg",
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


# What every connector shows for the directory-object properties Exchange reads from Active Directory.
ROUTING_GROUP = "Exchange Routing Group (DWBGZMFD01QNBJR)"
ADMINISTRATIVE_GROUP = "Exchange Administrative Group (FYDIBOHF23SPDLT)"
ORGANIZATION = "First Organization"
OBJECT_CLASS = ["top", "msExchConnector", "mailGateway", "msExchRoutingSMTPConnector"]
EXCHANGE_VERSION = "0.1 (8.0.535.0)"
PS_CREDENTIAL = "System.Management.Automation.PSCredential"


def format_date_time(moment):
    """A DateTime as PowerShell prints it in the en-US culture: ``11/2/2016 3:54:13 PM``."""
    hour = moment.hour % 12 or 12
    return f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment:%M:%S} {'AM' if moment.hour < 12 else 'PM'}"


def _directory_domain():
    """The forest the organisation's objects live in: this server's DNS domain (``ex01.contoso.com`` → contoso.com)."""
    fqdn = settings.SENDCONN_SERVER_FQDN.strip().rstrip(".").lower()
    return fqdn.partition(".")[2] or fqdn


def distinguished_name(connector_name):
    """Where Exchange keeps a Send connector in the configuration partition."""
    escaped = re.sub(r'([,+"\\<>;=#])', r"\\\1", connector_name)
    domain = ",".join(f"DC={part}" for part in _directory_domain().split("."))
    return (
        f"CN={escaped},CN=SMTP Send Connectors,CN={ROUTING_GROUP},CN=Routing Groups,CN={ADMINISTRATIVE_GROUP},"
        f"CN=Administrative Groups,CN={ORGANIZATION},CN=Microsoft Exchange,CN=Services,CN=Configuration,{domain}"
    )


def connector_properties(connector):
    """Get-SendConnector's object (prefetch address_spaces, smart_hosts, servers): Exchange's properties in
    Exchange's order and formats, the connector's own first, then those of its directory object."""
    smart_hosts = [str(host) for host in connector.smart_hosts.all()]
    servers = [server.name for server in connector.source_transport_servers.all()]
    changed, created = timezone.localtime(connector.changed_at), timezone.localtime(connector.created_at)
    utc = UTC
    return {
        "AddressSpaces": [str(space) for space in connector.address_spaces.all()],
        "AuthenticationCredential": PS_CREDENTIAL if connector.has_credential else None,
        "CloudServicesMailEnabled": connector.cloud_services_mail_enabled,
        "Comment": connector.comment or None,
        "ConnectedDomains": [],
        "ConnectionInactivityTimeOut": format_timespan(connector.connection_inactivity_timeout),
        "ConnectorType": connector.connector_type,
        "DNSRoutingEnabled": connector.dns_routing_enabled,
        "DomainSecureEnabled": connector.domain_secure_enabled,
        "Enabled": connector.enabled,
        "ErrorPolicies": error_policies_text(connector),
        "ForceHELO": connector.force_helo,
        "Fqdn": connector.fqdn or None,
        "FrontendProxyEnabled": connector.frontend_proxy_enabled,
        "HomeMTA": "Microsoft MTA",
        "HomeMtaServerId": servers[0] if servers else None,
        "Identity": connector.name,
        "IgnoreSTARTTLS": connector.ignore_starttls,
        "IsScopedConnector": connector.is_scoped_connector,
        "IsSmtpConnector": True,
        "MaxMessageSize": format_byte_quantity(connector.max_message_size),
        "Name": connector.name,
        "Port": connector.port,
        "ProtocolLoggingLevel": connector.protocol_logging_level,
        "RequireOorg": connector.require_oorg,
        "RequireTLS": connector.require_tls,
        "SmartHostAuthMechanism": connector.smart_host_auth_mechanism,
        "SmartHosts": smart_hosts,
        "SmartHostsString": ",".join(smart_hosts) or None,
        "SmtpMaxMessagesPerConnection": connector.smtp_max_messages_per_connection,
        "SourceIPAddress": connector.source_ip_address,
        "SourceRoutingGroup": ROUTING_GROUP,
        "SourceTransportServers": servers,
        "TlsAuthLevel": connector.tls_auth_level or None,
        "TlsDomain": connector.tls_domain or None,
        "UseExternalDNSServersEnabled": connector.use_external_dns_servers_enabled,
        "TlsCertificateName": connector.tls_certificate_name or None,
        "AdminDisplayName": None,
        "ExchangeVersion": EXCHANGE_VERSION,
        "DistinguishedName": distinguished_name(connector.name),
        "Guid": str(connector.guid),
        "ObjectCategory": f"{_directory_domain()}/Configuration/Schema/ms-Exch-Routing-SMTP-Connector",
        "ObjectClass": OBJECT_CLASS,
        "WhenChanged": format_date_time(changed),
        "WhenCreated": format_date_time(created),
        "WhenChangedUTC": format_date_time(changed.astimezone(utc)),
        "WhenCreatedUTC": format_date_time(created.astimezone(utc)),
        "OrganizationId": None,
        "Id": connector.name,
        "OriginatingServer": settings.SENDCONN_SERVER_FQDN,
        "IsValid": True,
        "ObjectState": "Unchanged",
    }
