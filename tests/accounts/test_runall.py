"""`manage.py runall`, the supervisor behind `make run`: the Procfile's processes start and stop together."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Stands in for a server: says it is up, and says so when it gets SIGTERM (then exits cleanly).
POLITE = """sh -c 'trap "echo got TERM; exit 0" TERM; echo up; while :; do sleep 0.1; done'"""
STUBBORN = """sh -c 'trap "echo ignoring TERM" TERM; echo up; while :; do sleep 0.1; done'"""


class Runall:
    def __init__(self, tmp_path, procfile):
        (tmp_path / "Procfile").write_text(procfile)
        self.log = tmp_path / "runall.log"
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "sendconn.settings", "SECRET_KEY": "runall-test-key",
               "SENDCONN_VAR_DIR": str(tmp_path / "var")}
        with self.log.open("w") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "manage.py", "runall", "--procfile", str(tmp_path / "Procfile")],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def output(self):
        return self.log.read_text()

    def wait_for(self, text, count=1, timeout=30):
        deadline = time.monotonic() + timeout
        while self.output.count(text) < count:
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output}"
            assert self.popen.poll() is None, f"runall exited early:\n{self.output}"
            time.sleep(0.1)

    def finish(self, timeout=20):
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            pytest.fail(f"runall did not exit:\n{self.output}")


def test_sigterm_reaches_every_process_and_runall_exits_cleanly(tmp_path):
    runall = Runall(tmp_path, f"# comment lines are ignored\nweb: {POLITE}\nworker: {POLITE}\n")
    runall.wait_for("| up", count=2)

    runall.popen.send_signal(signal.SIGTERM)

    assert runall.finish() == 0
    output = runall.output
    assert "runall | SIGTERM received, stopping" in output
    assert "web    | got TERM" in output and "worker | got TERM" in output
    assert "web stopped (exit status 0)" in output and "worker stopped (exit status 0)" in output


def test_when_one_process_dies_the_others_are_stopped_and_runall_fails(tmp_path):
    runall = Runall(tmp_path, f"web: {POLITE}\nbeat: sh -c 'echo up; sleep 0.5; echo crashed; exit 3'\n")

    assert runall.finish() == 1
    output = runall.output
    assert "beat   | crashed" in output
    assert "web    | got TERM" in output
    assert "beat stopped (exit status 3), so the other processes were stopped too." in output


def test_a_second_signal_kills_what_does_not_stop(tmp_path):
    runall = Runall(tmp_path, f"worker: {STUBBORN}\n")
    runall.wait_for("| up")

    runall.popen.send_signal(signal.SIGINT)
    runall.wait_for("| ignoring TERM")
    runall.popen.send_signal(signal.SIGINT)

    assert runall.finish(timeout=10) == 0
    assert "worker did not stop: killed" in runall.output


def test_a_procfile_without_processes_is_refused(tmp_path):
    runall = Runall(tmp_path, "# nothing here\n")

    assert runall.finish() == 1
    assert "names no process (expected lines like 'web: gunicorn sendconn.wsgi')" in runall.output
