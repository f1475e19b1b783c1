"""The queue viewer pages: who may see and do what, the confirmation pages, the actions, and unknown identities."""

import pytest
from django.urls import reverse
from django.utils import timezone

from sendconn.connectors.models import AdminAuditLogEntry
from sendconn.transport.models import Message, Recipient
from tests.factories import DEFERRED, SENDER, queued, retry_values

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tracking_log_dir", "woken")]

ROLE_CLIENTS = ["admin_client", "server_client", "helpdesk_client"]
MANAGERS = ["admin_client", "server_client"]
QUEUE = "EX01\\contoso.test"


@pytest.fixture
def message(make_connector):
    """A message to two contoso.test recipients waiting for a retry."""
    make_connector("To internet", ["*"])
    return queued("a@contoso.test", "b@contoso.test", **retry_values())


def queue_url(identity=QUEUE):
    return reverse("ops:queue", args=[identity])


def action_url(action, identity=QUEUE):
    return reverse("ops:queue-action", args=[identity, action])


def message_url(message, action, identity=QUEUE):
    return reverse("ops:message-action", args=[identity, message.pk, action])


def statuses(message):
    return set(Recipient.objects.filter(message=message).values_list("status", flat=True))


@pytest.mark.parametrize("client_fixture", ROLE_CLIENTS)
def test_every_role_reads_the_queue_list_and_a_queue(request, client_fixture, message):
    client = request.getfixturevalue(client_fixture)
    listing = client.get(reverse("ops:queues"))
    assert listing.status_code == 200
    content = listing.content.decode()
    for text in (QUEUE, "EX01\\Submission", "EX01\\Unreachable", "DnsConnectorDelivery", "Retry", DEFERRED):
        assert text in content
    assert queue_url() in content
    detail = client.get(queue_url())
    assert detail.status_code == 200
    content = detail.content.decode()
    assert f"{QUEUE}\\{message.pk}" in content
    assert "a@contoso.test" in content and "b@contoso.test" in content and SENDER in content
    buttons = (action_url("retry"), action_url("suspend"), message_url(message, "remove"))
    if client_fixture == "helpdesk_client":
        assert not any(button in content for button in buttons)
    else:
        assert all(button in content for button in buttons)


def test_a_user_in_no_role_group_is_refused(nobody_client, message):
    assert nobody_client.get(reverse("ops:queues")).status_code == 403
    assert nobody_client.get(queue_url()).status_code == 403


def test_the_list_filters_by_status_and_next_hop(admin_client, message):
    content = admin_client.get(reverse("ops:queues"), {"status": "Retry"}).content.decode()
    assert QUEUE in content and "EX01\\Unreachable" not in content
    content = admin_client.get(reverse("ops:queues"), {"next_hop": "fabrikam"}).content.decode()
    assert QUEUE not in content and "There are no items to show in this view." in content
    assert admin_client.get(reverse("ops:queues"), {"status": "Bogus", "page": "x"}).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "queues/EX01%5Cnowhere.test/",
        "queues/BR01%5Ccontoso.test/",
        "queues/EX01%5Ccontoso.test%5CNo%20such%20connector/",
        "queues/EX01%5Ccontoso.test/messages/999999/remove/",
        "queues/EX01%5Ccontoso.test/actions/explode/",
        "queues/EX01%5Cnowhere.test/actions/retry/",
        "queues/EX01%5Ccontoso.test%5C9223372036854775808/",
        "queues/EX01%5Ccon%00toso.test/",  # NUL: PostgreSQL can't compare it, and no queue has it
        "queues/EX01%5Ccon%00toso.test/actions/suspend/",
    ],
)
def test_unknown_identities_and_actions_are_404(admin_client, message, path):
    response = admin_client.get(f"/{path}")
    assert response.status_code == 404
    assert b"couldn't be found" in response.content


@pytest.mark.parametrize(
    "path",
    [
        "queues/EX01%5Ccontoso.test/messages/9223372036854775808/remove/",
        "queues/EX01%5Ccontoso.test/messages/99999999999999999999999/suspend/",
        "queues/EX01%5Ccontoso.test%5C99999999999999999999999/actions/retry/",
    ],
)
def test_numbers_beyond_the_id_columns_are_404(admin_client, message, path):
    """Not an OverflowError from the database driver: such a number names no row."""
    for response in (admin_client.get(f"/{path}"), admin_client.post(f"/{path}")):
        assert response.status_code == 404
        assert b"couldn't be found" in response.content
    assert statuses(message) == {"Retry"}


