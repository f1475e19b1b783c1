"""What the shell prints: the default table, Format-List, Format-Table, Select-Object and ConvertTo-Json."""
import json

from sendconn.connectors.properties import connector_properties
from sendconn.connectors.servers import register_transport_server
from sendconn.shell.output import Record, convert_to_json, format_list, format_table, render


def test_table_pads_columns_and_underlines_each_header():
    records = [Record({"Name": "A", "Port": 25, "Enabled": True, "Hosts": ["a", "b", "c", "d", "e"]}),
               Record({"Name": "Longer name", "Port": 587, "Enabled": False, "Hosts": []})]
    assert format_table(records) == [
        "",
        "Name        Port Enabled Hosts",
        "----        ---- ------- -----",
        "A             25 True    {a, b, c, d...}",
        "Longer name  587 False   {}",
        "",
    ]


def test_list_aligns_names_shows_lists_and_indents_continued_lines():
    record = Record({"Name": "X", "AddressSpaces": ["SMTP:*;1", "SMTP:contoso.com;2"], "Comment": "one\ntwo", "Fqdn": None})
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


def test_format_list_shows_every_property(cmdlet, make_connector):
    created = make_connector("To internet", usage="Internet")
    lines = cmdlet('Get-SendConnector "To internet" | fl').out.splitlines()
    names = [line.split(" :")[0].rstrip() for line in lines if line]
    assert names == list(connector_properties(created))
    assert "MaxMessageSize               : 35 MB (36,700,160 bytes)" in lines
    assert "ConnectionInactivityTimeOut  : 00:10:00" in lines
    assert "SourceTransportServers       : {EX01}" in lines
    assert "DNSRoutingEnabled            : True" in lines


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
    assert [item["Name"] for item in json.loads(cmdlet("Get-SendConnector | ConvertTo-Json").out)] == ["Second", "To internet"]


def test_format_table_and_select_object(cmdlet, make_connector):
    make_connector("To internet")
    assert cmdlet("Get-SendConnector | ft Name,Port -AutoSize").out.splitlines() == [
        "", "Name        Port", "----        ----", "To internet   25", "",
    ]
    selected = json.loads(cmdlet("Get-SendConnector | Select-Object Name,*Enabled -First 1 | ConvertTo-Json").out)
    assert list(selected) == ["Name", "Enabled", "DNSRoutingEnabled", "UseExternalDNSServersEnabled",
                              "DomainSecureEnabled", "FrontendProxyEnabled"]


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
    assert listed[1:5] == ["Name                            : EX02", "Site                            : Branch",
                           "Fqdn                            : ex02.contoso.test", "Identity                        : EX02"]
    assert "couldn't be found" in cmdlet("Get-TransportService EX09").err


def test_credential_output_never_shows_the_password(cmdlet):
    result = cmdlet("Get-Credential svc", stdin="S3cret!pw\n")
    assert result.status == 0
    assert "S3cret" not in result.out + result.err
