"""`make run`'s supervisor: starts every process of the Procfile, restarts the ones that exit, stops them all on
Ctrl+C / SIGTERM.

Each process runs in its own session and gets SIGTERM on its main PID only, so Celery does a warm shutdown
(its pool children finish the deliveries in hand) and gunicorn a graceful one. Whatever is still running
after the grace period, or after a second Ctrl+C, is killed with its whole process group.

A process that exits (a crash, a kill -9, the OOM killer) is restarted after a back-off delay: 1 s, doubled at
each exit that follows a short run, up to a minute; a process that ran RESET_AFTER seconds starts again from 1 s.
What remains of its process group (a dead Celery's pool children, gunicorn's workers) is killed first. The
processes' states are written to $SENDCONN_VAR_DIR/processes.json for the dashboard (sendconn.ops.process_status).
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sendconn.observability import metrics

from ... import process_status
from ...process_status import ProcessState, ProcessStatus

GRACE_SECONDS = 30  # Celery's warm shutdown waits for the deliveries in hand
FIRST_RESTART_DELAY = 1.0  # seconds
MAX_RESTART_DELAY = 60.0
RESET_AFTER = 60.0  # seconds of running after which an exit is a fresh failure again (back to the first delay)
PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


def read_procfile(path):
    """[(name, command)] from ``name: command`` lines; other lines (comments, blanks) are ignored."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as error:
        raise CommandError(f"Can't read {path}: {error.strerror}") from None
    entries = [match.groups() for match in map(PROCFILE_LINE.match, lines) if match]
    if not entries:
        raise CommandError(f"{path} names no process (expected lines like 'web: gunicorn sendconn.wsgi').")
    return entries


def describe_exit(returncode):
    return f"killed by {signal.Signals(-returncode).name}" if returncode < 0 else f"exit status {returncode}"


def now():
    return datetime.now(UTC)


class Supervised:
    """One Procfile process: the running child, or when it will be started again."""

    def __init__(self, name, command):
        self.name, self.command = name, command
        self.child = None
        self.started = 0.0  # monotonic
        self.failures = 0  # exits in a row, each after less than RESET_AFTER seconds of running
        self.restart_due = None  # monotonic, while waiting to restart
        self.status = ProcessStatus(name, ProcessState.RUNNING)

    def restart_delay(self):
        return min(FIRST_RESTART_DELAY * 2 ** (self.failures - 1), MAX_RESTART_DELAY)


class Command(BaseCommand):
    help = (
        "Start the Procfile's processes (web, worker, beat…), restart any that exits, stop them all on "
        "Ctrl+C or SIGTERM."
    )
    requires_system_checks = []  # `make run`'s migrate checked once before; the Procfile's processes skip them

    def add_arguments(self, parser):
        parser.add_argument("--procfile", default=str(settings.BASE_DIR / "Procfile"))

    def handle(self, *args, procfile, **options):
        processes = [Supervised(name, command) for name, command in read_procfile(procfile)]
        # Counters start again with the processes: prometheus_client's multiprocess folder must start empty.
        metrics.reset_directory(settings.SENDCONN_METRICS_DIR)
        self.width = max(len("runall"), *(len(process.name) for process in processes))
        self.output_lock = threading.Lock()
        self.signals: list[int] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda signum, frame: self.signals.append(signum))
        self.env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.readers: list[threading.Thread] = []

        for process in processes:
            self.start(process)
        self.publish(processes)
        self.supervise(processes)
        self.say("runall", f"{signal.Signals(self.signals[0]).name} received, stopping")
        self.stop(processes)
        for reader in self.readers:
            reader.join(timeout=5)

    def start(self, process):
        process.child = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {process.command}"],
            env=self.env,
            cwd=settings.BASE_DIR,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        process.started, process.restart_due = time.monotonic(), None
        process.status.state, process.status.pid = ProcessState.RUNNING, process.child.pid
        process.status.started_at, process.status.restart_at = now(), None
        self.say("runall", f"{process.name} started (pid {process.child.pid}): {process.command}")
        reader = threading.Thread(target=self.relay, args=(process.name, process.child.stdout), daemon=True)
        reader.start()
        self.readers = [*(other for other in self.readers if other.is_alive()), reader]

    def supervise(self, processes):
        """Restart what exits, after its back-off delay, until a signal arrives."""
        while not self.signals:
            changed = False
            for process in processes:
                if process.restart_due is None and process.child.poll() is not None:
                    self.exited(process)
                    changed = True
                elif process.restart_due is not None and time.monotonic() >= process.restart_due:
                    process.status.restarts += 1
                    self.start(process)
                    changed = True
            if changed:
                self.publish(processes)
            time.sleep(0.2)

    def exited(self, process):
        ran_for = time.monotonic() - process.started
        process.failures = 1 if ran_for >= RESET_AFTER else process.failures + 1
        delay = process.restart_delay()
        kill_group(process.child)
        process.restart_due = time.monotonic() + delay
        status = process.status
        status.state, status.pid = ProcessState.RESTARTING, None
        status.last_exit, status.last_exit_at = describe_exit(process.child.returncode), now()
        status.restart_at = now() + timedelta(seconds=delay)
        self.say("runall", f"{process.name} exited ({status.last_exit}) after {ran_for:.0f}s: restarting in {delay:g}s")

    def stop(self, processes):
        seen_signals = len(self.signals)
        running = [process for process in processes if process.restart_due is None]
        for process in running:
            if process.child.poll() is None:
                process.child.terminate()
        deadline = time.monotonic() + GRACE_SECONDS
        while any(process.child.poll() is None for process in running):
            if time.monotonic() > deadline or len(self.signals) > seen_signals:
                break
            time.sleep(0.2)
        for process in running:
            if process.child.poll() is None:
                self.say("runall", f"{process.name} did not stop: killed")
            kill_group(process.child)
            self.say("runall", f"{process.name} stopped ({describe_exit(process.child.wait())})")
        for process in processes:
            process.status.state, process.status.pid, process.status.restart_at = ProcessState.STOPPED, None, None
        self.publish(processes)

    def publish(self, processes):
        try:
            process_status.write([process.status for process in processes], now())
        except OSError as error:  # the dashboard loses its view; the processes are what matters
            self.say("runall", f"can't write {process_status.status_path()}: {error.strerror}")

    def relay(self, name, stream):
        for line in stream:
            self.say(name, line.rstrip("\n"))

    def say(self, name, text):
        with self.output_lock:
            self.stdout.write(f"{time.strftime('%H:%M:%S')} {name:<{self.width}} | {text}")
            self.stdout.flush()


def kill_group(child):
    """SIGKILL what is left of the child's process group: the main process and anything it forked."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()
