import os
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from sendconn.ops import protocol_log_files
from sendconn.transport.protocol_log import ProtocolLog

LIST_URL = reverse("ops:protocol-logs")
# A day written by Exchange itself: its header, its field names, an IPv6 peer, a session refused at RCPT.
EXCHANGE_DAY = "20260103"
EXCHANGE_FILE = f"SEND{EXCHANGE_DAY}-0001.log"
EXCHANGE_LOG = """#Software: Microsoft Exchange Server\r
#Version: 15.01.2507.006\r
#Log-Type: SMTP Send Protocol Log\r
#Date: 2026-01-03T08:00:00.000Z\r
#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\r
2026-01-03T08:00:00.000Z,Partner,08DC6F1A2B3C4D5E,0,,[::1]:25,*,,attempting to connect\r
2026-01-03T08:00:00.010Z,Partner,08DC6F1A2B3C4D5E,1,[::1]:50000,[::1]:25,+,,\r
2026-01-03T08:00:00.020Z,Partner,08DC6F1A2B3C4D5E,2,[::1]:50000,[::1]:25,<,220 mx.partner.test ESMTP,\r
2026-01-03T08:00:00.030Z,Partner,08DC6F1A2B3C4D5E,3,[::1]:50000,[::1]:25,>,EHLO ex01.contoso.test,\r
2026-01-03T08:00:01.500Z,Partner,08DC6F1A2B3C4D5E,4,[::1]:50000,[::1]:25,<,550 5.1.1 User unknown,\r
2026-01-03T08:00:02.250Z,Partner,08DC6F1A2B3C4D5E,5,[::1]:50000,[::1]:25,-,,Remote\r
"""


def today():
    return f"{datetime.now(UTC):%Y%m%d}"


def day_url(day):
    return reverse("ops:protocol-log-day", args=[day])


def session_url(day, session_id):
    return reverse("ops:protocol-log-session", args=[day, session_id])


def download_url(name):
    return reverse("ops:protocol-log-download", args=[name])


@pytest.fixture
def log_dir(settings, tmp_path):
    directory = tmp_path / "ProtocolLog" / "SmtpSend"
    directory.mkdir(parents=True)
    settings.SENDCONN_PROTOCOL_LOG_DIR = directory
    return directory


def smtp_session(log, connector="To internet", remote="127.0.0.2:25", reply="250 2.0.0 OK queued as 4ABC"):
    """One session through the real writer, the way SmtpSession reports it."""
    transcript = log.session(connector)
    transcript.connected("", remote)
    transcript.event("*", "", "attempting to connect")
    transcript.connected("127.0.0.1:50123", remote)
    transcript.event("+")
    transcript.event("<", "220 mx1.fabrikam.test ESMTP")
    transcript.event(">", "EHLO ex01.contoso.test")
    transcript.event("<", "250-mx1.fabrikam.test Hello")
    transcript.event(">", "MAIL FROM:<julia@contoso.test>")
    transcript.event("<", reply)
    transcript.close()
    return transcript.session_id


@pytest.fixture
def logs(log_dir):
    """Today: two sessions of "To internet" (127.0.0.2, 127.0.0.3) and one of "Smart relay"; plus an old
    Exchange file."""
    log = ProtocolLog(log_dir)
    sessions = {
        "internet": smtp_session(log),
        "second": smtp_session(log, remote="127.0.0.3:25", reply="451 4.7.0 Try again later"),
        "relay": smtp_session(log, connector="Smart relay", remote="127.0.0.7:587"),
    }
    (log_dir / EXCHANGE_FILE).write_text(EXCHANGE_LOG, newline="")
    return sessions


def session_ids(response):
    assert response.status_code == 200, response.content
    return [session.session_id for session in response.context["page"]]


# --- files -------------------------------------------------------------------------------------------------------


def test_lists_the_files_newest_first_with_their_day_and_download(helpdesk_client, logs, log_dir):
    (log_dir / ".SEND.lock").touch()  # the writer's lock file and strangers are not log files
    (log_dir / "notes.txt").write_text("hello")
    response = helpdesk_client.get(LIST_URL)
    assert response.status_code == 200
    assert [log.name for log in response.context["page"]] == [f"SEND{today()}-0001.log", EXCHANGE_FILE]
    assertContains(response, f'href="{day_url(EXCHANGE_DAY)}"')
    assertContains(response, f'href="{download_url(EXCHANGE_FILE)}"')
    assertContains(response, "2026-01-03")
    assertNotContains(response, "notes.txt")


@pytest.mark.parametrize("missing", [False, True])
def test_no_logs_yet(helpdesk_client, settings, tmp_path, missing):
    settings.SENDCONN_PROTOCOL_LOG_DIR = tmp_path / ("never-created" if missing else "")
    response = helpdesk_client.get(LIST_URL)
    assert response.status_code == 200
    assertContains(response, "Nothing was logged yet")


# --- a day's sessions ------------------------------------------------------------------------------------------


