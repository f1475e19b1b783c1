"""Claims of processes that are gone: a worker starting on the same host releases them at once."""

import os
import socket
import subprocess
import sys

import pytest

from sendconn.transport.claims import claim_token, holder_process, release_claims_of_dead_processes
from sendconn.transport.models import Recipient
from sendconn.transport.queueing import queue_message

pytestmark = pytest.mark.django_db


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_claim_token_names_its_process():
    assert holder_process(claim_token()) == (socket.gethostname(), os.getpid())
    assert holder_process("EX01/mail-2.contoso.test:4242/0123abcd") == ("mail-2.contoso.test", 4242)
    assert holder_process("tests") is None


def test_claims_of_dead_processes_on_this_host_are_released_and_others_kept(make_connector, woken):
    make_connector()
    host = socket.gethostname()
    holders = {
        "dead": f"EX01/{host}:{dead_pid()}/aaaaaaaaaaaa",
        "alive": claim_token(),
        "other host": f"EX01/mail-2.contoso.test:{dead_pid()}/bbbbbbbbbbbb",
        "other server": f"EX02/{host}:{dead_pid()}/cccccccccccc",
    }
    for name, token in holders.items():
        message = queue_message(
            "julia@contoso.test", [f"{name.replace(' ', '')}@fabrikam.test"], b"Subject: x\r\n\r\nx\r\n"
        )
        Recipient.objects.filter(message=message).update(claimed_by=token)

    assert release_claims_of_dead_processes("EX01") == 1

    claimed = dict(Recipient.objects.values_list("address", "claimed_by"))
    assert claimed == {
        "dead@fabrikam.test": "",
        "alive@fabrikam.test": holders["alive"],
        "otherhost@fabrikam.test": holders["other host"],  # another machine: its own start-up, or the timeout
        "otherserver@fabrikam.test": holders["other server"],
    }
