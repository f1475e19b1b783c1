"""Queuing a message: the one write path into the mail queue (smtpd, verify delivery, NDRs, tests).

The message is stored once and a row per recipient, each routed to its connector and next hop (or parked as
Unreachable, or failed when it is bigger than every matching connector allows), with the RECEIVE tracking
events, in one transaction of three bulk inserts — for one message or a batch of them (smtpd commits the
messages of concurrent sessions together, and records their RECEIVE events a moment later, many batches' at
once). After the commit, one wake-up per next hop goes out.
"""

import ipaddress
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.errors import MessageError
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.utils import format_datetime, make_msgid

from django.db import transaction
from django.utils import timezone

from sendconn.connectors.models import TransportServer
from sendconn.connectors.servers import local_server

from . import notifications, statements, tracking, wakeups
from .addresses import is_helo_name, validate_smtp_address
from .models import Message, Recipient, RecipientStatus, TrackingEvent, TrackingEventId, TrackingSource
from .notifications import Notification
from .outcomes import SIZE_EXCEEDED_RESPONSE, Result, size_exceeded
from .routing import Route, Router, recipient_domain

log = logging.getLogger(__name__)

# Exchange's Unreachable queue LastError.
UNREACHABLE_RESPONSE = "A matching connector cannot be found to route the external recipient"


def _header_block(content: bytes) -> tuple[bytes, bytes]:
    """The header section (up to the first empty line) and the line ending the message uses."""
    for separator, eol in ((b"\r\n\r\n", b"\r\n"), (b"\n\n", b"\n")):
        end = content.find(separator)
        if end != -1:
            return content[: end + len(eol)], eol
    return content, b"\r\n" if b"\r\n" in content else b"\n"


# The header fields ``stamp`` reads, as ``_read_headers`` gives them (lower-case names).
STAMP_FIELDS = ("message-id", "date", "subject")
# As email.feedparser: a header line is a field, a continuation or an mbox "From " line; lines end in CRLF, CR or LF.
_HEADER_LINE = re.compile(r"From |[\041-\071\073-\176]*:|[\t ]")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def _read_headers(block: bytes) -> tuple[bool, dict[str, str]]:
    """Whether the header section ``block`` has fields, and the first Message-ID, Date and Subject (raw values), as
    the email package's compat32 parser reads them. An ASCII section (nearly every one) is read here, at a fifth
    of that parser's cost; any other by the parser."""
    if not block.isascii():
        return _read_headers_with_parser(block)
    found: dict[str, str] = {}
    has_fields = False
    field: list[str] = []  # the lines of the field being read
    lines = _LINE.findall(block.decode("ascii"))
    for number, line in enumerate(lines):
        if not _HEADER_LINE.match(line):
            break  # the body starts (with or without the empty line)
        if line[0] in " \t":
            if field:
                field.append(line)  # a folded line; one before any field is ignored
            continue
        if field:
            has_fields = _keep_field(field, found)
            field = []
        if line.startswith("From "):
            if number == len(lines) - 1:
                break  # the body's first line
            continue  # the mbox envelope line, or a misplaced one: not a field
        if line.find(":") > 0:  # ":" first: a field without a name, ignored
            field = [line]
    if field:
        has_fields = _keep_field(field, found)
    return has_fields, found


def _keep_field(lines: list[str], found: dict[str, str]) -> bool:
    name, _, value = lines[0].partition(":")
    if (key := name.lower()) in STAMP_FIELDS and key not in found:
        found[key] = (value.lstrip(" \t") + "".join(lines[1:])).rstrip("\r\n")
    return True


def _read_headers_with_parser(block: bytes) -> tuple[bool, dict[str, str]]:
    # compat32 leaves values as they came (the modern policy's header objects cost five times as much).
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(block)
    found = {name: str(value) for name in STAMP_FIELDS if (value := headers.get(name)) is not None}
    return bool(headers.keys()), found


def _header_text(value: str | None) -> str:
    """A header's value on one line, RFC 2047 encoded words decoded; "" when absent."""
    if value is None:
        return ""
    text = value
    if "=?" in text:
        try:
            text = str(make_header(decode_header(text)))
        except (ValueError, LookupError, MessageError):
            pass  # encoded words beyond repair: shown as they came
    return " ".join(text.split())


def _tcp_info(client_ip: str | None) -> str:
    """The client's address literal (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``; IPv4-mapped IPv6 as IPv4), or "" when
    it isn't an IP address."""
    try:
        ip = ipaddress.ip_address(client_ip or "")
    except ValueError:
        return ""
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return f"[IPv6:{ip}]" if ip.version == 6 else f"[{ip}]"


