"""Forms of the New Send connector wizard, one per page; the edit dialog's tabs reuse them.

Each form's ``clean_*`` methods normalise what the admin typed through the parsers in ``values`` and the rules
in ``validation``; ``connector_params()`` turns the cleaned data into keyword arguments for ``services``.

Lists (smart hosts, address spaces, source servers) are edited with real submit buttons (Add/Edit/Remove)
and travel between submits in hidden inputs, so the pages work with JavaScript off. ``edit_lists()`` applies
the button that was pressed and returns the form to show again, without saving or moving to another page.
"""

import re
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict

from . import selectors
from .models import MB, ProtocolLoggingLevel, SmartHostAuthMechanism, TlsAuthLevel, Usage
from .servers import resolve_transport_servers
from .services import Credential
from .validation import validate_name
from .values import (
    AddressSpaceValue,
    parse_address_space,
    parse_byte_quantity,
    parse_cost,
    parse_smart_host,
    validate_host_name,
    validate_smtp_domain,
)

USAGE_DESCRIPTIONS = {
    Usage.CUSTOM: "Send mail to non-Exchange servers or a custom destination",
    Usage.INTERNAL: "Send mail to other Exchange servers in your organization or forest, usually through smart hosts",
    Usage.INTERNET: "Send mail to the internet using MX records",
    Usage.PARTNER: (
        "Send mail to partner domains; only servers that authenticate with TLS certificates for domain-secured domains"
    ),
}

MX = "mx"
SMART_HOSTS = "smart_hosts"
ROUTING_CHOICES = [
    (MX, "MX record associated with recipient domain"),
    (SMART_HOSTS, "Route mail through smart hosts"),
]
# The EAC's wizard limits by type; the Delivery tab of an existing connector allows both.
REFUSED_ROUTING = {Usage.INTERNAL: MX, Usage.PARTNER: SMART_HOSTS}
REFUSED_ROUTING_MESSAGES = {
    MX: (
        "An Internal Send connector can't use MX records here. Route mail through smart hosts; you can switch to "
        "MX routing on the Delivery tab after the connector is created."
    ),
    SMART_HOSTS: (
        "A Partner Send connector can't route mail through smart hosts here. Use MX records; you can switch to "
        "smart hosts on the Delivery tab after the connector is created."
    ),
}


class ChoiceRadioSelect(forms.RadioSelect):
    """Radio buttons that can carry a one-line description each and grey out choices that aren't allowed."""

    def __init__(self, *args, descriptions=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.descriptions = descriptions or {}
        self.disabled_values = set()

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        option["description"] = self.descriptions.get(value, "")
        if option["description"] and "id" in option["attrs"]:
            option["attrs"]["aria-describedby"] = option["attrs"]["id"] + "_description"
        if value in self.disabled_values:
            option["attrs"]["disabled"] = True
        return option


class HiddenListField(forms.Field):
    """A list of texts carried in hidden inputs; the form's ``clean_<name>`` parses the entries."""

    widget = forms.MultipleHiddenInput

    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)

    def to_python(self, value):
        return [str(item).strip() for item in value or [] if str(item).strip()]


