"""What the shell prints: the default table, Format-List, Format-Table, Select-Object and ConvertTo-Json."""

import json
from datetime import UTC, datetime, timedelta, timezone

from sendconn.connectors.models import SendConnector
from sendconn.connectors.servers import register_transport_server
from sendconn.connectors.services import Credential
from sendconn.shell.output import Record, convert_to_json, format_list, format_table, render, utc_text


def test_table_pads_columns_and_underlines_each_header():
    records = [
        Record({"Name": "A", "Port": 25, "Enabled": True, "Hosts": ["a", "b", "c", "d", "e"]}),
        Record({"Name": "Longer name", "Port": 587, "Enabled": False, "Hosts": []}),
    ]
    assert format_table(records) == [
        "",
        "Name        Port Enabled Hosts",
        "----        ---- ------- -----",
        "A             25 True    {a, b, c, d...}",
        "Longer name  587 False   {}",
        "",
    ]


def test_list_aligns_names_shows_lists_and_indents_continued_lines():
    record = Record(
        {"Name": "X", "AddressSpaces": ["SMTP:*;1", "SMTP:contoso.com;2"], "Comment": "one\ntwo", "Fqdn": None}
    )
    assert format_list([record, Record({"Name": "Y"})]) == [
        "",
        "Name          : X",
        "AddressSpaces : {SMTP:*;1, SMTP:contoso.com;2}",
        "Comment       : one",
        "                two",
        "Fqdn          :",
        "",
        "Name : Y",
        "",
    ]
    assert format_list([record], ["comm*", "NAME"]) == ["", "Comment : one", "          two", "Name    : X", ""]


def test_json_is_an_object_for_one_and_an_array_for_several():
    one = Record({"Enabled": True, "Port": 25, "Fqdn": None})
    assert json.loads("\n".join(convert_to_json([one]))) == {"Enabled": True, "Port": 25, "Fqdn": None}
    assert json.loads("\n".join(convert_to_json([one, one]))) == [dict(one), dict(one)]
    assert convert_to_json([]) == ["[]"]
    assert convert_to_json([one], compress=True) == ['{"Enabled":true,"Port":25,"Fqdn":null}']


def test_every_date_and_time_shows_in_utc_to_the_millisecond():
    paris = timezone(timedelta(hours=1))
    assert utc_text(datetime(2026, 11, 27, 10, 5, 0, 123456, tzinfo=paris)) == "2026-11-27T09:05:00.123Z"
    assert utc_text(None) is None


def test_objects_without_a_view_are_a_table_up_to_four_properties_else_a_list():
    assert render([Record({"A": 1, "B": 2})])[1] == "A B"
    assert render([Record({"A": 1, "B": 2, "C": 3, "D": 4, "E": 5})])[1] == "A : 1"


def test_get_send_connector_table(cmdlet, make_connector):
    make_connector("To internet")
    make_connector("Partners", address_spaces=["contoso.com;5", "fabrikam.com"], enabled=False)
    assert cmdlet("Get-SendConnector").out.splitlines() == [
        "",
        "Identity    AddressSpaces                             Enabled",
        "--------    -------------                             -------",
        "Partners    {SMTP:contoso.com;5, SMTP:fabrikam.com;1} False",
        "To internet {SMTP:*;1}                                True",
        "",
    ]


EXCHANGE_FORMAT_LIST = [
    "AddressSpaces",
    "AuthenticationCredential",
    "CloudServicesMailEnabled",
    "Comment",
    "ConnectedDomains",
    "ConnectionInactivityTimeOut",
    "ConnectorType",
    "DNSRoutingEnabled",
    "DomainSecureEnabled",
    "Enabled",
    "ErrorPolicies",
    "ForceHELO",
    "Fqdn",
    "FrontendProxyEnabled",
    "HomeMTA",
    "HomeMtaServerId",
    "Identity",
    "IgnoreSTARTTLS",
    "IsScopedConnector",
    "IsSmtpConnector",
    "MaxMessageSize",
    "Name",
    "Port",
    "ProtocolLoggingLevel",
    "RequireOorg",
    "RequireTLS",
    "SmartHostAuthMechanism",
    "SmartHosts",
    "SmartHostsString",
    "SmtpMaxMessagesPerConnection",
    "SourceIPAddress",
    "SourceRoutingGroup",
    "SourceTransportServers",
    "TlsAuthLevel",
    "TlsDomain",
    "UseExternalDNSServersEnabled",
    "TlsCertificateName",
    "AdminDisplayName",
    "ExchangeVersion",
    "DistinguishedName",
    "Guid",
    "ObjectCategory",
    "ObjectClass",
    "WhenChanged",
    "WhenCreated",
    "WhenChangedUTC",
    "WhenCreatedUTC",
    "OrganizationId",
    "Id",
    "OriginatingServer",
    "IsValid",
    "ObjectState",
]


