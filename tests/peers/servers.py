"""Private Redis and PostgreSQL servers, for the tests that restart them (never the machine's shared ones).

    with PrivateRedis(tmp_path) as redis_server:       # redis_server.url: redis://127.0.0.1:<port>/0
        ...
        redis_server.restart()                         # stop (no data saved) and start on the same port

    with PrivatePostgres() as postgres:                # postgres.url: postgres://postgres@127.0.0.1:<port>/postgres
        postgres.stop(); ...; postgres.start()

Both listen on 127.0.0.1 and a free port, keep everything in a folder of their own and are stopped by their own
pid (tooling-notes §3, §8). A stopped server is checked by its port: zombies linger under this machine's PID 1.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from . import Peer, free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def port_answers(port, host="127.0.0.1"):
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def wait_until(what, condition, timeout=20):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


class PrivateRedis(Peer):
    def __init__(self, directory):
        if not os.path.exists(REDIS_SERVER):
            pytest.skip("redis-server is not installed")
        self.directory = Path(directory) / "redis"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(f"Redis on port {self.port}", lambda: port_answers(self.port))

    def stop(self):
        """SIGTERM and wait: with --save '' nothing is kept, as after a crash of an in-memory broker."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None
        wait_until(f"Redis on port {self.port} to stop", lambda: not port_answers(self.port))

    def restart(self):
        self.stop()
        self.start()


def postgres_bin(program):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"))
    if not found:
        pytest.skip("PostgreSQL's server programs are not installed")
    return found[-1]


class PrivatePostgres(Peer):
    """A throwaway cluster (trust authentication) owned by the postgres user when run as root (initdb refuses root)."""

    def __init__(self):
        # Its own folder in /tmp: the postgres user can't enter pytest's tmp_path (root's, mode 700).
        self.directory = Path(tempfile.mkdtemp(prefix="sendconn-postgres-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        self.as_owner = []
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        self.run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")

    def run(self, program, *args):
        result = subprocess.run(
            [*self.as_owner, postgres_bin(program), *map(str, args)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode:
            raise RuntimeError(f"{program} failed: {result.stdout}{result.stderr}")

    def start(self):
        self.run(
            "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.directory / "postgres.log",
            "-w",
            "-o",
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def stop(self):
        """A fast shutdown: PostgreSQL disconnects every client, as when the server is restarted."""
        self.run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        wait_until(f"PostgreSQL on port {self.port} to stop", lambda: not port_answers(self.port))

    def create_database(self, name):
        """A new database in the cluster; returns its DATABASE_URL."""
        import psycopg

        with psycopg.connect(self.url.replace("postgres://", "postgresql://"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def __exit__(self, *exc_info):
        if port_answers(self.port):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
