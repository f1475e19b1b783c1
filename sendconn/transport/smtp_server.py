"""The SMTP server session every listener here uses: sendconn's smtpd, the bench's sinks and the tests' peers.

Kept apart from ``smtpd`` (and from Django) so processes that only receive mail can import it.
"""

import asyncio
import re

from aiosmtpd.smtp import MISSING, SMTP

# A plain path, ``<dot-atom@host.name>`` and the parameters after it: most MAIL and RCPT commands.
_PLAIN_PATH = re.compile(
    r"\s*<([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(.*)",
    re.DOTALL,
)


STREAM_BUFFER_LIMIT = 64 * 1024  # asyncio's own default


class PlainPathSMTP(SMTP):
    """aiosmtpd's SMTP session, parsing plain MAIL and RCPT paths and reading DATA in blocks.

    aiosmtpd parses every path with the email package's RFC 5322 header parser (and builds a class per call),
    half its CPU for a small message; a plain ``<local@domain>`` gives the same result from one regex. Anything
    else (quoted local parts, address literals, ``<>``, source routes) still goes through aiosmtpd's parser; a path
    that crashes that parser is malformed (553), not an exception.
    aiosmtpd reads DATA a line at a time; here the content is read up to each ``.<CRLF>`` and checked as a whole,
    with the same replies (552 beyond the size limit, 500 for a line over the length limit).
    """

    def connection_made(self, transport):
        super().connection_made(transport)
        # aiosmtpd gives the stream the line length limit (1,001) as its buffer limit, so the socket's reading was
        # paused and resumed (two epoll calls, a loop turn) for every message over 2 KB. Command lines keep their
        # own limits (command_size_limits, checked once a line is read) and DATA lines line_length_limit (below).
        self._reader._limit = STREAM_BUFFER_LIMIT  # type: ignore[attr-defined]  # private: no setter

    def _getaddr(self, arg):
        plain = _PLAIN_PATH.fullmatch(arg)
        if plain is None:
            try:
                return super()._getaddr(arg)
            except Exception:  # the email package's parser fails on some paths ("<", "/@") beyond HeaderParseError
                return None, None  # malformed, as aiosmtpd says of the paths its parser refuses
        address, rest = plain.groups()
        if self.local_part_limit and address.rindex("@") > self.local_part_limit:
            return None, None
        return address, rest.lstrip()

    async def smtp_DATA(self, arg):
        if self._decode_data or not hasattr(self.event_handler, "handle_DATA"):
            return await super().smtp_DATA(arg)  # str content, or the deprecated process_message() API
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None  # set for every session
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content, too_much = await self._read_content()
        if too_much:
            await self.push("552 Error: Too much mail data")
        elif max(map(len, content.split(b"\r\n"))) + 2 > self.line_length_limit:
            await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
        else:
            if content.startswith(b"."):  # transparency (RFC 5321 §4.5.2): a line's leading dot was doubled
                content = content[1:]
            content = content.replace(b"\r\n.", b"\r\n")
            self.envelope.content = self.envelope.original_content = content
            status = await self._call_handler_hook("DATA")
            self._set_post_data_state()
            await self.push("250 OK" if status is MISSING else status)
            return
        self._set_post_data_state()

    async def _read_content(self):
        """The content up to the end-of-data line (still dot-stuffed, its last CRLF included), and whether it
        went over the size limit (then only its last bytes are kept, to find the end)."""
        data = bytearray()
        size = 0
        limit = self.data_size_limit
        while True:
            try:
                chunk = await self._reader.readuntil(b".\r\n")
            except asyncio.LimitOverrunError as overrun:  # no ".<CRLF>" within the stream's line limit: read on
                chunk = await self._reader.readexactly(overrun.consumed)
            size += len(chunk)
            data += chunk
            if data.endswith(b".\r\n") and (len(data) == 3 or data[-5:-3] == b"\r\n"):
                del data[-3:]
                return bytes(data), bool(limit and size - 3 > limit)
            if limit and size > limit:
                del data[:-4]  # keep just enough to recognise the end
