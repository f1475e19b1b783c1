import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from sendconn.connectors.services import Caller
from sendconn.ops import process_status
from sendconn.ops.process_status import ProcessState, ProcessStatus
from sendconn.transport import tracking
from sendconn.transport.models import Message, Recipient, TrackingEventId, TrackingSource
from sendconn.transport.queueing import queue_message
from sendconn.transport.queues import selectors, services
from sendconn.verification.models import VerificationRun, VerificationStatus

URL = reverse("ops:dashboard")


def content(subject):
    return f"Subject: {subject}\r\n\r\nbody\r\n".encode()


def queued(subject, recipients, *, states=(), submitted_ago=None):
    """A queued message whose first recipients are then set to ``states`` (in order); the rest keep theirs."""
    message = queue_message("julia@contoso.test", recipients, content(subject))
    for recipient, state in zip(message.recipients.order_by("id"), states, strict=False):
        Recipient.objects.filter(pk=recipient.pk).update(status=state)
    if submitted_ago is not None:
        Message.objects.filter(pk=message.pk).update(submitted_at=timezone.now() - submitted_ago)
    return message


def outcomes(message, event_id, count, ago):
    at = timezone.now() - ago
    tracking.record(
        [
            tracking.event(
                event_id,
                TrackingSource.SMTP,
                message,
                f"user{number}@fabrikam.test",
                connector_name="To internet",
                timestamp=at,
            )
            for number in range(count)
        ]
    )


def verified(connector, status, ago):
    return VerificationRun.objects.create(
        connector=connector,
        connector_name=connector.name,
        requested_by="orgadmin",
        server_name="EX01",
        status=status,
        requested_at=timezone.now() - ago,
    )


@pytest.fixture
def mail_flow(make_connector):
    internet = make_connector("To internet", ["*"])
    relay = make_connector("Relay", ["contoso.org"], enabled=False)
    partner = make_connector("Partner", ["fabrikam.org"])
    # Only the latest run counts: Internet failed then passed, Relay and Partner failed last.
    verified(internet, VerificationStatus.FAILED, timedelta(hours=2))
    verified(internet, VerificationStatus.SUCCEEDED, timedelta(hours=1))
    verified(relay, VerificationStatus.SUCCEEDED, timedelta(hours=3))
    relay_failed = verified(relay, VerificationStatus.FAILED, timedelta(minutes=30))
    partner_failed = verified(partner, VerificationStatus.FAILED, timedelta(minutes=10))
    # Fully delivered long ago: not waiting, so not the oldest waiting message.
    queued("Done", ["a@fabrikam.test"], states=["Delivered"], submitted_ago=timedelta(days=5))
    oldest = queued(
        "Stuck",
        ["b@fabrikam.test", "c@fabrikam.test"],
        states=["Delivered", "Retry"],
        submitted_ago=timedelta(days=1, hours=2),
    )
    queued(
        "Mixed",
        ["d@x.test", "e@x.test", "f@x.test", "g@x.test"],
        states=["Ready", "Retry", "Suspended", "Unreachable"],
        submitted_ago=timedelta(hours=3),
    )
    fresh = queued("Fresh", ["h@x.test", "i@x.test"], states=["Ready", "Failed"])
    outcomes(fresh, TrackingEventId.SEND, 3, timedelta(minutes=10))
    outcomes(fresh, TrackingEventId.FAIL, 2, timedelta(minutes=20))
    outcomes(fresh, TrackingEventId.SEND, 4, timedelta(hours=2))  # outside the last hour
    outcomes(fresh, TrackingEventId.DEFER, 5, timedelta(minutes=5))  # neither delivered nor failed
    return oldest, [partner_failed, relay_failed]


def test_numbers(helpdesk_client, mail_flow):
    response = helpdesk_client.get(URL)
    assert response.status_code == 200
    assert response.context["connectors"] == {"enabled": 2, "disabled": 1, "failing": 2}
    assert [row["name"] for row in response.context["failing_connectors"]] == ["Partner", "Relay"]
    assert response.context["queue_totals"] == [("Ready", 2), ("Retry", 2), ("Suspended", 1), ("Unreachable", 1)]
    assert response.context["waiting_total"] == 6
    assert response.context["suspended_queues"] == 0
    recent = response.context["recent"]
    assert (recent.delivered, recent.failed) == (3, 2)
    assert response.context["oldest"]["pk"] == mail_flow[0].pk
    assertContains(response, "Stuck")
    assertContains(response, "1\xa0day, 2\xa0hours ago")


def test_each_number_links_to_its_screen(helpdesk_client, mail_flow):
    response = helpdesk_client.get(URL)
    since = response.context["recent"].since
    start = f"{since:%Y-%m-%d}%20{since:%H}%3A{since:%M}"
    # The left navigation's "mail flow" opens send connectors; the tiles link the rest.
    assertContains(response, f'href="{reverse("connectors:list")}"', count=1 + 4)
    assertContains(response, f'href="{reverse("ops:queues")}"', count=4)
    assertContains(response, f'href="{reverse("ops:queue", args=["Unreachable"])}"')
    assertContains(response, f'href="{reverse("ops:queues")}?status=Suspended"')
    assertContains(response, f'href="{reverse("ops:tracking")}?event_id=SEND&amp;start={start}"')
    assertContains(response, f'href="{reverse("ops:tracking")}?event_id=FAIL&amp;start={start}"')
    assertContains(response, f'href="{reverse("ops:tracking-message", args=[mail_flow[0].pk])}"')
    for run in mail_flow[1]:  # each failing connector links to its failed run
        assertContains(response, f'href="{reverse("verification:verification", args=[run.pk])}"')


