"""Validate-OutboundConnector.

Exchange Online's cmdlet tests an outbound connector; here it verifies delivery through a Send connector:
the same run as the console's "Verify delivery" button, but run in this process while the shell waits.
"""

from sendconn.verification.models import VerificationStatus
from sendconn.verification.runner import run_verification
from sendconn.verification.services import start_verification

from ..output import Record, render
from ..registry import CmdletError, Parameter, cmdlet, text_list
from .connectors import IDENTITY, find_connector

TABLE = ("Task", "Status", "Details")


def step_records(run):
    """One record per step; the task names the next hop when the run has several."""
    steps = list(run.steps.all())
    several_hops = len({step.next_hop for step in steps}) > 1
    return [
        Record(
            {
                "Task": f"{step.name} ({step.next_hop})" if several_hops else step.name,
                "Status": step.status,
                "Details": step.summary,
                "NextHop": step.next_hop,
                "Duration": str(step.duration) if step.duration is not None else None,
            },
            table=TABLE,
        )
        for step in steps
    ]


@cmdlet("Validate-OutboundConnector", IDENTITY, Parameter("Recipients", text_list, mandatory=True))
def validate_outbound_connector(invocation):
    identity = invocation.params["Identity"]
    connector = find_connector(identity)
    started = start_verification(invocation.session.caller, connector, invocation.params["Recipients"], run_here=True)
    run = run_verification(started.pk)
    if run is None:  # the connector was removed meanwhile, and its runs with it
        raise CmdletError(f"The operation couldn't be performed because object '{identity}' couldn't be found.")
    records = step_records(run)
    if run.status == VerificationStatus.SUCCEEDED:
        return records
    for line in render(records):  # the table first, then the error on stderr and exit status 1
        invocation.session.write(line)
    raise CmdletError(f"{run.error} {run.hint}".strip())
