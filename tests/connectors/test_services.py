import pytest
from django.core.exceptions import ValidationError

from sendconn.connectors.models import AdminAuditLogEntry, SendConnector
from sendconn.connectors.services import (
    Caller,
    Credential,
    new_send_connector,
    remove_send_connector,
    set_send_connector,
)

pytestmark = pytest.mark.django_db
SHELL = Caller("admin", "Shell")


def test_seed_internet_connector_gets_exchange_defaults():
    connector = new_send_connector(SHELL, name="To internet", address_spaces=["*"], usage="Internet").connector
    assert connector.dns_routing_enabled is True
    assert [str(space) for space in connector.address_spaces.all()] == ["SMTP:*;1"]
    assert [server.name for server in connector.source_transport_servers.all()] == ["EX01"]
    assert connector.is_scoped_connector is False
    assert connector.max_message_size == 35 * 1024 * 1024
    assert (
        AdminAuditLogEntry.objects.get().command_line
        == "New-SendConnector -Name 'To internet' -AddressSpaces 'SMTP:*;1' -Internet"
    )


def test_internal_connector_has_unlimited_size():
    connector = new_send_connector(
        SHELL,
        name="Internal",
        address_spaces=["*"],
        usage="Internal",
        dns_routing_enabled=False,
        smart_hosts=["10.0.0.1"],
    ).connector
    assert connector.max_message_size is None


def test_invalid_change_saves_nothing():
    connector = new_send_connector(SHELL, name="To internet", address_spaces=["*"]).connector
    with pytest.raises(ValidationError) as error:
        set_send_connector(SHELL, connector, smart_hosts=["relay.contoso.com"], comment="half")
    assert "DNSRoutingEnabled" in str(error.value)
    connector.refresh_from_db()
    assert connector.comment == "" and not connector.smart_hosts.exists()
    assert AdminAuditLogEntry.objects.count() == 1


def test_duplicate_name_is_refused_case_insensitively():
    new_send_connector(SHELL, name="To internet", address_spaces=["*"])
    with pytest.raises(ValidationError, match="already exists"):
        new_send_connector(SHELL, name="TO INTERNET", address_spaces=["*"])
    assert SendConnector.objects.count() == 1


def test_password_is_encrypted_at_rest_and_never_in_the_audit_log():
    connector = new_send_connector(
        SHELL,
        name="Relay",
        address_spaces=["*"],
        dns_routing_enabled=False,
        smart_hosts=["relay.contoso.com"],
        smart_host_auth_mechanism="BasicAuth",
        authentication_credential=Credential("svc", "S3cret!pw"),
    ).connector
    assert b"S3cret" not in bytes(connector.auth_password_encrypted)
    assert connector.get_password() == "S3cret!pw"
    assert "S3cret" not in AdminAuditLogEntry.objects.get().command_line


def test_switching_to_mx_drops_smart_hosts_and_credentials():
    connector = new_send_connector(
        SHELL,
        name="Relay",
        address_spaces=["*"],
        dns_routing_enabled=False,
        smart_hosts=["relay.contoso.com"],
        smart_host_auth_mechanism="BasicAuth",
        authentication_credential=Credential("svc", "pw"),
    ).connector
    set_send_connector(SHELL, connector, dns_routing_enabled=True)
    connector.refresh_from_db()
    assert not connector.smart_hosts.exists()
    assert connector.smart_host_auth_mechanism == "None" and connector.auth_username == ""


def test_remove_is_audited():
    connector = new_send_connector(SHELL, name="Old", address_spaces=["*"]).connector
    remove_send_connector(SHELL, connector)
    assert not SendConnector.objects.exists()
    assert AdminAuditLogEntry.objects.first().command_line == "Remove-SendConnector -Identity Old"


@pytest.mark.parametrize("source", ["Web", "Shell"])
def test_a_set_that_changes_nothing_writes_and_audits_nothing_whoever_calls(source):
    connector = new_send_connector(SHELL, name="To internet", address_spaces=["*"], comment="note").connector

    saved = set_send_connector(Caller("admin", source), connector, enabled=True, comment="note", address_spaces=["*"])

    assert saved.changed is False and saved.warnings == []
    assert SendConnector.objects.get().changed_at == connector.changed_at
    assert list(AdminAuditLogEntry.objects.values_list("cmdlet", flat=True)) == ["New-SendConnector"]


@pytest.mark.parametrize("source", ["Web", "Shell"])
def test_the_audit_line_names_what_changed_whoever_calls(source):
    connector = new_send_connector(SHELL, name="To internet", address_spaces=["*"]).connector

    saved = set_send_connector(Caller("admin", source), connector, enabled=True, port=2525)

    assert saved.changed is True
    entry = AdminAuditLogEntry.objects.filter(cmdlet="Set-SendConnector").get()
    assert (entry.command_line, entry.source) == ("Set-SendConnector -Identity 'To internet' -Port 2525", source)
