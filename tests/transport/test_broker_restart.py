"""A Redis restart mid-run: the worker rides it out, and every message accepted before, during and after it is
delivered, by the same worker process. Real processes: a private Redis (restarted; never the shared one),
PostgreSQL, smtpd, a Celery worker (prefork, and the threads pool) with gossip, mingle and heartbeats on as in the
Procfile, beat, nsd, an aiosmtpd sink.

The restart comes while the worker holds unacknowledged wake-ups (acks_late): celery 5.7.0's worker died of
exactly that (``Unrecoverable error: AttributeError("'NoneType' object has no attribute 'hostname'")``).
"""

import smtplib
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.peers.stack import fresh_database, internet_stack, query

pytest.importorskip("psycopg")
pytest.importorskip("redis")

pytestmark = pytest.mark.services

MESSAGES_BEFORE, MESSAGES_AFTER = 200, 20
RESTART_AFTER = 20  # delivered at the sink when Redis goes down


@pytest.fixture
def database_url():
    with fresh_database("sendconn_broker_restart") as url:
        yield url


@pytest.fixture
def sink(implicit_sink):
    return implicit_sink


@pytest.fixture
def stack(tmp_path, database_url, redis_server, nsd, sink):
    with internet_stack(
        tmp_path,
        sink,
        database_url=database_url,
        broker_url=redis_server.url,
        SENDCONN_DNS_SERVERS=nsd.address,
        SENDCONN_SWEEP_INTERVAL=1,
    ) as stack:
        yield stack


def submit(smtpd, numbers):
    with smtplib.SMTP(smtpd.host, smtpd.port, timeout=60) as client:
        for number in numbers:
            client.sendmail(
                "julia@contoso.test", [f"user{number}@implicit.test"], f"Subject: message {number}\r\n\r\nHello\r\n"
            )


def wait_for_sink(sink, count, stack, timeout=60):
    deadline = time.monotonic() + timeout
    while len(sink.recipients()) < count:
        assert time.monotonic() < deadline, f"{count} recipients never arrived\n{stack.logs()}"
        time.sleep(0.02)


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_the_worker_rides_out_a_redis_restart(stack, redis_server, sink, database_url, pool):
    smtpd = stack.start_smtpd()
    worker = stack.start_worker(pool=pool, queues="celery,server.ex01", cluster_events=True)
    beat = stack.start_beat()
    submitting = ThreadPoolExecutor(1).submit(submit, smtpd, range(MESSAGES_BEFORE))

    wait_for_sink(sink, RESTART_AFTER, stack)
    redis_server.restart()
    submitting.result()
    submit(smtpd, range(MESSAGES_BEFORE, MESSAGES_BEFORE + MESSAGES_AFTER))

    wait_for_sink(sink, MESSAGES_BEFORE + MESSAGES_AFTER, stack)
    assert sink.recipients() == {f"user{number}@implicit.test" for number in range(MESSAGES_BEFORE + MESSAGES_AFTER)}
    deadline = time.monotonic() + 30  # the sink can be ahead of the delivery records
    while query(database_url, "SELECT count(*) FROM transport_recipient WHERE status <> 'Delivered'") != [(0,)]:
        assert time.monotonic() < deadline, query(
            database_url, "SELECT address, status, claimed_by FROM transport_recipient WHERE status <> 'Delivered'"
        )
        time.sleep(0.2)
    assert worker.running and beat.running, stack.logs()
    assert "Connection to broker lost" in worker.output()  # the restart was noticed, and ridden out