class ConnectorForm(forms.Form):
    """What every page of the wizard and tab of the edit dialog shares."""

    # Service ValidationError key → the field here that shows the message.
    service_fields: dict[str, str] = {}
    # Submit buttons that edit a list in place (their names aren't prefixed: one list per button name).
    list_buttons: tuple[str, ...] = ()
    # Extra keyword arguments the form takes; a re-shown copy gets the same ones.
    option_names: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        self.options: dict[str, Any] = {name: kwargs.pop(name, None) for name in self.option_names}
        super().__init__(*args, **kwargs)
        self.open_dialog = None  # the dialog to show open after an Add/Edit button

    @classmethod
    def initial_for(cls, connector):
        """The values of ``connector`` this form edits (the edit dialog's starting point)."""
        raise NotImplementedError

    def connector_params(self):
        """Keyword arguments for ``services.new_send_connector`` / ``set_send_connector``."""
        raise NotImplementedError

    def current_values(self):
        """What the form shows for each field, whether typed in (bound) or given as initial values."""
        return {name: self[name].value() for name in self.fields}

    def edit_lists(self):
        """Apply the pressed Add/Edit/Remove button, if any; return the form to show again, else None."""
        for button in self.list_buttons:
            if button in self.data:
                data = cast(QueryDict, self.data).copy()  # bound: a QueryDict
                errors, open_dialog = getattr(self, button)(data, self.data[button])
                return self.redisplay(data, errors, open_dialog)
        return None

    def redisplay(self, data=None, errors=None, open_dialog=None):
        """This form again, showing ``data`` unvalidated (no "required" noise) plus only ``errors``."""
        bound = type(self)(data=self.data if data is None else data, prefix=self.prefix, **self.options)
        shown = type(self)(initial=bound.current_values(), prefix=self.prefix, **self.options)
        for field, messages in (errors or {}).items():
            shown.errors[field] = shown.error_class(messages, field_id=shown[field].auto_id)
        shown.open_dialog = open_dialog
        return shown

    def listed(self, name):
        return list(self[name].value() or [])

    def _set_list(self, data, name, items):
        data.setlist(self.add_prefix(name), [str(item) for item in items])

    def _refuse_unsaved(self, field, what):
        """Text left in an Add dialog's box on Next/Save would be lost silently; say so instead."""
        if self.cleaned_data.get(field):
            self.add_error(field, f"Click Save to add this {what} to the list, or clear the box.")


def _index(value, items):
    """The list position a Remove/Edit button names; None when it doesn't name one (stale page, tampering)."""
    return int(value) if re.fullmatch(r"[0-9]{1,9}", str(value)) and int(value) < len(items) else None


def _parse_each(texts, parse):
    """Every entry of a list parsed, or all their problems at once."""
    values, problems = [], []
    for text in texts:
        try:
            values.append(parse(text))
        except ValidationError as error:
            problems.extend(error.messages)
    if problems:
        raise ValidationError(problems)
    return values


def place_service_errors(forms_on_page, error):
    """Show a service ValidationError next to the fields it concerns; return the messages no field shows."""
    leftovers = []
    for key, messages in (error.message_dict if hasattr(error, "error_dict") else {None: error.messages}).items():
        form = next((form for form in forms_on_page if key in form.service_fields), None)
        if form is None:
            leftovers.extend(messages)
        else:
            form.add_error(form.service_fields[key], messages)
    return leftovers


class NameTypeForm(ConnectorForm):
    """Wizard page 1: Name and Type."""

    name = forms.CharField(label="Name", required=False, widget=forms.TextInput(attrs={"aria-required": "true"}))
    usage = forms.ChoiceField(
        label="Type",
        choices=Usage.choices,
        initial=Usage.CUSTOM,
        widget=ChoiceRadioSelect(descriptions=USAGE_DESCRIPTIONS),
        error_messages={
            "required": "Select a type.",
            "invalid_choice": "Select Custom, Internal, Internet or Partner.",
        },
    )
    service_fields = {"name": "name", "usage": "usage"}

    def clean_name(self):
        return validate_name(self.cleaned_data["name"])

    def connector_params(self):
        return {"name": self.cleaned_data["name"], "usage": self.cleaned_data["usage"]}


