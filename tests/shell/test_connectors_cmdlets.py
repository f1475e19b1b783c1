"""New-/Get-/Set-/Remove-SendConnector: the seed's and the reference's examples, and each error Exchange gives."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command

from sendconn.connectors.models import AdminAuditLogEntry, SendConnector
from sendconn.connectors.servers import register_transport_server

MB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]


def connector(name):
    return SendConnector.objects.get(name__iexact=name)


def spaces(found):
    return [str(space) for space in found.address_spaces.all()]


def hosts(found):
    return [host.host for host in found.smart_hosts.all()]


def servers(found):
    return [server.name for server in found.source_transport_servers.all()]


# -- the examples ----------------------------------------------------------------------------------------


def test_seed_internet_connector_gets_the_seed_defaults(cmdlet):
    result = cmdlet('New-SendConnector -Name "To internet" -AddressSpaces * -Internet')
    assert result.status == 0, result.err
    assert result.err == ""
    assert result.out.splitlines() == [
        "",
        "Identity    AddressSpaces Enabled",
        "--------    ------------- -------",
        "To internet {SMTP:*;1}    True",
        "",
    ]
    created = connector("To internet")
    assert created.usage == "Internet"
    assert created.dns_routing_enabled is True  # MX routing
    assert spaces(created) == ["SMTP:*;1"]  # all external domains
    assert servers(created) == ["EX01"]  # the local server
    assert created.is_scoped_connector is False
    assert created.max_message_size == 35 * MB
    entry = AdminAuditLogEntry.objects.get()
    assert (entry.caller, entry.source, entry.cmdlet) == ("tester", "Shell", "New-SendConnector")
    assert entry.command_line == "New-SendConnector -Name 'To internet' -AddressSpaces 'SMTP:*;1' -Internet"


def test_seed_syntax_with_source_transport_server_by_fqdn(cmdlet):
    register_transport_server("EX02", "ex02.contoso.test", "Default-First-Site-Name")
    result = cmdlet(
        "New-SendConnector -Name Outbound -AddressSpaces * -Internet -SourceTransportServer ex01.contoso.test,EX02"
    )
    assert result.status == 0, result.err
    assert servers(connector("Outbound")) == ["EX01", "EX02"]


def test_seed_proxy_note(cmdlet):
    result = cmdlet('New-SendConnector -Name "To internet" -AddressSpaces * -Internet -FrontEndProxyEnabled $true')
    assert result.status == 0, result.err
    assert connector("To internet").frontend_proxy_enabled is True


def test_reference_smart_host_variant(cmdlet):
    result = cmdlet(
        'New-SendConnector -Name "Smart host to Internet" -AddressSpaces * -Custom -DNSRoutingEnabled $false '
        "-SmartHosts 192.168.3.2 -SmartHostAuthMechanism None"
    )
    assert result.status == 0, result.err
    created = connector("Smart host to Internet")
    assert created.usage == "Custom"
    assert created.dns_routing_enabled is False
    assert hosts(created) == ["192.168.3.2"]
    assert created.smart_host_auth_mechanism == "None"
    assert spaces(created) == ["SMTP:*;1"]  # * is "SMTP:*;1"


def test_reference_set_example(cmdlet, make_connector):
    make_connector("X")
    result = cmdlet('Set-SendConnector "X" -MaxMessageSize 10MB -ConnectionInactivityTimeOut 00:15:00')
    assert (result.status, result.out, result.err) == (0, "", "")
    changed = connector("X")
    assert changed.max_message_size == 10 * MB
    assert changed.connection_inactivity_timeout == timedelta(minutes=15)
    assert AdminAuditLogEntry.objects.filter(cmdlet="Set-SendConnector", caller="tester").exists()


@pytest.mark.parametrize("typed", ['"SMTP:contoso.com;1"', '"contoso.com;1"', '"SMTP:contoso.com"', "contoso.com"])
def test_address_space_equivalents(cmdlet, typed):
    assert cmdlet(f"New-SendConnector Contoso -AddressSpaces {typed}").status == 0
    assert spaces(connector("Contoso")) == ["SMTP:contoso.com;1"]


def test_comma_list_of_address_spaces_with_costs(cmdlet):
    result = cmdlet('New-SendConnector Partners -AddressSpaces "SMTP:*.contoso.com;5",fabrikam.com')
    assert result.status == 0, result.err
    assert spaces(connector("Partners")) == ["SMTP:*.contoso.com;5", "SMTP:fabrikam.com;1"]


def test_usage_parameter_and_internal_default_size(cmdlet):
    result = cmdlet(
        "New-SendConnector -Name Inside -Usage internal -AddressSpaces * -DNSRoutingEnabled:$false "
        "-SmartHosts hub.contoso.com"
    )
    assert result.status == 0, result.err
    assert connector("Inside").usage == "Internal"
    assert connector("Inside").max_message_size is None  # Internal: unlimited


def test_partner_switch_turns_on_domain_security(cmdlet):
    result = cmdlet("New-SendConnector -Name Fabrikam -AddressSpaces fabrikam.com -Partner")
    assert result.status == 0, result.err
    assert (connector("Fabrikam").usage, connector("Fabrikam").domain_secure_enabled) == ("Partner", True)


def test_parameter_names_are_case_insensitive_and_may_be_abbreviated(cmdlet):
    result = cmdlet(
        "new-sendconnector -NAME lower -addressspaces * -port 587 -ProtocolLog verbose -maxmessagesize unlimited"
    )
    assert result.status == 0, result.err
    created = connector("lower")
    assert (created.port, created.protocol_logging_level, created.max_message_size) == (587, "Verbose", None)


def test_error_policies_set_the_three_flags(cmdlet, make_connector):
    result = cmdlet(
        "New-SendConnector Partner -AddressSpaces contoso.com -ErrorPolicies DowngradeDnsFailures,UpgradeCustomFailures"
    )
    assert result.status == 0, result.err
    created = connector("Partner")
    assert (created.downgrade_dns_failures, created.downgrade_custom_failures, created.upgrade_custom_failures) == (
        True,
        False,
        True,
    )
    assert cmdlet("Set-SendConnector Partner -ErrorPolicies Default").status == 0
    created.refresh_from_db()
    assert not (created.downgrade_dns_failures or created.downgrade_custom_failures or created.upgrade_custom_failures)


def test_new_prints_warnings(cmdlet):
    register_transport_server("EX02", "ex02.contoso.test", "Branch-Site")
    result = cmdlet(
        "New-SendConnector Scoped -AddressSpaces * -IsScopedConnector $true -SourceTransportServers EX01,EX02"
    )
    assert result.status == 0
    assert result.err.startswith("WARNING: The source transport servers of this scoped Send connector are in different")


# -- errors: exit 1, Exchange's words on stderr, nothing saved ----------------------------------------------


@pytest.mark.parametrize(
    "line, message",
    [
        (
            "New-SendConnector -Name X -AddressSpaces * -Foo bar",
            "New-SendConnector : A parameter cannot be found that matches parameter name 'Foo'.",
        ),
        (
            "New-SendConnector -Name X -AddressSpaces * -Internet -Partner",
            "New-SendConnector : Only one usage type can be specified.",
        ),
        (
            "New-SendConnector -Name X -AddressSpaces * -Usage Internet -Custom",
            "New-SendConnector : Only one usage type can be specified.",
        ),
        (
            "New-SendConnector -Internet",
            "New-SendConnector : Cannot process command because of one or more missing mandatory parameters: "
            "Name AddressSpaces.",
        ),
        (
            "New-SendConnector -Name X -AddressSpaces * -SmartHosts relay.contoso.com",
            "New-SendConnector : SmartHosts: SmartHosts can't be specified when DNSRoutingEnabled is $true.",
        ),
        (
            "New-SendConnector -Name X -AddressSpaces * -DNSRoutingEnabled $false",
            "New-SendConnector : SmartHosts: When DNSRoutingEnabled is $false, you must specify at least one "
            "smart host",
        ),
        (
            "New-SendConnector -Name X -AddressSpaces * -RequireTLS $true -TlsDomain contoso.com",
            "New-SendConnector : TlsDomain: The TLSDomain parameter can only be set if the TLSAuthLevel parameter "
            "is set to DomainValidation.",
        ),
        (
            "New-SendConnector -Name X -AddressSpaces * -Fqdn contoso..com",
            'New-SendConnector : Fqdn: "contoso..com" isn\'t a valid FQDN: it contains an empty label ("..").',
        ),
        (f"New-SendConnector -Name X -AddressSpaces * -Fqdn {'a' * 64}.com", "is longer than 63 characters."),
        (
            "New-SendConnector -Name X -AddressSpaces *contoso.com",
            "New-SendConnector : Cannot process argument transformation on parameter 'AddressSpaces'. \"*contoso.com\" "
            "isn't a valid SMTP address space.",
        ),
        ("New-SendConnector -Name X -AddressSpaces contoso..com", "contains an empty label"),
        ('New-SendConnector -Name X -AddressSpaces "contoso.com;0"', 'The cost "0" isn\'t valid.'),
        ('New-SendConnector -Name X -AddressSpaces "contoso.com;101"', 'The cost "101" isn\'t valid.'),
        ('New-SendConnector -Name X -AddressSpaces "contoso.com;cheap"', 'The cost "cheap" isn\'t valid.'),
        (
            'New-SendConnector -Name X -AddressSpaces * -DNSRoutingEnabled $false -SmartHosts "relay contoso.com"',
            '"relay contoso.com" isn\'t a valid smart host: it contains spaces.',
        ),
        (
            "New-SendConnector -Name X -AddressSpaces * -DNSRoutingEnabled $false -SmartHosts relay.contoso.com "
            "-SmartHostAuthMechanism BasicAuth",
            "New-SendConnector : AuthenticationCredential: The AuthenticationCredential parameter "
            "(user name and password) is required when SmartHostAuthMechanism is BasicAuth.",
        ),
        (
            "New-SendConnector -Name X -AddressSpaces * -SourceTransportServers EX99",
            "Cannot process argument transformation on parameter 'SourceTransportServers'. "
            'The transport server "EX99" couldn\'t be found.',
        ),
        (
            "New-SendConnector -Name X -AddressSpaces * -MaxMessageSize 10XB",
            "Cannot process argument transformation on parameter 'MaxMessageSize'. \"10XB\" isn't a valid size.",
        ),
        (
            "New-SendConnector -Name X -AddressSpaces * -ConnectionInactivityTimeOut 2.00:00:00",
            'The time span "2.00:00:00" is out of range.',
        ),
        (
            "New-SendConnector -Name X -AddressSpaces * -Enabled yes",
            "Cannot process argument transformation on parameter 'Enabled'. Cannot convert value \"System.String\" to "
            'type "System.Boolean".',
        ),
        (
            "New-SendConnector -Name X -AddressSpaces * -ErrorPolicies DowngradeAuthFailures",
            "Unable to match the identifier name DowngradeAuthFailures to a valid enumerator name.",
        ),
        (
            "New-SendConnector -Name X -AddressSpaces * -Name Y",
            "Cannot bind parameter because parameter 'Name' is specified more than once.",
        ),
        (
            "New-SendConnector -Name X -AddressSpaces",
            "Missing an argument for parameter 'AddressSpaces'. Specify a parameter of type 'MultiValuedProperty'",
        ),
        ("New-SendConnector X * -Internet", "A positional parameter cannot be found that accepts argument '*'."),
        (
            "New-SendConnector -Name X -AddressSpaces * -Internet $true",
            "A positional parameter cannot be found that accepts argument '$true'.",
        ),
        (
            "New-SendConnector -Name X -AddressSpaces * -Inter",
            "the parameter name 'Inter' is ambiguous. Possible matches include: -Internal -Internet.",
        ),
        (
            'New-SendConnector -Name X -AddressSpaces * -SmartHosts @{Add="a.com"} -DNSRoutingEnabled $false',
            "SmartHosts: @{Add=...;Remove=...} can only change an existing connector",
        ),
        (
            "New-Sendconnectr -Name X",
            "New-Sendconnectr : The term 'New-Sendconnectr' is not recognized as the name of "
            "a cmdlet, function, script file, or operable program.",
        ),
        (
            "New-SendConnector -Name X -AddressSpaces * -WhatIf -DNSRoutingEnabled $false",
            "When DNSRoutingEnabled is $false",
        ),
        (
            "New-SendConnector -Name X -AddressSpaces * -SmtpMaxMessagesPerConnection 99999999999",
            'Error: "Value was either too large or too small for an Int32."',
        ),
        ("New-SendConnector -Name X -AddressSpaces * -Port 70000", 'The port "70000" isn\'t valid.'),
        (
            "New-SendConnector -Name X -AddressSpaces * -Port $null",
            "Cannot bind argument to parameter 'Port' because it is null.",
        ),
        ("New-SendConnector -Name X -AddressSpaces * -Port ²", 'The port "²" isn\'t valid.'),
        (
            "New-SendConnector -Name X -AddressSpaces * -DNSRoutingEnabled $false -SmartHosts '[999.1.1.1]'",
            "Cannot process argument transformation on parameter 'SmartHosts'. \"[999.1.1.1]\" isn't a valid smart "
            "host: [ ] can only enclose an IP address, such as [192.168.1.25].",
        ),
        (
            "New-SendConnector -Name X -AddressSpaces * -DNSRoutingEnabled $false -SmartHosts 999.1.1.1",
            "\"999.1.1.1\" isn't a valid smart host: it isn't a valid IP address, and an FQDN can't end with a number.",
        ),
        (
            'New-SendConnector -Name X -AddressSpaces * -SourceTransportServers "EX`001"',
            "parameter 'SourceTransportServers'. The value contains the NUL character (`0), which isn't allowed.",
        ),
        (
            'New-SendConnector -Name X -AddressSpaces * -Comment "a`0b"',
            "parameter 'Comment'. The value contains the NUL",
        ),
    ],
)
def test_new_errors(cmdlet, line, message):
    result = cmdlet(line)
    assert result.status == 1
    assert message in result.err
    assert "Traceback" not in result.err and result.out == ""
    assert not SendConnector.objects.exists()
    assert not AdminAuditLogEntry.objects.exists()


def test_duplicate_name_is_refused_case_insensitively(cmdlet, make_connector):
    make_connector("To internet")
    result = cmdlet('New-SendConnector -Name "TO INTERNET" -AddressSpaces * -Internet')
    assert result.status == 1
    assert result.err == (
        'New-SendConnector : Name: A Send connector with the name "TO INTERNET" already exists. '
        "Specify a unique name.\n"
    )
    assert SendConnector.objects.count() == 1 and AdminAuditLogEntry.objects.count() == 1


@pytest.mark.parametrize(
    "line",
    [
        "Get-SendConnector Nope",
        "Set-SendConnector Nope -Enabled $false",
        "Remove-SendConnector -Identity Nope -Confirm:$false",
    ],
)
def test_unknown_identity(cmdlet, make_connector, line):
    make_connector("To internet")
    result = cmdlet(line)
    assert result.status == 1
    assert result.err.endswith(" : The operation couldn't be performed because object 'Nope' couldn't be found.\n")
    assert SendConnector.objects.get().enabled is True


def test_invalid_set_changes_nothing(cmdlet, make_connector):
    make_connector("To internet")
    result = cmdlet('Set-SendConnector "To internet" -Comment half -SmartHosts relay.contoso.com')
    assert result.status == 1
    assert "SmartHosts: SmartHosts can't be specified when DNSRoutingEnabled is $true." in result.err
    found = connector("To internet")
    assert found.comment == "" and hosts(found) == []
    assert AdminAuditLogEntry.objects.count() == 1


def test_usage_cannot_be_set_after_creation(cmdlet, make_connector):
    make_connector("To internet")
    result = cmdlet('Set-SendConnector "To internet" -Internet')
    assert result.status == 1
    assert "A parameter cannot be found that matches parameter name 'Internet'." in result.err


# -- Get-SendConnector -----------------------------------------------------------------------------------


def test_get_by_name_guid_and_wildcard(cmdlet, make_connector):
    first = make_connector("To internet")
    make_connector("To partners", address_spaces=["contoso.com"])
    make_connector("Relay", address_spaces=["fabrikam.com"])
    assert "To internet" in cmdlet(f"Get-SendConnector {first.guid}").out
    assert "To internet" in cmdlet("Get-SendConnector -Identity 'to INTERNET'").out
    lines = cmdlet("Get-SendConnector To*").out.splitlines()
    assert [line.split()[1] for line in lines[3:-1]] == ["internet", "partners"]
    assert cmdlet("Get-SendConnector Nothing*").out == ""
    assert len(cmdlet("Get-SendConnector").out.splitlines()) == 3 + 3 + 1


def test_get_identity_from_the_pipeline(cmdlet, make_connector):
    make_connector("To internet")
    result = cmdlet('Get-SendConnector "To internet" | Get-SendConnector | Format-List Name')
    assert result.out.splitlines() == ["", "Name : To internet", ""]


# -- Set-SendConnector -----------------------------------------------------------------------------------


def test_set_smart_hosts_with_add_and_remove(cmdlet, make_connector):
    make_connector("Relay", dns_routing_enabled=False, smart_hosts=["a.contoso.com", "10.0.0.1"])
    result = cmdlet('Set-SendConnector Relay -SmartHosts @{Add="b.contoso.com","[10.0.0.2]";Remove="A.contoso.com"}')
    assert result.status == 0, result.err
    assert hosts(connector("Relay")) == ["10.0.0.1", "b.contoso.com", "10.0.0.2"]
    result = cmdlet('Set-SendConnector Relay -SmartHosts @{Remove="c.contoso.com"}')
    assert result.status == 1
    assert (
        "SmartHosts: \"c.contoso.com\" can't be removed because it isn't one of the connector's values." in result.err
    )
    assert hosts(connector("Relay")) == ["10.0.0.1", "b.contoso.com", "10.0.0.2"]


def test_set_source_transport_servers_with_add_and_remove(cmdlet, make_connector):
    register_transport_server("EX02", "ex02.contoso.test", "Default-First-Site-Name")
    make_connector("To internet")
    assert cmdlet('Set-SendConnector "To internet" -SourceTransportServers @{Add="ex02.contoso.test"}').status == 0
    assert servers(connector("To internet")) == ["EX01", "EX02"]
    assert cmdlet('Set-SendConnector "To internet" -SourceTransportServers @{Remove="EX01"}').status == 0
    assert servers(connector("To internet")) == ["EX02"]


def test_set_address_spaces_with_add_and_remove(cmdlet, make_connector):
    make_connector("Partners", address_spaces=["contoso.com;5", "fabrikam.com"])
    assert (
        cmdlet('Set-SendConnector Partners -AddressSpaces @{Add="SMTP:*.tailspin.com;2"; Remove="contoso.com"}').status
        == 0
    )
    assert spaces(connector("Partners")) == ["SMTP:fabrikam.com;1", "SMTP:*.tailspin.com;2"]


def test_set_rename_and_clear_with_null(cmdlet, make_connector):
    make_connector("Old", fqdn="mail.contoso.com", comment="note")
    result = cmdlet("Set-SendConnector Old -Name New -Fqdn $null -Comment $null")
    assert result.status == 0, result.err
    renamed = connector("New")
    assert (renamed.fqdn, renamed.comment) == ("", "")


def test_set_without_changes_warns(cmdlet, make_connector):
    make_connector("To internet")
    result = cmdlet('Set-SendConnector "To internet"')
    assert result.status == 0
    assert (
        result.err
        == "WARNING: The command completed successfully but no settings of 'To internet' have been modified.\n"
    )
    assert AdminAuditLogEntry.objects.count() == 1


def test_set_to_the_values_it_has_warns_and_audits_nothing(cmdlet, make_connector):
    make_connector("To internet", port=25)
    result = cmdlet('Set-SendConnector "To internet" -Enabled $true -Port 25')
    assert (result.status, result.err) == (
        0,
        "WARNING: The command completed successfully but no settings of 'To internet' have been modified.\n",
    )
    assert AdminAuditLogEntry.objects.count() == 1  # the connector's creation

    assert cmdlet('Set-SendConnector "To internet" -Enabled $true -Port 2525').status == 0
    assert AdminAuditLogEntry.objects.filter(cmdlet="Set-SendConnector").get().command_line == (
        "Set-SendConnector -Identity 'To internet' -Port 2525"  # what changed
    )


def test_pipeline_into_set(cmdlet, make_connector):
    make_connector("A")
    make_connector("B")
    assert cmdlet("Get-SendConnector | Set-SendConnector -Enabled:$false").status == 0
    assert not SendConnector.objects.filter(enabled=True).exists()


def test_what_if_changes_nothing(cmdlet, make_connector):
    make_connector("To internet")
    result = cmdlet('Set-SendConnector "To internet" -Enabled $false -WhatIf')
    assert (result.status, result.out) == (0, 'What if: Configuring Send connector "To internet".\n')
    result = cmdlet("New-SendConnector -Name Other -AddressSpaces * -WhatIf")
    assert (result.status, result.out) == (0, 'What if: Creating Send connector "Other".\n')
    assert list(SendConnector.objects.values_list("name", "enabled")) == [("To internet", True)]
    assert AdminAuditLogEntry.objects.count() == 1


# -- Remove-SendConnector --------------------------------------------------------------------------------

PROMPT = 'Are you sure you want to perform this action?\nRemoving Send connector "To internet".\n[Y] Yes'


def test_remove_asks_and_yes_removes(cmdlet, make_connector):
    make_connector("To internet")
    result = cmdlet('Remove-SendConnector "To internet"', stdin="Y\n")
    assert result.status == 0
    assert PROMPT in result.err
    assert not SendConnector.objects.exists()
    assert AdminAuditLogEntry.objects.filter(cmdlet="Remove-SendConnector", caller="tester").exists()


@pytest.mark.parametrize("answer", ["N\n", "", "maybe\n"])
def test_remove_declined_or_unanswered_keeps_the_connector(cmdlet, make_connector, answer):
    make_connector("To internet")
    result = cmdlet('Remove-SendConnector "To internet"', stdin=answer)
    assert result.status == 1
    assert PROMPT in result.err
    assert SendConnector.objects.exists()


def test_remove_without_prompt_and_what_if(cmdlet, make_connector):
    make_connector("To internet")
    assert (
        cmdlet('Remove-SendConnector "To internet" -WhatIf').out == 'What if: Removing Send connector "To internet".\n'
    )
    assert SendConnector.objects.exists()
    result = cmdlet('Remove-SendConnector "To internet" -Confirm:$false')
    assert (result.status, result.err) == (0, "")
    assert not SendConnector.objects.exists()


def test_remove_many_with_yes_to_all(cmdlet, make_connector):
    make_connector("A")
    make_connector("B")
    result = cmdlet("Get-SendConnector | Remove-SendConnector", stdin="A\n")
    assert result.status == 0
    assert result.err.count("Are you sure") == 1
    assert not SendConnector.objects.exists()


# -- credentials -----------------------------------------------------------------------------------------

BASIC = (
    "New-SendConnector -Name Relay -AddressSpaces * -DNSRoutingEnabled $false -SmartHosts relay.contoso.com "
    "-SmartHostAuthMechanism BasicAuth -AuthenticationCredential "
)


def assert_password_kept_secret(result, password):
    assert password not in result.out and password not in result.err
    assert not AdminAuditLogEntry.objects.filter(command_line__contains=password).exists()


def test_get_credential_prompts_for_user_name_and_password(cmdlet):
    result = cmdlet(BASIC + "(Get-Credential)", stdin="svc-relay\nS3cret!pw\n")
    assert result.status == 0, result.err
    assert "User name: " in result.err and "Password: " in result.err
    created = connector("Relay")
    assert (created.auth_username, created.get_password()) == ("svc-relay", "S3cret!pw")
    assert_password_kept_secret(result, "S3cret!pw")
    assert "-AuthenticationCredential (Get-Credential svc-relay)" in AdminAuditLogEntry.objects.get().command_line


def test_user_name_reads_the_password_from_stdin(cmdlet, make_connector):
    result = cmdlet(BASIC + "svc-relay", stdin="S3cret!pw\n")
    assert result.status == 0, result.err
    assert connector("Relay").get_password() == "S3cret!pw"
    result = cmdlet("Set-SendConnector Relay -AuthenticationCredential (Get-Credential other)", stdin="N3w pass\n")
    assert result.status == 0, result.err
    changed = connector("Relay")
    assert (changed.auth_username, changed.get_password()) == ("other", "N3w pass")
    assert_password_kept_secret(result, "N3w pass")


@pytest.mark.parametrize(
    "tail, stdin, message",
    [
        ("svc-relay", "", 'No password was read from standard input for the user "svc-relay".'),
        ("(Get-Credential)", "", "Get-Credential : No user name was entered."),
        ("(Get-Credential)", "svc\n", 'Get-Credential : No password was entered for the user "svc".'),
    ],
)
def test_missing_credential_input_saves_nothing(cmdlet, tail, stdin, message):
    result = cmdlet(BASIC + tail, stdin=stdin)
    assert result.status == 1
    assert message in result.err
    assert not SendConnector.objects.exists()


# -- properties sendconn stores and shows but doesn't act on ----------------------------------------------


def test_informational_properties_are_stored_and_shown(cmdlet):
    result = cmdlet(
        "New-SendConnector -Name 'To Office 365' -AddressSpaces contoso.mail.onmicrosoft.com "
        "-ConnectorType XPremises -CloudServicesMailEnabled $true -RequireOorg $false "
        "-TlsCertificateName '<I>CN=Contoso CA, DC=contoso, DC=com<S>CN=mail.contoso.com' "
        "-SourceIPAddress 192.0.2.10"
    )
    assert result.status == 0, result.err
    created = connector("To Office 365")
    assert (created.connector_type, created.cloud_services_mail_enabled, created.source_ip_address) == (
        "XPremises",
        True,
        "192.0.2.10",
    )
    assert created.tls_certificate_name == "<I>CN=Contoso CA, DC=contoso, DC=com<S>CN=mail.contoso.com"
    listed = cmdlet("Get-SendConnector 'To Office 365' | fl ConnectorType,Cloud*,SourceIPAddress,TlsCert*").out
    assert listed.splitlines() == [
        "",
        "ConnectorType            : XPremises",
        "CloudServicesMailEnabled : True",
        "SourceIPAddress          : 192.0.2.10",
        "TlsCertificateName       : <I>CN=Contoso CA, DC=contoso, DC=com<S>CN=mail.contoso.com",
        "",
    ]
    assert cmdlet("Set-SendConnector 'To Office 365' -TlsCertificateName $null -SourceIPAddress 0.0.0.0").status == 0
    assert (connector("To Office 365").tls_certificate_name, connector("To Office 365").source_ip_address) == (
        "",
        "0.0.0.0",
    )
    assert "-ConnectorType XPremises -CloudServicesMailEnabled $true" in AdminAuditLogEntry.objects.last().command_line


@pytest.mark.parametrize(
    "tail, message",
    [
        (
            "-ConnectorType Hybrid",
            "Cannot process argument transformation on parameter 'ConnectorType'. Cannot convert "
            'value "Hybrid" to type "TenantConnectorType".',
        ),
        (
            "-SourceIPAddress 192.0.2",
            "Cannot process argument transformation on parameter 'SourceIPAddress'. Cannot "
            'convert value "192.0.2" to type "System.Net.IPAddress". Error: "An invalid IP '
            'address was specified."',
        ),
        (
            "-SourceIPAddress 224.0.0.5",
            'The source IP address "224.0.0.5" isn\'t valid: a multicast or broadcast address',
        ),
        (
            "-TlsCertificateName CN=mail.contoso.com",
            'TlsCertificateName: "CN=mail.contoso.com" isn\'t a valid certificate name. Use <I>issuer<S>subject',
        ),
        (
            "-CloudServicesMailEnabled yes",
            "Cannot process argument transformation on parameter 'CloudServicesMailEnabled'.",
        ),
    ],
)
def test_informational_properties_are_validated_as_exchange_does(cmdlet, make_connector, tail, message):
    make_connector("To internet")
    result = cmdlet("Set-SendConnector 'To internet' " + tail)
    assert result.status == 1
    assert result.err.startswith("Set-SendConnector : ")
    assert message in result.err
    unchanged = connector("To internet")
    assert (unchanged.connector_type, unchanged.source_ip_address, unchanged.tls_certificate_name) == (
        "Default",
        "0.0.0.0",
        "",
    )


# -- the management command ------------------------------------------------------------------------------


def test_call_command(db, capsys):
    import io

    out, err = io.StringIO(), io.StringIO()
    call_command(
        "cmdlet",
        'New-SendConnector -Name "To internet" -AddressSpaces * -Internet',
        "--caller",
        "ops",
        stdin=io.StringIO(),
        stdout=out,
        stderr=err,
    )
    assert "To internet {SMTP:*;1}    True" in out.getvalue()
    assert AdminAuditLogEntry.objects.get().caller == "ops"
    with pytest.raises(SystemExit) as exit_:
        call_command("cmdlet", "Get-SendConnector Nope", stdin=io.StringIO(), stdout=out, stderr=err)
    assert exit_.value.code == 1
    assert "couldn't be found" in err.getvalue()


def test_manage_py_cmdlet_in_a_real_process(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL",)}
    env.update(
        SECRET_KEY="subprocess-test-key", DJANGO_SETTINGS_MODULE="tests.settings", SENDCONN_VAR_DIR=str(tmp_path)
    )

    def manage(*args, stdin=""):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert manage("migrate", "-v0").returncode == 0
    created = manage("cmdlet", 'New-SendConnector -Name "To internet" -AddressSpaces * -Internet')
    assert created.returncode == 0, created.stderr
    assert "To internet {SMTP:*;1}    True" in created.stdout
    listed = manage("cmdlet", "Get-SendConnector | ConvertTo-Json")
    assert listed.returncode == 0 and '"AddressSpaces": [\n    "SMTP:*;1"\n  ]' in listed.stdout
    failed = manage("cmdlet", "New-SendConnector -Name X -AddressSpaces * -Foo 1")
    assert failed.returncode == 1
    assert failed.stderr == "New-SendConnector : A parameter cannot be found that matches parameter name 'Foo'.\n"
    declined = manage("cmdlet", 'Remove-SendConnector "To internet"', stdin="")
    assert declined.returncode == 1 and "Are you sure you want to perform this action?" in declined.stderr
