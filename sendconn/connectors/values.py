"""Exchange value types: parsing what admins type and formatting what Exchange shows.

Every parser raises ``django.core.exceptions.ValidationError`` with a message an Exchange admin recognises;
the wizard, the edit dialog and the cmdlets all call these, so one input is judged the same everywhere.
"""

import ipaddress
import re
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MAX_COST = 100
MAX_INT32 = 2147483647  # Exchange's counts are System.Int32
MAX_MESSAGE_SIZE_BYTES = MAX_INT32
MIN_INACTIVITY_TIMEOUT = timedelta(seconds=1)
MAX_INACTIVITY_TIMEOUT = timedelta(days=1)


@dataclass(frozen=True)
class AddressSpaceValue:
    address_type: str
    domain: str
    cost: int = 1

    @property
    def is_smtp(self):
        return self.address_type.upper() == "SMTP"

    @property
    def is_wildcard(self):
        return self.is_smtp and (self.domain == "*" or self.domain.startswith("*."))

    @property
    def match_domain(self):
        """The domain a recipient must equal or end with: '' for '*', 'contoso.com' for '*.contoso.com'."""
        if not self.is_smtp or self.domain == "*":
            return ""
        return self.domain[2:] if self.domain.startswith("*.") else self.domain

    def __str__(self):
        return f"{self.address_type}:{self.domain};{self.cost}"


@dataclass(frozen=True)
class SmartHostValue:
    host: str
    is_ip_address: bool

    def __str__(self):
        return self.host


def validate_host_name(value, what="FQDN"):
    """Return ``value`` lower-cased if it is an RFC 1035 host name; labels up to 63 characters."""
    name = value.strip().rstrip(".").lower() if value else ""
    if not name:
        raise ValidationError(f"The {what} can't be empty.")
    if len(name) > 255:
        raise ValidationError(f'"{value}" isn\'t a valid {what}: it is longer than 255 characters.')
    for label in name.split("."):
        if not label:
            raise ValidationError(f'"{value}" isn\'t a valid {what}: it contains an empty label ("..").')
        if len(label) > 63:
            raise ValidationError(
                f'"{value}" isn\'t a valid {what}: the label "{label[:20]}…" is longer than 63 characters.'
            )
        if not _LABEL.match(label):
            raise ValidationError(
                f'"{value}" isn\'t a valid {what}. Use letters, digits and hyphens, for example mail.contoso.com.'
            )
    return name


def validate_smtp_domain(value):
    """An SMTP address-space domain: ``*``, ``contoso.com`` or ``*.contoso.com`` (never ``*contoso.com``)."""
    domain = value.strip().lower()
    if domain == "*":
        return domain
    if domain.startswith("*."):
        return "*." + validate_host_name(domain[2:], "address space")
    if "*" in domain:
        raise ValidationError(
            f'"{value}" isn\'t a valid SMTP address space. Use "*" for all domains, "contoso.com" for one domain '
            f'or "*.contoso.com" for a domain and its subdomains.'
        )
    return validate_host_name(domain, "address space")


def parse_cost(value):
    text = str(value).strip()
    if not re.fullmatch(r"\d{1,9}", text) or not 1 <= int(text) <= MAX_COST:
        raise ValidationError(f'The cost "{value}" isn\'t valid. The cost must be a whole number from 1 to {MAX_COST}.')
    return int(text)


def parse_address_space(text, cost=None):
    """Parse ``[Type:]AddressSpace[;Cost]`` (``*``, ``"SMTP:contoso.com;1"``, ``contoso.com;5``)."""
    raw = text.strip()
    if not raw:
        raise ValidationError("The address space can't be empty.")
    address_type, _, rest = raw.partition(":") if ":" in raw else ("SMTP", "", raw)
    address_type = address_type.strip() or "SMTP"
    if address_type.upper() == "SMTP":
        domain_text, sep, cost_text = rest.partition(";")
        if sep:
            cost = cost_text
        return AddressSpaceValue("SMTP", validate_smtp_domain(domain_text), parse_cost(cost if cost is not None else 1))
    # Non-SMTP (X400 and free text): the cost is after the last ';' and mandatory if the value holds one.
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}", address_type):
        raise ValidationError(f'"{address_type}" isn\'t a valid address space type.')
    domain_text, sep, cost_text = rest.rpartition(";")
    if not sep:
        domain_text, cost_text = rest, (cost if cost is not None else 1)
    if not domain_text.strip():
        raise ValidationError(f"The {address_type} address space can't be empty.")
    return AddressSpaceValue(address_type, domain_text.strip(), parse_cost(cost_text))


