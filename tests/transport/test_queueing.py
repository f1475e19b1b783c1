import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from sendconn.connectors.servers import local_server
from sendconn.transport import queueing, wakeups
from sendconn.transport.models import Message, Recipient, RecipientStatus, TrackingEvent
from sendconn.transport.queueing import SIZE_EXCEEDED_RESPONSE, UNREACHABLE_RESPONSE, queue_message

pytestmark = pytest.mark.django_db
MB = 1024 * 1024

CONTENT = (
    b"From: Julia <julia@contoso.test>\r\n"
    b"To: Kim <kim@fabrikam.test>\r\n"
    b"Subject: =?utf-8?q?Quarterly_r=C3=A9sum=C3=A9?=\r\n"
    b"Message-ID: <q3@contoso.test>\r\n"
    b"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n"
    b"\r\n"
    b"Numbers attached.\r\n"
)


@pytest.fixture
def connectors(make_connector):
    internet = make_connector("Internet", ["*.fabrikam.test", "fabrikam.test"])
    relay = make_connector("Relay", ["tailspin.test"], dns_routing_enabled=False, smart_hosts=["10.0.0.1"])
    return internet, relay


def test_message_is_stored_once_with_a_routed_row_per_recipient(connectors, woken, django_capture_on_commit_callbacks):
    internet, relay = connectors
    recipients = ["kim@fabrikam.test", "lee@sales.fabrikam.test", "ann@tailspin.test", "bob@tailspin.test"]
    with django_capture_on_commit_callbacks(execute=True):
        message = queue_message("julia@contoso.test", recipients, CONTENT, client_ip="127.0.0.1", client_hostname="pc1")

    message = Message.objects.get()
    assert message.sender == "julia@contoso.test"
    assert message.message_id == "<q3@contoso.test>"
    assert message.subject == "Quarterly résumé"
    assert message.received_by == local_server()
    assert bytes(message.content).endswith(CONTENT)
    assert bytes(message.content).startswith(
        b"Received: from pc1 ([127.0.0.1]) by ex01.contoso.test (sendconn) with ESMTP"
    )
    assert message.size == len(bytes(message.content))

    rows = {row.address: row for row in Recipient.objects.all()}
    assert list(rows) == recipients
    assert all(
        row.status == RecipientStatus.READY and row.next_attempt_at == message.submitted_at for row in rows.values()
    )
    assert (rows["kim@fabrikam.test"].connector, rows["kim@fabrikam.test"].next_hop_domain) == (
        internet,
        "fabrikam.test",
    )
    assert rows["lee@sales.fabrikam.test"].next_hop_domain == "sales.fabrikam.test"
    assert {(row.connector, row.next_hop_domain) for row in rows.values() if row.domain == "tailspin.test"} == {
        (relay, "[10.0.0.1]")
    }
    assert woken == [[(internet.pk, "fabrikam.test"), (internet.pk, "sales.fabrikam.test"), (relay.pk, "[10.0.0.1]")]]


def test_receive_is_tracked_for_each_recipient(connectors):
    message = queue_message(
        "julia@contoso.test", ["kim@fabrikam.test", "ann@tailspin.test"], CONTENT, client_ip="127.0.0.9"
    )
    events = list(
        TrackingEvent.objects.values_list("event_id", "source", "recipient", "message_id", "remote_ip", "total_bytes")
    )
    assert events == [
        ("RECEIVE", "SMTP", "kim@fabrikam.test", "<q3@contoso.test>", "127.0.0.9", message.size),
        ("RECEIVE", "SMTP", "ann@tailspin.test", "<q3@contoso.test>", "127.0.0.9", message.size),
    ]


