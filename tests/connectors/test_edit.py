"""The edit dialog: General, Delivery and Scoping are tabs of one form whose one Save goes through the service."""

import uuid

import pytest
from django.urls import reverse

from sendconn.connectors.models import AdminAuditLogEntry, SendConnector
from sendconn.connectors.servers import register_transport_server
from sendconn.connectors.services import Credential

from .pages import submit

pytestmark = pytest.mark.django_db


def edit_url(connector, tab):
    return reverse("connectors:edit", args=[connector.guid, tab])


def list_url(connector):
    return f"/connectors/?selected={connector.guid}"


def post_tab(client, connector, tab, button=None, **changes):
    """Submit ``tab`` as shown, with ``changes`` as ``{form prefix: {field: value}}`` and an optional list button."""
    page = client.get(edit_url(connector, tab))
    data = {}
    for prefix, form in page.context["forms"].items():
        data.update(submit(form, **changes.get(prefix, {})))
    if button:
        data.update([button])
    return client.post(edit_url(connector, tab), data)


def shown(response):
    """The tab's POST data as ``response`` shows it (what Save sends when nothing else is changed)."""
    data = {}
    for form in response.context["forms"].values():
        data.update(submit(form))
    return data


def errors(response):
    return {
        (prefix, field): list(messages)
        for prefix, form in response.context["forms"].items()
        for field, messages in form.errors.items()
    }


def snapshot(connector):
    connector = SendConnector.objects.get(pk=connector.pk)
    return (
        connector.name,
        connector.enabled,
        connector.max_message_size,
        connector.fqdn,
        connector.dns_routing_enabled,
        [str(space) for space in connector.address_spaces.all()],
        [str(host) for host in connector.smart_hosts.all()],
        [str(server) for server in connector.source_transport_servers.all()],
        connector.smart_host_auth_mechanism,
        connector.auth_username,
        connector.get_password(),
        connector.is_scoped_connector,
    )


@pytest.fixture
def internet(make_connector):
    return make_connector("To internet", usage="Internet")


@pytest.fixture
def relay(make_connector):
    return make_connector(
        "Relay",
        usage="Custom",
        dns_routing_enabled=False,
        smart_hosts=["relay.contoso.com"],
        smart_host_auth_mechanism="BasicAuth",
        authentication_credential=Credential("svc", "stored-pw"),
    )


@pytest.mark.parametrize("tab", ["general", "delivery", "scoping"])
def test_each_tab_shows_the_connector(admin_client, relay, tab):
    response = admin_client.get(edit_url(relay, tab))
    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>Relay</h1>" in page
    for name, label in (("general", "General"), ("delivery", "Delivery"), ("scoping", "Scoping")):
        assert f'name="show_tab" value="{name}" role="tab"' in page and f">{label}</button>" in page
        # Every tab's panel is in the page; only the one asked for is shown.
        hidden = "" if name == tab else " hidden"
        assert f'<div role="tabpanel" id="panel-{name}" aria-labelledby="tab-{name}"{hidden}>' in page
    assert page.count('<button type="submit" class="primary">Save</button>') == 1  # one Save for the whole dialog
    assert "stored-pw" not in page


def test_switching_tabs_without_javascript_keeps_what_was_typed(admin_client, relay):
    """A tab is a submit button: the dialog comes back on that tab, with the input of every tab, nothing saved."""
    before = snapshot(relay)
    response = post_tab(admin_client, relay, "general", ("show_tab", "delivery"), general={"name": "Relay 2"})
    assert response.status_code == 200 and response.context["tab"] == "delivery" and not errors(response)
    assert snapshot(relay) == before
    response = admin_client.post(edit_url(relay, "delivery"), {**shown(response), "show_tab": "general"})
    assert response.context["tab"] == "general"
    assert 'name="general-name" value="Relay 2"' in response.content.decode()


def test_one_save_sends_every_tab_in_one_audited_change(admin_client, relay):
    response = post_tab(
        admin_client,
        relay,
        "general",
        general={"name": "Relay 2"},
        address_space={
            "is_scoped_connector": "on",
        },
    )
    assert response.status_code == 302
    connector = SendConnector.objects.get(pk=relay.pk)
    assert connector.name == "Relay 2" and connector.is_scoped_connector is True
    entry = AdminAuditLogEntry.objects.filter(cmdlet="Set-SendConnector").get()
    assert entry.command_line == "Set-SendConnector -Identity Relay -Name 'Relay 2' -IsScopedConnector $true"


