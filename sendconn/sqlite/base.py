"""Django's SQLite backend for processes that share one database file: writers queue on a file lock.

SQLite allows one writer at a time and makes the others retry in its busy handler, which sleeps 1, 2, 5, 10, …
100 ms between tries. With smtpd, the workers and the web writing one file, those sleeps set the pace, not the
writes: on a loaded 2-core machine two smtpd processes queued mail at a third of the rate of one. Here every write
takes an exclusive ``flock`` on ``<database>.lock`` first (for the whole transaction, or for one statement in
autocommit), so a writer that has to wait is woken by the kernel the moment the one before it is done. SQLite's own
locking still keeps the data safe; the file lock only orders the writers of this file, whatever their process.

WAL checkpoints (copying the log's pages into the database file, with an fsync) happen in a thread of their own
(``Checkpointer``), not in the commit that passes SQLite's 1,000-page mark: there they cost the committing writer
about a third of a one-message commit, and every other writer waited on the file lock meanwhile.

An in-memory database (the tests') needs neither.
"""

import fcntl
import os
import sqlite3
import threading
import time

from django.db.backends.sqlite3 import base

WRITE_STATEMENTS = ("INSERT", "UPDATE", "DELETE", "REPLACE")
CHECKPOINT_EVERY = 0.25  # seconds: at most this often, while commits come; the log stays a few MB at most


# A process that forks (smtpd's listener processes) must not do so in the middle of a checkpoint or of a change to the
# checkpointers: the child would start with locks (SQLite's mutexes) held by a thread it doesn't have, and hang.
_no_fork_meanwhile = threading.Lock()
os.register_at_fork(
    before=_no_fork_meanwhile.acquire,
    after_in_parent=_no_fork_meanwhile.release,
    after_in_child=_no_fork_meanwhile.release,
)


class Checkpointer:
    """A process's background checkpoints of one database file: after commits, at most every CHECKPOINT_EVERY.

    PASSIVE: it takes no write lock and waits for nobody (a checkpoint another process is running, or readers still
    on old pages, leave the rest for the next one). Its own connection; the thread is a daemon."""

    _running: dict[tuple[int, str], "Checkpointer"] = {}  # (pid, path): one per file and process

    def __init__(self, path: str) -> None:
        self.path = path
        self.committed = threading.Event()
        threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True).start()

    @classmethod
    def of(cls, path: str) -> "Checkpointer":
        key = (os.getpid(), path)  # a forked process starts its own thread
        with _no_fork_meanwhile:
            checkpointer = cls._running.get(key)
            if checkpointer is None:
                checkpointer = cls._running[key] = cls(path)
            return checkpointer

    def _run(self) -> None:
        connection = None
        while True:
            self.committed.wait()
            self.committed.clear()
            try:
                with _no_fork_meanwhile:
                    connection = connection or sqlite3.connect(self.path, timeout=0, check_same_thread=False)
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                pass  # busy or locked: the next commit asks again
            time.sleep(CHECKPOINT_EVERY)


class WriteLock:
    """An exclusive flock on one open file: per connection, so threads of one process queue on it too. Letting it
    go after a write tells the checkpointer."""

    def __init__(self, path: str, checkpointer: Checkpointer) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.held = False
        self.checkpointer = checkpointer

    def acquire(self) -> None:
        if not self.held:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            self.checkpointer.committed.set()

    def close(self) -> None:
        self.release()
        os.close(self.fd)


class Connection(sqlite3.Connection):
    write_lock: WriteLock | None = None


class CursorWrapper(base.SQLiteCursorWrapper):
    """Takes the write lock around a write made in autocommit (within a transaction it is held already)."""

    def execute(self, query, params=None):
        return self._under_lock(query, super().execute, query, params)

    def executemany(self, query, param_list):
        return self._under_lock(query, super().executemany, query, param_list)

    def _under_lock(self, query, run, *args):
        lock = self._lock_for(query)
        if lock is None:
            return run(*args)
        lock.acquire()
        try:
            return run(*args)
        finally:
            lock.release()

    def _lock_for(self, query):
        lock: WriteLock | None = getattr(self.connection, "write_lock", None)
        if lock is None or lock.held or self.connection.in_transaction:
            return None
        return lock if query.lstrip()[:7].upper().startswith(WRITE_STATEMENTS) else None


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        return {**super().get_connection_params(), "factory": Connection}

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if not self.is_in_memory_db():
            name = str(self.settings_dict["NAME"])
            connection.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer's thread does them
            connection.write_lock = WriteLock(f"{name}.lock", Checkpointer.of(name))
        return connection

    def create_cursor(self, name=None):
        return self.connection.cursor(factory=CursorWrapper)

    def _start_transaction_under_autocommit(self):
        lock = self.connection.write_lock
        if lock is not None:
            lock.acquire()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # private: not in django-stubs
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    def _commit(self):
        try:
            return super()._commit()  # type: ignore[misc]  # private: not in django-stubs
        finally:
            self._release_write_lock()

    def _rollback(self):
        try:
            return super()._rollback()  # type: ignore[misc]  # private: not in django-stubs
        finally:
            self._release_write_lock()

    def _close(self):
        lock = self.connection.write_lock if self.connection is not None else None
        try:
            return super()._close()  # type: ignore[misc]  # private: not in django-stubs
        finally:
            if lock is not None:
                lock.close()

    def _release_write_lock(self):
        if self.connection is not None and self.connection.write_lock is not None:
            self.connection.write_lock.release()
