"""Each rule of the wizard's and edit dialog's forms: what they accept, normalise and refuse, in Exchange's words."""

import pytest
from django.core.exceptions import ValidationError
from django.http import QueryDict

from sendconn.connectors.forms import (
    AddressSpaceForm,
    GeneralForm,
    NameTypeForm,
    NetworkSettingsForm,
    SmartHostAuthenticationForm,
    SourceServerForm,
    place_service_errors,
)
from sendconn.connectors.models import SmartHostAuthMechanism
from sendconn.connectors.servers import local_server, register_transport_server
from sendconn.connectors.services import Credential

pytestmark = pytest.mark.django_db


def bound(form_class, data, prefix=None, pressed=None, **options):
    """``form_class`` bound to ``data`` (unprefixed field names); ``pressed``: the list button clicked, if any."""
    query = QueryDict(mutable=True)
    query.update(pressed or {})
    for name, value in data.items():
        key = f"{prefix}-{name}" if prefix else name
        query.setlist(key, value if isinstance(value, list) else [value])
    return form_class(query, prefix=prefix, **options)


def press(form_class, button, data, value="1"):
    """The page shown after clicking ``button`` (Save in a dialog, Edit, Remove, Add) on a page with ``data``."""
    return bound(form_class, data, prefix="page", pressed={button: value}).edit_lists()


def errors_of(form):
    form.is_valid()
    return {name: list(messages) for name, messages in form.errors.items()}


# Name and Type


def test_name_is_trimmed_and_type_kept():
    form = bound(NameTypeForm, {"name": "  To internet ", "usage": "Internet"})
    assert form.is_valid()
    assert form.connector_params() == {"name": "To internet", "usage": "Internet"}


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "The Name parameter can't be empty."),
        ("x" * 65, "The name can't be longer than 64 characters."),
        ("bad\tname", "The name can't contain control characters."),
    ],
)
def test_bad_names_are_refused(name, message):
    assert errors_of(bound(NameTypeForm, {"name": name, "usage": "Custom"}))["name"] == [message]


def test_name_must_be_unique_ignoring_case(make_connector):
    make_connector("To internet")
    form = bound(NameTypeForm, {"name": "to Internet", "usage": "Custom"})
    assert "already exists" in errors_of(form)["name"][0]


def test_type_is_required():
    assert errors_of(bound(NameTypeForm, {"name": "x"}))["usage"] == ["Select a type."]


# Network settings


def test_mx_routing_sends_dns_routing_and_no_smart_hosts():
    form = bound(
        NetworkSettingsForm, {"routing": "mx", "smart_hosts": ["10.0.0.1"], "use_external_dns_servers_enabled": "on"}
    )
    assert form.is_valid()
    assert form.connector_params() == {"dns_routing_enabled": True, "use_external_dns_servers_enabled": True}


def test_smart_host_routing_sends_the_parsed_hosts():
    form = bound(NetworkSettingsForm, {"routing": "smart_hosts", "smart_hosts": ["SMTP.Contoso.com", "[192.168.3.2]"]})
    assert form.is_valid()
    params = form.connector_params()
    assert params["dns_routing_enabled"] is False and params["use_external_dns_servers_enabled"] is False
    assert [(host.host, host.is_ip_address) for host in params["smart_hosts"]] == [
        ("smtp.contoso.com", False),
        ("192.168.3.2", True),
    ]


def test_smart_host_routing_needs_a_smart_host():
    form = bound(NetworkSettingsForm, {"routing": "smart_hosts"})
    assert errors_of(form) == {"smart_hosts": ["Add at least one smart host."]}


@pytest.mark.parametrize(
    "host, message",
    [
        ("smtp contoso.com", "it contains spaces"),
        ("smtp.contoso.com:587", "Enter the host without a port"),
        ("contoso..com", 'contains an empty label ("..")'),
        ("-bad-.contoso.com", "isn't a valid smart host"),
    ],
)
def test_bad_smart_hosts_are_refused_by_the_add_dialog(host, message):
    shown = press(NetworkSettingsForm, "save_smart_host", {"routing": "smart_hosts", "new_smart_host": host})
    assert message in shown.errors["new_smart_host"][0]
    assert shown.listed("smart_hosts") == []


