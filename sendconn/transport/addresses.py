"""What sendconn accepts as an SMTP address or a HELO name: smtpd refuses the rest at MAIL, RCPT and EHLO, delivery
checks the same before it sends, and only names that pass are written into the headers we add.

An address is RFC 5321's Mailbox (RFC 6531 UTF-8 allowed in the local part) that delivery can carry inside
``<…>``: no control character anywhere, and no ``<`` or ``>`` even inside a quoted local part. Its domain is a
host name or an address literal (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``).
"""

import ipaddress
import re

from django.core.exceptions import ValidationError

from sendconn.connectors.values import validate_host_name

_UTF8 = "\u0080-\ud7ff\ue000-\U0010ffff"  # non-ASCII, without the surrogates that stand for undecodable bytes
_ATOM = rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~{_UTF8}-]+"
# qtextSMTP and quoted-pairSMTP, less "<" and ">"
_QUOTED = rf'"(?:[\x20\x21\x23-\x3b\x3d\x3f-\x5b\x5d-\x7e{_UTF8}]|\\[\x20-\x3b\x3d\x3f-\x7e])*"'
_LOCAL_PART = re.compile(rf"{_ATOM}(?:\.{_ATOM})*|{_QUOTED}")


def is_host_name(name):
    """A host name exactly as given (no surrounding space or trailing dot): letters, digits and hyphens."""
    if not name or name != name.strip() or name.endswith("."):
        return False
    try:
        validate_host_name(name)
    except ValidationError:
        return False
    return True


def is_address_literal(text):
    """``[192.0.2.1]`` or ``[IPv6:2001:db8::1]`` (RFC 5321 §4.1.3)."""
    if not (text.startswith("[") and text.endswith("]")):
        return False
    inside = text[1:-1]
    version, address = (6, inside[5:]) if inside[:5].lower() == "ipv6:" else (4, inside)
    try:
        return ipaddress.ip_address(address).version == version
    except ValueError:
        return False


def is_helo_name(name):
    """Whether an EHLO/HELO argument is a domain or an address literal, so it may be written into a header.

    Underscores pass, as Postfix lets them: Windows hosts and scan-to-mail devices use them, and they are harmless.
    """
    return is_host_name(name.replace("_", "-")) or is_address_literal(name)


def validate_smtp_address(address, *, null_allowed=False):
    """Return ``address`` if delivery can send it in ``MAIL FROM:<…>`` / ``RCPT TO:<…>``; ValueError otherwise.

    ``null_allowed``: "" (the null sender, ``<>``) is valid too.
    """
    if address == "" and null_allowed:
        return address
    local, at, domain = address.rpartition("@")
    if not (at and _LOCAL_PART.fullmatch(local) and (is_host_name(domain) or is_address_literal(domain))):
        raise ValueError(f"{address!r} isn't a valid SMTP address.")
    return address
