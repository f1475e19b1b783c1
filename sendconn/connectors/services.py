"""Writes to Send connectors. The wizard, the edit dialog and the cmdlets all call these functions.

Parameters use the Python field names of ``SendConnector`` plus ``address_spaces``, ``smart_hosts``,
``source_transport_servers`` (lists of values, text or servers) and ``authentication_credential``
(a ``Credential`` or None). Each call validates the complete resulting connector, saves it in one
transaction and writes the admin audit log entry; on error nothing is saved, and a Set-SendConnector that
changes nothing saves and audits nothing.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Self, cast

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Field
from django.http import HttpRequest

from . import audit
from .models import (
    DEFAULT_MAX_MESSAGE_SIZE,
    AddressSpace,
    AdminAuditLogEntry,
    SendConnector,
    SmartHost,
    SmartHostAuthMechanism,
    Usage,
)
from .servers import local_server, resolve_transport_servers
from .validation import scoping_warnings, validate_connector
from .values import (
    AddressSpaceValue,
    SmartHostValue,
    parse_address_space,
    parse_smart_host,
    parse_source_ip_address,
    parse_tls_certificate_name,
)

SCALAR_FIELDS = (
    "name",
    "usage",
    "enabled",
    "comment",
    "dns_routing_enabled",
    "use_external_dns_servers_enabled",
    "is_scoped_connector",
    "port",
    "smart_host_auth_mechanism",
    "fqdn",
    "force_helo",
    "require_tls",
    "tls_auth_level",
    "tls_domain",
    "ignore_starttls",
    "domain_secure_enabled",
    "frontend_proxy_enabled",
    "max_message_size",
    "connection_inactivity_timeout",
    "smtp_max_messages_per_connection",
    "protocol_logging_level",
    "downgrade_dns_failures",
    "downgrade_custom_failures",
    "upgrade_custom_failures",
    "connector_type",
    "cloud_services_mail_enabled",
    "tls_certificate_name",
    "source_ip_address",
    "require_oorg",
)
LIST_FIELDS = ("address_spaces", "smart_hosts", "source_transport_servers")
SETTABLE = set(SCALAR_FIELDS) | set(LIST_FIELDS) | {"authentication_credential"}


@dataclass(frozen=True)
class Credential:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Caller:
    """Who is acting, and through which door (for the audit log)."""

    username: str
    source: str = AdminAuditLogEntry.Source.WEB

    @classmethod
    def web(cls, request: HttpRequest) -> Self:
        """The admin signed in to the console."""
        return cls(request.user.username, AdminAuditLogEntry.Source.WEB)


@dataclass
class Saved:
    connector: SendConnector
    warnings: list[str]
    changed: bool = True  # False: the values given were the connector's already, so nothing was saved or audited


def _normalise(params: dict[str, Any]) -> dict[str, Any]:
    unknown = set(params) - SETTABLE
    if unknown:
        raise TypeError(f"unknown Send connector parameters: {sorted(unknown)}")
    params = dict(params)
    for key, parse, value_type in (
        ("address_spaces", parse_address_space, AddressSpaceValue),
        ("smart_hosts", parse_smart_host, SmartHostValue),
    ):
        if key in params:
            try:
                params[key] = [item if isinstance(item, value_type) else parse(item) for item in params[key] or []]
            except ValidationError as error:
                raise ValidationError({key: error.messages}) from None
    for key, parse in (
        ("tls_certificate_name", parse_tls_certificate_name),
        ("source_ip_address", parse_source_ip_address),
    ):
        if key in params:
            try:
                params[key] = parse(params[key])
            except ValidationError as error:
                raise ValidationError({key: error.messages}) from None
    if "source_transport_servers" in params:
        params["source_transport_servers"] = resolve_transport_servers(params["source_transport_servers"] or [])
    for host_field in ("fqdn", "tls_domain"):
        if host_field in params:
            params[host_field] = (params[host_field] or "").strip().rstrip(".").lower()
    if "comment" in params:
        params["comment"] = params["comment"] or ""
    if "tls_auth_level" in params:
        params["tls_auth_level"] = params["tls_auth_level"] or ""
    if "name" in params:
        params["name"] = (params["name"] or "").strip()
    return params


def _state_of(connector: SendConnector) -> dict[str, Any]:
    state = {name: getattr(connector, name) for name in SCALAR_FIELDS}
    state["address_spaces"] = [
        AddressSpaceValue(space.address_type, space.domain, space.cost) for space in connector.address_spaces.all()
    ]
    state["smart_hosts"] = [SmartHostValue(host.host, host.is_ip_address) for host in connector.smart_hosts.all()]
    state["source_transport_servers"] = list(connector.source_transport_servers.all())
    state["auth_username"] = connector.auth_username
    state["auth_password"] = connector.get_password() if connector.auth_password_encrypted else ""
    return state


def _changed(before: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """``params`` without the values the connector already had."""
    changed = {
        key: value for key, value in params.items() if key != "authentication_credential" and before[key] != value
    }
    if "authentication_credential" in params:
        credential = params["authentication_credential"]
        given = (credential.username, credential.password) if credential else ("", "")
        if given != (before["auth_username"], before["auth_password"]):
            changed["authentication_credential"] = credential
    return changed


def _apply(state: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    state.update({key: value for key, value in params.items() if key != "authentication_credential"})
    if "authentication_credential" in params:
        credential = params["authentication_credential"]
        state["auth_username"] = credential.username if credential else ""
        state["auth_password"] = credential.password if credential else ""
    if state["dns_routing_enabled"] and params.get("dns_routing_enabled") and "smart_hosts" not in params:
        # Switching a connector to MX routing drops its smart hosts (the EAC's Delivery tab does the same).
        state["smart_hosts"] = []
    if state["dns_routing_enabled"] and not state["smart_hosts"]:
        if "smart_host_auth_mechanism" not in params:
            state["smart_host_auth_mechanism"] = SmartHostAuthMechanism.NONE
        if "authentication_credential" not in params:
            state["auth_username"] = state["auth_password"] = ""
    if not SmartHostAuthMechanism.needs_credential(state["smart_host_auth_mechanism"]):
        if "authentication_credential" not in params:
            state["auth_username"] = state["auth_password"] = ""
    return state


def _save(connector: SendConnector, state: dict[str, Any]) -> None:
    for name in SCALAR_FIELDS:
        setattr(connector, name, state[name])
    connector.auth_username = state["auth_username"]
    connector.set_password(state["auth_password"])
    try:
        connector.save()
    except IntegrityError:
        # A concurrent create with the same name won the race after validation.
        raise ValidationError(
            {"name": [f'A Send connector with the name "{connector.name}" already exists.']}
        ) from None
    connector.address_spaces.all().delete()
    AddressSpace.objects.bulk_create(
        AddressSpace(
            connector=connector,
            address_type=space.address_type,
            domain=space.domain,
            cost=space.cost,
            is_wildcard=space.is_wildcard,
            match_domain=space.match_domain,
        )
        for space in state["address_spaces"]
    )
    connector.smart_hosts.all().delete()
    SmartHost.objects.bulk_create(
        SmartHost(connector=connector, position=index, host=host.host, is_ip_address=host.is_ip_address)
        for index, host in enumerate(state["smart_hosts"])
    )
    connector.source_transport_servers.set(state["source_transport_servers"])


def new_state(usage: str | None = None, **given: Any) -> dict[str, Any]:
    """The state a new connector gets: Exchange's defaults, the usage type's defaults, then ``given``."""
    usage = usage or Usage.CUSTOM
    state = {  # scalar fields are concrete fields
        name: cast("Field[Any, Any]", SendConnector._meta.get_field(name)).get_default() for name in SCALAR_FIELDS
    }
    state.update(
        usage=usage,
        address_spaces=[],
        smart_hosts=[],
        auth_username="",
        auth_password="",
        max_message_size=None if usage == Usage.INTERNAL else DEFAULT_MAX_MESSAGE_SIZE,
    )
    if usage == Usage.PARTNER:
        state["domain_secure_enabled"] = True
    if "source_transport_servers" not in given:
        state["source_transport_servers"] = [local_server()]
    return _apply(state, given)


def new_send_connector(
    caller: Caller,
    *,
    name: str,
    address_spaces: Iterable[AddressSpaceValue | str],
    usage: str | None = None,
    **params: Any,
) -> Saved:
    """New-SendConnector: create a connector with Exchange's defaults for ``usage`` (Custom when omitted)."""
    if usage is not None and usage not in Usage.values:
        raise ValidationError(
            {"usage": [f'"{usage}" isn\'t a valid usage type. Use Custom, Internal, Internet or Partner.']}
        )
    given = _normalise({"name": name, "address_spaces": address_spaces, **params})
    with transaction.atomic():
        state = new_state(usage, **given)
        validate_connector(state)
        connector = SendConnector()
        _save(connector, state)
        audit_params = dict(given)
        if usage:
            audit_params["usage"] = usage
        audit.record(caller, "New-SendConnector", connector, audit_params)
    return Saved(connector, scoping_warnings(state))


def set_send_connector(caller: Caller, connector: SendConnector, **params: Any) -> Saved:
    """Set-SendConnector: change the given properties; usage can't change after creation.

    Only the values that differ from the connector's count, whoever calls: the audit line names them (as the
    EAC's dialog runs Set-SendConnector with what was changed), and when there are none nothing is saved or
    audited, as Exchange's "no settings have been modified" (``Saved.changed`` is False).
    """
    if "usage" in params:
        raise ValidationError({"usage": ["The usage type can only be set when the Send connector is created."]})
    given = _normalise(params)
    with transaction.atomic():
        connector = SendConnector.objects.select_for_update().get(pk=connector.pk)
        identity = connector.name
        before = _state_of(connector)
        changes = _changed(before, given)
        if not changes:
            return Saved(connector, [], changed=False)
        state = _apply(dict(before), given)
        validate_connector(state, existing=connector)
        _save(connector, state)
        audit.record(caller, "Set-SendConnector", connector, changes, identity=identity)
    return Saved(connector, scoping_warnings(state))


def remove_send_connector(caller: Caller, connector: SendConnector) -> None:
    with transaction.atomic():
        audit.record(caller, "Remove-SendConnector", connector, {}, identity=connector.name)
        connector.delete()
