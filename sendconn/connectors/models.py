"""The Send connector domain: connectors, their address spaces and smart hosts, transport servers, audit log.

Field names are Python's; Exchange's property names live in ``properties.py``.
"""

import uuid
from datetime import timedelta
from typing import TypeGuard

from django.db import models
from django.db.models.functions import Lower

from . import crypto

MB = 1024 * 1024
DEFAULT_MAX_MESSAGE_SIZE = 35 * MB
DEFAULT_INACTIVITY_TIMEOUT = timedelta(minutes=10)


class Usage(models.TextChoices):
    CUSTOM = "Custom", "Custom"
    INTERNAL = "Internal", "Internal"
    INTERNET = "Internet", "Internet"
    PARTNER = "Partner", "Partner"


class SmartHostAuthMechanism(models.TextChoices):
    NONE = "None", "None"
    BASIC_AUTH = "BasicAuth", "Basic authentication"
    BASIC_AUTH_REQUIRE_TLS = "BasicAuthRequireTLS", "Offer basic authentication only after starting TLS"
    EXCHANGE_SERVER = "ExchangeServer", "Exchange Server authentication"
    EXTERNAL_AUTHORITATIVE = "ExternalAuthoritative", "Externally secured"

    @classmethod
    def needs_credential(cls, value: object) -> TypeGuard[str]:
        return value in (cls.BASIC_AUTH, cls.BASIC_AUTH_REQUIRE_TLS)


class TlsAuthLevel(models.TextChoices):
    ENCRYPTION_ONLY = "EncryptionOnly", "EncryptionOnly"
    CERTIFICATE_VALIDATION = "CertificateValidation", "CertificateValidation"
    DOMAIN_VALIDATION = "DomainValidation", "DomainValidation"


class ConnectorType(models.TextChoices):
    DEFAULT = "Default", "Default"
    XPREMISES = "XPremises", "XPremises"


class ProtocolLoggingLevel(models.TextChoices):
    NONE = "None", "None"
    VERBOSE = "Verbose", "Verbose"


class TransportServer(models.Model):
    """A machine that runs a sendconn worker: Exchange's transport service on a Mailbox server."""

    name = models.CharField(max_length=64, unique=True)
    fqdn = models.CharField(max_length=255)
    site = models.CharField(max_length=64, default="Default-First-Site-Name")
    registered_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # Exchange's outbound connection limits (Set-TransportService), honoured by all delivery engines of the server
    # together; None is "unlimited".
    max_outbound_connections = models.PositiveIntegerField(null=True, blank=True, default=1000)
    max_per_domain_outbound_connections = models.PositiveIntegerField(null=True, blank=True, default=40)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def queue_name(self):
        """The Celery queue that only this server's workers consume."""
        return f"server.{self.name.lower()}"

    @property
    def verify_queue_name(self):
        """The Celery queue only this server's workers consume for verifications (apart from mail's)."""
        return f"verify.{self.name.lower()}"