def test_suspended_queues_are_counted_and_lead_to_their_list(helpdesk_client, make_connector):
    connector = make_connector("To internet", ["*"])
    queue_message("julia@contoso.test", ["kim@fabrikam.test"], b"Subject: held\r\n\r\nx\r\n")
    services.suspend_queue(Caller("kim", "Shell"), selectors.get_queue("fabrikam.test"))
    response = helpdesk_client.get(URL)
    assert response.context["suspended_queues"] == 1
    assertContains(response, f'href="{reverse("ops:queues")}?status=Suspended" class="state-failed">1</a>')
    listed = helpdesk_client.get(reverse("ops:queues"), {"status": "Suspended"}).context["page"].object_list
    assert [(queue.identity, queue.connector) for queue in listed] == [("EX01\\fabrikam.test", connector)]


def test_the_last_hour_links_find_those_deliveries(helpdesk_client, mail_flow):
    since = helpdesk_client.get(URL).context["recent"].since
    response = helpdesk_client.get(reverse("ops:tracking"), {"event_id": "FAIL", "start": f"{since:%Y-%m-%d %H:%M}"})
    assert [summary.subject for summary in response.context["summaries"]] == ["Fresh"]


def test_an_idle_organization(helpdesk_client):
    response = helpdesk_client.get(URL)
    assert response.status_code == 200
    assert response.context["connectors"] == {"enabled": 0, "disabled": 0, "failing": 0}
    assert response.context["oldest"] is None
    assertContains(response, "No messages are waiting.")


def count_queries(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL)
    assert response.status_code == 200
    return len(queries)


def test_query_count_does_not_grow_with_the_mail_flow(helpdesk_client, mail_flow, make_connector):
    helpdesk_client.get(URL)  # warm the session and permission caches
    before = count_queries(helpdesk_client)
    for number in range(20):
        verified(make_connector(f"Connector {number}", [f"d{number}.test"]), VerificationStatus.FAILED, timedelta(0))
    for number in range(30):
        message = queued(f"More {number}", [f"x{number}@fabrikam.test", f"y{number}@fabrikam.test"], states=["Retry"])
        outcomes(message, TrackingEventId.SEND, 2, timedelta(minutes=1))
    assert count_queries(helpdesk_client) == before
    # session, user, permissions, one query per tile (two for connectors), one per chart
    assert before <= 12


def test_home_is_the_dashboard(helpdesk_client):
    response = helpdesk_client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"] == URL


def test_the_left_navigation(helpdesk_client):
    response = helpdesk_client.get(URL)
    assertContains(response, f'<a href="{URL}" aria-current="page">dashboard</a>', html=True)
    assertContains(response, f'<a href="{reverse("connectors:list")}">mail flow</a>', html=True)
    assertNotContains(response, 'aria-label="mail flow"')  # the dashboard isn't a mail flow feature


def test_mail_flow_shows_its_features_as_tabs(helpdesk_client):
    response = helpdesk_client.get(reverse("ops:queues"))
    assertContains(response, f'<a href="{reverse("connectors:list")}" aria-current="page">mail flow</a>', html=True)
    for name, label in (
        ("connectors:list", "send connectors"),
        ("ops:tracking", "message tracking"),
        ("ops:protocol-logs", "protocol logs"),
    ):
        assertContains(response, f'<li><a href="{reverse(name)}">{label}</a></li>', html=True)
    assertContains(response, f'<li><a href="{reverse("ops:queues")}" aria-current="page">queues</a></li>', html=True)


@pytest.mark.parametrize("client_fixture", ["admin_client", "server_client", "helpdesk_client"])
def test_all_three_role_groups_see_the_dashboard(request, client_fixture):
    assert request.getfixturevalue(client_fixture).get(URL).status_code == 200


def test_a_user_in_no_role_group_is_refused(client, nobody):
    client.force_login(nobody)
    assert client.get(URL).status_code == 403


def test_the_processes_runall_supervises_with_their_restarts(helpdesk_client, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    at = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    process_status.write(
        [
            ProcessStatus("web", ProcessState.RUNNING, pid=4242, started_at=at),
            ProcessStatus(
                "worker",
                ProcessState.RESTARTING,
                restarts=3,
                last_exit="killed by SIGKILL",
                last_exit_at=at + timedelta(minutes=5),
                restart_at=at + timedelta(minutes=5, seconds=8),
            ),
        ],
        at + timedelta(minutes=5),
    )

    response = helpdesk_client.get(URL)

    rows = [" ".join(row.split()) for row in re.findall(r"<tr>(.*?)</tr>", response.content.decode(), re.S)]
    rows = [re.sub(r"<[^>]+>", "", row).strip() for row in rows]
    assert rows[1:] == [  # after the header row
        "web Running pid 4242, since 2026-12-03 09:30:00 UTC 0 —",
        "worker Restarting at 09:35:08 UTC 3 killed by SIGKILL 2026-12-03 09:35:00 UTC",
    ]
    assertContains(response, "As <code>manage.py runall</code> reported them at 2026-12-03 09:35:00 UTC.")


def test_without_runall_nothing_is_known_of_the_processes(helpdesk_client, settings, tmp_path):
    settings.VAR_DIR = tmp_path  # a web on its own host (Docker Compose): no status file

    response = helpdesk_client.get(URL)

    assertContains(response, "Nothing is known here of the transport's processes")
