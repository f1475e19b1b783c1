"""Reading the SMTP Send protocol log folder for the browser: its files per day, the sessions in them, one session.

Only names the log writer creates (``SENDyyyymmdd-nnnn.log``) directly inside ``SENDCONN_PROTOCOL_LOG_DIR`` are
ever opened, so no request can reach another file. Files are streamed row by row (``protocol_log.iter_rows``):
a day's sessions are kept as small summaries, and only the rows of the one session shown are held.
"""

import ipaddress
import os
import re
import stat
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from django.conf import settings

from sendconn.transport.protocol_log import EVENTS, iter_rows, sequence_number

FILE_NAME = re.compile(r"SEND(\d{8})-(\d{4,})\.log")  # whole names only (fullmatch)


@dataclass(frozen=True)
class LogFile:
    name: str
    day: date
    number: int
    size: int
    modified: datetime
    path: Path

    @property
    def day_key(self):
        """The day as it appears in file names and URLs: ``yyyymmdd``."""
        return f"{self.day:%Y%m%d}"


def log_directory() -> Path:
    return Path(settings.SENDCONN_PROTOCOL_LOG_DIR)


def parse_day(text):
    """``yyyymmdd`` → date; None for anything else."""
    if not re.fullmatch(r"\d{8}", text or ""):
        return None
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


def _log_file(directory, name):
    match = FILE_NAME.fullmatch(name)
    day = match and parse_day(match[1])
    if not match or not day:
        return None
    path = directory / name
    try:
        info = path.stat()
        inside = path.resolve().parent == directory.resolve()  # a symlink pointing elsewhere is not a log file
    except OSError:
        return None
    if not inside or not stat.S_ISREG(info.st_mode):
        return None
    modified = datetime.fromtimestamp(info.st_mtime, tz=UTC)
    return LogFile(name, day, int(match[2]), info.st_size, modified, path)


def log_file(name):
    """The protocol log file called ``name`` in the log folder, or None (not a log file name, not there)."""
    return _log_file(log_directory(), name)


def log_files(day=None):
    """The log files, newest first (by day, then number); of one ``day`` only when given."""
    directory = log_directory()
    try:
        names = os.listdir(directory)
    except FileNotFoundError:  # nothing logged yet: the writer creates the folder with the first file
        return []
    files = [found for found in (_log_file(directory, name) for name in names) if found]
    if day is not None:
        files = [found for found in files if found.day == day]
    return sorted(files, key=lambda found: (found.day, found.number), reverse=True)


# --- sessions --------------------------------------------------------------------------------------------------


def parse_timestamp(text):
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def split_endpoint(endpoint):
    """``"127.0.0.2:25"`` / ``"[::1]:25"`` → (ip address or None, port or None)."""
    host, port = endpoint, ""
    if endpoint.startswith("["):
        host, _, rest = endpoint[1:].partition("]")
        port = rest.removeprefix(":")
    elif endpoint.count(":") == 1:
        host, _, port = endpoint.partition(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    return address, int(port) if re.fullmatch(r"[0-9]{1,5}", port) else None


@dataclass(frozen=True)
class SessionFilter:
    """Which sessions to show; unset criteria match everything. ``connector`` and ``session_id`` are compared
    ignoring case, ``remote_address`` with ``remote_port`` (when given) against every remote endpoint."""

    connector: str = ""
    session_id: str = ""
    remote_address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    remote_port: int | None = None

    def wants_row(self, row):
        """Rows of other connectors or sessions can be skipped while reading (each is constant per session)."""
        if self.connector and row.get("connector-id", "").lower() != self.connector.lower():
            return False
        return not self.session_id or row.get("session-id", "").upper() == self.session_id.upper()

    def wants_session(self, session):
        if self.remote_address is None:
            return True
        return any(
            address == self.remote_address and self.remote_port in (None, port)
            for address, port in map(split_endpoint, session.remote_endpoints)
        )


@dataclass
class SessionSummary:
    session_id: str
    connector: str
    first_row: str  # date-time text of the earliest and latest rows (ISO 8601 sorts as text)
    last_row: str
    local_endpoint: str = ""
    remote_endpoints: list[str] = field(default_factory=list)  # each host tried, in order
    line_count: int = 0
    last_reply: str = ""  # the last line the remote sent ("<")
    disconnected: bool = False
    file_names: list[str] = field(default_factory=list)  # a session can go on in the next file of the day

    @property
    def started_at(self):
        return parse_timestamp(self.first_row)

    @property
    def ended_at(self):
        return parse_timestamp(self.last_row)

    @property
    def duration_seconds(self):
        if self.started_at and self.ended_at:
            return (self.ended_at - self.started_at).total_seconds()
        return None

    def add(self, row, file_name):
        moment = row.get("date-time", "")
        self.first_row = min(self.first_row, moment)
        self.last_row = max(self.last_row, moment)
        self.line_count += 1
        if row.get("local-endpoint") and not self.local_endpoint:
            self.local_endpoint = row["local-endpoint"]
        remote = row.get("remote-endpoint", "")
        if remote and remote not in self.remote_endpoints:
            self.remote_endpoints.append(remote)
        if row.get("event") == "<":
            self.last_reply = row.get("data", "")
        elif row.get("event") == "-":
            self.disconnected = True
        if file_name not in self.file_names:
            self.file_names.append(file_name)


def sessions(files, session_filter=SessionFilter()):
    """Summaries of the sessions in ``files`` (read in the order given) that pass ``session_filter``, in order
    of first appearance. Rows of a session are in sequence order within a file, so "last reply" holds."""
    found: dict[str, SessionSummary] = {}
    for log in files:
        for row in iter_rows(log.path):
            if not session_filter.wants_row(row):
                continue
            session_id = row.get("session-id", "")
            summary = found.get(session_id)
            if summary is None:
                moment = row.get("date-time", "")
                summary = found[session_id] = SessionSummary(session_id, row.get("connector-id", ""), moment, moment)
            summary.add(row, log.name)
    return [summary for summary in found.values() if session_filter.wants_session(summary)]


@dataclass(frozen=True)
class TranscriptLine:
    at: datetime | None
    sequence: int
    event: str  # + - > < *
    data: str
    context: str
    local_endpoint: str
    remote_endpoint: str

    @property
    def event_name(self):
        return EVENTS.get(self.event, self.event)


@dataclass
class Transcript:
    summary: SessionSummary
    lines: list[TranscriptLine]


def transcript(files, session_id):
    """Session ``session_id`` of the day's ``files`` as readable lines in sequence order, or None if absent."""
    only_this = SessionFilter(session_id=session_id)
    rows, summary = [], None
    for log in files:
        for row in iter_rows(log.path):
            if not only_this.wants_row(row):
                continue
            if summary is None:
                moment = row.get("date-time", "")
                summary = SessionSummary(row.get("session-id", ""), row.get("connector-id", ""), moment, moment)
            summary.add(row, log.name)
            rows.append(row)
    if summary is None:
        return None
    rows.sort(key=sequence_number)
    lines = [
        TranscriptLine(
            at=parse_timestamp(row.get("date-time")),
            sequence=sequence_number(row),
            event=row.get("event", ""),
            data=row.get("data", ""),
            context=row.get("context", ""),
            local_endpoint=row.get("local-endpoint", ""),
            remote_endpoint=row.get("remote-endpoint", ""),
        )
        for row in rows
    ]
    return Transcript(summary, lines)