class NetworkSettingsForm(ConnectorForm):
    """Wizard page 2 and the Delivery tab: MX or smart hosts, and external DNS.

    ``usage`` (wizard only) applies the EAC's limits: Internal can't choose MX, Partner can't choose smart hosts.
    """

    routing = forms.ChoiceField(
        label="Specify how to send mail with this connector",
        choices=ROUTING_CHOICES,
        widget=ChoiceRadioSelect,
        error_messages={"required": "Select how to send mail with this connector."},
    )
    smart_hosts = HiddenListField(label="Smart hosts")
    new_smart_host = forms.CharField(
        label="IP address or fully qualified domain name (FQDN)",
        required=False,
        help_text="For example 192.168.3.2 or smtp.contoso.com. Enter the host only: the port is the connector's Port.",
    )
    use_external_dns_servers_enabled = forms.BooleanField(
        label="Use the external DNS lookup settings on servers with transport roles", required=False
    )
    option_names = ("usage",)
    list_buttons = ("save_smart_host", "remove_smart_host")
    service_fields = {
        "dns_routing_enabled": "routing",
        "smart_hosts": "smart_hosts",
        "use_external_dns_servers_enabled": "use_external_dns_servers_enabled",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        usage = self.options["usage"]
        self.refused_routing = REFUSED_ROUTING.get(usage)
        routing = self.fields["routing"]
        routing.initial = SMART_HOSTS if usage == Usage.INTERNAL else MX
        routing.widget.disabled_values = {self.refused_routing} if self.refused_routing else set()

    @classmethod
    def initial_for(cls, connector):
        return {
            "routing": MX if connector.dns_routing_enabled else SMART_HOSTS,
            "smart_hosts": [host.host for host in connector.smart_hosts.all()],
            "use_external_dns_servers_enabled": connector.use_external_dns_servers_enabled,
        }

    def clean_routing(self):
        routing = self.cleaned_data["routing"]
        if routing == self.refused_routing:
            raise ValidationError(REFUSED_ROUTING_MESSAGES[routing])
        return routing

    def clean_smart_hosts(self):
        return _parse_each(self.cleaned_data["smart_hosts"], parse_smart_host)

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("routing") == SMART_HOSTS and "smart_hosts" in cleaned and not cleaned["smart_hosts"]:
            self.add_error("smart_hosts", "Add at least one smart host.")
        self._refuse_unsaved("new_smart_host", "smart host")
        return cleaned

    @property
    def routes_through_smart_hosts(self):
        return self.cleaned_data["routing"] == SMART_HOSTS

    def connector_params(self):
        params = {
            "dns_routing_enabled": not self.routes_through_smart_hosts,
            "use_external_dns_servers_enabled": self.cleaned_data["use_external_dns_servers_enabled"],
        }
        if self.routes_through_smart_hosts:
            params["smart_hosts"] = self.cleaned_data["smart_hosts"]
        return params

    def save_smart_host(self, data, _value):
        hosts = self.listed("smart_hosts")
        try:
            host = parse_smart_host(data.get(self.add_prefix("new_smart_host"), ""))
        except ValidationError as error:
            return {"new_smart_host": error.messages}, None
        if str(host) in hosts:
            return {"new_smart_host": [f'The smart host "{host}" is already in the list.']}, None
        self._set_list(data, "smart_hosts", [*hosts, host])
        data[self.add_prefix("new_smart_host")] = ""
        return {}, None

    def remove_smart_host(self, data, value):
        hosts = self.listed("smart_hosts")
        index = _index(value, hosts)
        if index is not None:
            del hosts[index]
        self._set_list(data, "smart_hosts", hosts)
        return {}, None


class SmartHostAuthenticationForm(ConnectorForm):
    """Wizard page 3 (only with smart hosts) and the Delivery tab's smart host authentication.

    ``stored_credential``: the credential already given (the connector's, or typed earlier in this wizard run);
    the password is never shown again, and leaving the box blank keeps it.
    """

    smart_host_auth_mechanism = forms.ChoiceField(
        label="Smart host authentication",
        choices=SmartHostAuthMechanism.choices,
        initial=SmartHostAuthMechanism.NONE,
        widget=ChoiceRadioSelect,
        error_messages={"required": "Select how to authenticate to the smart hosts."},
    )
    username = forms.CharField(label="User name", required=False, max_length=256)
    password = forms.CharField(label="Password", required=False, strip=False, widget=forms.PasswordInput)
    option_names = ("stored_credential",)
    service_fields = {
        "smart_host_auth_mechanism": "smart_host_auth_mechanism",
        "authentication_credential": "username",
    }

    @classmethod
    def initial_for(cls, connector):
        return {"smart_host_auth_mechanism": connector.smart_host_auth_mechanism, "username": connector.auth_username}

    # The mechanisms that take the user name and password (the page greys the boxes out for the others).
    credential_mechanisms = " ".join(
        value for value in SmartHostAuthMechanism.values if SmartHostAuthMechanism.needs_credential(value)
    )

    @property
    def keeps_stored_password(self):
        return bool(self.options["stored_credential"] and self.options["stored_credential"].password)

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        mechanism = cleaned.get("smart_host_auth_mechanism")
        if SmartHostAuthMechanism.needs_credential(mechanism):
            label = SmartHostAuthMechanism(mechanism).label
            if not cleaned.get("username", "").strip():
                self.add_error("username", f'Enter the user name for "{label}".')
            if not cleaned.get("password") and not self.keeps_stored_password:
                self.add_error("password", f'Enter the password for "{label}".')
        return cleaned

    def connector_params(self):
        mechanism = self.cleaned_data["smart_host_auth_mechanism"]
        params = {"smart_host_auth_mechanism": mechanism}
        if SmartHostAuthMechanism.needs_credential(mechanism):
            password = self.cleaned_data["password"] or self.options["stored_credential"].password
            params["authentication_credential"] = Credential(self.cleaned_data["username"].strip(), password)
        return params


class TlsForm(ConnectorForm):
    """The Delivery tab's transport layer security: RequireTLS, TlsAuthLevel and TlsDomain (the EAC leaves them to
    the shell; here they are in the dialog, TlsDomain greyed out unless "Domain validation" is chosen)."""

    require_tls = forms.BooleanField(label="Require TLS", required=False)
    tls_auth_level = forms.ChoiceField(
        label="TLS authentication level",
        choices=[("", "None"), *TlsAuthLevel.choices],
        required=False,
        widget=ChoiceRadioSelect,
    )
    tls_domain = forms.CharField(label="TLS domain", required=False, max_length=255)
    service_fields = {"require_tls": "require_tls", "tls_auth_level": "tls_auth_level", "tls_domain": "tls_domain"}

    @classmethod
    def initial_for(cls, connector):
        return {
            "require_tls": connector.require_tls,
            "tls_auth_level": connector.tls_auth_level,
            "tls_domain": connector.tls_domain,
        }

    def connector_params(self):
        level = self.cleaned_data["tls_auth_level"] or None
        domain = self.cleaned_data["tls_domain"].strip() if level == TlsAuthLevel.DOMAIN_VALIDATION else ""
        return {"require_tls": self.cleaned_data["require_tls"], "tls_auth_level": level, "tls_domain": domain or None}


class AddressSpaceForm(ConnectorForm):
    """Wizard page 4 and the Scoping tab: the address space list ("Add domain" dialog) and scoping."""

    address_spaces = HiddenListField(label="Address space")
    space_index = forms.CharField(required=False, widget=forms.HiddenInput)  # the entry the dialog edits
    space_type = forms.CharField(label="Type", initial="SMTP", required=False, max_length=32)
    space_domain = forms.CharField(
        label="Fully Qualified Domain Name (FQDN)",
        required=False,
        max_length=1024,
        help_text="* for all domains, contoso.com for one domain, *.contoso.com for a domain and its subdomains.",
    )
    space_cost = forms.CharField(
        label="Cost", initial="1", required=False, widget=forms.NumberInput(attrs={"min": 1, "max": 100})
    )
    is_scoped_connector = forms.BooleanField(label="Scoped send connector", required=False)
    list_buttons = ("save_address_space", "edit_address_space", "remove_address_space")
    service_fields = {
        "address_spaces": "address_spaces",
        "is_scoped_connector": "is_scoped_connector",
        # Exchange refuses wildcard address spaces on domain-secured (Partner) connectors.
        "domain_secure_enabled": "address_spaces",
    }

    @classmethod
    def initial_for(cls, connector):
        return {
            "address_spaces": [str(space) for space in connector.address_spaces.all()],
            "is_scoped_connector": connector.is_scoped_connector,
        }

    def clean_address_spaces(self):
        spaces = _parse_each(self.cleaned_data["address_spaces"], parse_address_space)
        if not spaces:
            raise ValidationError("Add at least one address space.")
        return spaces

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        self._refuse_unsaved("space_domain", "domain")
        return cleaned

    def connector_params(self):
        return {
            "address_spaces": self.cleaned_data["address_spaces"],
            "is_scoped_connector": self.cleaned_data["is_scoped_connector"],
        }

    def rows(self):
        """The list as Type / Domain / Cost; entries that don't parse are shown as typed (Next reports them)."""
        rows = []
        for text in self.listed("address_spaces"):
            try:
                rows.append(parse_address_space(text))
            except ValidationError:
                rows.append(AddressSpaceValue("", text, ""))  # type: ignore[arg-type]  # no cost to show
        return rows

    @property
    def editing(self):
        return self["space_index"].value() not in (None, "")

    def _dialog_value(self, data):
        """The address space the "Add domain" dialog describes, or the errors of its fields."""

        def typed(field):
            return (data.get(self.add_prefix(field)) or "").strip()

        address_type, domain, errors = typed("space_type") or "SMTP", typed("space_domain"), {}
        try:
            cost = parse_cost(typed("space_cost") or "1")
        except ValidationError as error:
            errors["space_cost"], cost = error.messages, 1
        if address_type.upper() == "SMTP":
            try:
                domain = validate_smtp_domain(domain)
            except ValidationError as error:
                errors["space_domain"] = error.messages
            return (None, errors) if errors else (AddressSpaceValue("SMTP", domain, cost), {})
        if not domain:
            errors["space_domain"] = [f"The {address_type} address space can't be empty."]
        if errors:
            return None, errors
        try:
            # Domain and cost are checked above, so what the parser can still refuse is the type.
            return parse_address_space(f"{address_type}:{domain};{cost}"), {}
        except ValidationError as error:
            return None, {"space_type": error.messages}

    def save_address_space(self, data, _value):
        spaces = self.listed("address_spaces")
        space, errors = self._dialog_value(data)
        if errors:
            return errors, None
        index = _index(data.get(self.add_prefix("space_index"), ""), spaces)
        others = [text for position, text in enumerate(spaces) if position != index]
        if any(_same_space(text, space) for text in others):
            text = f"{space.address_type}:{space.domain}"
            return {"space_domain": [f'The address space "{text}" is already in the list.']}, None
        if index is None:
            spaces.append(str(space))
        else:
            spaces[index] = str(space)
        self._set_list(data, "address_spaces", spaces)
        self._reset_dialog(data)
        return {}, None

    def edit_address_space(self, data, value):
        spaces = self.rows()
        index = _index(value, spaces)
        if index is None:
            return {}, None
        space = spaces[index]
        data[self.add_prefix("space_index")] = str(index)
        data[self.add_prefix("space_type")] = space.address_type or "SMTP"
        data[self.add_prefix("space_domain")] = space.domain
        data[self.add_prefix("space_cost")] = str(space.cost or 1)
        return {}, "address_space"

    def remove_address_space(self, data, value):
        spaces = self.listed("address_spaces")
        index = _index(value, spaces)
        if index is not None:
            del spaces[index]
        self._set_list(data, "address_spaces", spaces)
        self._reset_dialog(data)  # an entry being edited may have moved
        return {}, None

    def _reset_dialog(self, data):
        for field in ("space_index", "space_type", "space_domain", "space_cost"):
            data[self.add_prefix(field)] = self.fields[field].initial or ""


def _same_space(text, space):
    try:
        other = parse_address_space(text)
    except ValidationError:
        return False
    return (other.address_type.lower(), other.domain.lower()) == (space.address_type.lower(), space.domain.lower())


class SourceServerForm(ConnectorForm):
    """Wizard page 5 and the Scoping tab: the source servers, picked in the "Select a Server" dialog."""

    source_transport_servers = HiddenListField(label="Source server")
    selected_servers = forms.MultipleChoiceField(
        label="Select a Server", required=False, widget=forms.CheckboxSelectMultiple
    )
    list_buttons = ("add_source_servers", "close_server_dialog", "remove_source_server")
    service_fields = {"source_transport_servers": "source_transport_servers"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.servers = list(selectors.transport_servers())
        cast(forms.ChoiceField, self.fields["selected_servers"]).choices = [
            (server.name, server.name) for server in self.servers
        ]

    @classmethod
    def initial_for(cls, connector):
        return {"source_transport_servers": [server.name for server in connector.source_transport_servers.all()]}

    def clean_source_transport_servers(self):
        names = self.cleaned_data["source_transport_servers"]
        if not names:
            raise ValidationError("Add at least one source server.")
        try:
            return resolve_transport_servers(names)
        except ValidationError as error:
            raise ValidationError(error.message_dict["source_transport_servers"]) from None

    def connector_params(self):
        return {"source_transport_servers": self.cleaned_data["source_transport_servers"]}

    def rows(self):
        """The source servers with their site and FQDN (a name nobody registered is shown alone)."""
        known = {server.name.lower(): server for server in self.servers}
        return [known.get(name.lower(), name) for name in self.listed("source_transport_servers")]

    def add_source_servers(self, data, _value):
        """The dialog's Add: the ticked servers join the list; the dialog stays open until OK."""
        added = self.listed("source_transport_servers")
        known = {server.name.lower(): server.name for server in self.servers}
        ticked = data.getlist(self.add_prefix("selected_servers"))
        chosen = [known[name.lower()] for name in ticked if name.lower() in known]
        if not chosen:
            return {"selected_servers": ["Select one or more servers, then click Add."]}, "select_server"
        added += [name for name in chosen if name.lower() not in {item.lower() for item in added}]
        self._set_list(data, "source_transport_servers", added)
        data.setlist(self.add_prefix("selected_servers"), [])
        return {}, "select_server"

    def close_server_dialog(self, data, value):
        """The dialog's OK: servers still ticked are added too, then the dialog closes."""
        if data.getlist(self.add_prefix("selected_servers")):
            errors, _ = self.add_source_servers(data, value)
            return errors, None
        return {}, None

    def remove_source_server(self, data, value):
        names = self.listed("source_transport_servers")
        index = _index(value, names)
        if index is not None:
            del names[index]
        self._set_list(data, "source_transport_servers", names)
        return {}, None


class GeneralForm(ConnectorForm):
    """The General tab: name, status, proxy, protocol logging, maximum message size and FQDN."""

    name = forms.CharField(label="Name", required=False)
    enabled = forms.BooleanField(label="Enable", required=False)
    frontend_proxy_enabled = forms.BooleanField(label="Proxy through client access server", required=False)
    protocol_logging_level = forms.ChoiceField(label="Protocol logging level", choices=ProtocolLoggingLevel.choices)
    max_message_size = forms.CharField(
        label="Maximum send message size (MB)",
        required=False,
        widget=forms.NumberInput(attrs={"min": 0, "step": "any"}),
    )
    no_size_limit = forms.BooleanField(label="No limit", required=False)
    fqdn = forms.CharField(
        label="FQDN",
        required=False,
        max_length=255,
        help_text="Specify the FQDN this connector will provide in response to HELO or EHLO",
    )
    option_names = ("connector",)
    service_fields = {
        "name": "name",
        "enabled": "enabled",
        "frontend_proxy_enabled": "frontend_proxy_enabled",
        "protocol_logging_level": "protocol_logging_level",
        "max_message_size": "max_message_size",
        "fqdn": "fqdn",
    }

    @classmethod
    def initial_for(cls, connector):
        size = connector.max_message_size
        return {
            "name": connector.name,
            "enabled": connector.enabled,
            "frontend_proxy_enabled": connector.frontend_proxy_enabled,
            "protocol_logging_level": connector.protocol_logging_level,
            "max_message_size": "" if size is None else f"{size / MB:.3f}".rstrip("0").rstrip("."),
            "no_size_limit": size is None,
            "fqdn": connector.fqdn,
        }

    def clean_name(self):
        return validate_name(self.cleaned_data["name"], existing=self.options["connector"])

    def clean_fqdn(self):
        fqdn = self.cleaned_data["fqdn"].strip()
        return validate_host_name(fqdn) if fqdn else ""

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("no_size_limit"):
            cleaned["max_message_size"] = None
        elif not re.fullmatch(r"\d+(\.\d+)?", cleaned.get("max_message_size", "").strip()):
            self.add_error(
                "max_message_size",
                "Enter the maximum send message size as a number of MB (for example 35), or select No limit.",
            )
        else:
            try:
                cleaned["max_message_size"] = parse_byte_quantity(cleaned["max_message_size"].strip() + " MB")
            except ValidationError as error:
                self.add_error("max_message_size", error)
        return cleaned

    def connector_params(self):
        return {field: self.cleaned_data[field] for field in self.service_fields}