def test_tampered_smart_host_entries_are_refused_on_next():
    errors = errors_of(bound(NetworkSettingsForm, {"routing": "smart_hosts", "smart_hosts": ["relay one"]}))
    assert "it contains spaces" in errors["smart_hosts"][0]


def test_duplicate_smart_host_is_refused_by_the_add_dialog():
    page = {"smart_hosts": ["192.168.3.2"], "new_smart_host": "[192.168.3.2]"}
    shown = press(NetworkSettingsForm, "save_smart_host", page)
    assert shown.errors["new_smart_host"] == ['The smart host "192.168.3.2" is already in the list.']


def test_internal_cannot_choose_mx_and_partner_cannot_choose_smart_hosts():
    internal = bound(NetworkSettingsForm, {"routing": "mx"}, usage="Internal")
    assert "can't use MX records here" in errors_of(internal)["routing"][0]
    partner = bound(NetworkSettingsForm, {"routing": "smart_hosts", "smart_hosts": ["10.0.0.1"]}, usage="Partner")
    assert "can't route mail through smart hosts here" in errors_of(partner)["routing"][0]
    # The Delivery tab of an existing connector (no usage given) allows both.
    assert bound(NetworkSettingsForm, {"routing": "mx"}).is_valid()


def test_routing_defaults_follow_the_type():
    assert NetworkSettingsForm(usage="Internal")["routing"].value() == "smart_hosts"
    assert NetworkSettingsForm(usage="Internet")["routing"].value() == "mx"


# Smart host authentication


@pytest.mark.parametrize("mechanism", ["BasicAuth", "BasicAuthRequireTLS"])
def test_basic_authentication_needs_user_name_and_password(mechanism):
    errors = errors_of(bound(SmartHostAuthenticationForm, {"smart_host_auth_mechanism": mechanism}))
    assert set(errors) == {"username", "password"}
    form = bound(SmartHostAuthenticationForm, {"smart_host_auth_mechanism": mechanism, "username": "relay"})
    errors = errors_of(form)
    assert errors == {"password": [f'Enter the password for "{SmartHostAuthMechanism(mechanism).label}".']}


def test_basic_authentication_builds_the_credential():
    form = bound(
        SmartHostAuthenticationForm,
        {"smart_host_auth_mechanism": "BasicAuth", "username": " relay ", "password": " p w "},
    )
    assert form.is_valid()
    assert form.connector_params() == {
        "smart_host_auth_mechanism": "BasicAuth",
        "authentication_credential": Credential("relay", " p w "),
    }


@pytest.mark.parametrize("mechanism", ["None", "ExchangeServer", "ExternalAuthoritative"])
def test_other_mechanisms_need_no_credential(mechanism):
    form = bound(SmartHostAuthenticationForm, {"smart_host_auth_mechanism": mechanism, "username": "ignored"})
    assert form.is_valid()
    assert form.connector_params() == {"smart_host_auth_mechanism": mechanism}


def test_blank_password_keeps_the_stored_one():
    form = bound(
        SmartHostAuthenticationForm,
        {"smart_host_auth_mechanism": "BasicAuth", "username": "relay2"},
        stored_credential=Credential("relay", "stored-pw"),
    )
    assert form.is_valid()
    assert form.connector_params()["authentication_credential"] == Credential("relay2", "stored-pw")


def test_password_is_never_rendered_back():
    form = bound(
        SmartHostAuthenticationForm,
        {"smart_host_auth_mechanism": "BasicAuth", "username": "relay", "password": "S3cret"},
    )
    assert "S3cret" not in str(form["password"])


# Address space


def add_domain(**fields):
    return press(AddressSpaceForm, "save_address_space", {"space_type": "SMTP", "space_cost": "1", **fields})