def test_format_list_is_exchanges_property_set_in_exchanges_order(cmdlet, make_connector):
    created = make_connector("To internet", usage="Internet")
    SendConnector.objects.filter(pk=created.pk).update(
        created_at=datetime(2026, 11, 2, 20, 54, 13, tzinfo=UTC),
        changed_at=datetime(2026, 11, 3, 8, 5, 0, tzinfo=UTC),
    )
    lines = cmdlet('Get-SendConnector "To internet" | fl').out.splitlines()
    assert [line.split(" :")[0].rstrip() for line in lines if line] == EXCHANGE_FORMAT_LIST
    for expected in [
        "AddressSpaces                : {SMTP:*;1}",
        "AuthenticationCredential     :",
        "ConnectedDomains             : {}",
        "ConnectionInactivityTimeOut  : 00:10:00",
        "ConnectorType                : Default",
        "DNSRoutingEnabled            : True",
        "HomeMtaServerId              : EX01",
        "Identity                     : To internet",
        "MaxMessageSize               : 35 MB (36,700,160 bytes)",
        "SmartHosts                   : {}",
        "SourceIPAddress              : 0.0.0.0",
        "SourceTransportServers       : {EX01}",
        "TlsCertificateName           :",
        "DistinguishedName            : CN=To internet,CN=SMTP Send Connectors,CN=Exchange Routing Group "
        "(DWBGZMFD01QNBJR),CN=Routing Groups,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),CN=Administrative "
        "Groups,CN=First Organization,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=test",
        f"Guid                         : {created.guid}",
        "ObjectClass                  : {top, msExchConnector, mailGateway, msExchRoutingSMTPConnector}",
        "WhenChangedUTC               : 11/3/2026 8:05:00 AM",
        "WhenCreatedUTC               : 11/2/2026 8:54:13 PM",
        "Id                           : To internet",
        "OriginatingServer            : ex01.contoso.test",
        "IsValid                      : True",
    ]:
        assert expected in lines


def test_credential_shows_as_a_ps_credential(cmdlet, make_connector):
    make_connector(
        "Relay",
        dns_routing_enabled=False,
        smart_hosts=["smtp.contoso.test"],
        smart_host_auth_mechanism="BasicAuth",
        authentication_credential=Credential("svc", "S3cret!pw"),
    )
    listed = cmdlet("Get-SendConnector Relay | Format-List AuthenticationCredential,SmartHostsString").out
    assert listed.splitlines() == [
        "",
        "AuthenticationCredential : System.Management.Automation.PSCredential",
        "SmartHostsString         : smtp.contoso.test",
        "",
    ]
    assert "svc" not in cmdlet("Get-SendConnector Relay | ConvertTo-Json").out


def test_format_list_selected_properties(cmdlet, make_connector):
    make_connector("To internet", port=587)
    result = cmdlet('Get-SendConnector "To internet" | Format-List Name,Port')
    assert result.out.splitlines() == ["", "Name : To internet", "Port : 587", ""]


def test_convert_to_json_uses_exchange_names_and_formats(cmdlet, make_connector):
    make_connector("To internet", usage="Internet")
    data = json.loads(cmdlet('Get-SendConnector "To internet" | ConvertTo-Json').out)
    assert data["AddressSpaces"] == ["SMTP:*;1"]
    assert data["MaxMessageSize"] == "35 MB (36,700,160 bytes)"
    assert data["ConnectionInactivityTimeOut"] == "00:10:00"
    assert data["DNSRoutingEnabled"] is True and data["IsScopedConnector"] is False
    assert data["Port"] == 25 and data["SourceTransportServers"] == ["EX01"] and data["TlsDomain"] is None
    make_connector("Second", address_spaces=["contoso.com"])
    assert [item["Name"] for item in json.loads(cmdlet("Get-SendConnector | ConvertTo-Json").out)] == [
        "Second",
        "To internet",
    ]


def test_format_table_and_select_object(cmdlet, make_connector):
    make_connector("To internet")
    assert cmdlet("Get-SendConnector | ft Name,Port -AutoSize").out.splitlines() == [
        "",
        "Name        Port",
        "----        ----",
        "To internet   25",
        "",
    ]
    selected = json.loads(cmdlet("Get-SendConnector | Select-Object Name,*Enabled -First 1 | ConvertTo-Json").out)
    assert list(selected) == [
        "Name",
        "CloudServicesMailEnabled",
        "DNSRoutingEnabled",
        "DomainSecureEnabled",
        "Enabled",
        "FrontendProxyEnabled",
        "UseExternalDNSServersEnabled",
    ]


def test_get_transport_service(cmdlet):
    register_transport_server("EX02", "ex02.contoso.test", "Branch")
    assert cmdlet("Get-TransportService").out.splitlines() == [
        "",
        "Name Site                    Fqdn",
        "---- ----                    ----",
        "EX01 Default-First-Site-Name ex01.contoso.test",
        "EX02 Branch                  ex02.contoso.test",
        "",
    ]
    listed = cmdlet("Get-TransportService ex02.contoso.test | Format-List").out.splitlines()
    assert listed[1:5] == [
        "Name                            : EX02",
        "Site                            : Branch",
        "Fqdn                            : ex02.contoso.test",
        "Identity                        : EX02",
    ]
    assert "couldn't be found" in cmdlet("Get-TransportService EX09").err


def test_credential_output_never_shows_the_password(cmdlet):
    result = cmdlet("Get-Credential svc", stdin="S3cret!pw\n")
    assert result.status == 0
    assert "S3cret" not in result.out + result.err
