"""The embedded mode's SQLite backend (sendconn.sqlite): writers of one database file queue on a file lock, and
one that waits is let in as soon as the writer before it is done, not after SQLite's busy handler sleeps."""

import statistics
import threading
import time

import pytest
from django.db import connection, connections, transaction

ALIAS = "mailqueue"


@pytest.fixture
def mailqueue(tmp_path, django_db_blocker):
    """A database alias on a file of its own (not the tests' in-memory one), with the project's options."""
    connections.settings[ALIAS] = {
        **connection.settings_dict,
        "ENGINE": "sendconn.sqlite",
        "NAME": str(tmp_path / "queue.sqlite3"),
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
    }
    with django_db_blocker.unblock():
        with connections[ALIAS].cursor() as cursor:
            cursor.execute("CREATE TABLE mail (id INTEGER PRIMARY KEY, sender TEXT)")
        yield connections[ALIAS]
        connections[ALIAS].close()
    del connections[ALIAS]
    del connections.settings[ALIAS]


def in_a_thread(statement):
    """Run ``statement`` on the alias in a thread of its own (its own connection); an Event set once it ran."""
    done = threading.Event()

    def run():
        try:
            with connections[ALIAS].cursor() as cursor:
                cursor.execute(statement)
            done.set()
        finally:
            connections[ALIAS].close()

    threading.Thread(target=run, daemon=True).start()
    return done


def count(mailqueue):
    with mailqueue.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM mail")
        return cursor.fetchone()[0]


def test_a_waiting_writer_goes_in_as_soon_as_the_transaction_before_it_commits(mailqueue):
    delays = []
    for _ in range(5):
        with transaction.atomic(using=ALIAS):
            with mailqueue.cursor() as cursor:
                cursor.execute("INSERT INTO mail (sender) VALUES ('kim@contoso.test')")
            written = in_a_thread("INSERT INTO mail (sender) VALUES ('lee@contoso.test')")  # autocommit
            assert not written.wait(0.3)  # queued behind the open transaction
            committed = time.monotonic()
        assert written.wait(5)
        delays.append(time.monotonic() - committed)
    # SQLite's busy handler sleeps between tries (25 to 100 ms by then): here it took 30 ms each time
    assert statistics.median(delays) < 0.01, delays
    assert count(mailqueue) == 10


def test_reads_never_wait_and_a_rollback_lets_the_lock_go(mailqueue):
    with pytest.raises(RuntimeError), transaction.atomic(using=ALIAS):
        with mailqueue.cursor() as cursor:
            cursor.execute("INSERT INTO mail (sender) VALUES ('kim@contoso.test')")
        assert in_a_thread("SELECT count(*) FROM mail").wait(1)  # WAL: readers go on during a write
        raise RuntimeError("the batch failed")
    assert not mailqueue.connection.write_lock.held
    assert in_a_thread("INSERT INTO mail (sender) VALUES ('lee@contoso.test')").wait(1)
    assert count(mailqueue) == 1


def test_commits_leave_the_checkpoints_to_a_thread_of_their_own(mailqueue, tmp_path):
    database = tmp_path / "queue.sqlite3"
    with mailqueue.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        assert cursor.fetchone()[0] == 0  # no commit copies the log into the database file itself
    size_before = database.stat().st_size
    for _ in range(20):
        with transaction.atomic(using=ALIAS):
            with mailqueue.cursor() as cursor:
                cursor.executemany("INSERT INTO mail (sender) VALUES (%s)", [("x" * 500,)] * 20)

    deadline = time.monotonic() + 5
    while database.stat().st_size == size_before and time.monotonic() < deadline:
        time.sleep(0.05)

    assert database.stat().st_size > size_before  # the checkpointer copied the rows in
    assert count(mailqueue) == 400