def _received_header(server: TransportServer, client_ip: str | None, client_hostname: str | None, date: str) -> str:
    """RFC 5321 §4.4 trace header: ``from <helo> ([ip]) by <our fqdn> with ESMTP; <date>`` (``by …`` alone for
    mail we generate). Only a valid HELO name and an IP address are written: client text could forge header lines."""
    hostname = client_hostname if is_helo_name(client_hostname or "") else ""
    tcp_info = _tcp_info(client_ip)
    clauses = []
    if tcp_info:
        clauses.append(f"from {hostname or 'unknown'} ({tcp_info})")
    elif hostname:
        clauses.append(f"from {hostname}")
    clauses.append(f"by {server.fqdn} (sendconn)")
    if len(clauses) > 1:
        clauses.append("with ESMTP")
    return f"Received: {' '.join(clauses)}; {date}"


def stamp(
    content: bytes, server: TransportServer, client_ip: str | None, client_hostname: str | None, now: datetime
) -> tuple[bytes, str, str]:
    """Prepend our trace header (and a Message-ID / Date when missing); return content, Message-ID, subject."""
    block, eol = _header_block(content)
    has_fields, fields = _read_headers(block)
    date = format_datetime(now)
    added = [_received_header(server, client_ip, client_hostname, date)]
    message_id = _header_text(fields.get("message-id"))
    if not message_id:
        message_id = make_msgid(domain=server.fqdn)
        added.append(f"Message-ID: {message_id}")
    if not _header_text(fields.get("date")):
        added.append(f"Date: {date}")
    prefix = eol.join(line.encode("utf-8") for line in added) + eol
    if not has_fields and not content.startswith(eol):
        prefix += eol  # a message without a header section: keep its first line out of ours
    return prefix + content, message_id, _header_text(fields.get("subject"))


def _unique_recipients(recipients: Iterable[str]) -> list[tuple[str, str]]:
    """(address, domain) pairs, each address once (case-insensitively), in the order given."""
    seen: set[str] = set()
    unique: list[tuple[str, str]] = []
    for address in recipients:
        address = validate_smtp_address(address.strip())
        if address.lower() not in seen:
            seen.add(address.lower())
            unique.append((address, recipient_domain(address)))
    if not unique:
        raise ValueError("A message needs at least one recipient.")
    return unique


def _recipient_row(message: Message, address: str, domain: str, route: Route, now: datetime) -> Recipient:
    row = Recipient(message=message, address=address, domain=domain)
    if route.connector is not None:
        row.status = RecipientStatus.READY
        row.connector = route.connector
        row.next_hop_domain = route.next_hop_domain
        row.next_attempt_at = now
    elif route.too_big:
        row.status = RecipientStatus.FAILED
        row.last_response = SIZE_EXCEEDED_RESPONSE
    else:
        row.status = RecipientStatus.UNREACHABLE
        row.last_response = UNREACHABLE_RESPONSE
    return row


@dataclass
class Submission:
    """One message handed in: envelope, content and where it came from."""

    sender: str  # "" is the null sender
    recipients: list[str]
    content: bytes
    client_ip: str | None = None
    client_hostname: str = ""
    is_dsn: bool = False
    original_message: Message | None = None


def _prepare(
    submission: Submission, server: TransportServer, router: Router, now: datetime
) -> tuple[Message, list[tuple[str, str, Route]]]:
    """Everything that needs no write: the stamped content, the Message row and each recipient's route."""
    validate_smtp_address(submission.sender, null_allowed=True)
    addresses = _unique_recipients(submission.recipients)
    content, message_id, subject = stamp(
        bytes(submission.content), server, submission.client_ip, submission.client_hostname, now
    )
    message = Message(
        sender=submission.sender,
        content=content,
        size=len(content),
        message_id=message_id[:998],
        subject=subject,
        submitted_at=now,
        received_by=server,
        client_ip=submission.client_ip,
        client_hostname=submission.client_hostname[:255],
        is_dsn=submission.is_dsn,
        original_message=submission.original_message,
    )
    return message, [(address, domain, router.route(domain, len(content))) for address, domain in addresses]


