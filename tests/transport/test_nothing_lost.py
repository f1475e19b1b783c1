"""Nothing is lost when a worker dies: SIGKILL the worker (its process and every session of its delivery engine) in
the middle of a 500-message run, start a new worker, and every recipient still ends Delivered — at the sink exactly
once, except at most the recipients the dead worker had sent and not yet recorded (their second copy is the price
of never losing one, RFC 5321 §6.1): fewer than MAX_UNRECORDED finished ones, and one per session that was in the
middle of a message. The successor, on the same host, releases the dead worker's claims at start-up, long before
SENDCONN_CLAIM_TIMEOUT. The test prints how many were sent twice.

Real processes throughout: smtpd, Celery workers and beat on Redis (db 8), PostgreSQL, nsd, an aiosmtpd sink.
"""

import smtplib
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from sendconn.transport.engine import MAX_UNRECORDED
from tests.peers.stack import empty_redis_db, fresh_database, internet_stack, query

pytest.importorskip("psycopg")  # the stack's database and broker
pytest.importorskip("redis")

pytestmark = pytest.mark.services

REDIS_URL = "redis://127.0.0.1:6379/8"
MESSAGES = 500
KILL_AFTER = 100  # delivered at the sink when the worker is killed
PER_DOMAIN = 10  # MaxPerDomainOutboundConnections: sessions in the middle of a message when the worker dies


@pytest.fixture
def broker():
    with empty_redis_db(REDIS_URL) as client:
        yield client


@pytest.fixture
def database_url():
    with fresh_database("sendconn_nothing_lost") as url:
        yield url


@pytest.fixture
def sink(implicit_sink):
    return implicit_sink


@pytest.fixture
def stack(tmp_path, database_url, broker, nsd, sink):
    with internet_stack(
        tmp_path,
        sink,
        database_url=database_url,
        broker_url=REDIS_URL,
        SENDCONN_DNS_SERVERS=nsd.address,
        SENDCONN_SWEEP_INTERVAL=1,
    ) as stack:
        stack.cmdlet(f"Set-TransportService EX01 -MaxPerDomainOutboundConnections {PER_DOMAIN}")
        yield stack


def received(sink):
    return Counter(address for message in list(sink.messages) for address in message.rcpt_tos)


def submit_all(smtpd, connections=4):
    def send(numbers):
        with smtplib.SMTP(smtpd.host, smtpd.port, timeout=60) as client:
            for number in numbers:
                client.sendmail(
                    "julia@contoso.test", [f"user{number}@implicit.test"], f"Subject: message {number}\r\n\r\nHello\r\n"
                )

    return ThreadPoolExecutor(connections).map(send, [range(i, MESSAGES, connections) for i in range(connections)])


def test_killing_a_worker_mid_run_loses_nothing(stack, sink, database_url, capsys):
    smtpd = stack.start_smtpd()
    worker = stack.start_worker("doomed", queues="celery,server.ex01")
    submitting = submit_all(smtpd)

    deadline = time.monotonic() + 30
    while sum(received(sink).values()) < KILL_AFTER:
        assert time.monotonic() < deadline, f"no delivery started\n{stack.logs()}"
        time.sleep(0.005)
    worker.kill()
    at_kill = sum(received(sink).values())
    in_flight = {
        address for (address,) in query(database_url, "SELECT address FROM transport_recipient WHERE claimed_by <> ''")
    }
    list(submitting)  # smtpd goes on accepting while no worker runs

    stack.start_worker("successor", queues="celery,server.ex01")
    stack.start_beat()
    deadline = time.monotonic() + 45
    while query(database_url, "SELECT count(*) FROM transport_recipient WHERE status = 'Delivered'") != [(MESSAGES,)]:
        assert time.monotonic() < deadline, f"not everything was delivered\n{stack.logs()}"
        time.sleep(0.2)
    time.sleep(1)  # a late duplicate would arrive now

    counts = received(sink)
    twice = {address for address, count in counts.items() if count > 1}
    report = (
        f"nothing lost: {MESSAGES} recipients, worker killed after {at_kill} deliveries with {len(in_flight)} "
        f"claimed (sent or not, none recorded); {len(twice)} delivered twice"
    )
    with capsys.disabled():
        print(f"\n{report}")
    assert set(counts) == {f"user{number}@implicit.test" for number in range(MESSAGES)}, report
    assert max(counts.values()) <= 2, report
    assert twice <= in_flight, report
    assert len(twice) <= MAX_UNRECORDED + PER_DOMAIN, report
    assert query(database_url, "SELECT count(*) FROM transport_recipient WHERE claimed_by <> ''") == [(0,)]
    released = "Released" in "".join(process.output() for process in stack.processes if process.name == "successor")
    assert released or not in_flight, "the dead worker's claims were released by its successor"
