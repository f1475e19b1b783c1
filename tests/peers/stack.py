"""sendconn's own processes as a peer: smtpd, Celery workers and beat, each a separate process sharing one database
and one broker, the way ``make run`` (and the compose file) run them. For the transport's end-to-end tests and the
delivery bench.

    stack = TransportStack(tmp_path, database_url=..., broker_url="redis://127.0.0.1:6379/7",
                           SENDCONN_DNS_SERVERS="127.0.0.1:5353")
    stack.migrate()
    stack.cmdlet("New-SendConnector -Name 'To internet' -AddressSpaces * -Internet -Port 2526")
    smtpd = stack.start_smtpd()          # smtpd.port
    worker = stack.start_worker()        # waits for "ready."
    web = stack.start_web()              # gunicorn on web.port, once /healthz answers
    ...
    stack.stop()                         # SIGTERM every process (SIGKILL what doesn't stop)

Without ``database_url`` / ``broker_url`` the stack is in embedded mode: SQLite and the filesystem broker under
its own var dir. ``fresh_database`` and ``empty_redis_db`` give the shared database and broker (skipping where
PostgreSQL or Redis isn't running), ``query`` reads what the processes wrote.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from . import free_port

REPO = Path(__file__).resolve().parents[2]
POSTGRES = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=5"


class Process:
    """A child process in its own session (so its pool children can be signalled with it), output in a file."""

    def __init__(self, name, args, env, log_dir):
        self.name = name
        self.args = args
        self.log = Path(log_dir) / f"{name}.log"
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                args,
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def pid(self):
        return self.popen.pid

    @property
    def running(self):
        return self.popen.poll() is None

    def output(self):
        return self.log.read_text(errors="replace")

    def tail(self, lines=40):
        return f"--- {self.name} ({' '.join(self.args[:4])}…) ---\n" + "\n".join(self.output().splitlines()[-lines:])

    def wait_for_output(self, text, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if not self.running:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}\n{self.tail()}")
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not print {text!r} within {timeout}s\n{self.tail()}")

    def kill(self):
        """SIGKILL the process and everything in its session (a machine that dies), at once."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(timeout=10)

    def stop(self, timeout=20):
        """SIGTERM (Celery's warm shutdown), then SIGKILL whatever is left of the session."""
        if self.running:
            try:
                self.popen.send_signal(signal.SIGTERM)
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


class TransportStack:
    def __init__(
        self,
        directory,
        *,
        database_url=None,
        broker_url=None,
        server_name="EX01",
        server_fqdn="ex01.contoso.test",
        **env,
    ):
        self.directory = Path(directory)
        self.var_dir = self.directory / "var"
        self.var_dir.mkdir(parents=True, exist_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SENDCONN_", "CELERY_", "DJANGO_"))}
        base.pop("DATABASE_URL", None)
        base.update(
            DJANGO_SETTINGS_MODULE="sendconn.settings",
            SECRET_KEY=secrets.token_urlsafe(40),
            SENDCONN_VAR_DIR=str(self.var_dir),
            SENDCONN_SERVER_NAME=server_name,
            SENDCONN_SERVER_FQDN=server_fqdn,
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )
        if database_url:
            base["DATABASE_URL"] = database_url
        if broker_url:
            base["CELERY_BROKER_URL"] = broker_url
        base.update({key: str(value) for key, value in env.items()})
        self.env = base
        self.processes = []

    def manage(self, *args, timeout=300):
        return manage(self.env, *args, timeout=timeout)

    def migrate(self):
        return self.manage("migrate", "--noinput", "-v", "0")

    def cmdlet(self, line):
        return self.manage("cmdlet", line)

    def start(self, name, args, **env):
        process = Process(name, args, {**self.env, **{k: str(v) for k, v in env.items()}}, self.directory)
        self.processes.append(process)
        return process

    def start_smtpd(self, host="127.0.0.1", **env):
        port = free_port(host)
        process = self.start("smtpd", [sys.executable, "manage.py", "smtpd", "--listen", f"{host}:{port}"], **env)
        process.wait_for_output("smtpd listening on")
        process.host, process.port = host, port
        return process

    def start_web(self, workers=1, threads=1, **env):
        """gunicorn serving the console on a free port (``web.port``, ``web.url``), once it answers /healthz."""
        port = free_port()
        process = self.start(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "sendconn.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--no-control-socket",
            ],
            **env,
        )
        process.port, process.url = port, f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                    return process
            except OSError:
                if time.monotonic() > deadline or not process.running:
                    raise RuntimeError(f"gunicorn didn't answer /healthz\n{process.tail()}") from None
                time.sleep(0.2)

    def start_worker(self, name="worker", concurrency=2, queues=None, pool="threads", cluster_events=False, **env):
        """A worker that waited for "ready."; ``cluster_events`` keeps gossip, mingle and heartbeats on, as in the
        Procfile (tests leave them off: start-up is quicker without them)."""
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "sendconn",
            "worker",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "--hostname",
            f"{name}-{secrets.token_hex(3)}@%h",
            "--loglevel",
            "INFO",
        ]
        if not cluster_events:
            args += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        if queues:
            args += ["-Q", queues]
        process = self.start(name, args, **env)
        process.wait_for_output(" ready.")
        return process

    def start_beat(self, **env):
        schedule = self.directory / "celerybeat-schedule"
        return self.start(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "sendconn",
                "beat",
                "--schedule",
                str(schedule),
                "--loglevel",
                "INFO",
            ],
            **env,
        )

    def stop(self):
        for process in reversed(self.processes):
            process.stop()

    def logs(self):
        return "\n".join(process.tail() for process in self.processes)


@contextmanager
def internet_stack(directory, sink, **kwargs):
    """A migrated TransportStack (``kwargs`` as TransportStack's) with the seed's Internet connector sending to
    ``sink``'s port; stopped after the block."""
    stack = TransportStack(directory, **kwargs)
    stack.migrate()
    stack.cmdlet(f"New-SendConnector -Name 'To internet' -AddressSpaces * -Internet -Port {sink.port}")
    try:
        yield stack
    finally:
        stack.stop()


def manage(env, *args, timeout=300):
    """``manage.py *args`` in a child process with ``env``; its output, or RuntimeError if it failed."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def require(service, check):
    """Skip where the service isn't running; in CI (.ci/run starts them) a missing service is a failure."""
    try:
        check()
    except Exception as error:  # noqa: BLE001 - any failure to connect means the service isn't there
        message = f"{service} is not answering on loopback: {error}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def fresh_database(prefix):
    """A fresh PostgreSQL database for the block, dropped after it; yields its DATABASE_URL."""
    import psycopg

    require("PostgreSQL", lambda: psycopg.connect(POSTGRES).close())
    url = create_database(prefix)
    try:
        yield url
    finally:
        drop_database(url)


@contextmanager
def empty_redis_db(url):
    """A Redis db (one per test module: nothing else uses it) flushed before and after the block; yields a client."""
    import redis

    client = redis.Redis.from_url(url)
    require("Redis", client.ping)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


def query(database_url, sql, *params):
    """The rows of ``sql`` on the stack's database."""
    import psycopg

    with psycopg.connect(database_url.replace("postgres://", "postgresql://")) as conn:
        return conn.execute(sql, params).fetchall()


def create_database(prefix):
    """A fresh PostgreSQL database on loopback (trust auth); returns its DATABASE_URL."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def drop_database(database_url):
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
