"""Get-TransportService's and Set-TransportService's outbound connection limits through the shell's runner."""

import json

import pytest

from sendconn.connectors.models import AdminAuditLogEntry, TransportServer
from sendconn.connectors.servers import local_server, register_transport_server

INT32_MAX = 2147483647


def limits(name="EX01"):
    server = TransportServer.objects.get(name=name)
    return server.max_outbound_connections, server.max_per_domain_outbound_connections


def test_get_shows_exchanges_defaults(cmdlet):
    listed = cmdlet("Get-TransportService EX01 | Format-List").out.splitlines()
    assert "MaxOutboundConnections          : 1000" in listed
    assert "MaxPerDomainOutboundConnections : 40" in listed
    shown = json.loads(cmdlet("Get-TransportService | ConvertTo-Json").out)
    assert (shown["MaxOutboundConnections"], shown["MaxPerDomainOutboundConnections"]) == (1000, 40)


def test_set_by_name_and_by_fqdn_and_audit(cmdlet):
    register_transport_server("EX02", "ex02.contoso.test", "Branch")
    result = cmdlet("Set-TransportService ex01 -MaxOutboundConnections 200 -MaxPerDomainOutboundConnections 5")
    assert (result.status, result.out, result.err) == (0, "", "")
    assert cmdlet("Set-TransportService -Identity EX02.contoso.test -MaxPerDomainOutboundConnections 1").status == 0
    assert limits("EX01") == (200, 5)
    assert limits("EX02") == (1000, 1)
    entries = AdminAuditLogEntry.objects.order_by("id")
    assert [(entry.cmdlet, entry.object_name, entry.caller, entry.source, entry.command_line) for entry in entries] == [
        (
            "Set-TransportService",
            "EX01",
            "tester",
            "Shell",
            "Set-TransportService -Identity EX01 -MaxOutboundConnections 200 -MaxPerDomainOutboundConnections 5",
        ),
        (
            "Set-TransportService",
            "EX02",
            "tester",
            "Shell",
            "Set-TransportService -Identity EX02 -MaxPerDomainOutboundConnections 1",
        ),
    ]


def test_unlimited_is_stored_as_none_and_shown_as_unlimited(cmdlet):
    result = cmdlet(
        "Set-TransportService EX01 -MaxOutboundConnections unlimited -MaxPerDomainOutboundConnections Unlimited"
    )
    assert result.status == 0, result.err
    assert limits() == (None, None)
    assert cmdlet("Get-TransportService | Format-List Max*").out.splitlines() == [
        "",
        "MaxOutboundConnections          : Unlimited",
        "MaxPerDomainOutboundConnections : Unlimited",
        "",
    ]
    shown = json.loads(cmdlet("Get-TransportService | ConvertTo-Json").out)
    assert shown["MaxOutboundConnections"] == "Unlimited"
    assert AdminAuditLogEntry.objects.get().command_line.endswith(
        "-MaxOutboundConnections Unlimited -MaxPerDomainOutboundConnections Unlimited"
    )
    # Per domain below an unlimited total is fine; the bounds are inclusive.
    assert cmdlet(f"Set-TransportService EX01 -MaxPerDomainOutboundConnections {INT32_MAX}").status == 0
    assert cmdlet(f"Set-TransportService EX01 -MaxOutboundConnections {INT32_MAX}").status == 0
    assert cmdlet("Set-TransportService EX01 -MaxOutboundConnections 1 -MaxPerDomainOutboundConnections 1").status == 0
    assert limits() == (1, 1)


