"""/healthz and /readyz: in-process on the test database, and served by gunicorn when the database or the broker
can't be reached or the migrations aren't applied (a closed port on loopback is a real unreachable peer)."""

import urllib.error
import urllib.request

import pytest

from tests.peers import free_port
from tests.peers.stack import TransportStack


def test_healthz_answers_without_a_login(client):
    response = client.get("/healthz")
    assert (response.status_code, response.content) == (200, b"ok\n")
    assert "no-cache" in response["Cache-Control"]


def test_readyz_is_ready_with_the_database_migrated_and_the_broker_reachable(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.content.decode().splitlines() == ["database: ok", "migrations: ok", "broker: ok"]


def get(port, path):
    """(status, body) of GET path, 5xx included."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def stacks(tmp_path):
    started = []

    def make(**kwargs):
        started.append(TransportStack(tmp_path / str(len(started)), **kwargs))
        return started[-1]

    yield make
    for stack in started:
        stack.stop()


@pytest.mark.services
def test_unreachable_database_is_not_ready_while_the_process_stays_healthy(stacks):
    dead = free_port()
    port = stacks(database_url=f"postgres://sendconn@127.0.0.1:{dead}/sendconn").start_web().port

    assert get(port, "/healthz") == (200, "ok\n")
    status, body = get(port, "/readyz")
    assert status == 503
    assert body.splitlines() == ["database: unreachable (OperationalError)", "migrations: not checked", "broker: ok"]


@pytest.mark.services
def test_unreachable_broker_is_not_ready(stacks):
    stack = stacks(broker_url=f"redis://127.0.0.1:{free_port()}/0")
    stack.migrate()
    port = stack.start_web().port

    status, body = get(port, "/readyz")
    assert status == 503
    assert body.splitlines()[:2] == ["database: ok", "migrations: ok"]
    assert body.splitlines()[2].startswith("broker: unreachable (")


@pytest.mark.services
def test_database_without_the_migrations_is_not_ready(stacks):
    port = stacks().start_web().port  # a fresh SQLite file: nothing migrated

    status, body = get(port, "/readyz")
    assert status == 503
    database, migrations, broker = body.splitlines()
    assert (database, broker) == ("database: ok", "broker: ok")
    assert migrations.startswith("migrations: ") and migrations.endswith(" not applied")


@pytest.mark.services
def test_readyz_turns_ready_once_the_migrations_are_applied(stacks):
    stack = stacks()
    port = stack.start_web().port
    assert get(port, "/readyz")[0] == 503

    stack.migrate()

    assert get(port, "/readyz") == (200, "database: ok\nmigrations: ok\nbroker: ok\n")
