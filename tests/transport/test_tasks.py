"""The delivery tasks end to end: smtpd, real Celery workers on a real Redis, a PostgreSQL database they share,
the test nsd and an aiosmtpd sink on 127.0.0.5 (implicit.test's address).

Mail goes in over SMTP to ``manage.py smtpd``; the wake-up goes to the worker's server queue; the worker claims,
sends and records. Everything this module starts is stopped at the end; Redis db 7 is this module's alone.
"""

import smtplib
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.peers.smtp import SmtpSink
from tests.peers.stack import TransportStack, empty_redis_db, fresh_database, query

pytest.importorskip("psycopg")  # the stack's database and broker
pytest.importorskip("redis")

pytestmark = pytest.mark.services

REDIS_URL = "redis://127.0.0.1:6379/7"
SINK_HOST = "127.0.0.5"  # implicit.test in the test zone
SENDER = "julia@contoso.test"


@pytest.fixture(scope="module")
def broker():
    with empty_redis_db(REDIS_URL) as client:
        yield client


@pytest.fixture(scope="module")
def database_url():
    with fresh_database("sendconn_tasks") as url:
        yield url


@pytest.fixture(scope="module")
def sink():
    with SmtpSink(SINK_HOST) as server:
        yield server


@pytest.fixture(scope="module")
def stack(tmp_path_factory, database_url, broker, nsd, sink):
    stack = TransportStack(
        tmp_path_factory.mktemp("tasks"),
        database_url=database_url,
        broker_url=REDIS_URL,
        SENDCONN_DNS_SERVERS=nsd.address,
        SENDCONN_SWEEP_INTERVAL=1,
    )
    stack.migrate()
    stack.cmdlet(f"New-SendConnector -Name 'To internet' -AddressSpaces * -Internet -Port {sink.port}")
    stack.smtpd = stack.start_smtpd()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def worker(stack):
    process = stack.start_worker("worker", queues="celery,server.ex01")
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def empty_sink(sink):
    sink.messages.clear()
    sink.sessions = 0


def statuses(database_url):
    return dict(query(database_url, "SELECT status, count(*) FROM transport_recipient GROUP BY status"))


def submit(smtpd, messages, connections=4):
    """Send ``messages`` — (recipients, subject) — to smtpd over a few parallel connections."""

    def send(chunk):
        with smtplib.SMTP(smtpd.host, smtpd.port, timeout=30) as client:
            for recipients, subject in chunk:
                client.sendmail(SENDER, recipients, f"From: {SENDER}\r\nSubject: {subject}\r\n\r\nHello\r\n")

    chunks = [messages[index::connections] for index in range(connections)]
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(send, chunks))


def wait_until(what, check, stack, timeout=45):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}\n{stack.logs()}")


def delivered_addresses(sink):
    return sorted(address for message in list(sink.messages) for address in message.rcpt_tos)


def test_mail_submitted_to_smtpd_is_delivered_by_the_worker(stack, worker, sink, database_url):
    messages = [([f"user{n}@implicit.test", f"copy{n}@implicit.test"], f"message {n}") for n in range(30)]

    submit(stack.smtpd, messages)

    expected = sorted(address for recipients, _ in messages for address in recipients)
    wait_until("every recipient at the sink", lambda: delivered_addresses(sink) == expected, stack)
    wait_until("every row Delivered", lambda: statuses(database_url).get("Delivered") == 60, stack)
    assert all(len(message.rcpt_tos) == 2 for message in sink.messages)  # one transaction per message
    assert sink.sessions < 30, "connections are reused"
    events = dict(query(database_url, "SELECT event_id, count(*) FROM transport_trackingevent GROUP BY event_id"))
    assert events == {"RECEIVE": 60, "SEND": 60}
    assert query(database_url, "SELECT count(*) FROM transport_recipient WHERE claimed_by <> ''") == [(0,)]


def test_wake_ups_go_only_to_a_source_server_of_the_connector(stack, worker, broker, database_url):
    stack.manage(
        "shell",
        "-c",
        "from sendconn.connectors.servers import register_transport_server as r; "
        "r('EX02', 'ex02.contoso.test', 'Default-First-Site-Name')",
    )
    stack.cmdlet("New-SendConnector -Name 'Via EX02' -AddressSpaces partial.test -SourceTransportServers EX02")

    submit(stack.smtpd, [(["kim@partial.test"], "for EX02")], connections=1)

    wait_until("the wake-up in EX02's queue", lambda: broker.llen("server.ex02") == 1, stack)
    time.sleep(1)  # the worker of EX01 must leave it alone
    assert statuses(database_url).get("Ready") == 1
    assert broker.llen("server.ex02") == 1


def test_lost_wake_ups_are_made_good_by_the_sweeper(stack, sink, broker, database_url):
    submit(stack.smtpd, [([f"late{n}@implicit.test"], "while no worker ran") for n in range(5)], connections=1)
    broker.flushdb()  # a Redis restart: the wake-ups (and their pending marks) are gone, the rows are not
    assert sink.messages == []

    worker = stack.start_worker("late-worker", queues="celery,server.ex01")
    beat = stack.start_beat()
    try:
        wait_until(
            "the sweeper's wake-up to deliver them",
            lambda: len([a for a in delivered_addresses(sink) if a.startswith("late")]) == 5,
            stack,
        )
    finally:
        beat.stop()
        worker.stop()


def test_two_workers_at_once_never_send_the_same_recipient(stack, sink, database_url):
    workers = [stack.start_worker(f"racer{n}", queues="celery,server.ex01") for n in range(2)]
    try:
        messages = [([f"race{n}@implicit.test"], f"race {n}") for n in range(200)]
        submit(stack.smtpd, messages, connections=4)
        expected = sorted(f"race{n}@implicit.test" for n in range(200))
        wait_until(
            "200 recipients at the sink",
            lambda: len([a for a in delivered_addresses(sink) if a.startswith("race")]) >= 200,
            stack,
        )
        time.sleep(1)  # a duplicate would arrive now
    finally:
        for process in workers:
            process.stop()

    assert [a for a in delivered_addresses(sink) if a.startswith("race")] == expected
    assert query(database_url, "SELECT count(*) FROM transport_recipient WHERE claimed_by <> ''") == [(0,)]


def test_a_suspended_queue_holds_mail_submitted_later_until_it_is_resumed(stack, worker, sink, database_url):
    submit(stack.smtpd, [(["first@implicit.test"], "before")], connections=1)
    wait_until("the first message at the sink", lambda: delivered_addresses(sink) == ["first@implicit.test"], stack)

    # The queue is empty now, and stays for QueueMaxIdleTime: it can be suspended before more mail comes.
    stack.cmdlet("Suspend-Queue -Identity implicit.test")
    submit(stack.smtpd, [([f"held{n}@implicit.test"], "while suspended") for n in range(3)], connections=1)
    time.sleep(2)
    assert delivered_addresses(sink) == ["first@implicit.test"]
    assert query(
        database_url, "SELECT count(*) FROM transport_recipient WHERE status = 'Ready' AND domain = 'implicit.test'"
    ) == [(3,)]
    assert "Suspended" in stack.cmdlet("Get-Queue implicit.test")

    stack.cmdlet("Resume-Queue -Identity implicit.test")  # wakes the worker
    wait_until("the held messages at the sink", lambda: len(delivered_addresses(sink)) == 4, stack)
    assert delivered_addresses(sink) == [
        "first@implicit.test",
        "held0@implicit.test",
        "held1@implicit.test",
        "held2@implicit.test",
    ]