def parse_smart_host(text):
    """A smart host is an IP address (``[ ]`` around it are optional) or an FQDN; the port is the connector's Port,
    never part of the host. A name whose last label is all digits (``999.1.1.1``) is a mistyped IP address: no
    top-level domain is numeric (RFC 3696), so Exchange refuses it as a host name."""
    raw = text.strip()
    if not raw:
        raise ValidationError("The smart host can't be empty.")
    if any(ch.isspace() for ch in raw):
        raise ValidationError(
            f'"{raw}" isn\'t a valid smart host: it contains spaces. Enter one IP address or FQDN per entry.'
        )
    bracketed = raw.startswith("[") and raw.endswith("]")
    literal = raw[1:-1] if bracketed else raw
    try:
        return SmartHostValue(str(ipaddress.ip_address(literal)), True)
    except ValueError:
        pass
    if bracketed:
        raise ValidationError(
            f'"{raw}" isn\'t a valid smart host: [ ] can only enclose an IP address, such as [192.168.1.25].'
        )
    if literal.rstrip(".").rpartition(".")[2].isdecimal():
        raise ValidationError(
            f"\"{raw}\" isn't a valid smart host: it isn't a valid IP address, and an FQDN can't "
            f"end with a number. Enter an IP address such as 192.168.1.25 or an FQDN such as "
            f"mail.contoso.com."
        )
    if ":" in raw:
        raise ValidationError(
            f'"{raw}" isn\'t a valid smart host. Enter the host without a port; set the port with the Port parameter.'
        )
    return SmartHostValue(validate_host_name(literal, "smart host"), False)


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB)?$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def parse_byte_quantity(value):
    """``35MB``, ``10 MB``, ``36700160``, ``35 MB (36,700,160 bytes)`` or ``unlimited`` → bytes (None = unlimited)."""
    text = str(value).strip()
    if text.lower() == "unlimited":
        return None
    text = re.sub(r"\s*\([\d,]+ bytes\)$", "", text)
    match = _SIZE.match(text)
    if not match:
        raise ValidationError(f'"{value}" isn\'t a valid size. Use a number with B, KB, MB, GB or TB, or "unlimited".')
    number, unit = float(match.group(1)), (match.group(2) or "B").upper()
    size = int(number * _UNITS[unit])
    if size % 1024:
        size += 1024 - size % 1024  # Exchange rounds byte values up to whole kilobytes.
    if size > MAX_MESSAGE_SIZE_BYTES:
        raise ValidationError(
            f'"{value}" is too large. The maximum size is {format_byte_quantity(MAX_MESSAGE_SIZE_BYTES)}.'
        )
    return size


def format_byte_quantity(size):
    """Exchange's ByteQuantifiedSize text: ``35 MB (36,700,160 bytes)``; None → ``Unlimited``."""
    if size is None:
        return "Unlimited"
    for unit in ("TB", "GB", "MB", "KB"):
        factor = _UNITS[unit]
        if size >= factor:
            amount = f"{size / factor:.3f}".rstrip("0").rstrip(".")
            return f"{amount} {unit} ({size:,} bytes)"
    return f"{size} B ({size:,} bytes)"


_TIMESPAN = re.compile(r"^(?:(\d{1,8})\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})$")


def parse_timespan(value, minimum=MIN_INACTIVITY_TIMEOUT, maximum=MAX_INACTIVITY_TIMEOUT):
    """Exchange's EnhancedTimeSpan ``dd.hh:mm:ss`` (whole seconds)."""
    text = str(value).strip()
    match = _TIMESPAN.match(text)
    if not match:
        raise ValidationError(f'"{value}" isn\'t a valid time span. Use dd.hh:mm:ss, for example 00:10:00.')
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValidationError(f'"{value}" isn\'t a valid time span. Use dd.hh:mm:ss, for example 00:10:00.')
    span = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if not minimum <= span <= maximum:
        raise ValidationError(
            f'The time span "{value}" is out of range. '
            f"It must be between {format_timespan(minimum)} and {format_timespan(maximum)}."
        )
    return span


def format_timespan(span):
    total = int(span.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{days}.{clock}" if days else clock


def parse_port(value):
    text = str(value).strip()
    if not re.fullmatch(r"[0-9]{1,5}", text) or not 0 <= int(text) <= 65535:
        raise ValidationError(f'The port "{value}" isn\'t valid. The port must be a number from 0 to 65535.')
    return int(text)


def parse_unlimited_count(value, minimum=1, maximum=MAX_INT32):
    """Exchange's ``Unlimited<Int32>``: a whole number from ``minimum`` through ``maximum``, or ``unlimited`` (None)."""
    text = str(value).strip()
    if text.lower() == "unlimited":
        return None
    if not re.fullmatch(r"[0-9]{1,10}", text) or not minimum <= int(text) <= maximum:
        raise ValidationError(
            f'The value "{value}" isn\'t valid. Enter a whole number from {minimum} through {maximum}, or unlimited.'
        )
    return int(text)


def format_unlimited(value):
    """An ``Unlimited<Int32>`` as Exchange shows it: the number, or ``Unlimited``."""
    return "Unlimited" if value is None else value


_X509_IDENTIFIER = re.compile(r"^(?:<I>(?P<issuer>[^<]+))?<S>(?P<subject>[^<]+)$", re.IGNORECASE)


def parse_tls_certificate_name(value):
    """Exchange's SmtpX509Identifier ``<I>issuer<S>subject`` (the issuer may be left out); "" clears it."""
    text = (value or "").strip()
    if not text:
        return ""
    match = _X509_IDENTIFIER.match(text)
    if (
        not match
        or not match.group("subject").strip()
        or (match.group("issuer") is not None and not match.group("issuer").strip())
    ):
        raise ValidationError(
            f'"{value}" isn\'t a valid certificate name. Use <I>issuer<S>subject with the Issuer and Subject of '
            f'Get-ExchangeCertificate, for example "<I>CN=Contoso CA, DC=contoso, DC=com<S>CN=mail.contoso.com".'
        )
    issuer, subject = match.group("issuer"), match.group("subject").strip()
    return f"<I>{issuer.strip()}<S>{subject}" if issuer else f"<S>{subject}"


def parse_source_ip_address(value):
    """A local address to send from (``0.0.0.0``: any); never multicast or broadcast."""
    text = str(value).strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValidationError(
            f'Cannot convert value "{value}" to type "System.Net.IPAddress". Error: "An invalid IP address was '
            f'specified."'
        ) from None
    if address.is_multicast or address == ipaddress.IPv4Address("255.255.255.255"):
        raise ValidationError(
            f"The source IP address \"{text}\" isn't valid: a multicast or broadcast address can't be a local "
            "endpoint. Specify one of the server's addresses, or 0.0.0.0 for any."
        )
    return str(address)
