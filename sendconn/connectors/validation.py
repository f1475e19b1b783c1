"""Every rule a Send connector must satisfy, in one place, with Exchange's wording.

``validate_connector`` judges the complete desired state (current values plus the change), so the wizard,
the edit dialog and the cmdlets cannot disagree. Errors are keyed by Python field name; ``None`` for rules
that involve several fields.
"""

from django.core.exceptions import ValidationError

from .models import ConnectorType, SendConnector, SmartHostAuthMechanism, TlsAuthLevel
from .values import MAX_INACTIVITY_TIMEOUT, MIN_INACTIVITY_TIMEOUT, format_timespan, validate_host_name

MAX_NAME_LENGTH = 64


class Problems:
    def __init__(self):
        self.errors = {}

    def add(self, field, message):
        self.errors.setdefault(field, []).append(message)

    def raise_if_any(self):
        if self.errors:
            raise ValidationError({field or "__all__": messages for field, messages in self.errors.items()})


def validate_name(name, existing=None):
    name = (name or "").strip()
    if not name:
        raise ValidationError("The Name parameter can't be empty.")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError(f"The name can't be longer than {MAX_NAME_LENGTH} characters.")
    if any(ord(ch) < 32 for ch in name):
        raise ValidationError("The name can't contain control characters.")
    clash = SendConnector.objects.filter(name__iexact=name)
    if existing is not None:
        clash = clash.exclude(pk=existing.pk)
    if clash.exists():
        raise ValidationError(f'A Send connector with the name "{name}" already exists. Specify a unique name.')
    return name


