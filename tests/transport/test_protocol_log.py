import csv
import multiprocessing
import os
import re
import time
from datetime import UTC, datetime, timedelta
from importlib.metadata import version

import pytest

from sendconn.transport import logfiles
from sendconn.transport.protocol_log import FIELDS, ProtocolLog
from tests.peers.transcripts import iter_sessions

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
DAY = 86400


def today():
    return f"{datetime.now(UTC):%Y%m%d}"


def log_files(directory):
    return sorted(path for path in directory.iterdir() if path.name.startswith("SEND"))


def rows_of(path):
    with open(path, newline="", encoding="utf-8") as file:
        return [row for row in csv.reader(file) if not row[0].startswith("#")]


def smtp_session(log, connector="To Internet"):
    transcript = log.session(connector)
    transcript.event("*", "", "attempting to connect")
    transcript.connected("127.0.0.1:50123", "127.0.0.2:25")
    transcript.event("<", "220 mx1.fabrikam.test ESMTP")
    transcript.event(">", "EHLO ex01.contoso.test")
    transcript.close()
    return transcript


def make_old_log(directory, name, size, age_days):
    path = directory / name
    path.write_bytes(b"#Software: sendconn\r\n" + b"x" * (size - 21))
    mtime = time.time() - age_days * DAY
    os.utime(path, (mtime, mtime))
    return path


def test_file_name_and_header_lines(tmp_path):
    smtp_session(ProtocolLog(tmp_path))

    [path] = log_files(tmp_path)
    assert path.name == f"SEND{today()}-0001.log"
    lines = path.read_bytes().decode().split("\r\n")
    assert lines[0] == "#Software: sendconn"
    assert lines[1] == f"#Version: {version('sendconn')}"
    assert lines[2] == "#Log-Type: SMTP Send Protocol Log"
    assert re.match(r"^#Date: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", lines[3])
    assert lines[4] == (
        "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context"
    )


def test_rows_have_the_nine_fields_in_order(tmp_path):
    transcript = smtp_session(ProtocolLog(tmp_path))

    rows = rows_of(log_files(tmp_path)[0])
    assert all(len(row) == 9 for row in rows)
    assert all(TIMESTAMP.match(row[0]) for row in rows)
    assert re.match(r"^[0-9A-F]{16}$", transcript.session_id)
    sid, local, remote = transcript.session_id, "127.0.0.1:50123", "127.0.0.2:25"
    assert [row[1:] for row in rows] == [
        ["To Internet", sid, "0", "", "", "*", "", "attempting to connect"],
        ["To Internet", sid, "1", local, remote, "+", "", ""],
        ["To Internet", sid, "2", local, remote, "<", "220 mx1.fabrikam.test ESMTP", ""],
        ["To Internet", sid, "3", local, remote, ">", "EHLO ex01.contoso.test", ""],
        ["To Internet", sid, "4", local, remote, "-", "", "Local"],
    ]


def test_sequence_numbers_restart_per_session_and_ids_differ(tmp_path):
    log = ProtocolLog(tmp_path)
    first, second = smtp_session(log), smtp_session(log)

    assert first.session_id != second.session_id
    sessions = dict(iter_sessions(log_files(tmp_path)[0]))
    for transcript in (first, second):
        assert [row["sequence-number"] for row in sessions[transcript.session_id]] == ["0", "1", "2", "3", "4"]


def test_close_writes_one_disconnect(tmp_path):
    log = ProtocolLog(tmp_path)
    with log.session("To Internet") as transcript:
        transcript.connected("127.0.0.1:50123", "127.0.0.2:25")
        transcript.event("-", "", "Remote")
    never_connected = log.session("To Internet")
    never_connected.event("*", "", "Failed to connect")
    never_connected.close()

    rows = rows_of(log_files(tmp_path)[0])
    assert [(row[6], row[8]) for row in rows] == [("+", ""), ("-", "Remote"), ("*", "Failed to connect")]


def test_data_with_commas_quotes_and_line_breaks_is_csv_safe(tmp_path):
    transcript = ProtocolLog(tmp_path).session('Outbound, "partner"')
    transcript.event("<", '250-mx says "hi", friend\r\n250 SIZE 1000', 'context, with "quotes"')

    [row] = rows_of(log_files(tmp_path)[0])
    assert row[1] == 'Outbound, "partner"'
    assert row[7] == '250-mx says "hi", friend\r\n250 SIZE 1000'
    assert row[8] == 'context, with "quotes"'


