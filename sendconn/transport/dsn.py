"""Delivery status notifications: RFC 3464 reports inside RFC 6522 ``multipart/report``.

``build_ndr`` (recipients failed) and ``build_delay_notification`` (still retrying) return the bytes of a
message the caller queues like any other, from the null sender (``MAIL FROM:<>``) to the original envelope
sender, which ``should_send_ndr`` must allow first. Three parts, as RFC 6522 orders them:

1. text/plain in the words of an Exchange NDR, for the sender and for the administrator they forward it to;
2. message/delivery-status: a per-message block, then one block per recipient;
3. the original as message/rfc822 when under Postfix's bounce_size_limit, else text/rfc822-headers
   (always headers only for a delay notice, as Postfix's delay warning and Exchange's delay DSN do).
"""

import email
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid

BOUNCE_SIZE_LIMIT = 50_000  # bytes: Postfix's bounce_size_limit
_STATUS = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
_TYPED_DIAGNOSTIC = re.compile(r"^[A-Za-z][A-Za-z0-9-]*;")
_HEADER_END = re.compile(rb"\r?\n\r?\n")

# What the sender should understand, by enhanced status code (then by class), after Exchange's NDR texts.
_EXPLANATIONS = {
    "5.1.1": "The email address wasn't found at the recipient's domain. Check the address for typos.",
    "5.1.2": "The recipient's domain doesn't exist. Check the domain name for typos.",
    "5.1.10": "The recipient's domain doesn't accept email (it publishes a null MX record).",
    "5.3.4": "The message is larger than the recipient's email system or the Send connector accepts.",
    "4.4.7": "The message couldn't be delivered before it expired; the recipient's email system kept failing.",
    "5.7.1": "The recipient's email system refused the message: the sender isn't allowed to send to it.",
}
_CLASS_EXPLANATIONS = {
    "5": "The recipient's email system rejected the message.",
    "4": "The recipient's email system couldn't accept the message in time.",
}


@dataclass(frozen=True)
class RecipientStatus:
    address: str
    status: str  # RFC 3463 enhanced status code, "5.1.1"
    action: str  # "failed" or "delayed"
    diagnostic: str  # "smtp; 550 5.1.1 <bob@fabrikam.test>: User unknown" (a bare reply gets "smtp; ")
    remote_mta: str | None  # the host that answered, None when the failure was ours (DNS, expiry, size)
    connector_name: str
    last_attempt_at: datetime | None  # None: never attempted (Unreachable until expiry)
    will_retry_until: datetime | None = None  # delayed only

    def __post_init__(self):
        if not _STATUS.match(self.status):
            raise ValueError(f"{self.status!r} isn't an enhanced status code such as 5.1.1.")
        if self.action not in ("failed", "delayed"):
            raise ValueError(f"Action must be failed or delayed, not {self.action!r}.")

    @property
    def diagnostic_code(self):
        return self.diagnostic if _TYPED_DIAGNOSTIC.match(self.diagnostic) else f"smtp; {self.diagnostic}"

    @property
    def answer(self):
        """The reply text without its diagnostic type: '550 5.1.1 ... User unknown'."""
        return self.diagnostic_code.split(";", 1)[1].strip()


def should_send_ndr(envelope_sender: str | None) -> bool:
    """Never bounce a bounce: no notification about a message from the null sender (RFC 5321 §6.1)."""
    return bool(envelope_sender and envelope_sender.strip().strip("<>").strip())


def build_ndr(
    original: bytes,
    *,
    envelope_sender: str,
    reporting_mta: str,
    recipients: list[RecipientStatus],
    arrival_date: datetime,
    postmaster_address: str | None = None,
    size_limit: int = BOUNCE_SIZE_LIMIT,
) -> bytes:
    """The non-delivery report for ``recipients`` (all action "failed") of ``original``."""
    return _build_report(
        "failed",
        original,
        envelope_sender=envelope_sender,
        reporting_mta=reporting_mta,
        recipients=recipients,
        arrival_date=arrival_date,
        postmaster_address=postmaster_address,
        return_content=len(original) <= size_limit,
    )


def build_delay_notification(
    original: bytes,
    *,
    envelope_sender: str,
    reporting_mta: str,
    recipients: list[RecipientStatus],
    arrival_date: datetime,
    postmaster_address: str | None = None,
) -> bytes:
    """The delay DSN for ``recipients`` (all action "delayed", ideally with will_retry_until)."""
    return _build_report(
        "delayed",
        original,
        envelope_sender=envelope_sender,
        reporting_mta=reporting_mta,
        recipients=recipients,
        arrival_date=arrival_date,
        postmaster_address=postmaster_address,
        return_content=False,
    )


