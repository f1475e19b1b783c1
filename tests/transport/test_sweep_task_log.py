"""The sweep task's own log line: at INFO only when a sweep changed the queue, never every 15 seconds."""

import logging

import pytest

from sendconn.transport import sweeper, tasks


@pytest.mark.parametrize(
    "done, level, line",
    [
        ({"released": 0, "expired": 0, "delay_notified": 0, "rerouted": 0, "woken": 0}, None, None),
        (
            {"released": 0, "expired": 0, "delay_notified": 0, "rerouted": 0, "woken": 3},
            logging.DEBUG,
            "Sweep: woken 3",
        ),
        (
            {"released": 0, "expired": 2, "delay_notified": 0, "rerouted": 0, "woken": 1},
            logging.INFO,
            "Sweep: expired 2, woken 1",
        ),
        (
            {"released": 1, "expired": 0, "delay_notified": 0, "rerouted": 0, "woken": 0},
            logging.INFO,
            "Sweep: released 1",
        ),
    ],
)
def test_the_sweep_logs_what_it_did(monkeypatch, caplog, done, level, line):
    monkeypatch.setattr(sweeper, "sweep", lambda: dict(done))
    caplog.set_level(logging.DEBUG, logger=tasks.log.name)
    tasks.sweep()
    records = [(record.levelno, record.getMessage()) for record in caplog.records if record.name == tasks.log.name]
    assert records == ([] if line is None else [(level, line)])