def test_unknown_event_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\+ - > < \*"):
        ProtocolLog(tmp_path).session("To Internet").event("?", "data")


def test_rolls_into_the_next_file_at_the_maximum_size(tmp_path, settings):
    settings.SENDCONN_PROTOCOL_LOG_MAX_FILE_SIZE = 2000
    log = ProtocolLog(tmp_path)
    transcripts = [smtp_session(log) for _ in range(10)]

    paths = log_files(tmp_path)
    assert [path.name for path in paths[:2]] == [f"SEND{today()}-0001.log", f"SEND{today()}-0002.log"]
    assert len(paths) >= 3
    for path in paths:
        assert path.stat().st_size <= 2000
        assert path.read_bytes().startswith(b"#Software: sendconn\r\n")
    rows = [row for path in paths for row in rows_of(path)]
    assert [row[2] for row in rows] == [t.session_id for t in transcripts for _ in range(5)]


def test_numbering_restarts_each_utc_day(tmp_path, settings, monkeypatch):
    settings.SENDCONN_PROTOCOL_LOG_MAX_FILE_SIZE = 1000
    clock = [datetime(2025, 1, 6, 23, 59, 59, tzinfo=UTC)]

    class FrozenClock(datetime):
        @classmethod
        def now(cls, tz=None):
            return clock[0]

    monkeypatch.setattr(logfiles, "datetime", FrozenClock)
    log = ProtocolLog(tmp_path)
    for _ in range(4):
        smtp_session(log)
    clock[0] = datetime(2025, 1, 7, 0, 0, 1, tzinfo=UTC)
    smtp_session(log)

    names = [path.name for path in log_files(tmp_path)]
    assert "SEND20250106-0002.log" in names
    assert names[-1] == "SEND20250107-0001.log"
    assert b"#Date: 2025-01-07T00:00:01.000Z" in (tmp_path / "SEND20250107-0001.log").read_bytes()


def test_a_new_file_prunes_files_older_than_the_maximum_age(tmp_path, settings):
    settings.SENDCONN_PROTOCOL_LOG_MAX_AGE = timedelta(days=30)
    expired = make_old_log(tmp_path, "SEND20240101-0001.log", 500, age_days=31)
    recent = make_old_log(tmp_path, "SEND20240301-0001.log", 500, age_days=29)
    other_log = make_old_log(tmp_path, "RECV20240101-0001.log", 500, age_days=31)
    notes = make_old_log(tmp_path, "notes.txt", 500, age_days=31)

    smtp_session(ProtocolLog(tmp_path))

    assert not expired.exists()
    assert recent.exists() and other_log.exists() and notes.exists()


def test_max_age_zero_never_deletes_by_age(tmp_path, settings):
    settings.SENDCONN_PROTOCOL_LOG_MAX_AGE = timedelta(0)
    ancient = make_old_log(tmp_path, "SEND20200101-0001.log", 500, age_days=2000)

    smtp_session(ProtocolLog(tmp_path))

    assert ancient.exists()


def test_a_new_file_prunes_oldest_first_down_to_the_directory_size(tmp_path, settings):
    settings.SENDCONN_PROTOCOL_LOG_MAX_FILE_SIZE = 1500
    settings.SENDCONN_PROTOCOL_LOG_MAX_DIRECTORY_SIZE = 5000
    # Names in date order, but mtime decides: -0002 of the 2nd was written before the 1st's file.
    oldest = make_old_log(tmp_path, "SEND20250102-0002.log", 1500, age_days=5)
    second = make_old_log(tmp_path, "SEND20250101-0001.log", 1500, age_days=4)
    third = make_old_log(tmp_path, "SEND20250103-0001.log", 1500, age_days=3)
    newest = make_old_log(tmp_path, "SEND20250104-0001.log", 1500, age_days=2)

    smtp_session(ProtocolLog(tmp_path))  # 6,000 bytes + room for a full new file: two must go

    assert not oldest.exists() and not second.exists()
    assert third.exists() and newest.exists()
    assert sum(path.stat().st_size for path in log_files(tmp_path)) <= 5000


