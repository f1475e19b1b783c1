"""The SMTP server session every listener here uses: sendconn's smtpd, the bench's sinks and the tests' peers.

Kept apart from ``smtpd`` (and from Django) so processes that only receive mail can import it.
"""
import re

from aiosmtpd.smtp import SMTP

# A plain path, ``<dot-atom@host.name>`` and the parameters after it: most MAIL and RCPT commands.
_PLAIN_PATH = re.compile(
    r"\s*<([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(.*)",
    re.DOTALL,
)


class PlainPathSMTP(SMTP):
    """aiosmtpd's SMTP session, parsing plain MAIL and RCPT paths itself.

    aiosmtpd parses every path with the email package's RFC 5322 header parser (and builds a class per call),
    half its CPU for a small message; a plain ``<local@domain>`` gives the same result from one regex. Anything
    else (quoted local parts, address literals, ``<>``, source routes) still goes through aiosmtpd's parser.
    """

    def _getaddr(self, arg):
        plain = _PLAIN_PATH.fullmatch(arg)
        if plain is None:
            return super()._getaddr(arg)
        address, rest = plain.groups()
        if self.local_part_limit and address.rindex("@") > self.local_part_limit:
            return None, None
        return address, rest.lstrip()
