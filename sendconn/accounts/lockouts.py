"""Sign-in throttling with django-axes: the client address, the audit of lockouts, and lifting them.

Axes counts failed sign-ins per user name and per client address (settings.AXES_*). Here: which address a
request comes from (REMOTE_ADDR unless a trusted proxy forwarded it), an audit log entry when a name or an
address gets locked out, the lockouts in force, and lifting one (Organization Management, audited).
"""

import ipaddress
from dataclasses import dataclass
from datetime import datetime

from axes.backends import AxesStandaloneBackend
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from axes.utils import reset
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Max, Sum
from django.dispatch import receiver
from django.utils import timezone

from sendconn.connectors import audit
from sendconn.connectors.models import AdminAuditLogEntry
from sendconn.connectors.services import Caller

USER_NAME = "username"
ADDRESS = "ip_address"
LOCKOUT_EVENT = "Sign-in lockout"
CLEAR_CMDLET = "Clear-SignInLockout"
# Exchange-style parameter name of each kind of lockout, for the audit line.
PARAMETER = {USER_NAME: "UserName", ADDRESS: "IPAddress"}


class SignInThrottle(AxesStandaloneBackend):
    """Axes's check before a sign-in through the console. smtpd's AUTH has no HTTP request for axes to count,
    so it passes through here untouched (axes can only throttle what reaches it with a request)."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def _is_trusted_proxy(address):
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.SENDCONN_TRUSTED_PROXIES)


def client_ip(request):
    """REMOTE_ADDR; when that is a trusted proxy (SENDCONN_TRUSTED_PROXIES), the address it was forwarded for.

    Each proxy appends the address it received the request from to X-Forwarded-For, so the entries are read
    from the right, past the trusted proxies; anything further left was written by the client and is ignored.
    """
    address = request.META.get("REMOTE_ADDR", "")
    if not _is_trusted_proxy(address):
        return address
    forwarded = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(forwarded):
        if not _is_trusted_proxy(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return address  # a broken header: count the last proxy rather than trust the text
        address = hop
    return address


def _minutes(delta):
    return int(delta.total_seconds() // 60)


@receiver(user_locked_out, dispatch_uid="sendconn.accounts.audit_lockout")
def audit_lockout(sender, request, username, ip_address, **kwargs):
    """One audit entry per lockout: axes signals again for each attempt refused during it (those aren't counted,
    so only the failure that reached the limit carries a count equal to it)."""
    if getattr(request, "axes_failures_since_start", None) != settings.AXES_FAILURE_LIMIT:
        return
    name = username or ""
    # Nobody signed in acted: the caller is the address the attempts came from, whatever name they gave.
    audit.record_line(
        Caller(ip_address, AdminAuditLogEntry.Source.WEB),
        LOCKOUT_EVENT,
        name or ip_address,
        f"Sign-in locked for {_minutes(settings.AXES_COOLOFF_TIME)} minutes after "
        f"{settings.AXES_FAILURE_LIMIT} failed attempts: user name {audit.quote(name) if name else '(none)'}, "
        f"address {ip_address}",
    )


@dataclass(frozen=True)
class Lockout:
    kind: str  # USER_NAME or ADDRESS
    value: str
    failures: int
    last_failure: datetime

    @property
    def kind_label(self):
        return "User name" if self.kind == USER_NAME else "Address"

    @property
    def ends_at(self):
        return self.last_failure + settings.AXES_COOLOFF_TIME


def current_lockouts():
    """User names and addresses whose failed sign-ins within the cool-off time reached the limit, as axes
    counts them (the failures of each attempt record since the cool-off began, summed per name or address)."""
    recent = AccessAttempt.objects.filter(attempt_time__gte=timezone.now() - settings.AXES_COOLOFF_TIME)
    lockouts = []
    for kind in (USER_NAME, ADDRESS):
        rows = (
            recent.exclude(**{f"{kind}__isnull": True})
            .values(kind)
            .annotate(failures=Sum("failures_since_start"), last_failure=Max("attempt_time"))
            .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
            .order_by(kind)
        )
        lockouts += [Lockout(kind, row[kind], row["failures"], row["last_failure"]) for row in rows]
    return lockouts


def clear_lockout(caller, kind, value):
    """Forget the failed sign-ins of a user name or an address, so it may sign in again at once."""
    if kind not in PARAMETER:
        raise ValidationError(f"Unknown kind of lockout: {kind!r}.")
    if not any(lockout.kind == kind and lockout.value == value for lockout in current_lockouts()):
        raise ValidationError(f'{"The user name" if kind == USER_NAME else "The address"} "{value}" isn\'t locked out.')
    reset(**({"username": value} if kind == USER_NAME else {"ip": value}))
    audit.record_command(caller, CLEAR_CMDLET, parameters={PARAMETER[kind]: value}, object_name=value)