def test_a_day_lists_its_sessions_with_timing_and_last_reply(helpdesk_client, logs):
    response = helpdesk_client.get(day_url(today()))
    assert session_ids(response) == [logs["internet"], logs["second"], logs["relay"]]
    first = response.context["page"][0]
    assert (first.connector, first.remote_endpoints, first.local_endpoint) == (
        "To internet",
        ["127.0.0.2:25"],
        "127.0.0.1:50123",
    )
    assert first.last_reply == "250 2.0.0 OK queued as 4ABC"
    assert first.disconnected and first.line_count == 8
    assert first.duration_seconds >= 0
    assertContains(response, "451 4.7.0 Try again later")
    assertContains(response, f'href="{session_url(today(), logs["relay"])}"')


def test_an_exchange_day_reads_its_own_fields(helpdesk_client, logs):
    response = helpdesk_client.get(day_url(EXCHANGE_DAY))
    assert session_ids(response) == ["08DC6F1A2B3C4D5E"]
    session = response.context["page"][0]
    assert session.duration_seconds == 2.25
    assert session.remote_endpoints == ["[::1]:25"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"connector": "to INTERNET"}, ["internet", "second"]),
        ({"connector": "Smart relay"}, ["relay"]),
        ({"remote_address": "127.0.0.3"}, ["second"]),
        ({"remote_address": "127.0.0.7:587"}, ["relay"]),
        ({"remote_address": "127.0.0.7:25"}, []),
        ({"connector": "To internet", "remote_address": "127.0.0.7"}, []),
    ],
)
def test_filter_sessions(helpdesk_client, logs, params, expected):
    response = helpdesk_client.get(day_url(today()), params)
    assert session_ids(response) == [logs[name] for name in expected]


def test_filter_by_session_id_ignores_case(helpdesk_client, logs):
    response = helpdesk_client.get(day_url(today()), {"session_id": logs["second"].lower()})
    assert session_ids(response) == [logs["second"]]


def test_filter_by_ipv6_remote_address(helpdesk_client, logs):
    assert session_ids(helpdesk_client.get(day_url(EXCHANGE_DAY), {"remote_address": "::1"})) == ["08DC6F1A2B3C4D5E"]
    assert session_ids(helpdesk_client.get(day_url(EXCHANGE_DAY), {"remote_address": "[::1]:25"})) == [
        "08DC6F1A2B3C4D5E"
    ]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        (
            {"remote_address": "mx.fabrikam.test"},
            "remote_address",
            '"mx.fabrikam.test" isn\'t a valid IP address. Enter one such as 192.168.1.10 or 192.168.1.10:25.',
        ),
        (
            {"remote_address": "127.0.0.2:99999"},
            "remote_address",
            '"127.0.0.2:99999" isn\'t a valid IP address. Enter one such as 192.168.1.10 or 192.168.1.10:25.',
        ),
        (
            {"session_id": "not-hex"},
            "session_id",
            '"not-hex" isn\'t a valid session ID. A session ID is hexadecimal, such as 08DC6F1A2B3C4D5E.',
        ),
    ],
)
def test_bad_filters_are_explained_next_to_their_field(helpdesk_client, logs, params, field, message):
    response = helpdesk_client.get(day_url(today()), params)
    assert response.status_code == 200
    assert response.context["form"].errors[field] == [message]
    assert response.context["page"] is None


def test_sessions_are_paginated(helpdesk_client, log_dir):
    log = ProtocolLog(log_dir)
    ids = [smtp_session(log) for _ in range(60)]
    first = helpdesk_client.get(day_url(today()), {"connector": "To internet"})
    assert session_ids(first) == ids[:50]
    assertContains(first, "60 sessions")
    assertContains(first, '<a href="?connector=To+internet&amp;page=2">Next</a>', html=True)
    assert session_ids(helpdesk_client.get(day_url(today()), {"connector": "To internet", "page": "2"})) == ids[50:]


@pytest.mark.parametrize("day", ["20261399", "2026-01-03", "yesterday", "20250101"])
def test_a_day_without_logs_is_404(helpdesk_client, logs, day):
    assert helpdesk_client.get(day_url(day)).status_code == 404


# --- one session -----------------------------------------------------------------------------------------------


def test_session_transcript_with_timing(helpdesk_client, logs):
    response = helpdesk_client.get(session_url(today(), logs["internet"]))
    assert response.status_code == 200
    lines = [(line.sequence, line.event, line.data, line.context) for line in response.context["transcript"].lines]
    assert lines == [
        (0, "*", "", "attempting to connect"),
        (1, "+", "", ""),
        (2, "<", "220 mx1.fabrikam.test ESMTP", ""),
        (3, ">", "EHLO ex01.contoso.test", ""),
        (4, "<", "250-mx1.fabrikam.test Hello", ""),
        (5, ">", "MAIL FROM:<julia@contoso.test>", ""),
        (6, "<", "250 2.0.0 OK queued as 4ABC", ""),
        (7, "-", "", "Local"),
    ]
    assertContains(response, "Connected 127.0.0.1:50123 → 127.0.0.2:25")
    assertContains(response, "<code>MAIL FROM:&lt;julia@contoso.test&gt;</code>", html=True)
    assertContains(response, "Disconnected")
    summary = response.context["summary"]
    assert summary.started_at <= summary.ended_at
    assertContains(response, summary.first_row)
    assertContains(response, summary.last_row)