@pytest.mark.parametrize("client_fixture", MANAGERS)
def test_retry_asks_then_retries(request, client_fixture, message, woken):
    client = request.getfixturevalue(client_fixture)
    confirmation = client.get(action_url("retry"))
    assert confirmation.status_code == 200
    assert f"Are you sure you want to retry the queue &#x27;{QUEUE}&#x27; now?" in confirmation.content.decode()
    assert Recipient.objects.filter(next_attempt_at__lte=timezone.now()).count() == 0  # a GET changes nothing
    # Browsers turn a raw backslash in a URL into a slash: the form posts to the %5C-encoded URL.
    assert f'action="{action_url("retry")}"' in confirmation.content.decode() and "%5C" in action_url("retry")
    response = client.post(action_url("retry"), follow=True)
    assert response.redirect_chain[-1][0] == queue_url()
    assert "2 recipient(s) in &#x27;EX01\\contoso.test&#x27; will be retried now." in response.content.decode()
    assert Recipient.objects.filter(next_attempt_at__lte=timezone.now()).count() == 2
    assert len(woken) == 1
    entry = AdminAuditLogEntry.objects.get(cmdlet="Retry-Queue")
    assert (entry.command_line, entry.source) == ("Retry-Queue -Identity 'EX01\\contoso.test'", "Web")


@pytest.mark.parametrize("action", ["retry", "resubmit", "suspend", "resume"])
def test_view_only_gets_403_for_queue_actions(helpdesk_client, message, action):
    before = list(Recipient.objects.values())
    assert helpdesk_client.get(action_url(action)).status_code == 403
    response = helpdesk_client.post(action_url(action))
    assert response.status_code == 403
    assert b"Access denied" in response.content
    assert list(Recipient.objects.values()) == before
    assert not AdminAuditLogEntry.objects.filter(cmdlet__endswith="-Queue").exists()


@pytest.mark.parametrize("action", ["suspend", "resume", "remove"])
def test_view_only_gets_403_for_message_actions(helpdesk_client, message, action):
    assert helpdesk_client.get(message_url(message, action)).status_code == 403
    assert helpdesk_client.post(message_url(message, action), {"with_ndr": "yes"}).status_code == 403
    assert statuses(message) == {"Retry"}


def test_suspend_and_resume_queue(server_client, message):
    confirmation = server_client.get(action_url("suspend")).content.decode()
    assert "including mail routed to it later" in confirmation
    response = server_client.post(action_url("suspend"), follow=True)
    assert "The queue &#x27;EX01\\contoso.test&#x27; was suspended." in response.content.decode()
    assert statuses(message) == {"Retry"}  # the queue is suspended, not its messages
    page = server_client.get(queue_url()).content.decode()
    assert action_url("resume") in page and action_url("suspend") not in page
    assert "Suspended: no message leaves this queue" in page
    response = server_client.post(action_url("resume"), follow=True)
    assert "The queue &#x27;EX01\\contoso.test&#x27; was resumed." in response.content.decode()
    assert action_url("suspend") in server_client.get(queue_url()).content.decode()
    assert list(
        AdminAuditLogEntry.objects.order_by("id")
        .filter(cmdlet__endswith="-Queue")
        .values_list("command_line", "caller")
    ) == [
        ("Suspend-Queue -Identity 'EX01\\contoso.test'", "serveradmin"),
        ("Resume-Queue -Identity 'EX01\\contoso.test'", "serveradmin"),
    ]


def test_suspend_and_resume_message(admin_client, message):
    assert b"Are you sure you want to suspend the message" in admin_client.get(message_url(message, "suspend")).content
    admin_client.post(message_url(message, "suspend"))
    assert statuses(message) == {"Suspended"}
    admin_client.post(message_url(message, "resume"))
    assert statuses(message) == {"Retry"}


def test_remove_message_with_ndr(admin_client, message):
    confirmation = admin_client.get(message_url(message, "remove")).content.decode()
    assert "Remove and send a non-delivery report (NDR) to the sender" in confirmation
    assert 'name="csrfmiddlewaretoken"' in confirmation
    response = admin_client.post(message_url(message, "remove"), {"with_ndr": "yes"}, follow=True)
    # The queue emptied with its only message, and stays listed for QueueMaxIdleTime, as in Exchange.
    assert response.redirect_chain[-1][0] == queue_url()
    assert "0 messages" in response.content.decode()
    assert statuses(message) == {"Failed"}
    assert Message.objects.filter(is_dsn=True, original_message=message).count() == 1
    assert AdminAuditLogEntry.objects.get(cmdlet="Remove-Message").command_line.endswith("-WithNDR $true")


def test_remove_message_without_ndr(admin_client, message):
    admin_client.post(message_url(message, "remove"), {"with_ndr": "no"})
    assert statuses(message) == {"Failed"}
    assert not Message.objects.filter(is_dsn=True).exists()


def test_refused_action_shows_why(admin_client, message):
    response = admin_client.post(action_url("retry", "EX01\\Unreachable"), follow=True)
    assert response.status_code == 200
    assert "can only be retried with -Resubmit $true" in response.content.decode()


def test_posts_need_the_csrf_token(message, server_admin):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(server_admin)
    assert client.post(action_url("suspend")).status_code == 403
    assert statuses(message) == {"Retry"}


def _queries(client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_pages_cost_the_same_queries_however_many_messages_wait(admin_client, message):
    few = (_queries(admin_client, reverse("ops:queues")), _queries(admin_client, queue_url()))
    for n in range(60):  # more than a page of messages, over several next hops
        queued(f"user{n}@contoso.test", f"user{n}@fabrikam{n % 3}.test")
    many = (_queries(admin_client, reverse("ops:queues")), _queries(admin_client, queue_url()))
    assert many == few
