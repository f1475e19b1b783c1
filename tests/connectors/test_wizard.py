"""The New Send connector wizard driven through the Django test client, page by page, without JavaScript."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from sendconn.connectors import forms as connector_forms
from sendconn.connectors.models import AdminAuditLogEntry, SendConnector, TransportServer
from sendconn.connectors.servers import register_transport_server
from sendconn.connectors.services import Caller, new_send_connector

from .pages import WIZARD_URL, WizardRun

pytestmark = pytest.mark.django_db


def add_domain(run, domain, cost="1"):
    run.click("save_address_space", space_domain=domain, space_cost=cost)
    assert not run.errors, run.errors


def add_source_server(run, name="EX01"):
    run.click("add_source_servers", selected_servers=[name])
    run.click("close_server_dialog")
    assert not run.errors, run.errors


def fill_mx_connector(run, name="To internet", usage="Internet", domain="*"):
    """Go through every page of an MX connector up to the last one, Finish not yet clicked."""
    run.next(name=name, usage=usage)
    run.next()
    add_domain(run, domain)
    run.next()
    add_source_server(run)


def finish_mx_connector(run, name="To internet", usage="Internet"):
    fill_mx_connector(run, name, usage)
    return run.next()


def test_seed_internet_connector_gets_exchange_defaults(admin_client):
    run = WizardRun(admin_client)
    run.next(name="To internet", usage="Internet")
    assert run.step == "network"
    assert run.form["routing"].value() == "mx"  # "verify that MX record associated with recipient domain is selected"
    run.next()
    assert run.step == "address_space"  # no smart host authentication page with MX routing
    add_domain(run, "*")
    run.next()
    assert run.step == "source_server"
    add_source_server(run)
    response = run.next()

    connector = SendConnector.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/connectors/?selected={connector.guid}"
    assert connector.name == "To internet" and connector.usage == "Internet"
    assert connector.dns_routing_enabled is True
    assert [str(space) for space in connector.address_spaces.all()] == ["SMTP:*;1"]
    assert [server.name for server in connector.source_transport_servers.all()] == ["EX01"]
    assert connector.is_scoped_connector is False
    assert connector.max_message_size == 35 * 1024 * 1024
    entry = AdminAuditLogEntry.objects.get()
    assert (entry.cmdlet, entry.caller, entry.source) == ("New-SendConnector", "orgadmin", "Web")


def test_finish_leaves_a_success_message_for_the_list(admin_client):
    response = finish_mx_connector(WizardRun(admin_client))
    assert [str(message) for message in get_messages(response.wsgi_request)] == [
        'The Send connector "To internet" was created.'
    ]


def test_smart_host_connector_with_basic_authentication(admin_client):
    run = WizardRun(admin_client)
    run.next(name="Smart host to Internet", usage="Custom")
    run.click("save_smart_host", routing="smart_hosts", new_smart_host="smtp.contoso.com")
    run.next()
    assert run.step == "authentication"
    run.next(smart_host_auth_mechanism="BasicAuth", username="relay", password="S3cret!pw")
    # The password waits in the session encrypted, like the connector stores it.
    session = admin_client.session
    assert "S3cret" not in str(dict(session.items()))
    assert run.step == "address_space"
    add_domain(run, "*")
    run.next()
    add_source_server(run)
    assert run.next().status_code == 302

    connector = SendConnector.objects.get()
    assert connector.dns_routing_enabled is False
    assert [host.host for host in connector.smart_hosts.all()] == ["smtp.contoso.com"]
    assert connector.smart_host_auth_mechanism == "BasicAuth"
    assert connector.auth_username == "relay" and connector.get_password() == "S3cret!pw"
    assert "S3cret" not in AdminAuditLogEntry.objects.get().command_line


def test_back_keeps_what_was_typed(admin_client):
    run = WizardRun(admin_client)
    run.next(name="Relay", usage="Custom")
    run.click("save_smart_host", routing="smart_hosts", new_smart_host="192.168.3.2")
    run.back(use_external_dns_servers_enabled="on")
    assert run.step == "name"
    assert run.form["name"].value() == "Relay" and run.form["usage"].value() == "Custom"
    run.next()
    assert run.step == "network"
    assert run.form["routing"].value() == "smart_hosts"
    assert run.form["smart_hosts"].value() == ["192.168.3.2"]
    assert run.form["use_external_dns_servers_enabled"].value() is True
    assert not run.errors


def test_back_from_a_later_page_keeps_the_password_without_showing_it(admin_client):
    run = WizardRun(admin_client)
    run.next(name="Relay", usage="Custom")
    run.click("save_smart_host", routing="smart_hosts", new_smart_host="relay.contoso.com")
    run.next()
    run.next(smart_host_auth_mechanism="BasicAuthRequireTLS", username="relay", password="pw-typed-once")
    run.back()
    assert run.step == "authentication"
    assert "pw-typed-once" not in run.response.content.decode()
    assert "Leave the password blank to keep the one already entered." in run.response.content.decode()
    run.next()  # password box left blank
    assert run.step == "address_space", run.errors
    add_domain(run, "*")
    run.next()
    add_source_server(run)
    run.next()
    assert SendConnector.objects.get().get_password() == "pw-typed-once"


def test_unfinished_page_shows_no_errors_until_next(admin_client):
    run = WizardRun(admin_client)
    run.next(name="To internet", usage="Internet")
    run.next()
    assert run.step == "address_space" and not run.errors
    run.back()  # stores the empty list of this page, unchecked
    run.next()
    assert run.step == "address_space" and not run.errors


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"name": ""}, "name", "The Name parameter can't be empty."),
        ({"name": "x" * 65}, "name", "The name can't be longer than 64 characters."),
        ({"name": "Ok", "usage": "Edge"}, "usage", "Select Custom, Internal, Internet or Partner."),
    ],
)
def test_name_page_validates_on_next(admin_client, fields, field, message):
    run = WizardRun(admin_client)
    run.next(**fields)
    assert run.step == "name"
    assert run.errors[field] == [message]


def test_duplicate_name_is_refused_on_next_case_insensitively(admin_client, make_connector):
    make_connector("To internet")
    run = WizardRun(admin_client)
    run.next(name="TO INTERNET", usage="Internet")
    assert run.step == "name"
    assert run.errors["name"] == ['A Send connector with the name "TO INTERNET" already exists. Specify a unique name.']
    assert 'id="id_name-name_error"' in run.response.content.decode()  # next to the field


def test_each_list_page_needs_an_entry(admin_client):
    run = WizardRun(admin_client)
    run.next(name="Relay", usage="Custom")
    run.next(routing="smart_hosts")
    assert run.step == "network" and run.errors == {"smart_hosts": ["Add at least one smart host."]}
    run.click("save_smart_host", new_smart_host="10.0.0.25")
    run.next()
    run.next(smart_host_auth_mechanism="None")
    run.next()
    assert run.step == "address_space" and run.errors == {"address_spaces": ["Add at least one address space."]}
    add_domain(run, "contoso.com")
    run.next()
    run.next()
    assert run.step == "source_server"
    assert run.errors == {"source_transport_servers": ["Add at least one source server."]}
    assert not SendConnector.objects.exists()


def test_text_left_in_an_add_box_is_not_silently_lost(admin_client):
    run = WizardRun(admin_client)
    run.next(name="Relay", usage="Custom")
    run.click("save_smart_host", routing="smart_hosts", new_smart_host="10.0.0.25")
    run.next(new_smart_host="10.0.0.26")
    assert run.step == "network"
    assert run.errors["new_smart_host"] == ["Click Save to add this smart host to the list, or clear the box."]
    assert '<details class="dialog" open>' in run.response.content.decode()


def test_smart_host_list_add_and_remove_without_javascript(admin_client):
    run = WizardRun(admin_client)
    run.next(name="Relay", usage="Custom")
    run.click("save_smart_host", routing="smart_hosts", new_smart_host="smtp.contoso.com")
    run.click("save_smart_host", new_smart_host="[192.168.3.2]")
    assert run.step == "network"
    assert run.form["smart_hosts"].value() == ["smtp.contoso.com", "192.168.3.2"]
    assert run.form["new_smart_host"].value() == ""  # the dialog is cleared for the next entry
    run.click("save_smart_host", new_smart_host="smtp contoso.com")
    assert run.errors == {
        "new_smart_host": [
            '"smtp contoso.com" isn\'t a valid smart host: it contains spaces. Enter one IP address or FQDN per entry.'
        ]
    }
    assert run.form["smart_hosts"].value() == ["smtp.contoso.com", "192.168.3.2"]
    assert run.form["new_smart_host"].value() == "smtp contoso.com"  # kept so it can be corrected
    run.click("remove_smart_host", "0", new_smart_host="")
    assert run.form["smart_hosts"].value() == ["192.168.3.2"]
    assert run.form["routing"].value() == "smart_hosts"  # the rest of the page is kept


def test_address_space_add_edit_remove_without_javascript(admin_client):
    run = WizardRun(admin_client)
    run.next(name="Partners", usage="Custom")
    run.next()
    add_domain(run, "contoso.com")
    add_domain(run, "*.Fabrikam.com", cost="5")
    assert [str(space) for space in run.form.rows()] == ["SMTP:contoso.com;1", "SMTP:*.fabrikam.com;5"]
    run.click("edit_address_space", "1")
    assert run.form.editing and run.form["space_domain"].value() == "*.fabrikam.com"
    assert "Edit domain" in run.response.content.decode()
    run.click("save_address_space", space_cost="3")
    assert [str(space) for space in run.form.rows()] == ["SMTP:contoso.com;1", "SMTP:*.fabrikam.com;3"]
    run.click("remove_address_space", "0")
    assert [str(space) for space in run.form.rows()] == ["SMTP:*.fabrikam.com;3"]
    run.click("save_address_space", space_domain="*.FABRIKAM.com")
    assert run.errors == {"space_domain": ['The address space "SMTP:*.fabrikam.com" is already in the list.']}


@pytest.mark.parametrize(
    "domain, cost, field, message",
    [
        ("*contoso.com", "1", "space_domain", "isn't a valid SMTP address space"),
        ("contoso..com", "1", "space_domain", 'contains an empty label ("..")'),
        ("a" * 64 + ".com", "1", "space_domain", "is longer than 63 characters"),
        ("contoso.com", "0", "space_cost", "The cost must be a whole number from 1 to 100."),
        ("contoso.com", "101", "space_cost", "The cost must be a whole number from 1 to 100."),
        ("contoso.com", "cheap", "space_cost", "The cost must be a whole number from 1 to 100."),
    ],
)
def test_add_domain_dialog_refuses_bad_entries(admin_client, domain, cost, field, message):
    run = WizardRun(admin_client)
    run.next(name="Partners", usage="Custom")
    run.next()
    run.click("save_address_space", space_domain=domain, space_cost=cost)
    assert message in run.errors[field][0]
    assert run.form.rows() == []
    assert '<details class="dialog" open>' in run.response.content.decode()


def test_select_a_server_lists_registered_servers_and_adds_the_ticked_ones(admin_client):
    register_transport_server("EX02", "ex02.contoso.test", "Branch-Site")
    run = WizardRun(admin_client)
    run.next(name="To internet", usage="Internet")
    run.next()
    add_domain(run, "*")
    run.next()
    page = run.response.content.decode()
    assert "Select a Server" in page and "ex02.contoso.test" in page and "Branch-Site" in page
    assert run.form.rows() == []  # nothing pre-filled: the admin adds, as in the EAC
    run.click("add_source_servers")
    assert run.errors == {"selected_servers": ["Select one or more servers, then click Add."]}
    run.click("add_source_servers", selected_servers=["EX01", "EX02"])
    assert run.form.open_dialog == "select_server"  # Add keeps the dialog open; OK closes it
    run.click("close_server_dialog")
    assert run.form.open_dialog is None
    run.click("remove_source_server", "0")
    assert run.form["source_transport_servers"].value() == ["EX02"]
    run.next()
    assert [server.name for server in SendConnector.objects.get().source_transport_servers.all()] == ["EX02"]


def test_the_local_server_is_registered_when_the_wizard_starts(admin_client):
    assert not TransportServer.objects.exists()
    WizardRun(admin_client)
    assert list(TransportServer.objects.values_list("name", flat=True)) == ["EX01"]


def test_internal_cannot_choose_mx_records(admin_client):
    run = WizardRun(admin_client)
    run.next(name="To branch", usage="Internal")
    assert run.form["routing"].value() == "smart_hosts"
    assert 'value="mx" id="id_network-routing_0" required disabled' in run.response.content.decode()
    run.next(routing="mx")
    assert run.step == "network"
    assert "An Internal Send connector can't use MX records here." in run.errors["routing"][0]


def test_partner_cannot_choose_smart_hosts(admin_client):
    run = WizardRun(admin_client)
    run.next(name="To partner", usage="Partner")
    assert run.form["routing"].value() == "mx"
    assert 'value="smart_hosts" id="id_network-routing_1" required disabled' in run.response.content.decode()
    run.click("save_smart_host", new_smart_host="10.0.0.1")
    run.next(routing="smart_hosts")
    assert run.step == "network"
    assert "A Partner Send connector can't route mail through smart hosts here." in run.errors["routing"][0]


def test_two_tabs_in_one_session_keep_their_own_data(admin_client):
    second_tab = Client()
    second_tab.cookies = admin_client.cookies  # the same browser session
    tab_a, tab_b = WizardRun(admin_client), WizardRun(second_tab)
    assert tab_a.instance != tab_b.instance
    tab_a.next(name="Tab A", usage="Internet")
    tab_b.next(name="Tab B", usage="Custom")
    tab_b.click("save_smart_host", routing="smart_hosts", new_smart_host="relay.contoso.com")
    tab_a.next()
    tab_b.next()
    tab_b.next(smart_host_auth_mechanism="None")
    add_domain(tab_a, "*")
    add_domain(tab_b, "contoso.com", cost="7")
    tab_a.next()
    tab_b.next()
    add_source_server(tab_a)
    add_source_server(tab_b)
    assert tab_b.next().status_code == 302
    assert tab_a.next().status_code == 302

    a, b = SendConnector.objects.get(name="Tab A"), SendConnector.objects.get(name="Tab B")
    assert (a.usage, a.dns_routing_enabled) == ("Internet", True)
    assert [str(space) for space in a.address_spaces.all()] == ["SMTP:*;1"]
    assert (b.usage, b.dns_routing_enabled) == ("Custom", False)
    assert [str(space) for space in b.address_spaces.all()] == ["SMTP:contoso.com;7"]
    assert [host.host for host in b.smart_hosts.all()] == ["relay.contoso.com"]


def test_finished_run_cannot_be_submitted_again(admin_client):
    run = WizardRun(admin_client)
    fill_mx_connector(run)
    last_page = run.response
    assert run.next().status_code == 302
    run.response = last_page  # Finish clicked twice, or the browser's Back button and Finish again
    response = run.next()
    assert response.status_code == 302 and response["Location"] == WIZARD_URL
    assert SendConnector.objects.count() == 1


def test_cancel_goes_back_to_the_list_and_forgets_the_run(admin_client):
    run = WizardRun(admin_client)
    run.next(name="To internet", usage="Internet")
    response = run.cancel()
    assert response.status_code == 302 and response["Location"] == "/connectors/"
    assert not [key for key in admin_client.session.keys() if key.startswith("wizard_")]
    assert not SendConnector.objects.exists()


def test_in_the_modal_window_leaving_the_wizard_leads_the_whole_window(admin_client):
    """In the wizard window (htmx requests), Next shows the next page, and Cancel or Finish open the list itself."""
    run = WizardRun(admin_client)

    def post(step, **data):
        page = {f"new_send_connector_{run.instance}-current_step": step, "wizard_instance": run.instance}
        return admin_client.post(WIZARD_URL, {**page, **data}, headers={"HX-Request": "true"})

    response = post("name", **{"name-name": "To internet", "name-usage": "Internet"})
    assert response.status_code == 200 and response.context["wizard"]["steps"].current == "network"
    response = post("network", wizard_cancel="1")
    assert response.status_code == 200 and response["HX-Redirect"] == "/connectors/"
    assert not SendConnector.objects.exists()


def test_abandoned_runs_do_not_pile_up_in_the_session(admin_client):
    for _ in range(15):
        WizardRun(admin_client)
    assert len([key for key in admin_client.session.keys() if key.startswith("wizard_")]) == 10


def test_tampered_page_data_is_a_bad_request(admin_client):
    run = WizardRun(admin_client)
    # The MX connector's wizard has no smart host authentication page to be on.
    page = {"wizard_instance": run.instance, f"new_send_connector_{run.instance}-current_step": "authentication"}
    response = admin_client.post(WIZARD_URL, page)
    assert response.status_code == 400


def test_name_taken_while_the_wizard_was_open_is_shown_on_the_name_page(admin_client):
    run = WizardRun(admin_client)
    fill_mx_connector(run)
    new_send_connector(Caller("someone", "Shell"), name="to INTERNET", address_spaces=["*"])
    response = run.next()
    assert response.status_code == 200
    assert run.step == "name" and "already exists" in run.errors["name"][0]
    run.next(name="To internet 2")
    run.next()
    run.next()
    assert run.next().status_code == 302  # everything else was kept
    assert SendConnector.objects.filter(name="To internet 2").exists()


def test_service_refusal_at_finish_is_shown_not_a_500(admin_client, monkeypatch):
    """The name is free when the pages are checked, and taken by the time the connector is saved."""
    run = WizardRun(admin_client)
    fill_mx_connector(run)
    new_send_connector(Caller("someone", "Shell"), name="To internet", address_spaces=["*"])
    monkeypatch.setattr(connector_forms, "validate_name", lambda name, existing=None: name.strip())
    response = run.next()
    assert response.status_code == 200
    assert run.step == "name"
    assert run.errors["name"] == ['A Send connector with the name "To internet" already exists. Specify a unique name.']
    assert SendConnector.objects.count() == 1


def test_cross_field_rule_at_finish_is_shown_on_the_page_concerned(admin_client):
    run = WizardRun(admin_client)
    fill_mx_connector(run, "To partner", "Partner")
    assert run.next().status_code == 200
    assert run.step == "address_space"
    assert run.errors["address_spaces"] == [
        "DomainSecureEnabled can't be used with wildcard address spaces. Specify each partner domain."
    ]


def test_partner_connector_for_a_partner_domain_is_domain_secured(admin_client):
    run = WizardRun(admin_client)
    fill_mx_connector(run, "To partner", "Partner", domain="fabrikam.com")
    assert run.next().status_code == 302
    connector = SendConnector.objects.get()
    assert (connector.usage, connector.dns_routing_enabled, connector.domain_secure_enabled) == ("Partner", True, True)


def test_non_smtp_address_space_with_mx_routing_is_refused_at_finish(admin_client):
    run = WizardRun(admin_client)
    run.next(name="X400 route", usage="Custom")
    run.next()
    run.click("save_address_space", space_type="X400", space_domain="c=US;a=;p=Contoso", space_cost="2")
    assert [str(space) for space in run.form.rows()] == ["X400:c=US;a=;p=Contoso;2"]
    run.next()
    add_source_server(run)
    run.next()
    assert run.step == "address_space"
    assert "isn't an SMTP address space" in run.errors["address_spaces"][0]
    assert not SendConnector.objects.exists()


def test_name_with_markup_is_shown_escaped(admin_client):
    run = WizardRun(admin_client)
    run.next(name="<script>alert(1)</script>", usage="Internet")
    run.back()
    page = run.response.content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize("client_fixture", ["helpdesk_client", "server_client"])
def test_roles_without_add_permission_get_403(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    response = client.get(WIZARD_URL)
    assert response.status_code == 403
    assert "403.html" in [template.name for template in response.templates]
    assert client.post(WIZARD_URL, {"wizard_instance": "x" * 22}).status_code == 403
    assert not SendConnector.objects.exists()


def test_signed_out_user_is_sent_to_sign_in(client):
    response = client.get(WIZARD_URL)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_other_methods_are_not_allowed(admin_client):
    assert admin_client.put(WIZARD_URL).status_code == 405
