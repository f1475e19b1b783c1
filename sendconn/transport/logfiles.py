"""Exchange-style circular log files, shared by the protocol log and the message tracking log.

Files are ``<PREFIX>yyyymmdd-nnnn.log`` (UTC date, nnnn from 0001 each day), each starting with ``#`` header
lines, then CSV rows. A new file starts when the next row would pass the maximum file size; whenever a file is
started, files older than the maximum age go, then the oldest files go until the others and a full new file
fit in the maximum directory size (Exchange's circular logging).

Several processes append to the same files (every Celery worker child, smtpd). Per-process files would need
a process id in the name and break the ``SENDyyyymmdd-nnnn.log`` naming admins' parsers expect, so instead
every write takes an exclusive ``flock`` on a lock file in the directory for the whole "which file, is it
full, roll, write" step, and files are opened with O_APPEND. Two writers therefore never both create -0002,
never interleave parts of lines, and never write to a file another process has already rolled past.
"""

import csv
import fcntl
import functools
import io
import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

SOFTWARE_VERSION = version("sendconn")
LINE_END = "\r\n"  # Exchange writes CRLF; csv readers accept either


@dataclass(frozen=True)
class LogFormat:
    prefix: str  # "SEND", "MSGTRK"
    log_type: str  # "SMTP Send Protocol Log"
    fields: tuple[str, ...]

    def header(self, now: datetime) -> bytes:
        lines = [
            "#Software: sendconn",
            f"#Version: {SOFTWARE_VERSION}",
            f"#Log-Type: {self.log_type}",
            f"#Date: {format_timestamp(now)}",
            f"#Fields: {','.join(self.fields)}",
        ]
        return "".join(line + LINE_END for line in lines).encode()


@dataclass(frozen=True)
class Retention:
    max_file_size: int  # bytes
    max_directory_size: int  # bytes
    max_age: timedelta  # zero: never delete by age (Exchange's 00:00:00)


def format_timestamp(moment: datetime) -> str:
    """``yyyy-mm-ddThh:mm:ss.fffZ`` in UTC; naive datetimes are taken as UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


class _Lines(list):
    """A csv writer's file that keeps each row's line apart (a writer writes a row in one call)."""

    write = list.append


def csv_lines(rows) -> list[bytes]:
    lines = _Lines()
    csv.writer(lines, lineterminator=LINE_END).writerows(rows)
    return [line.encode() for line in lines]


@functools.lru_cache(maxsize=64)
def circular_log(directory: Path, log_format: LogFormat, retention: Retention) -> "CircularLog":
    """The process's one writer for this directory and format, so callers needn't keep or close one."""
    return CircularLog(directory, log_format, retention)


class CircularLog:
    def __init__(self, directory: Path, log_format: LogFormat, retention: Retention):
        self.directory = Path(directory)
        self.format = log_format
        self.retention = retention
        self._name_pattern = re.compile(rf"^{re.escape(log_format.prefix)}(\d{{8}})-(\d{{4,}})\.log$")
        self._header_size = len(log_format.header(datetime.now(UTC)))  # fixed-width date: same for all
        self._thread_lock = threading.Lock()
        self._pid: int | None = None
        self._lock_file: io.BufferedWriter | None = None
        self._file: io.FileIO | None = None
        self._date = ""  # of self._file
        self._number = 0

    def write_rows(self, rows) -> None:
        """Append CSV rows (sequences of field values, already strings) as whole lines."""
        self.write_lines(csv_lines(rows))

    def write_lines(self, lines: list[bytes]) -> None:
        if not lines:
            return
        with self._thread_lock:
            self._reopen_after_fork()
            assert self._lock_file is not None  # opened just above
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            try:
                self._write_locked(lines)
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def path(self, date: str, number: int) -> Path:
        return self.directory / f"{self.format.prefix}{date}-{number:04d}.log"

    def _reopen_after_fork(self):
        # A forked child shares its parent's open file descriptions, and flock on a shared one does not
        # exclude the parent: every process opens its own.
        if self._pid == os.getpid():
            return
        for inherited in (self._lock_file, self._file):
            if inherited is not None:
                inherited.close()  # only this process's copy; the parent's stays open and locked as it was
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.directory / f".{self.format.prefix}.lock", "ab")
        self._file = None
        self._date = ""
        self._pid = os.getpid()

    def _write_locked(self, lines):
        now = datetime.now(UTC)
        pending = lines
        while pending:
            size = self._open_current(now)
            taken = 0
            for line in pending:
                has_rows = size > self._header_size
                if has_rows and size + len(line) > self.retention.max_file_size:
                    break
                size += len(line)
                taken += 1
            if taken:
                _write_all(self._file, b"".join(pending[:taken]))
                pending = pending[taken:]
            if pending:
                self._switch(self._date, self._number + 1)

    def _open_current(self, now) -> int:
        """Make ``self._file`` today's newest file, starting it with the header if empty; return its size."""
        date = f"{now:%Y%m%d}"
        if self._file is None or self._date != date:
            self._switch(date, self._newest_number(date) or 1)
        while self.path(date, self._number + 1).exists():  # another process rolled past our file
            self._switch(date, self._number + 1)
        assert self._file is not None  # _switch opened it
        stat = os.fstat(self._file.fileno())
        if stat.st_nlink == 0:  # deleted under us (pruned by hand): write to the name, not the orphan
            self._switch(date, self._number)
            stat = os.fstat(self._file.fileno())
        if stat.st_size == 0:
            header = self.format.header(now)
            _write_all(self._file, header)
            self._prune(now)
            return len(header)
        return stat.st_size

    def _switch(self, date, number):
        if self._file is not None:
            self._file.close()
            self._file = None  # if the open below fails, the next write starts over
        self._file = open(self.path(date, number), "ab", buffering=0)  # O_APPEND, unbuffered
        self._date = date
        self._number = number

    def _newest_number(self, date):
        numbers = [
            int(match[2])
            for match in map(self._name_pattern.match, os.listdir(self.directory))
            if match and match[1] == date
        ]
        return max(numbers, default=0)

    def _prune(self, now):
        current = self.path(self._date, self._number)
        files = []
        for name in os.listdir(self.directory):
            path = self.directory / name
            if not self._name_pattern.match(name) or path == current:
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            files.append((stat.st_mtime, name, stat.st_size, path))
        files.sort()  # oldest first; the name breaks ties in the order files were written
        # Room for the new file at its full size, so the folder never grows past its maximum.
        total = max(current.stat().st_size, self.retention.max_file_size) + sum(size for _, _, size, _ in files)
        max_age = self.retention.max_age.total_seconds()
        for mtime, _, size, path in files:
            too_old = max_age and mtime < now.timestamp() - max_age
            if not too_old and total <= self.retention.max_directory_size:
                break  # newer files are younger still, and the directory is small enough
            path.unlink(missing_ok=True)
            total -= size


def _write_all(file, data: bytes):
    view = memoryview(data)
    while view:
        view = view[file.write(view) :]
