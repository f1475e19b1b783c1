"""The transport's system checks: a server FQDN that servers on the internet would refuse in EHLO is reported,
once when `make run` starts."""

import re
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class

from sendconn.transport.checks import server_fqdn_is_qualified

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("fqdn", ["localhost", "vm", "localhost.localdomain", ""])
def test_an_unqualified_server_fqdn_is_a_warning(settings, fqdn):
    settings.SENDCONN_SERVER_FQDN = fqdn
    [warning] = server_fqdn_is_qualified(None)
    assert warning.id == "sendconn.W001"
    assert f"SENDCONN_SERVER_FQDN is '{fqdn}'" in warning.msg
    assert "mail01.contoso.com" in warning.hint


@pytest.mark.parametrize("fqdn", ["ex01.contoso.com", "mail.fabrikam.test."])
def test_a_fully_qualified_server_fqdn_passes(settings, fqdn):
    settings.SENDCONN_SERVER_FQDN = fqdn
    assert server_fqdn_is_qualified(None) == []


def runs_system_checks(command_line):
    """Whether ``python manage.py <command> …`` prints the system checks' warnings when it starts."""
    name, *arguments = command_line.split()
    if "--skip-checks" in arguments:
        return False
    command = load_command_class(get_commands()[name], name)
    return name == "migrate" or command.requires_system_checks == "__all__"  # migrate checks by itself


def test_make_run_prints_the_warnings_once():
    """`make run` runs migrate, collectstatic and bootstrap, then the Procfile's processes: one of them checks."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\nrun:") : makefile.index("\ntest:")]
    procfile = (ROOT / "Procfile").read_text()
    started = [
        match.group(1) for text in (recipe, procfile) for match in re.finditer(r"python manage\.py ([^\n#]+)", text)
    ]
    assert [line.split()[0] for line in started] == ["migrate", "collectstatic", "bootstrap", "runall", "smtpd"]
    assert [line.split()[0] for line in started if runs_system_checks(line)] == ["migrate"]