def test_a_problem_on_another_tab_opens_that_tab(admin_client, relay):
    before = snapshot(relay)
    response = post_tab(
        admin_client, relay, "general", general={"fqdn": "mail.contoso.com"}, authentication={"username": ""}
    )
    assert response.status_code == 200 and response.context["tab"] == "delivery"
    assert errors(response) == {("authentication", "username"): ['Enter the user name for "Basic authentication".']}
    assert snapshot(relay) == before


def test_general_tab_shows_current_values(admin_client, internet):
    page = admin_client.get(edit_url(internet, "general")).content.decode()
    assert 'name="general-max_message_size" value="35"' in page
    assert "Specify the FQDN this connector will provide in response to HELO or EHLO" in page
    assert "Proxy through client access server" in page


def test_general_tab_saves_its_fields(admin_client, internet):
    response = post_tab(
        admin_client,
        internet,
        "general",
        general={
            "name": "To the internet",
            "enabled": False,
            "frontend_proxy_enabled": "on",
            "protocol_logging_level": "Verbose",
            "max_message_size": "10",
            "fqdn": "mail.contoso.com",
        },
    )
    assert response.status_code == 302 and response["Location"] == list_url(internet)
    connector = SendConnector.objects.get(pk=internet.pk)
    assert connector.name == "To the internet" and connector.enabled is False
    assert connector.frontend_proxy_enabled is True and connector.protocol_logging_level == "Verbose"
    assert connector.max_message_size == 10 * 1024 * 1024 and connector.fqdn == "mail.contoso.com"
    entry = AdminAuditLogEntry.objects.filter(cmdlet="Set-SendConnector").get()
    assert entry.command_line.startswith("Set-SendConnector -Identity 'To internet' -Name 'To the internet'")
    assert entry.caller == "orgadmin" and entry.source == "Web"
    assert "AddressSpaces" not in entry.command_line  # only what changed


def test_the_audit_log_names_only_what_the_admin_changed(admin_client, relay):
    assert post_tab(admin_client, relay, "general", general={"fqdn": "mail.contoso.com"}).status_code == 302
    changed_at = SendConnector.objects.get(pk=relay.pk).changed_at
    assert post_tab(admin_client, relay, "delivery").status_code == 302  # Save as shown, the password kept

    lines = list(
        AdminAuditLogEntry.objects.filter(cmdlet="Set-SendConnector")
        .order_by("pk")
        .values_list("command_line", flat=True)
    )
    assert lines == ["Set-SendConnector -Identity Relay -Fqdn mail.contoso.com"]  # a Save that changes nothing
    assert SendConnector.objects.get(pk=relay.pk).changed_at == changed_at  # writes nothing


def test_general_tab_no_limit_means_unlimited(admin_client, internet):
    post_tab(admin_client, internet, "general", general={"no_size_limit": "on"})
    assert SendConnector.objects.get(pk=internet.pk).max_message_size is None
    assert (
        'name="general-no_size_limit" id="id_general-no_size_limit" checked'
        in admin_client.get(edit_url(internet, "general")).content.decode()
    )


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"fqdn": "*contoso.com"}, "fqdn", "isn't a valid FQDN"),
        ({"max_message_size": "big"}, "max_message_size", "as a number of MB"),
        ({"name": ""}, "name", "The Name parameter can't be empty."),
    ],
)
def test_general_tab_invalid_input_saves_nothing(admin_client, internet, changes, field, message):
    before = snapshot(internet)
    response = post_tab(admin_client, internet, "general", general={"enabled": False, **changes})
    assert response.status_code == 200
    assert message in errors(response)[("general", field)][0]
    assert snapshot(internet) == before


def test_general_tab_refuses_another_connectors_name(admin_client, internet, relay):
    response = post_tab(admin_client, internet, "general", general={"name": "RELAY"})
    assert "already exists" in errors(response)[("general", "name")][0]
    assert SendConnector.objects.get(pk=internet.pk).name == "To internet"


def test_delivery_tab_switches_to_smart_hosts_with_basic_authentication(admin_client, internet):
    added = post_tab(
        admin_client,
        internet,
        "delivery",
        ("save_smart_host", "1"),
        network={
            "routing": "smart_hosts",
            "new_smart_host": "smtp.contoso.com",
        },
    )
    assert added.status_code == 200 and not errors(added)
    assert SendConnector.objects.get(pk=internet.pk).dns_routing_enabled is True  # a list button saves nothing
    data = shown(added)
    data.update(
        {
            "authentication-smart_host_auth_mechanism": "BasicAuth",
            "authentication-username": "relay",
            "authentication-password": "N3w-pw",
        }
    )
    response = admin_client.post(edit_url(internet, "delivery"), data)
    assert response.status_code == 302
    connector = SendConnector.objects.get(pk=internet.pk)
    assert connector.dns_routing_enabled is False
    assert [host.host for host in connector.smart_hosts.all()] == ["smtp.contoso.com"]
    assert (connector.smart_host_auth_mechanism, connector.auth_username, connector.get_password()) == (
        "BasicAuth",
        "relay",
        "N3w-pw",
    )