def test_an_unwritable_folder_does_not_stop_the_session(tmp_path, caplog):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the folder should be")
    transcript = ProtocolLog(blocked).session("To Internet")

    transcript.connected("127.0.0.1:50123", "127.0.0.2:25")
    transcript.event(">", "QUIT")

    assert [record.message for record in caplog.records] == [f"Can't write the Send protocol log in {blocked}"]


def test_default_folder_comes_from_settings(tmp_path, settings):
    from django.conf import settings as django_settings

    assert str(django_settings.SENDCONN_PROTOCOL_LOG_DIR).endswith("logs/ProtocolLog/SmtpSend")
    settings.SENDCONN_PROTOCOL_LOG_DIR = tmp_path / "ProtocolLog"
    smtp_session(ProtocolLog())

    assert len(log_files(tmp_path / "ProtocolLog")) == 1


def _write_sessions(directory, worker, sessions):
    log = ProtocolLog(directory)
    for number in range(sessions):
        with log.session(f"Worker {worker}") as transcript:
            transcript.connected("127.0.0.1:50123", "127.0.0.2:25")
            transcript.event(">", f'MAIL FROM:<w{worker}@contoso.test> SIZE={number}, "quoted"' + "x" * 40)
            transcript.event("<", "250 2.1.0 Sender OK")


def test_two_processes_write_whole_lines_and_share_the_rolls(tmp_path, settings):
    settings.SENDCONN_PROTOCOL_LOG_MAX_FILE_SIZE = 8192
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_sessions, args=(tmp_path, worker, 150)) for worker in (1, 2)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0

    paths = log_files(tmp_path)
    assert [path.name for path in paths] == [f"SEND{today()}-{n:04d}.log" for n in range(1, len(paths) + 1)]
    sessions = {}
    for path in paths:
        content = path.read_bytes()
        assert content.startswith(b"#Software: sendconn\r\n")
        assert content.count(b"#Software") == 1
        assert content.endswith(b"\r\n")
        assert len(content) <= 8192
        for session_id, rows in iter_sessions(path):
            assert all(len(row) == len(FIELDS) and None not in row.values() for row in rows)
            sessions.setdefault(session_id, []).extend(rows)
    assert len(sessions) == 300
    for rows in sessions.values():
        rows.sort(key=lambda row: int(row["sequence-number"]))
        assert [row["sequence-number"] for row in rows] == ["0", "1", "2", "3"]
        assert [row["event"] for row in rows] == ["+", ">", "<", "-"]
        assert re.match(r'^MAIL FROM:<w[12]@contoso.test> SIZE=\d+, "quoted"x{40}$', rows[1]["data"])


def test_iter_sessions_groups_by_session_in_sequence_order(tmp_path):
    # Exchange's own layout, sessions interleaved as concurrent sessions are.
    path = tmp_path / "SEND20171013-1.log"
    path.write_text(
        "#Software: Microsoft Exchange Server\r\n"
        "#Version: 15.01.1034.026\r\n"
        "#Log-type: SMTP Send Protocol Log\r\n"
        "#Date: 2017-10-13T15:02:24.456Z\r\n"
        f"#Fields: {','.join(FIELDS)}\r\n"
        "2017-10-13T15:02:24.456Z,Outbound to Office 365,08D50D3D9730A8D2,0,,10.0.0.5:25,*,,attempting to connect\r\n"
        "2017-10-13T15:02:24.460Z,Outbound to Office 365,08D50D3D9730A8D3,0,,10.0.0.6:25,*,,attempting to connect\r\n"
        "2017-10-13T15:02:24.499Z,Outbound to Office 365,08D50D3D9730A8D2,2,10.0.0.1:14071,10.0.0.5:25,<,"
        '"220 mail.contoso.com Microsoft ESMTP MAIL Service ready",\r\n'
        "2017-10-13T15:02:24.470Z,Outbound to Office 365,08D50D3D9730A8D2,1,10.0.0.1:14071,10.0.0.5:25,+,,\r\n",
        newline="",
    )

    sessions = list(iter_sessions(path))

    assert [session_id for session_id, _ in sessions] == ["08D50D3D9730A8D2", "08D50D3D9730A8D3"]
    rows = sessions[0][1]
    assert [row["event"] for row in rows] == ["*", "+", "<"]
    assert rows[2]["data"] == "220 mail.contoso.com Microsoft ESMTP MAIL Service ready"
    assert rows[1]["local-endpoint"] == "10.0.0.1:14071"