@pytest.mark.parametrize(
    "line, error",
    [
        (
            "Set-TransportService EX01 -MaxOutboundConnections 0",
            "Cannot process argument transformation on parameter 'MaxOutboundConnections'. "
            'The value "0" isn\'t valid. Enter a whole number from 1 through 2147483647, or unlimited.',
        ),
        (
            "Set-TransportService EX01 -MaxPerDomainOutboundConnections -5",
            "parameter 'MaxPerDomainOutboundConnections'",
        ),
        (
            f"Set-TransportService EX01 -MaxOutboundConnections {INT32_MAX + 1}",
            f'The value "{INT32_MAX + 1}" isn\'t valid',
        ),
        ("Set-TransportService EX01 -MaxOutboundConnections 99999999999999999999999", "isn't valid"),
        ("Set-TransportService EX01 -MaxOutboundConnections 1.5", "isn't valid"),
        ("Set-TransportService EX01 -MaxOutboundConnections lots", "isn't valid"),
        ("Set-TransportService EX01 -MaxOutboundConnections 1,2", 'Cannot convert "System.Object[]"'),
        ("Set-TransportService EX01 -MaxOutboundConnections $null", "because it is null"),
        (
            "Set-TransportService EX01 -MaxOutboundConnections 10",
            "The value of the MaxOutboundConnections parameter (10) must be greater than or equal to the value of the "
            "MaxPerDomainOutboundConnections parameter (40).",
        ),
        (
            "Set-TransportService EX01 -MaxOutboundConnections 5 -MaxPerDomainOutboundConnections 6",
            "MaxOutboundConnections parameter (5) must be greater than or equal to the value of the "
            "MaxPerDomainOutboundConnections parameter (6)",
        ),
        (
            "Set-TransportService EX01 -MaxPerDomainOutboundConnections unlimited",
            "MaxOutboundConnections parameter (1000) must be greater than or equal to the value of the "
            "MaxPerDomainOutboundConnections parameter (Unlimited)",
        ),
        (
            "Set-TransportService EX09 -MaxOutboundConnections 5",
            "The operation couldn't be performed because object 'EX09' couldn't be found.",
        ),
        ("Set-TransportService -MaxOutboundConnections 5", "missing mandatory parameters: Identity"),
    ],
)
def test_bad_values_are_refused_and_nothing_is_saved(cmdlet, line, error):
    local_server()
    result = cmdlet(line)
    assert (result.status, result.out) == (1, "")
    assert result.err.startswith("Set-TransportService : ")
    assert error in result.err
    assert limits() == (1000, 40)
    assert not AdminAuditLogEntry.objects.exists()


def test_what_if_checks_but_saves_nothing(cmdlet):
    result = cmdlet("Set-TransportService EX01 -MaxOutboundConnections 300 -WhatIf")
    assert (result.status, result.out) == (0, 'What if: Configuring transport service "EX01".\n')
    assert cmdlet("Set-TransportService EX01 -MaxOutboundConnections 3 -WhatIf").status == 1  # below 40: refused
    assert limits() == (1000, 40)
    assert not AdminAuditLogEntry.objects.exists()


def test_confirm_asks_and_confirm_false_does_not(cmdlet):
    declined = cmdlet("Set-TransportService EX01 -MaxOutboundConnections 300 -Confirm", stdin="n\n")
    assert declined.status == 1
    assert 'Configuring transport service "EX01".' in declined.err
    assert limits() == (1000, 40)
    accepted = cmdlet("Set-TransportService EX01 -MaxOutboundConnections 300 -Confirm", stdin="y\n")
    assert accepted.status == 0
    assert cmdlet("Set-TransportService EX01 -MaxPerDomainOutboundConnections 20 -Confirm:$false").status == 0
    assert limits() == (300, 20)


def test_piped_from_get_and_nothing_given(cmdlet):
    register_transport_server("EX02", "ex02.contoso.test", "Branch")
    assert cmdlet("Get-TransportService | Set-TransportService -MaxPerDomainOutboundConnections 10").status == 0
    assert (limits("EX01"), limits("EX02")) == ((1000, 10), (1000, 10))
    unchanged = cmdlet("Set-TransportService EX01")
    assert (unchanged.status, unchanged.err) == (
        0,
        "WARNING: The command completed successfully but no settings of 'EX01' have been modified.\n",
    )