def test_receive_is_written_to_the_tracking_log_on_commit(
    connectors, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.SENDCONN_TRACKING_LOG_DIR = tmp_path
    with django_capture_on_commit_callbacks() as callbacks:
        queue_message("julia@contoso.test", ["kim@fabrikam.test"], CONTENT, client_ip="127.0.0.9")
        assert not list(tmp_path.iterdir())
    for callback in callbacks:
        callback()
    [log_file] = tmp_path.glob("MSGTRK*.log")
    rows = [line for line in log_file.read_text().splitlines() if not line.startswith("#")]
    assert len(rows) == 1
    assert all(text in rows[0] for text in ("127.0.0.9", "RECEIVE", "<q3@contoso.test>", "kim@fabrikam.test"))


def test_wake_ups_go_out_only_after_commit(connectors, woken, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        queue_message("julia@contoso.test", ["kim@fabrikam.test"], CONTENT)
        assert woken == []
    assert woken == []
    for callback in callbacks:
        callback()
    assert woken == [[(connectors[0].pk, "fabrikam.test")]]


def test_a_failing_wake_up_does_not_lose_the_message(connectors, monkeypatch, django_capture_on_commit_callbacks):
    def broker_down(next_hops):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(wakeups, "wake_next_hops", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        message = queue_message("julia@contoso.test", ["kim@fabrikam.test"], CONTENT)
    assert Recipient.objects.get(message=message).status == RecipientStatus.READY  # the sweeper will wake it


def test_recipient_without_a_connector_goes_to_unreachable(connectors, woken, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        queue_message("julia@contoso.test", ["kim@fabrikam.test", "zoe@nowhere.test"], CONTENT)
    row = Recipient.objects.get(address="zoe@nowhere.test")
    assert row.status == RecipientStatus.UNREACHABLE
    assert row.connector is None and row.next_attempt_at is None
    assert row.last_response == UNREACHABLE_RESPONSE
    assert woken == [[(connectors[0].pk, "fabrikam.test")]]


def test_message_bigger_than_every_matching_connector_fails_5_3_4(
    make_connector, woken, django_capture_on_commit_callbacks
):
    make_connector("Small", ["fabrikam.test"], max_message_size=1 * MB)
    big = CONTENT + b"x" * (2 * MB)
    with django_capture_on_commit_callbacks(execute=True):
        message = queue_message("julia@contoso.test", ["kim@fabrikam.test"], big)
    row = Recipient.objects.get(message=message)
    assert (row.status, row.last_response) == (RecipientStatus.FAILED, SIZE_EXCEEDED_RESPONSE)
    assert list(message.tracking_events.values_list("event_id", "source", "recipient_status")) == [
        ("RECEIVE", "SMTP", ""),
        ("FAIL", "ROUTING", "550 5.3.4 Message size exceeds fixed maximum message size"),
        ("DSN", "DSN", "550 5.3.4 Message size exceeds fixed maximum message size"),
    ]
    # The NDR goes back to the sender (no connector covers contoso.test here: it waits as Unreachable).
    ndr = Message.objects.get(is_dsn=True)
    assert (ndr.sender, ndr.original_message) == ("", message)
    assert list(ndr.recipients.values_list("address", flat=True)) == ["julia@contoso.test"]
    assert woken == []


def test_missing_message_id_and_date_are_added():
    message = queue_message("", ["kim@fabrikam.test"], b"Subject: no id\r\n\r\nbody\r\n")
    assert message.message_id.startswith("<") and message.message_id.endswith("@ex01.contoso.test>")
    content = bytes(message.content)
    assert re.match(rb"Received: by ex01\.contoso\.test \(sendconn\); \w{3}, \d", content)  # ours: no "from"
    assert f"\r\nMessage-ID: {message.message_id}\r\n".encode() in content
    assert b"\r\nDate: " in content
    assert content.endswith(b"Subject: no id\r\n\r\nbody\r\n")


def test_content_without_headers_keeps_its_body_out_of_the_header_section():
    message = queue_message("a@contoso.test", ["kim@fabrikam.test"], b"just a line\r\n")
    assert bytes(message.content).endswith(b"\r\n\r\njust a line\r\n")


def test_null_sender_dsn_is_recorded_as_such(connectors):
    original = queue_message("julia@contoso.test", ["kim@fabrikam.test"], CONTENT)
    ndr = queue_message(
        "", ["julia@fabrikam.test"], b"Subject: Undeliverable\r\n\r\n", is_dsn=True, original_message=original
    )
    assert (ndr.sender, ndr.is_dsn, ndr.original_message) == ("", True, original)
    assert TrackingEvent.objects.get(queued_message=ndr).source == "DSN"


def test_duplicate_recipients_are_queued_once(connectors):
    message = queue_message("julia@contoso.test", ["kim@fabrikam.test", "KIM@fabrikam.test"], CONTENT)
    assert message.recipients.count() == 1


def test_invalid_recipient_saves_nothing(connectors):
    with pytest.raises(ValueError):
        queue_message("julia@contoso.test", ["kim@fabrikam.test", "not-an-address"], CONTENT)
    with pytest.raises(ValueError):
        queue_message("julia@contoso.test", [], CONTENT)
    assert not Message.objects.exists() and not TrackingEvent.objects.exists()


@pytest.mark.parametrize(
    "sender, recipient",
    [
        ('"a>b"@contoso.test', "kim@fabrikam.test"),
        ("julia@contoso.test", '"a>b"@fabrikam.test'),
        ("julia\r\n@contoso.test", "kim@fabrikam.test"),
        ("julia@contoso.test", "kim\x00@fabrikam.test"),
    ],
)
def test_an_address_delivery_could_not_carry_saves_nothing(connectors, sender, recipient):
    with pytest.raises(ValueError, match="isn't a valid SMTP address"):
        queue_message(sender, ["ok@fabrikam.test", recipient], CONTENT)
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    "client_hostname, client_ip, received",
    [
        ("evil.example\rX-Injected: x", "127.0.0.1", b"Received: from unknown ([127.0.0.1]) by"),
        ("[127.0.0.1]\r\rSubject: fake", "127.0.0.1", b"Received: from unknown ([127.0.0.1]) by"),
        ("pc1", "::1", b"Received: from pc1 ([IPv6:::1]) by"),
        ("[IPv6:::1]", "::ffff:127.0.0.1", b"Received: from [IPv6:::1] ([127.0.0.1]) by"),
    ],
)
def test_received_header_carries_only_a_valid_helo_name_and_ip_address(client_hostname, client_ip, received):
    message = queue_message(
        "julia@contoso.test", ["kim@fabrikam.test"], CONTENT, client_ip=client_ip, client_hostname=client_hostname
    )
    content = bytes(message.content)
    assert content.startswith(received + b" ex01.contoso.test (sendconn) with ESMTP; ")
    assert b"X-Injected" not in content and b"\r\r" not in content and content.count(b"Subject:") == 1


def test_queries_do_not_grow_with_recipients(connectors):
    server = local_server()

    def count(recipients):
        with CaptureQueriesContext(connection) as queries:
            queue_message("julia@contoso.test", recipients, CONTENT, server)
        return len(queries)

    # 40: SQLite splits bulk inserts beyond 999 parameters; PostgreSQL takes any number in one.
    assert count(["kim@fabrikam.test"]) == count([f"user{n}@fabrikam.test" for n in range(40)])


@pytest.mark.parametrize(
    "block",
    [
        b"Subject: plain\r\nMessage-ID: <1@contoso.test>\r\nDate: Thu, 01 Jan 2026 00:00:00 +0000\r\n",
        b"subject: =?utf-8?q?R=C3=A9sum=C3=A9?=\r\n =?utf-8?q?_part_two?=\r\nMESSAGE-ID:\t <2@contoso.test>\r\n",
        b"Subject: first\r\nSubject: second\r\nMessage-Id: <a@b>\r\nMessage-Id: <c@d>\r\n",
        b"From app@contoso.test Thu Jan  1 00:00:00 2026\r\nSubject: after an mbox line\r\n",
        b" continued before any field\r\nSubject: kept\r\n:no name\r\n folded onto nothing\r\nDate: x\r\n",
        b"Subject: bare LF\nDate: Thu, 01 Jan 2026\n  folded\n",
        b"Subject: old Mac\rMessage-ID: <3@x>\r",
        b"Subject: a body line follows\r\nthis is body text, no colon\r\nDate: not a field\r\n",
        b"Subject: ends without a line break",
        b"not a header at all\r\n",
        b"From the first line\r\n",
        b"",
    ],
)
def test_stamp_reads_the_header_fields_as_the_email_parser_does(block):
    assert queueing._read_headers(block) == queueing._read_headers_with_parser(block)


_HEADER_PIECES = st.sampled_from(
    [
        "Subject",
        "subject",
        "Message-ID",
        "DATE",
        "X-Other",
        "From ",
        ":",
        " ",
        "\t",
        ": ",
        "=?utf-8?q?a?=",
        "<1@x>",
        "v",
    ]
)


@given(st.lists(st.lists(_HEADER_PIECES, max_size=4).map("".join), max_size=6), st.sampled_from(["\r\n", "\n", "\r"]))
@hypothesis_settings(max_examples=300, deadline=None)
def test_any_ascii_header_section_reads_as_the_email_parser_reads_it(lines, line_end):
    block = "".join(line + line_end for line in lines).encode()
    assert queueing._read_headers(block) == queueing._read_headers_with_parser(block)
