"""Test-SendConnectorRoute and Get-MessageTrackingLog through the shell's runner."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from sendconn.connectors.servers import register_transport_server
from sendconn.transport import tracking
from sendconn.transport.models import TrackingEvent, TrackingEventId, TrackingSource
from sendconn.transport.queueing import queue_message

MB = 1024 * 1024


@pytest.fixture
def connectors(make_connector):
    make_connector("Internet", ["*"])
    make_connector("Contoso and subdomains", ["*.contoso.com"])
    make_connector(
        "Marketing",
        ["marketing.contoso.com"],
        dns_routing_enabled=False,
        smart_hosts=["relay.contoso.com", "10.0.0.1"],
        max_message_size=1 * MB,
    )


def test_route_shows_connector_rule_candidates_and_next_hop(cmdlet, connectors):
    result = cmdlet("Test-SendConnectorRoute -Recipient julia@marketing.contoso.com")
    assert (result.status, result.err) == (0, "")
    assert result.out.splitlines() == [
        "",
        "Recipient     : julia@marketing.contoso.com",
        "Connector     : Marketing",
        "AddressSpace  : SMTP:marketing.contoso.com;1",
        "NextHopDomain : relay.contoso.com,[10.0.0.1]",
        "DeliveryType  : SmartHostConnectorDelivery",
        "Rule          : most specific address space",
        "Candidates    : {Contoso and subdomains: address space SMTP:*.contoso.com;1 is less specific than "
        "SMTP:marketing.contoso.com;1, Internet: address space SMTP:*;1 is less specific than "
        "SMTP:marketing.contoso.com;1}",
        "",
    ]


def test_route_with_a_message_size_skips_connectors_that_are_too_small(cmdlet, connectors):
    result = cmdlet("Test-SendConnectorRoute julia@marketing.contoso.com -MessageSize 10MB | ConvertTo-Json")
    route = json.loads(result.out)
    assert (route["Connector"], route["NextHopDomain"], route["DeliveryType"]) == (
        "Contoso and subdomains",
        "marketing.contoso.com",
        "DnsConnectorDelivery",
    )
    assert (
        "Marketing: message size 10 MB (10,485,760 bytes) exceeds MaxMessageSize 1 MB (1,048,576 bytes)"
        in route["Candidates"]
    )


def test_route_as_another_server_sees_its_sites_scoped_connectors(cmdlet, connectors, make_connector):
    register_transport_server("BR01", "br01.contoso.com", "Branch-Site")
    make_connector("Branch", ["fabrikam.com"], is_scoped_connector=True, source_transport_servers=["BR01"])
    local = json.loads(cmdlet("Test-SendConnectorRoute kim@fabrikam.com | ConvertTo-Json").out)
    branch = json.loads(cmdlet("Test-SendConnectorRoute kim@fabrikam.com -Server BR01 | ConvertTo-Json").out)
    assert (local["Connector"], branch["Connector"]) == ("Internet", "Branch")
    assert branch["Rule"] == "most specific address space"


def test_route_only_candidate(cmdlet, make_connector):
    make_connector("Internet", ["*"])
    result = cmdlet("Test-SendConnectorRoute kim@fabrikam.com | Format-List Connector,Rule,Candidates")
    assert result.out.splitlines() == [
        "",
        "Connector  : Internet",
        "Rule       : only candidate",
        "Candidates : {}",
        "",
    ]


def test_no_matching_connector_exits_1(cmdlet, make_connector):
    make_connector("Contoso", ["contoso.com"])
    result = cmdlet("Test-SendConnectorRoute -Recipient kim@fabrikam.com")
    assert (result.status, result.out) == (1, "")
    assert result.err == (
        "Test-SendConnectorRoute : No Send connector matches the recipient domain 'fabrikam.com'; the recipient "
        "would go to the Unreachable queue.\n"
    )


def test_message_too_big_for_every_connector_exits_1(cmdlet, make_connector):
    make_connector("Contoso", ["contoso.com"], max_message_size=1 * MB)
    result = cmdlet("Test-SendConnectorRoute julia@contoso.com -MessageSize 2MB")
    assert result.status == 1
    assert (
        "exceeds the MaxMessageSize of every Send connector that matches the recipient domain 'contoso.com'"
        in result.err
    )


@pytest.mark.parametrize(
    "line, message",
    [
        ("Test-SendConnectorRoute -Recipient julia", "'julia' isn't a valid SMTP address."),
        ("Test-SendConnectorRoute", "missing mandatory parameters: Recipient"),
        ("Test-SendConnectorRoute a@contoso.com -MessageSize lots", "isn't a valid size"),
        ("Test-SendConnectorRoute a@contoso.com -MessageSize unlimited", "can't be unlimited"),
        ("Test-SendConnectorRoute a@contoso.com -Server EX99", 'The transport server "EX99" couldn\'t be found.'),
    ],
)
def test_route_bad_input(cmdlet, make_connector, line, message):
    result = cmdlet(line)
    assert result.status == 1 and message in result.err and "Traceback" not in result.err


@pytest.fixture
def history(make_connector):
    make_connector("Internet", ["*"])
    first = queue_message(
        "julia@contoso.com",
        ["kim@fabrikam.com", "lee@tailspin.com"],
        b"Message-ID: <one@contoso.com>\r\nSubject: Budget\r\n\r\nbody\r\n",
        client_ip="127.0.0.1",
        client_hostname="pc1.contoso.com",
    )
    queue_message(
        "ann@contoso.com", ["kim@fabrikam.com"], b"Message-ID: <two@contoso.com>\r\nSubject: Lunch\r\n\r\nx\r\n"
    )
    tracking.record(
        [
            tracking.event(
                TrackingEventId.SEND,
                TrackingSource.SMTP,
                first,
                "kim@fabrikam.com",
                recipient_status="250 2.0.0 OK",
                connector_name="Internet",
                remote_host="mx.fabrikam.com",
                remote_ip="127.0.0.2",
            )
        ]
    )
    TrackingEvent.objects.update(timestamp=datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    TrackingEvent.objects.filter(event_id="SEND").update(timestamp=datetime(2026, 11, 27, 9, 5, tzinfo=UTC))
    return first


def test_tracking_log_default_table(cmdlet, history):
    result = cmdlet("Get-MessageTrackingLog -Sender julia@contoso.com")
    assert result.status == 0
    assert result.out.splitlines() == [
        "",
        "EventId Source Sender            Recipients         MessageSubject",
        "------- ------ ------            ----------         --------------",
        "RECEIVE SMTP   julia@contoso.com {kim@fabrikam.com} Budget",
        "RECEIVE SMTP   julia@contoso.com {lee@tailspin.com} Budget",
        "SEND    SMTP   julia@contoso.com {kim@fabrikam.com} Budget",
        "",
    ]


def test_tracking_log_send_event_in_full(cmdlet, history):
    result = cmdlet("Get-MessageTrackingLog -EventId SEND | Format-List")
    lines = result.out.splitlines()
    assert "Timestamp         : 2026-11-27T09:05:00.000Z" in lines
    assert "ServerHostname    : mx.fabrikam.com" in lines
    assert "ServerIp          : 127.0.0.2" in lines
    assert "ClientHostname    : EX01" in lines
    assert "ConnectorId       : Internet" in lines
    assert "RecipientStatus   : {250 2.0.0 OK}" in lines
    assert f"InternalMessageId : {history.pk}" in lines
    assert "MessageId         : <one@contoso.com>" in lines


def test_tracking_log_receive_shows_the_client(cmdlet, history):
    events = json.loads(
        cmdlet("Get-MessageTrackingLog -MessageId one@contoso.com -EventId receive | ConvertTo-Json").out
    )
    assert [(event["ClientIp"], event["ClientHostname"], event["ServerHostname"]) for event in events] == [
        ("127.0.0.1", "pc1.contoso.com", "EX01"),
        ("127.0.0.1", "pc1.contoso.com", "EX01"),
    ]


def test_tracking_log_filters(cmdlet, history):
    def count(line):
        result = cmdlet(line + " | ConvertTo-Json")
        assert result.status == 0, result.err
        data = json.loads(result.out)
        return len(data) if isinstance(data, list) else 1

    assert count("Get-MessageTrackingLog -Recipients kim@fabrikam.com,LEE@tailspin.com") == 4
    assert count("Get-MessageTrackingLog -Recipients kim@fabrikam.com -EventId RECEIVE") == 2
    assert count('Get-MessageTrackingLog -Start "11/27/2026 9:01 AM"') == 1
    assert count("Get-MessageTrackingLog -Start 2026-11-27T09:00:00 -End 2026-11-27T09:05:00") == 3
    assert count("Get-MessageTrackingLog -ResultSize 2") == 2
    assert count("Get-MessageTrackingLog -ResultSize Unlimited") == 4
    assert cmdlet("Get-MessageTrackingLog -Sender nobody@contoso.com | ConvertTo-Json").out.strip() == "[]"
    assert count("Get-MessageTrackingLog -MessageSubject budg") == 3
    assert count(f"Get-MessageTrackingLog -InternalMessageId {history.pk} -EventId RECEIVE") == 2
    assert count("Get-MessageTrackingLog -Server EX01 -Sender ann@contoso.com") == 1
    register_transport_server("EX02", "ex02.contoso.com", "Default-First-Site-Name")
    assert cmdlet("Get-MessageTrackingLog -Server EX02 | ConvertTo-Json").out.strip() == "[]"


@pytest.mark.parametrize(
    "line, message",
    [
        (
            "Get-MessageTrackingLog -EventId BOUNCE",
            "Specify one of the following enumerator names and try again: RECEIVE, SEND",
        ),
        ("Get-MessageTrackingLog -Start yesterday", 'Cannot convert value "yesterday" to type "System.DateTime"'),
        ("Get-MessageTrackingLog -ResultSize 0", "Enter a whole number from 1 through 2147483647, or unlimited"),
        ("Get-MessageTrackingLog -InternalMessageId abc", 'Cannot convert value "abc" to type "System.Int32"'),
        ("Get-MessageTrackingLog -Server EX99", 'The transport server "EX99" couldn\'t be found.'),
    ],
)
def test_tracking_log_bad_input(cmdlet, db, line, message):
    result = cmdlet(line)
    assert result.status == 1 and message in result.err and "Traceback" not in result.err


def test_start_without_a_zone_is_utc(cmdlet, history):
    start = (datetime(2026, 11, 27, 9, 5, tzinfo=UTC) - timedelta(seconds=1)).strftime("%m/%d/%Y %H:%M:%S")
    assert json.loads(cmdlet(f'Get-MessageTrackingLog -Start "{start}" | ConvertTo-Json').out)["EventId"] == "SEND"
