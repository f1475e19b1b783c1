"""`make run`'s supervisor: starts every process of the Procfile and stops them together.

Each process runs in its own session and gets SIGTERM on its main PID only, so Celery does a warm shutdown
(its pool children finish the deliveries in hand) and gunicorn a graceful one. Whatever is still running
after the grace period, or after a second Ctrl+C, is killed with its whole process group.
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

GRACE_SECONDS = 30  # Celery's warm shutdown waits for the deliveries in hand
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


class Command(BaseCommand):
    help = "Start the Procfile's processes (web, worker, beat…); stop them all on Ctrl+C or when one stops."
    requires_system_checks = []  # `make run`'s migrate checked once before; the Procfile's processes skip them

    def add_arguments(self, parser):
        parser.add_argument("--procfile", default=str(settings.BASE_DIR / "Procfile"))

    def handle(self, *args, procfile, **options):
        entries = read_procfile(procfile)
        self.width = max(len("runall"), *(len(name) for name, _ in entries))
        self.output_lock = threading.Lock()
        self.signals = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda signum, frame: self.signals.append(signum))

        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        children, readers = {}, []
        for name, command in entries:
            child = subprocess.Popen(
                ["/bin/sh", "-c", f"exec {command}"], env=env, cwd=settings.BASE_DIR, start_new_session=True,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                errors="replace",
            )
            children[name] = child
            self.say("runall", f"{name} started (pid {child.pid}): {command}")
            readers.append(threading.Thread(target=self.relay, args=(name, child.stdout), daemon=True))
            readers[-1].start()

        failed = self.wait_for_stop(children)
        self.stop(children)
        for reader in readers:
            reader.join(timeout=5)
        if failed:
            name, code = failed
            raise CommandError(f"{name} stopped (exit status {code}), so the other processes were stopped too.")

    def wait_for_stop(self, children):
        """Block until a signal arrives (→ None) or a process exits (→ its name and exit status)."""
        while not self.signals:
            for name, child in children.items():
                if child.poll() is not None:
                    return name, child.returncode
            time.sleep(0.2)
        self.say("runall", f"{signal.Signals(self.signals[0]).name} received, stopping")
        return None

    def stop(self, children):
        seen_signals = len(self.signals)
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + GRACE_SECONDS
        while any(child.poll() is None for child in children.values()):
            if time.monotonic() > deadline or len(self.signals) > seen_signals:
                break
            time.sleep(0.2)
        for name, child in children.items():
            if child.poll() is None:
                self.say("runall", f"{name} did not stop: killed")
            # Whatever is left of its process group too: the main process and anything it forked.
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.say("runall", f"{name} stopped (exit status {child.wait()})")

    def relay(self, name, stream):
        for line in stream:
            self.say(name, line.rstrip("\n"))

    def say(self, name, text):
        with self.output_lock:
            self.stdout.write(f"{time.strftime('%H:%M:%S')} {name:<{self.width}} | {text}")
            self.stdout.flush()
