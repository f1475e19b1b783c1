"""The Content-Security-Policy: every page of the console, as Organization Management, works in Chromium with only
the console's own scripts and styles (htmx included); any violation Chromium reports in the console fails."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from playwright.sync_api import expect

from sendconn.accounts import roles
from sendconn.connectors.services import Caller, new_send_connector
from sendconn.ops.models import VerificationRun
from tests.factories import queued, retry_values

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("tracking_log_dir", "woken"),
]

SESSION = "08DC6F1A2B3C4D5E"
PROTOCOL_LOG = f"""#Software: Microsoft Exchange Server\r
#Version: 15.01.2507.006\r
#Log-Type: SMTP Send Protocol Log\r
#Date: 2026-01-03T08:00:00.000Z\r
#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\r
2026-01-03T08:00:00.000Z,To internet,{SESSION},0,,127.0.0.1:25,*,,attempting to connect\r
2026-01-03T08:00:00.010Z,To internet,{SESSION},1,127.0.0.1:50000,127.0.0.1:25,+,,\r
2026-01-03T08:00:00.020Z,To internet,{SESSION},2,127.0.0.1:50000,127.0.0.1:25,<,220 mx.fabrikam.test ESMTP,\r
2026-01-03T08:00:02.250Z,To internet,{SESSION},3,127.0.0.1:50000,127.0.0.1:25,-,,Remote\r
"""


@pytest.fixture
def violations(admin_page):
    """What Chromium says in the console about the policy (it reports each refused script, style or request)."""
    reported = []
    admin_page.on(
        "console", lambda message: reported.append(message.text) if "Content Security Policy" in message.text else None
    )
    admin_page.on("pageerror", lambda error: reported.append(str(error)))
    return reported


@pytest.fixture
def console_data(settings, tmp_path):
    """Something on every page: a connector with a verification under way, queued mail, a protocol log day."""
    connector = new_send_connector(
        Caller("tests", "Shell"),
        name="To internet",
        address_spaces=["*"],
        usage="Internet",
    ).connector
    message = queued("julia@fabrikam.test", **retry_values())
    run = VerificationRun.objects.create(
        connector=connector,
        connector_name=connector.name,
        requested_by="browser-admin",
        server_name="EX01",
        recipients=["julia@fabrikam.test"],
    )
    settings.SENDCONN_PROTOCOL_LOG_DIR = tmp_path / "ProtocolLog" / "SmtpSend"
    settings.SENDCONN_PROTOCOL_LOG_DIR.mkdir(parents=True)
    (settings.SENDCONN_PROTOCOL_LOG_DIR / "SEND20260103-0001.log").write_text(PROTOCOL_LOG)
    return connector, message, run


def console_pages(connector, message, run):
    queue = "EX01\\fabrikam.test"
    return [
        reverse("login"),
        reverse("ops:dashboard"),
        reverse("password_change"),
        reverse("password_change_done"),
        reverse("permissions:admin-roles"),
        reverse("permissions:role-group", args=[Group.objects.get(name=roles.ORGANIZATION_MANAGEMENT).pk]),
        reverse("permissions:users"),
        reverse("permissions:lockouts"),
        reverse("permissions:audit"),
        reverse("connectors:list"),
        reverse("connectors:detail", args=[connector.guid]),
        reverse("connectors:new"),
        reverse("connectors:edit", args=[connector.guid, "general"]),
        reverse("connectors:remove", args=[connector.guid]),
        reverse("connectors:audit", args=[connector.guid]),
        reverse("ops:verify", args=[connector.guid]),
        reverse("ops:verification", args=[run.pk]),
        reverse("ops:verification-history", args=[connector.guid]),
        reverse("ops:queues"),
        reverse("ops:queue", args=[queue]),
        reverse("ops:queue-action", args=[queue, "suspend"]),
        reverse("ops:message-action", args=[queue, message.pk, "remove"]),
        reverse("ops:tracking"),
        reverse("ops:tracking-message", args=[message.pk]),
        reverse("ops:protocol-logs"),
        reverse("ops:protocol-log-day", args=["20260103"]),
        reverse("ops:protocol-log-session", args=["20260103", SESSION]),
        "/no-such-page/",
    ]


def test_the_policy_allows_only_the_consoles_own_files(admin_page, live_server):
    response = admin_page.goto(f"{live_server.url}/connectors/")
    policy = response.headers["content-security-policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ):
        assert directive in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_every_page_works_under_the_policy(admin_page, live_server, console_data, violations):
    page = admin_page
    run = console_data[2]
    for path in console_pages(*console_data):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == (404 if path == "/no-such-page/" else 200), path
        expect(page.locator("main")).to_be_visible()
        assert page.evaluate("typeof htmx") == "object", path  # htmx itself was allowed to run
        if path == reverse("ops:verification", args=[run.pk]):
            # The running verification's page polls its status through htmx.
            with page.expect_response(lambda response: response.url.endswith(f"/verifications/{run.pk}/status/")):
                pass
    assert violations == []


def test_the_scripted_parts_work_under_the_policy(admin_page, live_server, console_data, violations):
    """htmx swaps, the modal wizard, the dialog's tabs and greyed-out fields: all from the console's own files."""
    page = admin_page
    connector = console_data[0]
    page.goto(f"{live_server.url}/connectors/")
    page.get_by_role("searchbox", name="search").fill("internet")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("cell", name="To internet", exact=True)).to_be_visible()
    page.get_by_role("toolbar").get_by_role("link", name="New", exact=True).click()
    window = page.get_by_role("dialog", name="new send connector")
    expect(window).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Relay")
    with page.expect_response(lambda response: response.request.method == "POST"):
        page.get_by_role("button", name="Next", exact=True).click()
    expect(window.get_by_label("MX record associated with recipient domain")).to_be_checked()
    window.get_by_role("button", name="Close").click()

    page.goto(f"{live_server.url}{reverse('connectors:edit', args=[connector.guid, 'general'])}")
    page.get_by_role("tab", name="Delivery").click()
    expect(page.get_by_label("User name")).to_be_disabled()
    assert violations == []


def test_a_violation_would_be_seen(admin_page, live_server, violations):
    """The check above can fail: an inline style on a console page is reported in the console."""
    page = admin_page
    page.goto(f"{live_server.url}/connectors/")
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<script>window.ran = true<\\/script>')")
    page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';
                             document.body.append(s); }""")
    page.wait_for_timeout(200)
    assert page.evaluate("window.ran") is None
    assert any("Content Security Policy" in text for text in violations)