def queue_messages(
    submissions: Sequence[Submission],
    received_by: TransportServer | None = None,
    *,
    router: Router | None = None,
    after_commit: list[Callable[[], None]] | None = None,
    receive_events: list[TrackingEvent] | None = None,
) -> list[Message]:
    """Queue a batch of ``Submission``s in one transaction (group commit); return their Messages, in order.

    ``router`` may be a long-lived ``Router`` of ``received_by``; by default each batch routes afresh.
    What follows the commit (the tracking log lines, the wake-ups) runs on commit, or is appended to
    ``after_commit`` for a caller outside any transaction to run once it has answered (smtpd: its 250s need not
    wait for them). With ``receive_events`` (a list) the RECEIVE events are not stored with the messages but
    appended to it once they are committed, for the caller to record (and log) later, many batches in one
    transaction: smtpd's, where they were two fifths of every commit's pages.
    Raises ValueError for a sender or recipient that isn't an address delivery can carry
    (``addresses.validate_smtp_address``); then nothing of the batch is queued.
    """
    server = received_by or local_server()
    router = router or Router(server)
    now = timezone.now()
    # Routing only reads, and the rows and events are built before the messages have keys (filled in once they are
    # inserted): the write transaction holds SQLite's lock for the statements alone.
    prepared = [_prepare(submission, server, router, now) for submission in submissions]
    messages = [message for message, _ in prepared]
    rows: list[Recipient] = []
    received: list[TrackingEvent] = []
    failed: list[TrackingEvent] = []
    for (message, routed), submission in zip(prepared, submissions, strict=True):
        receive_source = TrackingSource.DSN if submission.is_dsn else TrackingSource.SMTP
        for address, domain, route in routed:
            rows.append(_recipient_row(message, address, domain, route, now))
            received.append(
                tracking.event(
                    TrackingEventId.RECEIVE,
                    receive_source,
                    message,
                    address,
                    remote_host=message.client_hostname,
                    remote_ip=message.client_ip,
                    server_name=server.name,
                    timestamp=now,
                )
            )
            if route.too_big:
                failed.append(
                    tracking.event(
                        TrackingEventId.FAIL,
                        TrackingSource.ROUTING,
                        message,
                        address,
                        recipient_status=SIZE_EXCEEDED_RESPONSE,
                        server_name=server.name,
                        timestamp=now,
                    )
                )

    with transaction.atomic():
        statements.insert(messages, returning_ids=True)
        for event in (*received, *failed):
            assert event.queued_message is not None  # each event above names its message
            event.internal_message_id = event.queued_message.pk
        events = [*failed] if receive_events is not None else [*received, *failed]
        statements.insert(rows)
        # message id → (message, rows bigger than every matching connector allows)
        too_big: dict[int, tuple[Message, list[Recipient]]] = {}
        for row in rows:
            if row.status == RecipientStatus.FAILED:
                too_big.setdefault(row.message.pk, (row.message, []))[1].append(row)
        if too_big:
            for message, rows_too_big in too_big.values():
                events += queue_ndr(message, [(row, size_exceeded(), "") for row in rows_too_big], server, now)
        tracking.record(events)
        # The Ready rows: the ones routed to a connector.
        next_hops = sorted({(row.connector_id, row.next_hop_domain) for row in rows if row.connector_id is not None})
        follow_ups = [lambda: tracking.write_log(events)]
        if next_hops:
            follow_ups.append(lambda: wakeups.wake_next_hops(next_hops))
        if after_commit is None:
            for follow_up in follow_ups:
                # robust: the messages are committed whatever happens to the log or the wake-up (the sweeper
                # re-wakes what is due)
                transaction.on_commit(follow_up, robust=True)
    if after_commit is not None:
        after_commit.extend(follow_ups)
    if receive_events is not None:
        receive_events.extend(received)
    return messages


def queue_message(
    sender: str,
    recipients: Iterable[str],
    content: bytes,
    received_by: TransportServer | None = None,
    *,
    client_ip: str | None = None,
    client_hostname: str = "",
    is_dsn: bool = False,
    original_message: Message | None = None,
) -> Message:
    """Queue ``content`` (bytes) from ``sender`` ("" = null sender) to ``recipients``; return the Message.

    Raises ValueError for a sender or recipient that isn't an address. The returned message's id is the queue id.
    """
    submission = Submission(sender, list(recipients), content, client_ip, client_hostname, is_dsn, original_message)
    return queue_messages([submission], received_by)[0]


def queue_notification(
    notification: Notification | None, server: TransportServer, timestamp: datetime | None = None
) -> list[TrackingEvent]:
    """Queue a ``notifications.Notification`` from the null sender to the original's sender, in the caller's
    transaction; return its DSN tracking events (none when ``notification`` is None)."""
    if notification is None:
        return []
    message = notification.original
    try:
        queue_message("", [message.sender], notification.content, server, is_dsn=True, original_message=message)
    except ValueError:  # a sender address nothing can be sent to
        log.warning("No delivery status notification for message %s: bad sender <%s>", message.pk, message.sender)
        return []
    return [
        tracking.event(
            TrackingEventId.DSN,
            TrackingSource.DSN,
            message,
            status.address,
            recipient_status=status.diagnostic,
            connector_name=status.connector_name,
            server_name=server.name,
            timestamp=timestamp,
        )
        for status in notification.statuses
    ]


def queue_ndr(
    message: Message,
    failures: list[tuple[Recipient, Result, str]],
    server: TransportServer,
    timestamp: datetime | None = None,
) -> list[TrackingEvent]:
    """Queue the NDR for ``failures`` — [(recipient row, Result, connector name)] — of ``message``; return the DSN
    tracking events."""
    return queue_notification(notifications.ndr(message, failures, server), server, timestamp)