@pytest.mark.parametrize(
    "domain, cost, expected",
    [
        ("*", "1", "SMTP:*;1"),
        ("Contoso.COM", "10", "SMTP:contoso.com;10"),
        ("*.contoso.com", "100", "SMTP:*.contoso.com;100"),
    ],
)
def test_add_domain_accepts_exchange_address_spaces(domain, cost, expected):
    shown = add_domain(space_domain=domain, space_cost=cost)
    assert not shown.errors
    assert shown.listed("address_spaces") == [expected]
    assert shown["space_domain"].value() == "" and shown["space_cost"].value() == "1"  # ready for the next one


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"space_domain": "*contoso.com"}, "space_domain", "isn't a valid SMTP address space"),
        ({"space_domain": "contoso..com"}, "space_domain", 'contains an empty label ("..")'),
        ({"space_domain": "a" * 64 + ".contoso.com"}, "space_domain", "is longer than 63 characters"),
        ({"space_domain": ""}, "space_domain", "can't be empty"),
        ({"space_domain": "contoso.com", "space_cost": "0"}, "space_cost", 'The cost "0" isn\'t valid.'),
        ({"space_domain": "contoso.com", "space_cost": "101"}, "space_cost", 'The cost "101" isn\'t valid.'),
        ({"space_domain": "contoso.com", "space_cost": "one"}, "space_cost", 'The cost "one" isn\'t valid.'),
        ({"space_type": "X 400", "space_domain": "c=US"}, "space_type", "isn't a valid address space type"),
    ],
)
def test_add_domain_refuses_bad_entries(fields, field, message):
    shown = add_domain(**fields)
    assert message in shown.errors[field][0]
    assert shown.listed("address_spaces") == []


def test_non_smtp_address_space_keeps_its_text():
    shown = add_domain(space_type="X400", space_domain="c=US;a=;p=Contoso", space_cost="3")
    assert shown.listed("address_spaces") == ["X400:c=US;a=;p=Contoso;3"]


def test_address_space_list_needs_an_entry_and_parses_each():
    assert errors_of(bound(AddressSpaceForm, {})) == {"address_spaces": ["Add at least one address space."]}
    errors = errors_of(bound(AddressSpaceForm, {"address_spaces": ["*contoso.com"]}))
    assert "isn't a valid SMTP address space" in errors["address_spaces"][0]
    form = bound(AddressSpaceForm, {"address_spaces": ["*", "contoso.com;5"], "is_scoped_connector": "on"})
    assert form.is_valid()
    params = form.connector_params()
    assert [str(space) for space in params["address_spaces"]] == ["SMTP:*;1", "SMTP:contoso.com;5"]
    assert params["is_scoped_connector"] is True


def test_edit_then_save_replaces_the_entry():
    shown = press(AddressSpaceForm, "edit_address_space", {"address_spaces": ["SMTP:a.com;1", "SMTP:b.com;1"]}, "1")
    assert shown.open_dialog == "address_space" and shown.editing
    page = {name: value for name, value in shown.current_values().items() if value not in (None, False)}
    resaved = press(AddressSpaceForm, "save_address_space", {**page, "space_cost": "9"})
    assert resaved.listed("address_spaces") == ["SMTP:a.com;1", "SMTP:b.com;9"]


def test_stale_remove_button_changes_nothing():
    shown = press(AddressSpaceForm, "remove_address_space", {"address_spaces": ["SMTP:a.com;1"]}, "7")
    assert shown.listed("address_spaces") == ["SMTP:a.com;1"]


# Source servers


def test_source_servers_are_required_and_must_be_registered():
    local_server()
    assert errors_of(bound(SourceServerForm, {})) == {"source_transport_servers": ["Add at least one source server."]}
    assert errors_of(bound(SourceServerForm, {"source_transport_servers": ["EX09"]})) == {
        "source_transport_servers": ['The transport server "EX09" couldn\'t be found.']
    }
    form = bound(SourceServerForm, {"source_transport_servers": ["ex01"]})
    assert form.is_valid()
    assert [server.name for server in form.connector_params()["source_transport_servers"]] == ["EX01"]


def test_select_a_server_adds_only_registered_servers_once():
    local_server()
    register_transport_server("EX02", "ex02.contoso.test", "Default-First-Site-Name")
    shown = press(
        SourceServerForm,
        "add_source_servers",
        {"source_transport_servers": ["EX01"], "selected_servers": ["EX01", "EX02", "EVIL"]},
    )
    assert shown.listed("source_transport_servers") == ["EX01", "EX02"]
    assert shown.open_dialog == "select_server"