def _build_report(
    action, original, *, envelope_sender, reporting_mta, recipients, arrival_date, postmaster_address, return_content
):
    if not should_send_ndr(envelope_sender):
        raise ValueError("No delivery status notification for a message from the null sender.")
    if not recipients:
        raise ValueError("A delivery status notification needs at least one recipient.")
    if any(recipient.action != action for recipient in recipients):
        raise ValueError(f"Every recipient of this notification must have action {action!r}.")

    original_message = email.message_from_bytes(original, policy=policy.SMTP)
    subject = str(original_message.get("Subject", "")).strip()
    original_id = str(original_message.get("Message-ID", "")).strip()

    report = MIMEMultipart("report", report_type="delivery-status", policy=policy.SMTP)
    report["From"] = f"Mail Delivery System <{postmaster_address or f'postmaster@{reporting_mta}'}>"
    report["To"] = envelope_sender.strip().strip("<>")
    report["Subject"] = f"{'Undeliverable' if action == 'failed' else 'Delivery delayed'}: {subject}".rstrip()
    report["Date"] = format_datetime(datetime.now(UTC))
    report["Message-ID"] = make_msgid(domain=reporting_mta)
    report["Auto-Submitted"] = "auto-replied"
    if original_id:
        report["In-Reply-To"] = original_id
        references = str(original_message.get("References", "")).split()
        report["References"] = " ".join([*references, original_id])

    text = _failed_text(recipients, reporting_mta) if action == "failed" else _delayed_text(recipients, reporting_mta)
    report.attach(MIMEText(text, "plain", policy=policy.SMTP))
    report.attach(_delivery_status(recipients, reporting_mta, arrival_date))
    if return_content:
        report.attach(MIMEMessage(original_message, policy=policy.SMTP))
    else:
        headers = _HEADER_END.split(original, maxsplit=1)[0].decode("utf-8", "replace")
        report.attach(MIMEText(headers + "\n", "rfc822-headers", policy=policy.SMTP))
    return report.as_bytes()


def _delivery_status(recipients, reporting_mta, arrival_date):
    per_message = Message(policy=policy.SMTP)
    per_message["Reporting-MTA"] = f"dns; {reporting_mta}"
    per_message["Arrival-Date"] = _date(arrival_date)
    blocks: list[Message | str] = [per_message]
    for recipient in recipients:
        block = Message(policy=policy.SMTP)
        block["Final-Recipient"] = f"rfc822; {recipient.address}"
        block["Action"] = recipient.action
        block["Status"] = recipient.status
        if recipient.remote_mta:
            block["Remote-MTA"] = f"dns; {recipient.remote_mta}"
        block["Diagnostic-Code"] = recipient.diagnostic_code
        if recipient.last_attempt_at:
            block["Last-Attempt-Date"] = _date(recipient.last_attempt_at)
        if recipient.will_retry_until:
            block["Will-Retry-Until"] = _date(recipient.will_retry_until)
        blocks.append(block)
    part = MIMEBase("message", "delivery-status", policy=policy.SMTP)
    part.set_payload(blocks)
    return part


def _failed_text(recipients, reporting_mta):
    lines = ["Delivery has failed to these recipients or groups:", ""]
    for recipient in recipients:
        explanation = _EXPLANATIONS.get(recipient.status) or _CLASS_EXPLANATIONS[recipient.status[0]]
        lines += [recipient.address, explanation, ""]
    return "\n".join(lines + _diagnostics(recipients, reporting_mta))


def _delayed_text(recipients, reporting_mta):
    lines = ["Delivery is delayed to these recipients or groups:", ""]
    lines += [recipient.address for recipient in recipients]
    lines += ["", "This message hasn't been delivered yet. Delivery will continue to be attempted."]
    retry_until = max((r.will_retry_until for r in recipients if r.will_retry_until), default=None)
    if retry_until:
        lines += [
            "",
            f"The server will keep trying to deliver this message until {_date(retry_until)}. "
            "You'll be notified if the message can't be delivered by that time.",
        ]
    return "\n".join(lines + [""] + _diagnostics(recipients, reporting_mta))


def _diagnostics(recipients, reporting_mta):
    lines = ["", "Diagnostic information for administrators:", "", f"Generating server: {reporting_mta}", ""]
    for recipient in recipients:
        lines.append(recipient.address)
        if recipient.remote_mta:
            lines += [f"Remote server: {recipient.remote_mta}", f"Remote server returned '{recipient.answer}'"]
        else:
            lines.append(f"{reporting_mta} returned '{recipient.answer}'")
        lines += [f"Status: {recipient.status}", f"Send connector: {recipient.connector_name}"]
        if recipient.last_attempt_at:
            lines.append(f"Last attempt: {_date(recipient.last_attempt_at)}")
        if recipient.will_retry_until:
            lines.append(f"Will retry until: {_date(recipient.will_retry_until)}")
        lines.append("")
    return lines


def _date(moment):
    """RFC 5322 date; naive datetimes are taken as UTC."""
    return format_datetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
