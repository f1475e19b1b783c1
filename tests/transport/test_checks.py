"""The transport's system checks: a server FQDN that servers on the internet would refuse in EHLO is reported."""
import pytest

from sendconn.transport.checks import server_fqdn_is_qualified


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