# General tab


def general(connector=None, **data):
    fields = {"name": "To internet", "protocol_logging_level": "None", "max_message_size": "35", **data}
    return bound(GeneralForm, fields, connector=connector)


def test_general_tab_parses_size_in_mb_and_no_limit():
    form = general(max_message_size="10.5", enabled="on", fqdn="Mail.Contoso.com.")
    assert form.is_valid(), form.errors
    params = form.connector_params()
    assert params["max_message_size"] == int(10.5 * 1024 * 1024)
    assert params["enabled"] is True and params["frontend_proxy_enabled"] is False
    assert params["fqdn"] == "mail.contoso.com"
    unlimited = general(max_message_size="", no_size_limit="on")
    assert unlimited.is_valid() and unlimited.connector_params()["max_message_size"] is None


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"max_message_size": ""}, "max_message_size", "or select No limit"),
        ({"max_message_size": "lots"}, "max_message_size", "as a number of MB"),
        ({"max_message_size": "-1"}, "max_message_size", "as a number of MB"),
        ({"max_message_size": "4096"}, "max_message_size", "is too large"),
        ({"fqdn": "mail..contoso.com"}, "fqdn", 'contains an empty label ("..")'),
        ({"protocol_logging_level": "Loud"}, "protocol_logging_level", "Select a valid choice."),
    ],
)
def test_general_tab_refuses_bad_values(data, field, message):
    assert message in errors_of(general(**data))[field][0]


def test_general_tab_name_may_keep_its_own_name_but_not_take_another(make_connector):
    mine = make_connector("Mine")
    make_connector("Other")
    assert general(connector=mine, name="MINE").is_valid()
    assert "already exists" in errors_of(general(connector=mine, name="other"))["name"][0]


def test_general_initial_values_show_the_size_in_mb(make_connector):
    connector = make_connector("Mine")
    assert GeneralForm.initial_for(connector)["max_message_size"] == "35"
    connector.max_message_size = None
    assert GeneralForm.initial_for(connector)["no_size_limit"] is True


# Service errors next to the fields


def test_service_errors_go_next_to_their_fields_and_the_rest_on_top():
    network = bound(NetworkSettingsForm, {"routing": "smart_hosts", "smart_hosts": ["10.0.0.1"]})
    auth = bound(
        SmartHostAuthenticationForm,
        {"smart_host_auth_mechanism": "BasicAuthRequireTLS", "username": "u", "password": "p"},
    )
    assert network.is_valid() and auth.is_valid()
    error = ValidationError(
        {
            "smart_hosts": ["The same smart host is listed more than once."],
            "authentication_credential": ["The AuthenticationCredential parameter is required."],
            "ignore_starttls": ["IgnoreSTARTTLS can't be $true with SmartHostAuthMechanism BasicAuthRequireTLS."],
        }
    )
    leftovers = place_service_errors([network, auth], error)
    assert network.errors["smart_hosts"] == ["The same smart host is listed more than once."]
    assert auth.errors["username"] == ["The AuthenticationCredential parameter is required."]
    assert leftovers == ["IgnoreSTARTTLS can't be $true with SmartHostAuthMechanism BasicAuthRequireTLS."]


@pytest.mark.parametrize(
    "host, message",
    [
        ("[999.1.1.1]", "[ ] can only enclose an IP address"),
        ("[mail.contoso.com]", "[ ] can only enclose an IP address"),
        ("999.1.1.1", "it isn't a valid IP address, and an FQDN can't end with a number"),
        ("10.0.0.256", "it isn't a valid IP address"),
    ],
)
def test_smart_hosts_that_are_not_ip_addresses_are_refused_by_wizard_and_edit_dialog(host, message):
    shown = press(NetworkSettingsForm, "save_smart_host", {"routing": "smart_hosts", "new_smart_host": host})
    assert message in shown.errors["new_smart_host"][0]
    assert shown.listed("smart_hosts") == []
    errors = errors_of(bound(NetworkSettingsForm, {"routing": "smart_hosts", "smart_hosts": [host]}))
    assert message in errors["smart_hosts"][0]
