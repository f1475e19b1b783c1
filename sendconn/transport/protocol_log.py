"""The SMTP Send protocol log: Exchange's ``SENDyyyymmdd-nnnn.log`` files, one CSV row per session event.

The SMTP client asks for a transcript per session and reports events as they happen; each is written at once
(a crash loses nothing already reported). Redacting AUTH payloads is the caller's job: it alone knows which
lines carry credentials.

    transcript = ProtocolLog().session(connector.name)
    transcript.event("*", "", "attempting to connect")
    transcript.connected("127.0.0.1:41234", "127.0.0.2:25")
    transcript.event("<", "220 mx.fabrikam.test ESMTP")
    transcript.event(">", "EHLO ex01.contoso.test")
    transcript.close()  # writes the "-" row unless one was already reported
"""

import csv
import logging
import secrets
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from .logfiles import LogFormat, Retention, circular_log, format_timestamp

logger = logging.getLogger(__name__)

FIELDS = (
    "date-time",
    "connector-id",
    "session-id",
    "sequence-number",
    "local-endpoint",
    "remote-endpoint",
    "event",
    "data",
    "context",
)
EVENTS = {"+": "connect", "-": "disconnect", ">": "send", "<": "receive", "*": "information"}
SEND_PROTOCOL_LOG = LogFormat(prefix="SEND", log_type="SMTP Send Protocol Log", fields=FIELDS)


class ProtocolLog:
    """The Send protocol log of this transport server; cheap to create (files are shared per process)."""

    def __init__(self, directory=None):
        self._log = circular_log(
            Path(directory or settings.SENDCONN_PROTOCOL_LOG_DIR),
            SEND_PROTOCOL_LOG,
            Retention(
                max_file_size=settings.SENDCONN_PROTOCOL_LOG_MAX_FILE_SIZE,
                max_directory_size=settings.SENDCONN_PROTOCOL_LOG_MAX_DIRECTORY_SIZE,
                max_age=settings.SENDCONN_PROTOCOL_LOG_MAX_AGE,
            ),
        )

    def session(self, connector_name: str) -> "SessionTranscript":
        return SessionTranscript(self._log, connector_name)


class SessionTranscript:
    """One SMTP session's rows: a 16-hex-digit session id and sequence numbers from 0."""

    def __init__(self, log, connector_name: str):
        self._log = log
        self.connector_name = connector_name
        self.session_id = f"{secrets.randbits(64):016X}"
        self.local_endpoint = ""
        self.remote_endpoint = ""
        self._sequence = 0
        self._connected = False
        self._disconnected = False
        self._failed = False

    def connected(self, local_endpoint: str, remote_endpoint: str) -> None:
        """Record the ``+`` row; later rows carry both endpoints (``IP:port``, ``[v6]:port``).

        SmtpSession's transcript protocol also calls this with no local endpoint before each connection attempt
        (that only labels the ``* attempting to connect`` row) and reports ``event("+")`` itself once connected:
        the ``+`` row is written once either way.
        """
        self.local_endpoint = local_endpoint
        self.remote_endpoint = remote_endpoint
        if local_endpoint:
            self.event("+")

    def event(self, kind: str, data: str = "", context: str = "") -> None:
        if kind not in EVENTS:
            raise ValueError(f"Protocol log event must be one of {' '.join(EVENTS)}, not {kind!r}.")
        if kind == "+":
            if self._connected and not self._disconnected:
                return  # connected() wrote it already
            self._connected, self._disconnected = True, False
        if kind == "-":
            self._disconnected = True
        row = (
            format_timestamp(datetime.now(UTC)),
            self.connector_name,
            self.session_id,
            str(self._sequence),
            self.local_endpoint,
            self.remote_endpoint,
            kind,
            data,
            context,
        )
        self._sequence += 1
        try:
            self._log.write_rows([row])
        except OSError:
            # Like Exchange, a full or unwritable log folder must not stop mail: warn once per session.
            if not self._failed:
                logger.exception("Can't write the Send protocol log in %s", self._log.directory)
            self._failed = True

    def for_another_connection(self) -> "SessionTranscript":
        """A session of its own for a connection kept open beside this one (Exchange logs one per connection)."""
        return SessionTranscript(self._log, self.connector_name)

    def close(self, context: str = "Local") -> None:
        """End the transcript: a ``-`` row if the session connected and no ``-`` was reported yet."""
        if self._connected and not self._disconnected:
            self.event("-", "", context)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def iter_rows(path):
    """Yield the file's rows (dicts keyed by field name) in file order, one at a time: a 10 MB file is read
    without holding it. Reads our files and Exchange's (``#Fields:`` names the columns)."""
    fields: tuple[str, ...] = FIELDS
    with open(path, newline="", encoding="utf-8", errors="replace") as file:
        for values in csv.reader(file):
            if not values:
                continue
            if values[0].startswith("#"):
                if values[0].startswith("#Fields: "):
                    fields = (values[0].removeprefix("#Fields: "), *values[1:])
                continue
            yield dict(zip(fields, values, strict=False))  # a row cut short keeps the fields it has


def sequence_number(row):
    try:
        return int(row.get("sequence-number", ""))
    except ValueError:
        return -1
