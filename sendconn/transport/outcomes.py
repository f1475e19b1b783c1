"""What one delivery attempt did for a recipient, and Exchange's retry policy for what didn't go.

A ``Result`` is an SMTP reply, or one of ours in the same shape (DNS failures, expiry, size limits); the ledger
turns it into Delivered, Retry (with Exchange's timers) or Failed.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Self

from django.conf import settings

from .models import Message, TrackingSource

if TYPE_CHECKING:
    from .dns import DnsError
    from .smtp_client import Reply, SmtpSessionError

EXPIRED_RESPONSE = "550 4.4.7 QUEUE.Expired; message expired"
SIZE_EXCEEDED_RESPONSE = "550 5.3.4 Message size exceeds fixed maximum message size"


@dataclass(frozen=True)
class Result:
    """What one attempt did for a recipient: an SMTP reply, or our own reply in the same shape."""

    code: int
    enhanced_status: str
    response: str  # the whole reply, stored as last_response: "451 4.4.0 DNS query failed. ..."
    source: str = TrackingSource.SMTP
    remote_host: str = ""  # the server that answered; "" when the failure was ours (DNS, expiry, size)
    remote_ip: str | None = None

    @classmethod
    def from_reply(cls, reply: "Reply", remote_host: str = "", remote_ip: str | None = None) -> Self:
        return cls(reply.code, reply.enhanced_status, str(reply), TrackingSource.SMTP, remote_host, remote_ip or None)

    @classmethod
    def from_dns_error(cls, error: "DnsError") -> Self:
        return cls(error.smtp_code, error.enhanced_status, error.response, TrackingSource.DNS)

    @classmethod
    def from_session_error(cls, error: "SmtpSessionError") -> Self:
        return cls.from_reply(error.reply, error.remote_host, error.remote_ip)

    @classmethod
    def ours(cls, code: int, enhanced_status: str, text: str, source: str = TrackingSource.SMTP) -> Self:
        return cls(code, enhanced_status, f"{code} {enhanced_status} {text}", source)

    @property
    def delivered(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600


def retry_interval(attempt_count: int) -> timedelta:
    """Exchange's timers: TransientFailureRetryCount attempts TransientFailureRetryInterval apart, then
    OutboundConnectionFailureRetryInterval."""
    if attempt_count <= settings.SENDCONN_TRANSIENT_FAILURE_RETRY_COUNT:
        return settings.SENDCONN_TRANSIENT_FAILURE_RETRY_INTERVAL
    return settings.SENDCONN_OUTBOUND_CONNECTION_FAILURE_RETRY_INTERVAL


def expires_at(message: Message) -> datetime:
    return message.submitted_at + settings.SENDCONN_MESSAGE_EXPIRATION_TIMEOUT


def expired(last_response: str = "") -> Result:
    """Exchange's expiry NDR reply, carrying the last error when there was one."""
    text = f"{EXPIRED_RESPONSE} [LastError: {last_response}]" if last_response else EXPIRED_RESPONSE
    return Result(550, "4.4.7", text, TrackingSource.QUEUE)


def size_exceeded() -> Result:
    return Result(550, "5.3.4", SIZE_EXCEEDED_RESPONSE, TrackingSource.ROUTING)
