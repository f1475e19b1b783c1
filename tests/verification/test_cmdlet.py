"""Validate-OutboundConnector through the shell's runner: the step table, and the exit status on failure."""

import io
import json

import pytest

from sendconn.connectors.services import Credential
from sendconn.shell.runner import run_line
from sendconn.verification.models import VerificationRun
from tests.peers import free_port


@pytest.fixture(autouse=True)
def quick(settings, dns_settings):
    settings.SENDCONN_VERIFY_TIMEOUT = 0.5


def cmdlet(line):
    out, err = io.StringIO(), io.StringIO()
    status = run_line(line, stdin=io.StringIO(""), stdout=out, stderr=err, caller="tester")
    return status, out.getvalue(), err.getvalue()


def table(out):
    """The default table's rows as {column: text}, cut where the header's columns start."""
    lines = out.splitlines()
    header = lines[1]
    starts = [header.index(column) for column in header.split()]
    bounds = list(zip(starts, starts[1:] + [None], strict=True))
    return [
        {column: line[start:end].strip() for column, (start, end) in zip(header.split(), bounds, strict=True)}
        for line in lines[3:]
        if line.strip()
    ]


def test_a_passing_connector_prints_the_step_table_and_exits_0(make_connector, sink):
    server = sink("127.0.0.5")
    make_connector("To internet", port=server.port)

    status, out, err = cmdlet(
        'Validate-OutboundConnector -Identity "To internet" -Recipients julia@implicit.test,kim@implicit.test'
    )

    assert (status, err) == (0, "")
    rows = table(out)
    assert [(row["Task"], row["Status"]) for row in rows] == [
        ("Resolve", "Succeeded"),
        ("Connection", "Succeeded"),
        ("SMTP EHLO", "Succeeded"),
        ("TLS", "Skipped"),
        ("Authentication", "Skipped"),
        ("Send test email", "Succeeded"),
    ]
    assert rows[0]["Details"] == "MX records of implicit.test:"
    assert rows[5]["Details"] == "Accepted for 2 recipient(s) by implicit.test: 250 2.6.0 Queued mail for delivery"
    assert server.messages[0].rcpt_tos == ["julia@implicit.test", "kim@implicit.test"]
    run = VerificationRun.objects.get()
    assert (run.requested_by, run.server_name, run.status) == ("tester", "EX01", "Succeeded")


def test_a_failing_connector_prints_the_table_then_the_error_and_exits_1(make_connector, sink, tls_certs):
    server = sink("127.0.0.7", tls_cert=tls_certs.valid, auth={"relay": "right"})
    make_connector(
        "To relay",
        dns_routing_enabled=False,
        smart_hosts=["127.0.0.7"],
        port=server.port,
        smart_host_auth_mechanism="BasicAuth",
        authentication_credential=Credential("relay", "wrong"),
    )

    status, out, err = cmdlet("Validate-OutboundConnector 'To relay' -Recipients julia@fabrikam.test")

    assert status == 1
    assert [row["Status"] for row in table(out)] == [
        "Succeeded",
        "Succeeded",
        "Succeeded",
        "Succeeded",
        "Failed",
        "Skipped",
    ]
    assert table(out)[4]["Details"] == "450 4.7.8 Authentication failed [535 5.7.8 Authentication credentials invalid]"
    assert err.startswith(
        "Validate-OutboundConnector : 450 4.7.8 Authentication failed [535 5.7.8 Authentication "
        "credentials invalid] Check the smart host user name and password"
    )
    assert "wrong" not in out + err


def test_refused_connection_exits_1(make_connector):
    make_connector("To relay", dns_routing_enabled=False, smart_hosts=["127.0.0.7"], port=free_port("127.0.0.7"))

    status, out, err = cmdlet("Validate-OutboundConnector 'To relay' -Recipients julia@fabrikam.test")

    assert status == 1
    assert table(out)[1] == {"Task": "Connection", "Status": "Failed", "Details": "450 4.4.316 Connection refused"}
    assert err.startswith("Validate-OutboundConnector : 450 4.4.316 Connection refused Nothing accepts connections")


def test_output_objects_can_be_piped(make_connector, sink):
    server = sink("127.0.0.5")
    make_connector("To internet", port=server.port)

    status, out, err = cmdlet(
        "Validate-OutboundConnector 'To internet' -Recipients julia@implicit.test | ConvertTo-Json"
    )

    assert status == 0
    steps = json.loads(out)
    assert [step["Status"] for step in steps] == [
        "Succeeded",
        "Succeeded",
        "Succeeded",
        "Skipped",
        "Skipped",
        "Succeeded",
    ]
    assert steps[0]["NextHop"] == "implicit.test"


def test_the_connector_can_be_piped_in(make_connector, sink):
    server = sink("127.0.0.5")
    make_connector("To internet", port=server.port)

    status, out, err = cmdlet(
        "Get-SendConnector 'To internet' | Validate-OutboundConnector -Recipients julia@implicit.test"
    )

    assert (status, err) == (0, "")
    assert len(server.messages) == 1


def test_bad_input_is_refused_before_anything_runs(make_connector):
    make_connector("To internet")

    assert cmdlet("Validate-OutboundConnector Nowhere -Recipients julia@implicit.test")[2] == (
        "Validate-OutboundConnector : The operation couldn't be performed because object 'Nowhere' couldn't be found.\n"
    )
    status, out, err = cmdlet("Validate-OutboundConnector 'To internet' -Recipients julia,kim@implicit.test")
    assert (status, out) == (1, "")
    assert err == "Validate-OutboundConnector : 'julia' isn't a valid SMTP address.\n"
    assert cmdlet("Validate-OutboundConnector 'To internet'")[2].startswith(
        "Validate-OutboundConnector : Cannot process command because of one or more missing mandatory parameters: "
        "Recipients."
    )
    assert not VerificationRun.objects.exists()