class SendConnector(models.Model):
    guid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=64)
    usage = models.CharField(max_length=16, choices=Usage.choices, default=Usage.CUSTOM)
    enabled = models.BooleanField(default=True)
    comment = models.TextField(blank=True)

    # Routing
    dns_routing_enabled = models.BooleanField(default=True)
    use_external_dns_servers_enabled = models.BooleanField(default=False)
    is_scoped_connector = models.BooleanField(default=False)
    port = models.PositiveIntegerField(default=25)
    source_transport_servers = models.ManyToManyField(TransportServer, related_name="send_connectors")

    # Smart-host authentication; the password is only ever stored encrypted.
    smart_host_auth_mechanism = models.CharField(
        max_length=24, choices=SmartHostAuthMechanism.choices, default=SmartHostAuthMechanism.NONE
    )
    auth_username = models.CharField(max_length=256, blank=True)
    auth_password_encrypted = models.BinaryField(blank=True, default=b"", editable=False)

    # SMTP session
    fqdn = models.CharField(max_length=255, blank=True)
    force_helo = models.BooleanField(default=False)
    require_tls = models.BooleanField(default=False)
    tls_auth_level = models.CharField(max_length=24, choices=TlsAuthLevel.choices, blank=True)
    tls_domain = models.CharField(max_length=255, blank=True)
    ignore_starttls = models.BooleanField(default=False)
    domain_secure_enabled = models.BooleanField(default=False)
    frontend_proxy_enabled = models.BooleanField(default=False)
    max_message_size = models.BigIntegerField(
        null=True, blank=True, default=DEFAULT_MAX_MESSAGE_SIZE
    )  # None = unlimited
    connection_inactivity_timeout = models.DurationField(default=DEFAULT_INACTIVITY_TIMEOUT)
    smtp_max_messages_per_connection = models.PositiveIntegerField(default=20)
    protocol_logging_level = models.CharField(
        max_length=8, choices=ProtocolLoggingLevel.choices, default=ProtocolLoggingLevel.NONE
    )

    # Stored and shown as Exchange does, but sendconn doesn't act on them: hybrid (ConnectorType XPremises,
    # CloudServicesMailEnabled), the certificate Exchange presents (sendconn presents none), the Edge-only source
    # address and RequireOorg (Microsoft-internal). Scripts written for Exchange set them.
    connector_type = models.CharField(max_length=16, choices=ConnectorType.choices, default=ConnectorType.DEFAULT)
    cloud_services_mail_enabled = models.BooleanField(default=False)
    tls_certificate_name = models.CharField(max_length=1024, blank=True)
    source_ip_address = models.GenericIPAddressField(default="0.0.0.0")
    require_oorg = models.BooleanField(default=False)

    # ErrorPolicies flags ("Default" = none set)
    downgrade_dns_failures = models.BooleanField(default=False)
    downgrade_custom_failures = models.BooleanField(default=False)
    upgrade_custom_failures = models.BooleanField(default=False)

    created_at = models.DateTimeField(auto_now_add=True)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="sendconnector_name_unique_ci"),
        ]
        indexes = [models.Index(Lower("name"), name="sendconnector_name_ci_idx")]
        permissions = [
            ("verify_sendconnector", "Can verify delivery through a Send connector"),
        ]

    def __str__(self):
        return self.name

    @property
    def has_credential(self):
        return bool(self.auth_username)

    def set_password(self, password):
        self.auth_password_encrypted = crypto.encrypt(password) if password else b""

    def get_password(self):
        return crypto.decrypt(bytes(self.auth_password_encrypted)) if self.auth_password_encrypted else ""


class AddressSpace(models.Model):
    """One ``Type:AddressSpace;Cost`` entry, stored split so routing can index it.

    For SMTP entries ``match_domain`` is the domain without the ``*.`` prefix ("" for ``*``), so a recipient
    domain is matched by looking up its suffixes rather than scanning every connector.
    """

    connector = models.ForeignKey(SendConnector, on_delete=models.CASCADE, related_name="address_spaces")
    address_type = models.CharField(max_length=32, default="SMTP")
    domain = models.CharField(max_length=1024)
    cost = models.PositiveSmallIntegerField(default=1)
    is_wildcard = models.BooleanField(default=False)
    match_domain = models.CharField(max_length=255, blank=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.address_type}:{self.domain};{self.cost}"


class SmartHost(models.Model):
    connector = models.ForeignKey(SendConnector, on_delete=models.CASCADE, related_name="smart_hosts")
    position = models.PositiveSmallIntegerField()
    host = models.CharField(max_length=255)
    is_ip_address = models.BooleanField(default=False)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint("connector", "position", name="smarthost_position_unique")]

    def __str__(self):
        return self.host


class AdminAuditLogEntry(models.Model):
    """Who changed which connector, when, and the equivalent cmdlet line (EAC "Show command logging")."""

    class Source(models.TextChoices):
        WEB = "Web", "Exchange admin center"
        SHELL = "Shell", "Exchange Management Shell"

    connector_guid = models.UUIDField(null=True, blank=True, db_index=True)
    object_name = models.CharField(max_length=64)
    cmdlet = models.CharField(max_length=64)
    command_line = models.TextField()
    caller = models.CharField(max_length=150)
    source = models.CharField(max_length=8, choices=Source.choices)
    run_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-run_at", "-id"]

    def __str__(self):
        return f"{self.run_at:%Y-%m-%d %H:%M:%S} {self.caller}: {self.command_line}"
