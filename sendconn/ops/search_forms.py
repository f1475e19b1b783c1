"""The search forms of message tracking and the protocol-log viewer (GET forms: a search is a link to share).

``clean_*`` normalise what was typed the way Get-MessageTrackingLog reads its parameters, so a search from the
browser and from the shell find the same entries.
"""

import re
from datetime import UTC

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from sendconn.transport.models import TrackingEventId
from sendconn.transport.tracking import normalise_message_id

from .protocol_log_files import SessionFilter, split_endpoint

NULL_SENDER = "<>"
DATE_TIME_FORMAT = "%Y-%m-%d %H:%M"
DATE_TIME_EXAMPLE = "2026-11-27 09:00"
DATE_TIME_HELP = f"UTC, for example {DATE_TIME_EXAMPLE}"
DATE_TIME_INVALID = f"Enter a date and time such as {DATE_TIME_EXAMPLE} (UTC)."
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


def _address(value, what):
    """``<kim@contoso.com>`` or ``kim@contoso.com`` → ``kim@contoso.com``; None when left empty."""
    typed = value.strip()
    if not typed:
        return None
    address = typed.removeprefix("<").removesuffix(">").strip()
    if not _ADDRESS.match(address):
        raise ValidationError(f'"{typed}" isn\'t a valid {what} address. Enter a full address such as kim@contoso.com.')
    return address


class UtcDateTimeField(forms.DateTimeField):
    """A date and time in UTC, typed as the help text shows (``2026-11-27 09:00``; ISO 8601 with a ``T``, seconds,
    ``Z`` or a trailing ``UTC`` are read too), whatever the browser's or the server's time zone. A plain text box:
    the browser's date picker shows its own local format, not this one."""

    widget = forms.DateTimeInput(format=DATE_TIME_FORMAT, attrs={"placeholder": DATE_TIME_EXAMPLE})

    def to_python(self, value):
        if isinstance(value, str):
            value = re.sub(r"\s*UTC$", "", value.strip(), flags=re.IGNORECASE)
        with timezone.override(UTC):
            return super().to_python(value)

    def prepare_value(self, value):
        with timezone.override(UTC):
            return super().prepare_value(value)


def _date_time_field(label):
    return UtcDateTimeField(
        label=label,
        required=False,
        help_text=DATE_TIME_HELP,
        error_messages={"invalid": DATE_TIME_INVALID},
    )


class TrackingSearchForm(forms.Form):
    sender = forms.CharField(
        label="Sender", required=False, max_length=320, help_text="Full address; <> finds notifications (NDRs)."
    )
    recipient = forms.CharField(label="Recipient", required=False, max_length=320, help_text="Full address.")
    message_id = forms.CharField(label="Message ID", required=False, max_length=998)
    subject = forms.CharField(label="Subject", required=False, max_length=998, help_text="Part of the subject.")
    event_id = forms.ChoiceField(
        label="Event",
        required=False,
        choices=[("", "Any event"), *TrackingEventId.choices],
    )
    start = _date_time_field("Start")
    end = _date_time_field("End")

    def clean_sender(self):
        typed = self.cleaned_data["sender"].strip()
        if typed == NULL_SENDER:
            return ""  # notifications come from the null sender
        return _address(typed, "sender")

    def clean_recipient(self):
        return _address(self.cleaned_data["recipient"], "recipient")

    def clean_message_id(self):
        typed = self.cleaned_data["message_id"].strip()
        if any(character.isspace() for character in typed):
            raise ValidationError(
                f'"{typed}" isn\'t a valid Message-ID. Copy it from the message header, such as <1234@contoso.com>.'
            )
        return normalise_message_id(typed) if typed else None

    def clean_subject(self):
        return self.cleaned_data["subject"].strip() or None

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end <= start:
            self.add_error("end", "The end time must be later than the start time.")
        return cleaned

    def criteria(self):
        """Keyword arguments for ``tracking.search_messages`` (call after ``is_valid()``)."""
        data = self.cleaned_data
        return {
            "sender": data["sender"],
            "recipients": [data["recipient"]] if data["recipient"] else (),
            "message_id": data["message_id"],
            "subject": data["subject"],
            "event_id": data["event_id"] or None,
            "start": data["start"],
            "end": data["end"],
        }


class SessionSearchForm(forms.Form):
    connector = forms.CharField(label="Connector", required=False, max_length=64, help_text="Send connector name.")
    remote_address = forms.CharField(
        label="Remote address", required=False, max_length=64, help_text="IP address, optionally with :port."
    )
    session_id = forms.CharField(label="Session ID", required=False, max_length=64)

    def clean_connector(self):
        return self.cleaned_data["connector"].strip()

    def clean_remote_address(self):
        """→ (address, port or None); None when empty."""
        typed = self.cleaned_data["remote_address"].strip()
        if not typed:
            return None
        address, port = split_endpoint(typed)
        port_typed = "]:" in typed if typed.startswith("[") else typed.count(":") == 1
        if address is None or (port_typed and not (port and port <= 65535)):
            raise ValidationError(
                f'"{typed}" isn\'t a valid IP address. Enter one such as 192.168.1.10 or 192.168.1.10:25.'
            )
        return address, port

    def clean_session_id(self):
        typed = self.cleaned_data["session_id"].strip()
        if typed and not re.fullmatch(r"[0-9A-Fa-f]+", typed):
            raise ValidationError(
                f'"{typed}" isn\'t a valid session ID. A session ID is hexadecimal, such as 08DC6F1A2B3C4D5E.'
            )
        return typed.upper()

    def session_filter(self):
        """The ``SessionFilter`` for the cleaned search (call after ``is_valid()``)."""
        data = self.cleaned_data
        address, port = data["remote_address"] or (None, None)
        return SessionFilter(data["connector"], data["session_id"], address, port)
