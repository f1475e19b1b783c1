"""Claims: the rounds of claims of many next hops, the look for new rows, and the claims of processes that are
gone (a worker starting on the same host releases them at once)."""

import os
import socket
import subprocess
import sys

import pytest
from django.db import connection

from sendconn.transport.claims import (
    claim_due_many,
    claim_token,
    holder_process,
    next_hops_with_rows_after,
    release_claims_of_dead_processes,
)
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


def test_one_round_claims_for_many_next_hops_up_to_each_limit(make_connector, woken):
    internet = make_connector()
    for address in ["a@fabrikam.test", "b@fabrikam.test", "c@tailspin.test"]:
        queue_message("julia@contoso.test", [address], b"Subject: x\r\n\r\nx\r\n")
    fabrikam, tailspin, nobody = (internet.pk, "fabrikam.test"), (internet.pk, "tailspin.test"), (internet.pk, "x.test")

    claimed = claim_due_many({fabrikam: 1, tailspin: 5, nobody: 5}, "tester")

    assert {key: [row.address for row in rows] for key, rows in claimed.items()} == {
        fabrikam: ["a@fabrikam.test"],
        tailspin: ["c@tailspin.test"],
    }
    assert claimed[fabrikam][0].message.sender == "julia@contoso.test"  # loaded with its message
    assert claim_due_many({fabrikam: 5, tailspin: 5}, "other")[fabrikam][0].address == "b@fabrikam.test"


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's query planner")
def test_the_claim_reads_a_next_hops_due_rows_through_its_index_not_every_row_of_the_connector(make_connector):
    internet = make_connector()
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"EXPLAIN QUERY PLAN SELECT {quote('id')} FROM {quote(Recipient._meta.db_table)} "
            f"WHERE {quote('connector_id')} = %s AND {quote('next_hop_domain')} = %s AND {quote('status')} IN (%s, %s) "
            f"AND {quote('next_attempt_at')} <= %s AND {quote('claimed_by')} = '' ORDER BY {quote('id')} LIMIT 100",
            [internet.pk, "fabrikam.test", "Ready", "Retry", "2026-01-01 00:00:00"],
        )
        plan = " ".join(str(step[-1]) for step in cursor.fetchall())

    assert "USING INDEX recipient_next_hop_due" in plan


def test_the_next_hops_of_rows_newer_than_the_last_look(make_connector, woken):
    internet = make_connector()
    newest, next_hops = next_hops_with_rows_after(None)
    assert next_hops == set()
    queue_message("julia@contoso.test", ["a@fabrikam.test", "b@tailspin.test"], b"Subject: x\r\n\r\nx\r\n")

    newer, next_hops = next_hops_with_rows_after(newest)

    assert next_hops == {(internet.pk, "fabrikam.test"), (internet.pk, "tailspin.test")}
    assert next_hops_with_rows_after(newer) == (newer, set())
