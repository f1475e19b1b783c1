"""What the tests read SMTP sessions' and protocol logs' conversations from."""

from dataclasses import dataclass
from datetime import UTC, datetime

from sendconn.transport.protocol_log import iter_rows, sequence_number


@dataclass(frozen=True)
class TranscriptEvent:
    at: datetime
    local_endpoint: str
    remote_endpoint: str
    kind: str  # + connect, - disconnect, > sent, < received, * information
    data: str
    context: str


class MemoryTranscript:
    """A ``smtp_client.Transcript`` that keeps the events in a list."""

    def __init__(self):
        self.events = []
        self.local_endpoint = ""
        self.remote_endpoint = ""

    def connected(self, local_endpoint, remote_endpoint):
        self.local_endpoint, self.remote_endpoint = local_endpoint, remote_endpoint

    def event(self, kind, data="", context=""):
        self.events.append(
            TranscriptEvent(datetime.now(UTC), self.local_endpoint, self.remote_endpoint, kind, data, context)
        )

    def lines(self):
        return [f"{e.kind} {e.data}".rstrip() + (f" [{e.context}]" if e.context else "") for e in self.events]

    def for_another_connection(self):
        return self  # one list for everything


def iter_sessions(path):
    """A Send protocol log file's ``(session_id, rows)`` per session in order of first appearance, rows (dicts
    keyed by field name) in sequence order."""
    sessions = {}
    for row in iter_rows(path):
        sessions.setdefault(row.get("session-id", ""), []).append(row)
    for session_id, rows in sessions.items():
        rows.sort(key=sequence_number)
        yield session_id, rows