def test_delivery_tab_sets_tls_and_ignores_a_tls_domain_that_does_not_apply(admin_client, internet):
    response = post_tab(
        admin_client,
        internet,
        "delivery",
        tls={
            "require_tls": "on",
            "tls_auth_level": "DomainValidation",
            "tls_domain": "Mail.Fabrikam.com",
        },
    )
    assert response.status_code == 302, errors(response)
    connector = SendConnector.objects.get(pk=internet.pk)
    assert (connector.require_tls, connector.tls_auth_level, connector.tls_domain) == (
        True,
        "DomainValidation",
        "mail.fabrikam.com",
    )

    response = post_tab(
        admin_client, internet, "delivery", tls={"tls_auth_level": "EncryptionOnly", "tls_domain": "typed.fabrikam.com"}
    )
    assert response.status_code == 302, errors(response)
    connector = SendConnector.objects.get(pk=internet.pk)
    assert (connector.tls_auth_level, connector.tls_domain) == ("EncryptionOnly", "")  # greyed out: not saved


def test_delivery_tab_tls_rules_are_shown_next_to_the_fields(admin_client, internet):
    response = post_tab(admin_client, internet, "delivery", tls={"require_tls": "", "tls_auth_level": "EncryptionOnly"})
    assert response.status_code == 200
    assert ("tls", "tls_auth_level") in errors(response)
    assert SendConnector.objects.get(pk=internet.pk).tls_auth_level == ""


@pytest.mark.parametrize("host", ["[999.1.1.1]", "999.1.1.1"])
def test_delivery_tab_refuses_a_smart_host_that_is_no_ip_address(admin_client, internet, host):
    before = snapshot(internet)
    response = post_tab(
        admin_client,
        internet,
        "delivery",
        ("save_smart_host", "1"),
        network={
            "routing": "smart_hosts",
            "new_smart_host": host,
        },
    )
    assert response.status_code == 200
    assert f'"{host}" isn\'t a valid smart host' in errors(response)[("network", "new_smart_host")][0]
    assert snapshot(internet) == before


def test_delivery_tab_blank_password_keeps_the_stored_one(admin_client, relay):
    response = post_tab(admin_client, relay, "delivery", authentication={"username": "svc2"})
    assert response.status_code == 302
    connector = SendConnector.objects.get(pk=relay.pk)
    assert (connector.auth_username, connector.get_password()) == ("svc2", "stored-pw")


def test_delivery_tab_back_to_mx_drops_smart_hosts_and_credentials(admin_client, relay):
    assert post_tab(admin_client, relay, "delivery", network={"routing": "mx"}).status_code == 302
    connector = SendConnector.objects.get(pk=relay.pk)
    assert connector.dns_routing_enabled is True and not connector.smart_hosts.exists()
    assert connector.smart_host_auth_mechanism == "None" and connector.auth_username == ""


def test_delivery_tab_basic_authentication_needs_a_password(admin_client, internet):
    before = snapshot(internet)
    response = post_tab(
        admin_client,
        internet,
        "delivery",
        ("save_smart_host", "1"),
        network={
            "routing": "smart_hosts",
            "new_smart_host": "10.0.0.1",
        },
    )
    data = shown(response)
    data.update({"authentication-smart_host_auth_mechanism": "BasicAuth", "authentication-username": "relay"})
    response = admin_client.post(edit_url(internet, "delivery"), data)
    assert response.status_code == 200
    assert errors(response) == {("authentication", "password"): ['Enter the password for "Basic authentication".']}
    assert snapshot(internet) == before


def test_delivery_tab_partner_rules_are_shown(admin_client, make_connector):
    partner = make_connector("To partner", address_spaces=["fabrikam.com"], usage="Partner")
    before = snapshot(partner)
    response = post_tab(
        admin_client,
        partner,
        "delivery",
        ("save_smart_host", "1"),
        network={
            "routing": "smart_hosts",
            "new_smart_host": "10.0.0.1",
        },
    )
    data = shown(response)
    response = admin_client.post(edit_url(partner, "delivery"), data)
    assert response.status_code == 200
    assert errors(response) == {("network", "routing"): ["DomainSecureEnabled requires DNSRoutingEnabled $true."]}
    assert response.context["tab"] == "delivery"
    assert snapshot(partner) == before