def test_exchange_session_timing(helpdesk_client, logs):
    response = helpdesk_client.get(session_url(EXCHANGE_DAY, "08dc6f1a2b3c4d5e"))
    assert response.status_code == 200
    assertContains(response, "2026-01-03T08:00:00.000Z")
    assertContains(response, "2026-01-03T08:00:02.250Z")
    assertContains(response, "2.250 s")
    assertContains(response, "550 5.1.1 User unknown")


def test_a_session_continues_in_the_next_file_of_the_day(helpdesk_client, settings, log_dir):
    settings.SENDCONN_PROTOCOL_LOG_MAX_FILE_SIZE = 1024  # a few rows per file: the session spans files
    session_id = smtp_session(ProtocolLog(log_dir))
    names = sorted(path.name for path in log_dir.glob("SEND*.log"))
    assert len(names) > 1
    response = helpdesk_client.get(session_url(today(), session_id))
    assert [line.sequence for line in response.context["transcript"].lines] == list(range(8))
    assert response.context["summary"].file_names == names
    assert session_ids(helpdesk_client.get(day_url(today()))) == [session_id]


def test_unknown_session_is_404(helpdesk_client, logs):
    assert helpdesk_client.get(session_url(today(), "0123456789ABCDEF")).status_code == 404


# --- download ----------------------------------------------------------------------------------------------------


def test_download_the_raw_file(helpdesk_client, logs, log_dir):
    name = f"SEND{today()}-0001.log"
    response = helpdesk_client.get(download_url(name))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    body = b"".join(response.streaming_content)
    assert body == (log_dir / name).read_bytes()
    assert int(response["Content-Length"]) == len(body)
    response.close()


def test_download_stops_at_the_size_it_announced(helpdesk_client, logs, log_dir):
    name = f"SEND{today()}-0001.log"
    response = helpdesk_client.get(download_url(name))
    announced = int(response["Content-Length"])
    smtp_session(ProtocolLog(log_dir))  # today's file grows while it downloads
    assert len(b"".join(response.streaming_content)) == announced
    response.close()


@pytest.mark.parametrize(
    "path",
    [
        "/protocol-logs/files/../outside/",
        "/protocol-logs/files/..%2FSEND20260101-0001.log/",
        "/protocol-logs/files/%2E%2E%2F%2E%2E%2FSEND20260101-0001.log/",
        "/protocol-logs/files//etc/passwd/",
        "/protocol-logs/files/%2Fetc%2Fpasswd/",
        "/protocol-logs/files/SEND20260101-0001.log%00/",
        "/protocol-logs/files/SEND20991231-0001.log/",  # a log file name, but no such file
        "/protocol-logs/files/.SEND.lock/",
    ],
)
def test_nothing_but_a_log_file_in_the_folder_downloads(helpdesk_client, logs, log_dir, path):
    # A file with a log file name just outside the folder, and the lock file inside it.
    (log_dir.parent / "SEND20260101-0001.log").write_text("secret")
    (log_dir / ".SEND.lock").touch()
    assert helpdesk_client.get(path).status_code == 404


def test_a_symlink_out_of_the_folder_is_not_a_log_file(helpdesk_client, logs, log_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    os.symlink(secret, log_dir / "SEND20260102-0001.log")
    assert protocol_log_files.log_file("SEND20260102-0001.log") is None
    assert helpdesk_client.get(download_url("SEND20260102-0001.log")).status_code == 404
    assert "SEND20260102-0001.log" not in [log.name for log in protocol_log_files.log_files()]


@pytest.mark.parametrize("name", ["../SEND20260101-0001.log", "/etc/passwd", "SEND20260101-0001.log/..", ""])
def test_log_file_refuses_anything_but_a_bare_log_file_name(logs, log_dir, name):
    (log_dir.parent / "SEND20260101-0001.log").write_text("secret")
    assert protocol_log_files.log_file(name) is None


# --- who may look ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("client_fixture", ["admin_client", "server_client", "helpdesk_client"])
def test_all_three_role_groups_read_protocol_logs(request, logs, client_fixture):
    client = request.getfixturevalue(client_fixture)
    for url in (LIST_URL, day_url(today()), session_url(today(), logs["internet"]), download_url(EXCHANGE_FILE)):
        assert client.get(url).status_code == 200, url


def test_a_user_in_no_role_group_is_refused(client, nobody, logs):
    client.force_login(nobody)
    for url in (LIST_URL, day_url(today()), session_url(today(), logs["internet"]), download_url(EXCHANGE_FILE)):
        assert client.get(url).status_code == 403, url


def test_log_file_names_match_whole(logs, log_dir):
    (log_dir / "SEND20260101-0001.log\n").write_text("not written by the log writer")
    assert protocol_log_files.log_file("SEND20260101-0001.log\n") is None
    assert "SEND20260101-0001.log\n" not in [log.name for log in protocol_log_files.log_files()]
