"""Admin audit log: every change through any door is recorded with the equivalent cmdlet line.

Entries about other objects than connectors (queues, role groups, users, servers, sign-in lockouts) have no
connector GUID; ``record_command`` writes them. ``record_line`` is the one place that creates an entry.
"""

from .models import AdminAuditLogEntry
from .properties import ERROR_POLICY_FLAGS, EXCHANGE_NAMES, error_policies_text, exchange_value


def quote(text):
    """PowerShell single-quoted string, or bare when it is a plain token."""
    text = str(text)
    if text and all(ch.isalnum() or ch in "-_.@*" for ch in text):
        return text
    return "'" + text.replace("'", "''") + "'"


def render_value(field, value):
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if value is None or value == "":
        return "$null"
    if field == "authentication_credential":
        return f"(Get-Credential {quote(value.username)})"
    shown = exchange_value(field, value)
    if isinstance(shown, list):
        return ",".join(quote(item) for item in shown) if shown else "$null"
    return quote(shown)


def render_command(cmdlet, params, identity=None):
    """``Set-SendConnector -Identity 'To internet' -Enabled $false`` from Python-named parameters."""
    parts = [cmdlet]
    if identity is not None:
        parts.append(f"-Identity {quote(identity)}")
    params = dict(params)
    usage = params.pop("usage", None)
    flags = {field: params.pop(field) for field in list(params) if field in ERROR_POLICY_FLAGS}
    for field in EXCHANGE_NAMES:
        if field in params:
            parts.append(f"-{EXCHANGE_NAMES[field]} {render_value(field, params[field])}")
        if field == "address_spaces" and usage:
            parts.append(f"-{usage}")
    if flags:
        parts.append(f"-ErrorPolicies {error_policies_text(flags).replace(' ', '')}")
    return " ".join(parts)


def record(caller, cmdlet, connector, params, identity=None):
    return record_line(caller, cmdlet, connector.name, render_command(cmdlet, params, identity), connector.guid)


def record_line(caller, cmdlet, object_name, command_line, connector_guid=None):
    """An entry for any object (a connector's has its GUID), with its text as given: the equivalent cmdlet line,
    a command without -Identity (New-ADUser -Name), or an event (a sign-in lockout)."""
    return AdminAuditLogEntry.objects.create(
        connector_guid=connector_guid,
        object_name=str(object_name)[:64],
        cmdlet=cmdlet,
        command_line=command_line,
        caller=caller.username[:150],  # a lockout's caller is the name typed at sign-in
        source=caller.source,
    )


def record_command(caller, cmdlet, identity=None, parameters=None, *, object_name=None, connector=None):
    """``Add-RoleGroupMember -Identity 'Organization Management' -Member david``: ``parameters`` maps Exchange
    parameter names to values (booleans as ``$true``/``$false``). Without ``identity`` the entry is about
    ``object_name`` (``New-ADUser -Name david``); ``connector`` links the entry to one."""
    line = [cmdlet] if identity is None else [cmdlet, f"-Identity {quote(identity)}"]
    for name, value in (parameters or {}).items():
        shown = ("$true" if value else "$false") if isinstance(value, bool) else quote(value)
        line.append(f"-{name} {shown}")
    name = identity if identity is not None else object_name
    return record_line(caller, cmdlet, name, " ".join(line), connector.guid if connector else None)
