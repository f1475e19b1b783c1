"""The embedded mode's worker (filesystem broker, threads pool, SQLite) takes wake-ups as fast as they come.

The threads pool's acks are made by the consumer between two reads of the broker folder, and a read waits up to
2 s while the prefetch window is full: with one task per thread, every burst of wake-ups (one per next hop)
stalled 2 s after the first four.
"""

import time

import pytest

from tests.peers.stack import TransportStack

pytestmark = pytest.mark.services

NEXT_HOPS = 40


def test_a_burst_of_wake_ups_is_taken_without_stalls(tmp_path):
    stack = TransportStack(tmp_path)  # embedded: SQLite and the filesystem broker under its var/
    try:
        stack.migrate()
        stack.cmdlet("New-SendConnector -Name 'To internet' -AddressSpaces * -Internet")
        worker = stack.start_worker(concurrency=4, queues="celery,server.ex01")
        stack.manage(
            "shell",
            "-c",
            "from sendconn.transport import wakeups\n"
            f"for number in range({NEXT_HOPS}):\n"
            "    wakeups.publish_wake_up((1, f'd{number}.fabrikam.test'), queue='server.ex01')",
        )
        published = time.monotonic()
        queue_folder = stack.var_dir / "broker" / "queue"  # a message leaves it when the worker takes it
        while list(queue_folder.glob("*.msg")):
            assert time.monotonic() - published < 8, worker.tail()  # stalled: ~20 s for 40 wake-ups
            time.sleep(0.05)
        assert worker.running
    finally:
        stack.stop()
