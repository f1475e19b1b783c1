"""A PostgreSQL restart mid-run: nothing accepted is lost, smtpd answers 4xx (not a hang, not a 5xx) while the
database is away, the console shows its "database can't be reached" page (503, no traceback) and recovers by
itself, and the worker, beat, smtpd and web processes all ride it out.

Real processes: a private PostgreSQL cluster (stopped and started again; never the shared one), a private Redis,
gunicorn, smtpd, a Celery worker (prefork, and the threads pool), beat, nsd, an aiosmtpd sink.
"""

import re
import smtplib
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.peers.servers import PrivatePostgres
from tests.peers.stack import internet_stack, query

pytest.importorskip("psycopg")
pytest.importorskip("redis")
requests = pytest.importorskip("requests")

pytestmark = pytest.mark.services

MESSAGES, STOP_AFTER = 200, 20  # the database stops when STOP_AFTER recipients have arrived at the sink
OUTAGE_SECONDS = 6
CLAIM_TIMEOUT = 3  # seconds: claims a task lost with the database are released this soon


@pytest.fixture
def postgres():
    with PrivatePostgres() as server:
        yield server


@pytest.fixture
def database_url(postgres):
    return postgres.create_database("sendconn")


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
        SENDCONN_CLAIM_TIMEOUT=CLAIM_TIMEOUT,
        DEBUG="false",
    ) as stack:
        yield stack


def sign_in(web, password):
    session = requests.Session()
    page = session.get(f"{web.url}/login/", timeout=10).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = session.post(
        f"{web.url}/login/", timeout=10, data={"csrfmiddlewaretoken": token, "username": "admin", "password": password}
    )
    assert response.url.endswith("/dashboard/"), response.text
    return session


def submit(smtpd, number):
    """Submit one message the way a client does: the final reply code (250 when accepted)."""
    try:
        with smtplib.SMTP(smtpd.host, smtpd.port, timeout=30) as client:
            client.sendmail(
                "julia@contoso.test", [f"user{number}@implicit.test"], f"Subject: message {number}\r\n\r\nHello\r\n"
            )
        return 250
    except smtplib.SMTPRecipientsRefused as error:
        return next(iter(error.recipients.values()))[0]
    except (smtplib.SMTPResponseException, smtplib.SMTPConnectError) as error:
        return error.smtp_code


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_database_restart_loses_nothing_and_every_process_rides_it_out(stack, postgres, sink, database_url, pool):
    password = re.search(r"with password: (\S+)", stack.manage("bootstrap")).group(1)
    web = stack.start_web(threads=2)
    console = sign_in(web, password)
    smtpd = stack.start_smtpd()
    worker = stack.start_worker(pool=pool, queues="celery,server.ex01", cluster_events=True)
    beat = stack.start_beat()
    replies = {}
    submitting = ThreadPoolExecutor(1).submit(
        lambda: [replies.setdefault(n, submit(smtpd, n)) for n in range(MESSAGES)]
    )
    deadline = time.monotonic() + 60
    while len(sink.recipients()) < STOP_AFTER:
        assert time.monotonic() < deadline, f"no delivery started\n{stack.logs()}"
        time.sleep(0.02)

    postgres.stop()
    during_outage = submit(smtpd, MESSAGES)
    page = console.get(f"{web.url}/dashboard/", timeout=30)
    time.sleep(OUTAGE_SECONDS)
    postgres.start()
    submitting.result(timeout=120)

    assert 400 <= during_outage < 500, f"smtpd answered {during_outage} while the database was away\n{stack.logs()}"
    assert page.status_code == 503 and "The database can't be reached" in page.text, page.text
    assert "Traceback" not in page.text and page.headers["Retry-After"]
    refused = {number: code for number, code in replies.items() if code != 250}
    assert all(400 <= code < 500 for code in refused.values()), refused
    deadline = time.monotonic() + 30
    while console.get(f"{web.url}/dashboard/", timeout=30).status_code != 200:
        assert time.monotonic() < deadline, f"the console did not recover\n{web.tail()}"
        time.sleep(0.5)

    for number in [*refused, MESSAGES]:  # the client tries again later, as after any 4xx
        assert submit(smtpd, number) == 250, stack.logs()
    everyone = {f"user{number}@implicit.test" for number in range(MESSAGES + 1)}
    deadline = time.monotonic() + 90
    while sink.recipients() != everyone:
        assert time.monotonic() < deadline, (
            f"{len(everyone - sink.recipients())} never arrived, {len(refused)} refused during the outage\n"
            f"{stack.logs()}"
        )
        time.sleep(0.2)
    deadline = time.monotonic() + 30  # the sink can be ahead of the delivery records
    while query(database_url, "SELECT count(*) FROM transport_recipient WHERE status <> 'Delivered'") != [(0,)]:
        assert time.monotonic() < deadline, query(
            database_url, "SELECT address, status, claimed_by FROM transport_recipient WHERE status <> 'Delivered'"
        )
        time.sleep(0.2)
    for process in (web, smtpd, worker, beat):
        assert process.running, f"{process.name} exited\n{process.tail()}"
