"""Lines admins paste: several statements with variables, Where-Object filters, Server\\Connector identities,
and Get-Help / Get-Command listing what the shell supports."""

import json

import pytest

from sendconn.connectors.models import AdminAuditLogEntry, SendConnector
from sendconn.connectors.servers import register_transport_server

SMART_HOST = (
    "New-SendConnector -Name Relay -AddressSpaces * -DNSRoutingEnabled $false -SmartHosts relay.contoso.com "
    "-SmartHostAuthMechanism BasicAuthRequireTLS -AuthenticationCredential $cred"
)


def names(result):
    return (
        [item["Name"] for item in json.loads(result.out or "[]")]
        if result.out.lstrip().startswith("[")
        else ([json.loads(result.out)["Name"]] if result.out.strip() else [])
    )


# -- statements and variables ----------------------------------------------------------------------------


def test_credential_in_a_variable(cmdlet):
    result = cmdlet("$cred = Get-Credential; " + SMART_HOST, stdin="svc-relay\nS3cret!pw\n")
    assert result.status == 0, result.err
    created = SendConnector.objects.get(name="Relay")
    assert (created.auth_username, created.get_password()) == ("svc-relay", "S3cret!pw")
    assert "S3cret!pw" not in result.out + result.err
    assert "-AuthenticationCredential (Get-Credential svc-relay)" in AdminAuditLogEntry.objects.get().command_line


def test_statements_on_several_lines_run_in_order_and_print_their_output(cmdlet):
    result = cmdlet(
        "New-SendConnector 'To internet' -AddressSpaces * -Internet\n"
        "$name = 'To internet'\n"
        "Set-SendConnector $name -Port 587; Get-SendConnector $name | fl Name,Port"
    )
    assert result.status == 0, result.err
    assert result.out.splitlines()[-4:] == ["", "Name : To internet", "Port : 587", ""]


def test_a_variable_holding_connectors_feeds_a_pipeline(cmdlet, make_connector):
    make_connector("To internet")
    make_connector("Partners", address_spaces=["contoso.com"])
    result = cmdlet("$all = Get-SendConnector; $all | Set-SendConnector -Enabled $false; $all | ft Name")
    assert result.status == 0, result.err
    assert not SendConnector.objects.filter(enabled=True).exists()
    assert result.out.splitlines() == ["", "Name", "----", "Partners", "To internet", ""]


def test_a_failing_statement_stops_the_line(cmdlet):
    result = cmdlet("$cred = Get-Credential; " + SMART_HOST, stdin="")
    assert result.status == 1
    assert result.err.endswith("Get-Credential : No user name was entered.\n")
    assert not SendConnector.objects.exists()


def test_an_unset_variable_is_refused_before_anything_runs(cmdlet):
    result = cmdlet("New-SendConnector X -AddressSpaces *; Get-SendConnector $nme")
    assert result.status == 1
    assert "The variable '$nme' cannot be retrieved because it has not been set." in result.err
    assert not SendConnector.objects.exists()


# -- Where-Object ----------------------------------------------------------------------------------------


@pytest.fixture
def three(make_connector):
    make_connector("To internet", usage="Internet")
    make_connector("To contoso", address_spaces=["contoso.com"], enabled=False)
    make_connector("To fabrikam", address_spaces=["fabrikam.com", "*.fabrikam.com"], port=587)


@pytest.mark.parametrize(
    "line, expected",
    [
        ("Get-SendConnector | Where-Object {$_.Enabled -eq $true}", ["To fabrikam", "To internet"]),
        ("Get-SendConnector | ? {$_.Enabled -eq $false}", ["To contoso"]),
        ("Get-SendConnector | where {$_.Enabled -and $_.Name -like 'to f*'}", ["To fabrikam"]),
        (
            'Get-SendConnector | ? {$_.AddressSpaces -like "*contoso*" -or $_.Port -ge 500}',
            ["To contoso", "To fabrikam"],
        ),
        ("Get-SendConnector | ? {-not $_.Enabled}", ["To contoso"]),
        ("Get-SendConnector | ? {!($PSItem.Port -eq 25)}", ["To fabrikam"]),
        (
            "Get-SendConnector | ? {$_.SourceTransportServers -contains 'ex01' -and $_.Name -match 'internet$'}",
            ["To internet"],
        ),
        ("Get-SendConnector | Where-Object Enabled -eq $false", ["To contoso"]),
        ("Get-SendConnector | Where-Object Port -GT 25", ["To fabrikam"]),
        (
            "Get-SendConnector | Where-Object {$_.MaxMessageSize -like '35 MB*' -and $_.Enabled -eq 'True'}",
            ["To fabrikam", "To internet"],
        ),
        ("Get-SendConnector | ? {$_.Name -ceq 'to internet'}", []),
        (
            "Get-SendConnector | ? {$_.MaxMessageSize -gt 30MB -and $_.MaxMessageSize -lt 36700161}",
            ["To contoso", "To fabrikam", "To internet"],
        ),
        ("Get-SendConnector | ? {$_.SmtpMaxMessagesPerConnection -eq '20' -and $_.Port -ne 25}", ["To fabrikam"]),
    ],
)
def test_where_object(cmdlet, three, line, expected):
    result = cmdlet(line + " | ConvertTo-Json")
    assert result.status == 0, result.err
    assert sorted(names(result)) == expected