def test_scoping_tab_edits_address_spaces_and_source_servers(admin_client, internet):
    register_transport_server("EX02", "ex02.contoso.test", "Branch-Site")
    response = post_tab(
        admin_client,
        internet,
        "scoping",
        ("save_address_space", "1"),
        address_space={
            "space_domain": "contoso.com",
            "space_cost": "5",
        },
    )
    assert not errors(response)
    data = shown(response)
    data.update({"add_source_servers": "1", "source_server-selected_servers": ["EX02"]})
    response = admin_client.post(edit_url(internet, "scoping"), data)
    data = shown(response)
    data["address_space-is_scoped_connector"] = "on"
    response = admin_client.post(edit_url(internet, "scoping"), data)
    assert response.status_code == 302
    connector = SendConnector.objects.get(pk=internet.pk)
    assert [str(space) for space in connector.address_spaces.all()] == ["SMTP:*;1", "SMTP:contoso.com;5"]
    assert sorted(server.name for server in connector.source_transport_servers.all()) == ["EX01", "EX02"]
    assert connector.is_scoped_connector is True


def test_scoping_tab_needs_a_source_server_and_an_address_space(admin_client, internet):
    before = snapshot(internet)
    response = post_tab(admin_client, internet, "scoping", ("remove_source_server", "0"))
    assert SendConnector.objects.get(pk=internet.pk).source_transport_servers.exists()
    data = shown(response)
    data.pop("address_space-address_spaces")
    response = admin_client.post(edit_url(internet, "scoping"), data)
    assert errors(response) == {
        ("address_space", "address_spaces"): ["Add at least one address space."],
        ("source_server", "source_transport_servers"): ["Add at least one source server."],
    }
    assert snapshot(internet) == before


def test_scoping_tab_service_refusal_is_shown_next_to_the_list(admin_client, internet):
    response = post_tab(
        admin_client,
        internet,
        "scoping",
        ("save_address_space", "1"),
        address_space={
            "space_type": "X400",
            "space_domain": "c=US;a=;p=Contoso",
        },
    )
    data = shown(response)
    response = admin_client.post(edit_url(internet, "scoping"), data)
    assert response.status_code == 200
    assert "isn't an SMTP address space" in errors(response)[("address_space", "address_spaces")][0]
    assert [str(space) for space in SendConnector.objects.get(pk=internet.pk).address_spaces.all()] == ["SMTP:*;1"]


def test_name_with_markup_is_shown_escaped(admin_client, make_connector):
    connector = make_connector("<img src=x onerror=alert(1)>")
    page = admin_client.get(edit_url(connector, "general")).content.decode()
    assert "<img src=x" not in page
    assert "<h1>&lt;img src=x onerror=alert(1)&gt;</h1>" in page


def test_cancel_returns_to_the_list_with_the_connector_selected(admin_client, internet):
    page = admin_client.get(edit_url(internet, "general")).content.decode()
    assert f'<a class="button" href="{list_url(internet)}">Cancel</a>' in page


def test_unknown_tab_or_connector_is_404(admin_client, internet):
    assert admin_client.get(edit_url(internet, "advanced")).status_code == 404
    assert admin_client.get(reverse("connectors:edit", args=[uuid.uuid4(), "general"])).status_code == 404
    assert admin_client.get(f"/connectors/{internet.guid}/edit/General/").status_code == 404


@pytest.mark.parametrize("client_fixture", ["helpdesk_client", "server_client"])
def test_roles_that_cannot_change_connectors_get_403_and_change_nothing(request, internet, client_fixture):
    client = request.getfixturevalue(client_fixture)
    before = snapshot(internet)
    assert client.get(edit_url(internet, "general")).status_code == 403
    response = client.post(
        edit_url(internet, "general"),
        {"general-name": "Hacked", "general-max_message_size": "1", "general-protocol_logging_level": "None"},
    )
    assert response.status_code == 403
    assert "403.html" in [template.name for template in response.templates]
    assert snapshot(internet) == before


def test_other_methods_are_not_allowed(admin_client, internet):
    assert admin_client.put(edit_url(internet, "general")).status_code == 405
    assert admin_client.delete(edit_url(internet, "general")).status_code == 405


def test_signed_out_user_is_sent_to_sign_in(client, internet):
    response = client.get(edit_url(internet, "general"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")
