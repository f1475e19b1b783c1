"""`manage.py runall`, the supervisor behind `make run`: the Procfile's processes start together, one that exits is
restarted with back-off while the others keep running, and Ctrl+C / SIGTERM stops them all."""

import json
import os
import re
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
        self.status_file = tmp_path / "var/processes.json"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "sendconn.settings",
            "SECRET_KEY": "runall-test-key",
            "SENDCONN_VAR_DIR": str(tmp_path / "var"),
        }
        with self.log.open("w") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "manage.py", "runall", "--procfile", str(tmp_path / "Procfile")],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
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

    def status_showing(self, name, pid, timeout=10):
        """processes.json's processes once it shows ``name`` as ``pid`` (or as it is at the timeout): runall writes it
        just after saying a process started, so right after that line it may still hold the previous state."""
        deadline = time.monotonic() + timeout
        while True:
            processes = json.loads(self.status_file.read_text())["processes"]
            shown = any(process["name"] == name and process["pid"] == pid for process in processes)
            if shown or time.monotonic() >= deadline:
                return processes
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


def started_pids(output, name):
    return [int(pid) for pid in re.findall(rf"{name} started \(pid (\d+)\)", output)]


def test_a_killed_process_is_restarted_with_back_off_and_the_others_keep_running(tmp_path):
    runall = Runall(tmp_path, f"web: {POLITE}\nworker: {POLITE}\n")
    runall.wait_for("| up", count=2)
    [web] = started_pids(runall.output, "web")

    os.kill(started_pids(runall.output, "worker")[0], signal.SIGKILL)
    runall.wait_for("worker started", count=2)
    runall.wait_for("worker | up", count=2)
    os.kill(started_pids(runall.output, "worker")[1], signal.SIGKILL)
    runall.wait_for("worker started", count=3)

    output = runall.output
    assert re.search(r"worker exited \(killed by SIGKILL\) after \d+s: restarting in 1s", output)
    assert re.search(r"worker exited \(killed by SIGKILL\) after \d+s: restarting in 2s", output)  # again soon: longer
    assert started_pids(output, "web") == [web] and "web    | got TERM" not in output
    status = runall.status_showing("worker", started_pids(output, "worker")[2])
    assert [(process["name"], process["state"], process["restarts"], process["last_exit"]) for process in status] == [
        ("web", "Running", 0, None),
        ("worker", "Running", 2, "killed by SIGKILL"),
    ]
    assert status[1]["pid"] == started_pids(output, "worker")[2]
    runall.popen.send_signal(signal.SIGTERM)
    assert runall.finish() == 0


def test_sigterm_stops_a_process_waiting_to_be_restarted_too(tmp_path):
    runall = Runall(tmp_path, f"web: {POLITE}\nbeat: sh -c 'echo crashed; exit 3'\n")
    runall.wait_for("beat exited (exit status 3) after 0s: restarting in 2s")  # 1s, then 2s

    runall.popen.send_signal(signal.SIGTERM)

    assert runall.finish() == 0
    output = runall.output
    assert output.count("beat   | crashed") == 2
    assert "web    | got TERM" in output and "web stopped (exit status 0)" in output
    status = json.loads((tmp_path / "var/processes.json").read_text())["processes"]
    assert [(process["name"], process["state"], process["restarts"], process["last_exit"]) for process in status] == [
        ("web", "Stopped", 0, None),
        ("beat", "Stopped", 1, "exit status 3"),
    ]


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


def test_counters_start_again_with_the_processes(tmp_path):
    """prometheus_client's multiprocess folder is emptied before the processes start, as its docs require."""
    folder = tmp_path / "var" / "metrics"
    folder.mkdir(parents=True)
    (folder / "counter_oldhost-123.db").write_bytes(b"\0" * 16)
    listing = f"""sh -c 'echo "files: $(ls {folder} | wc -l)"; trap "exit 0" TERM; while :; do sleep 0.1; done'"""
    runall = Runall(tmp_path, f"web: {listing}\n")
    runall.wait_for("| files: ")

    runall.popen.send_signal(signal.SIGTERM)

    assert runall.finish() == 0
    assert "web    | files: 0" in runall.output
    assert not (folder / "counter_oldhost-123.db").exists()