def validate_connector(state, existing=None):
    """Raise ValidationError unless ``state`` (a dict of every field) is a valid Send connector."""
    problems = Problems()
    try:
        validate_name(state["name"], existing)
    except ValidationError as error:
        problems.add("name", error.messages[0])

    spaces = state["address_spaces"]
    smart_hosts = state["smart_hosts"]
    dns = state["dns_routing_enabled"]
    mechanism = state["smart_host_auth_mechanism"]
    tls_level = state["tls_auth_level"]

    if not spaces:
        problems.add("address_spaces", "The AddressSpaces parameter can't be empty. Add at least one address space.")
    seen = set()
    for space in spaces:
        key = (space.address_type.lower(), space.domain.lower())
        if key in seen:
            problems.add(
                "address_spaces", f'The address space "{space.address_type}:{space.domain}" is listed more than once.'
            )
        seen.add(key)
        if not space.is_smtp and dns:
            problems.add(
                "address_spaces",
                f'The address space "{space}" isn\'t an SMTP address space. Connectors with non-SMTP address spaces '
                f"must route mail through smart hosts (DNSRoutingEnabled $false).",
            )

    hosts = [str(host) for host in smart_hosts]
    if len(set(hosts)) != len(hosts):
        problems.add("smart_hosts", "The same smart host is listed more than once.")
    if dns and smart_hosts:
        problems.add(
            "smart_hosts",
            "SmartHosts can't be specified when DNSRoutingEnabled is $true. Set DNSRoutingEnabled to $false "
            "to route mail through smart hosts.",
        )
    if not dns and not smart_hosts:
        problems.add(
            "smart_hosts",
            "When DNSRoutingEnabled is $false, you must specify at least one smart host with the SmartHosts parameter.",
        )
    if dns and mechanism != SmartHostAuthMechanism.NONE:
        problems.add(
            "smart_host_auth_mechanism",
            "SmartHostAuthMechanism can only be set on a connector that routes mail through smart hosts "
            "(DNSRoutingEnabled $false).",
        )
    if SmartHostAuthMechanism.needs_credential(mechanism) and not (state["auth_username"] and state["auth_password"]):
        problems.add(
            "authentication_credential",
            f"The AuthenticationCredential parameter (user name and password) is required when "
            f"SmartHostAuthMechanism is {mechanism}.",
        )
    if len(state["auth_username"]) > 256 or len(state["auth_password"]) > 256:
        problems.add(
            "authentication_credential", "The user name and the password can't be longer than 256 characters each."
        )
    if mechanism == SmartHostAuthMechanism.BASIC_AUTH_REQUIRE_TLS and state["force_helo"]:
        problems.add(
            "force_helo",
            "ForceHELO can't be $true with SmartHostAuthMechanism BasicAuthRequireTLS: STARTTLS needs EHLO.",
        )
    if mechanism == SmartHostAuthMechanism.BASIC_AUTH_REQUIRE_TLS and state["ignore_starttls"]:
        problems.add(
            "ignore_starttls",
            "IgnoreSTARTTLS can't be $true with SmartHostAuthMechanism BasicAuthRequireTLS.",
        )

    if state["require_tls"] and state["ignore_starttls"]:
        problems.add("ignore_starttls", "IgnoreSTARTTLS can't be $true when RequireTLS is $true.")
    if tls_level:
        if not state["require_tls"] or state["ignore_starttls"]:
            problems.add(
                "tls_auth_level",
                "The TlsAuthLevel parameter can only be set when RequireTLS is $true and IgnoreSTARTTLS is $false.",
            )
        if state["domain_secure_enabled"]:
            problems.add("tls_auth_level", "TlsAuthLevel can't be set when DomainSecureEnabled is $true.")
    if state["tls_domain"]:
        if tls_level != TlsAuthLevel.DOMAIN_VALIDATION:
            problems.add(
                "tls_domain",
                "The TLSDomain parameter can only be set if the TLSAuthLevel parameter is set to DomainValidation.",
            )
        if len(state["tls_domain"]) > 255:
            problems.add("tls_domain", "TlsDomain can't be longer than 255 characters.")
        if state["tls_domain"] == "*":
            problems.add(
                "tls_domain", 'TlsDomain can\'t be "*". Specify a domain such as contoso.com or *.contoso.com.'
            )
    elif tls_level == TlsAuthLevel.DOMAIN_VALIDATION and not dns:
        problems.add(
            "tls_domain",
            "TlsDomain is required when TlsAuthLevel is DomainValidation on a connector that routes mail through "
            "smart hosts.",
        )
    if state["domain_secure_enabled"]:
        if not dns:
            # Named after DNSRoutingEnabled, so the edit dialog shows it by the routing choice that breaks the rule.
            problems.add("dns_routing_enabled", "DomainSecureEnabled requires DNSRoutingEnabled $true.")
        if state["ignore_starttls"]:
            problems.add("domain_secure_enabled", "DomainSecureEnabled can't be $true when IgnoreSTARTTLS is $true.")
        if any(space.is_wildcard for space in spaces):
            problems.add(
                "domain_secure_enabled",
                "DomainSecureEnabled can't be used with wildcard address spaces. Specify each partner domain.",
            )

    if state["fqdn"]:
        try:
            validate_host_name(state["fqdn"])
        except ValidationError as error:
            problems.add("fqdn", error.messages[0])
    if not 0 <= state["port"] <= 65535:
        problems.add("port", "The port must be a number from 0 to 65535.")
    timeout = state["connection_inactivity_timeout"]
    if not MIN_INACTIVITY_TIMEOUT <= timeout <= MAX_INACTIVITY_TIMEOUT:
        problems.add(
            "connection_inactivity_timeout",
            f"ConnectionInactivityTimeOut must be between {format_timespan(MIN_INACTIVITY_TIMEOUT)} "
            f"and {format_timespan(MAX_INACTIVITY_TIMEOUT)}.",
        )
    if state["smtp_max_messages_per_connection"] < 0:
        problems.add("smtp_max_messages_per_connection", "SmtpMaxMessagesPerConnection can't be negative.")
    if state["connector_type"] not in ConnectorType.values:
        problems.add(
            "connector_type", f'"{state["connector_type"]}" isn\'t a valid ConnectorType. Use Default or XPremises.'
        )
    if not state["source_transport_servers"]:
        problems.add("source_transport_servers", "Add at least one source server.")
    problems.raise_if_any()


def scoping_warnings(state):
    """Exchange warns, without refusing, when a scoped connector's source servers span several sites."""
    sites = {server.site for server in state["source_transport_servers"]}
    if state["is_scoped_connector"] and len(sites) > 1:
        return [
            "WARNING: The source transport servers of this scoped Send connector are in different Active Directory "
            f"sites ({', '.join(sorted(sites))}). The connector is only usable from one site at a time."
        ]
    return []