@pytest.mark.parametrize(
    "line, message",
    [
        ("Get-SendConnector | ? {$_.Port -between 1}", "The operator '-between' isn't supported in filters."),
        ("Get-SendConnector | ? {$_.Port -eq}", "The filter ends where a value was expected."),
        (
            "Get-SendConnector | ? {$x.Port -eq 25}",
            "The variable '$x' can't be used in a filter: use $_ for the object.",
        ),
        ("Get-SendConnector | ? {($_.Port -eq 25}", "Missing closing ')' in the filter."),
        ("Get-SendConnector | ? {}", "The filter is empty."),
    ],
)
def test_where_object_errors(cmdlet, three, line, message):
    result = cmdlet(line)
    assert result.status == 1
    assert result.err.startswith("Where-Object : " + message)


# -- Server\Connector identities -------------------------------------------------------------------------


def test_server_and_connector_identity(cmdlet, make_connector):
    make_connector("To internet")
    register_transport_server("EX02", "ex02.contoso.test", "Branch")
    assert cmdlet(r"Get-SendConnector 'EX01\To internet' | fl Name").out.splitlines() == ["", "Name : To internet", ""]
    assert cmdlet(r"Get-SendConnector ex02.contoso.test\to* | fl Name").out.splitlines() == [
        "",
        "Name : To internet",
        "",
    ]
    assert cmdlet(r"Set-SendConnector 'EX01\To internet' -Port 2525").status == 0
    assert SendConnector.objects.get().port == 2525
    missing = cmdlet(r"Get-SendConnector 'EX99\To internet'")
    assert missing.status == 1
    assert "The operation couldn't be performed because object 'EX99\\To internet' couldn't be found." in missing.err


# -- Get-Command and Get-Help ----------------------------------------------------------------------------


def test_get_command_lists_the_supported_cmdlets(cmdlet):
    listed = cmdlet("Get-Command").out.splitlines()
    assert listed[1].split() == ["CommandType", "Name", "Source"]
    rows = [line.split()[1] for line in listed[3:] if line]
    for name in (
        "New-SendConnector",
        "Get-SendConnector",
        "Set-SendConnector",
        "Remove-SendConnector",
        "Get-Queue",
        "Where-Object",
        "Get-Help",
        "Get-Command",
        "Format-List",
    ):
        assert name in rows
    assert rows == sorted(rows, key=str.lower)
    sendconnector = cmdlet("Get-Command -Noun SendConnector | ConvertTo-Json -Compress").out
    assert [item["Name"] for item in json.loads(sendconnector)] == [
        "Get-SendConnector",
        "New-SendConnector",
        "Remove-SendConnector",
        "Set-SendConnector",
    ]
    aliases = json.loads(cmdlet("Get-Command fl,? | ConvertTo-Json").out)
    assert [(item["CommandType"], item["Name"]) for item in aliases] == [
        ("Alias", "fl -> Format-List"),
        ("Alias", "? -> Where-Object"),
    ]
    unknown = cmdlet("Get-Command Get-Mailbox")
    assert unknown.status == 1 and "The term 'Get-Mailbox' is not recognized" in unknown.err


def test_get_help_shows_the_synopsis_and_syntax(cmdlet):
    result = cmdlet("Get-Help Get-SendConnector")
    assert result.status == 0, result.err
    assert result.out.splitlines()[:9] == [
        "",
        "NAME",
        "    Get-SendConnector",
        "",
        "SYNOPSIS",
        "    Use the Get-SendConnector cmdlet to view the settings for a Send connector.",
        "",
        "SYNTAX",
        "    Get-SendConnector [[-Identity] <String>] [-DomainController <String>] [<CommonParameters>]",
    ]
    new = " ".join(cmdlet("Get-Help New-SendConnector").out.split())
    assert "SYNTAX New-SendConnector [-Name] <String> -AddressSpaces <MultiValuedProperty> [-Usage <Usage>]" in new
    for part in (
        "[-SourceTransportServers <MultiValuedProperty>]",
        "[-ConnectorType <TenantConnectorType>]",
        "[-TlsCertificateName <SmtpX509Identifier>]",
        "[-Internet]",
        "[-WhatIf] [-Confirm] [<CommonParameters>]",
    ):
        assert part in new
    assert all(len(line) <= 116 for line in cmdlet("Get-Help New-SendConnector").out.splitlines())


def test_get_help_full_lists_the_parameters(cmdlet):
    lines = cmdlet("Get-Help Set-SendConnector -Parameter Identity").out.splitlines()
    assert lines[lines.index("PARAMETERS") + 1 : lines.index("PARAMETERS") + 6] == [
        "    -Identity <String>",
        "        Required?                    true",
        "        Position?                    0",
        "        Accept pipeline input?       true (ByPropertyName)",
        "        Aliases                      none",
    ]
    assert "    -SourceIPAddress <IPAddress>" in cmdlet("Get-Help Set-SendConnector -Full").out.splitlines()
    assert "ALIASES\n    where\n    ?\n" in cmdlet("help Where-Object").out
    missing = cmdlet("Get-Help Get-Mailbox")
    assert missing.status == 1
    assert missing.err == (
        "Get-Help : Get-Help could not find Get-Mailbox in a help file in this session. Get-Command "
        "lists the cmdlets this shell supports.\n"
    )
