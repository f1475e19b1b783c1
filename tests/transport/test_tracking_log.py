import csv
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from sendconn.transport.tracking_log import FIELDS, write_events

EXCHANGE_FIELDS = (
    "date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,source,event-id,"
    "internal-message-id,message-id,network-message-id,recipient-address,recipient-status,total-bytes,"
    "recipient-count,related-recipient-address,reference,message-subject,sender-address,return-path,"
    "message-info,directionality,tenant-id,original-client-ip,original-server-ip,custom-data,"
    "transport-traffic-type,log-id,schema-version"
)
SENT = {
    "date-time": datetime(2025, 1, 6, 10, 0, 0, 123456, tzinfo=UTC),
    "server-ip": "127.0.0.2",
    "server-hostname": "mx1.fabrikam.test",
    "connector-id": "To Internet",
    "source": "SMTP",
    "event-id": "SEND",
    "internal-message-id": 42,
    "message-id": "<q4-results@contoso.test>",
    "recipient-address": ["bob@fabrikam.test", "carol@fabrikam.test"],
    "recipient-status": ["250 2.1.5 Recipient OK", "250 2.1.5 Recipient OK"],
    "total-bytes": 2048,
    "recipient-count": 2,
    "message-subject": 'Quarterly results, "final"',
    "sender-address": "alice@contoso.test",
    "return-path": "alice@contoso.test",
    "directionality": "Originating",
}


def log_files(directory):
    return sorted(path for path in directory.iterdir() if path.name.startswith("MSGTRK"))


def read(path):
    with open(path, newline="", encoding="utf-8") as file:
        lines = list(csv.reader(file))
    return [line for line in lines if line[0].startswith("#")], [line for line in lines if not line[0].startswith("#")]


def test_header_and_file_name(tmp_path):
    write_events([SENT], directory=tmp_path)

    [path] = log_files(tmp_path)
    assert re.match(r"^MSGTRK\d{8}-0001\.log$", path.name)
    text = path.read_bytes().decode()
    assert text.startswith("#Software: sendconn\r\n#Version: ")
    assert "\r\n#Log-Type: Message Tracking Log\r\n#Date: " in text
    assert f"\r\n#Fields: {EXCHANGE_FIELDS}\r\n" in text
    assert ",".join(FIELDS) == EXCHANGE_FIELDS


def test_row_in_exchange_field_order(tmp_path):
    write_events([SENT], directory=tmp_path)

    _, [row] = read(log_files(tmp_path)[0])
    assert len(row) == 30
    values = dict(zip(FIELDS, row, strict=True))
    assert values["date-time"] == "2025-01-06T10:00:00.123Z"
    assert values["event-id"] == "SEND"
    assert values["internal-message-id"] == "42"
    assert values["recipient-address"] == "bob@fabrikam.test;carol@fabrikam.test"
    assert values["recipient-status"] == "250 2.1.5 Recipient OK;250 2.1.5 Recipient OK"
    assert values["message-subject"] == 'Quarterly results, "final"'
    assert values["client-ip"] == "" and values["schema-version"] == ""  # missing → empty


def test_a_batch_is_written_in_order_with_python_style_keys(tmp_path):
    write_events(
        [
            {"event_id": "RECEIVE", "source": "SMTP", "message_id": "<a@contoso.test>"},
            {"event_id": "DEFER", "recipient_status": "451 4.4.0 DNS query failed", "message_id": "<a@contoso.test>"},
            {"event_id": "FAIL", "recipient_status": "550 5.1.1 User unknown", "date_time": None},
        ],
        directory=tmp_path,
    )

    _, rows = read(log_files(tmp_path)[0])
    events = [dict(zip(FIELDS, row, strict=True)) for row in rows]
    assert [event["event-id"] for event in events] == ["RECEIVE", "DEFER", "FAIL"]
    assert events[1]["recipient-status"] == "451 4.4.0 DNS query failed"
    # No date-time given: the moment of writing.
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", event["date-time"]) for event in events)


def test_local_times_are_written_in_utc(tmp_path):
    eastern = timezone(timedelta(hours=-5))
    write_events([{"event-id": "SEND", "date-time": datetime(2025, 1, 6, 5, 0, tzinfo=eastern)}], directory=tmp_path)

    _, [row] = read(log_files(tmp_path)[0])
    assert row[0] == "2025-01-06T10:00:00.000Z"


def test_unknown_field_is_refused_and_nothing_written(tmp_path):
    with pytest.raises(ValueError, match="recipient-adress"):
        write_events([SENT, {"event-id": "SEND", "recipient-adress": "typo@fabrikam.test"}], directory=tmp_path)

    assert not tmp_path.exists() or log_files(tmp_path) == []


def test_empty_batch_creates_nothing(tmp_path):
    write_events([], directory=tmp_path / "MessageTracking")

    assert not (tmp_path / "MessageTracking").exists()


def test_rolls_and_prunes_with_the_tracking_settings(tmp_path, settings):
    settings.SENDCONN_TRACKING_LOG_MAX_FILE_SIZE = 2000
    settings.SENDCONN_TRACKING_LOG_MAX_DIRECTORY_SIZE = 7000
    settings.SENDCONN_TRACKING_LOG_DIR = tmp_path
    for _ in range(30):
        write_events([SENT])

    paths = log_files(tmp_path)
    assert len(paths) >= 2
    assert all(path.stat().st_size <= 2000 for path in paths)
    assert sum(path.stat().st_size for path in paths) <= 7000
    numbers = [int(path.name[-8:-4]) for path in paths]
    assert numbers[0] > 1  # the earliest files went first
    assert numbers == list(range(numbers[0], numbers[0] + len(paths)))


def test_defaults_are_exchanges():
    from django.conf import settings

    assert str(settings.SENDCONN_TRACKING_LOG_DIR).endswith("logs/MessageTracking")
    assert settings.SENDCONN_TRACKING_LOG_MAX_FILE_SIZE == 10 * 1024 * 1024
    assert settings.SENDCONN_TRACKING_LOG_MAX_DIRECTORY_SIZE == 1000 * 1024 * 1024
    assert settings.SENDCONN_TRACKING_LOG_MAX_AGE == timedelta(days=30)
    assert settings.SENDCONN_PROTOCOL_LOG_MAX_FILE_SIZE == 10 * 1024 * 1024
    assert settings.SENDCONN_PROTOCOL_LOG_MAX_DIRECTORY_SIZE == 250 * 1024 * 1024
    assert settings.SENDCONN_PROTOCOL_LOG_MAX_AGE == timedelta(days=30)
