"""The dashboard's and the connector page's charts in Chromium, with JavaScript off: drawn from real deliveries
(the test nsd and an aiosmtpd sink) and coloured by the static stylesheet alone."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from sendconn.observability import flow
from sendconn.transport import wakeups
from sendconn.transport.engine import get_engine, reset_engine
from sendconn.transport.queueing import queue_message
from tests.peers import free_port
from tests.transport.conftest import dns_settings, nsd, sink  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def delivered(settings, tmp_path, dns_settings, woken, make_connector, sink, monkeypatch):  # noqa: F811
    """Two recipients delivered and one failed through "To internet", one waiting for "To partners"; the NDR for the
    failed one waits for "To internet"."""
    settings.SENDCONN_PROTOCOL_LOG_DIR = tmp_path / "ProtocolLog"
    settings.SENDCONN_TRACKING_LOG_DIR = tmp_path / "MessageTracking"
    wakeups.forget()
    port = free_port("127.0.0.6")
    internet = make_connector("To internet", ["*"], port=port)
    make_connector("To partners", ["fabrikam.test"])
    sink("127.0.0.6", port=port, rcpt_replies={"gone@partial.test": "550 5.1.1 User unknown"})
    queue_message(
        "julia@contoso.test",
        ["kim@partial.test", "lee@partial.test", "gone@partial.test"],
        b"Subject: Report\r\n\r\nNumbers.\r\n",
    )
    queue_message("julia@contoso.test", ["ann@fabrikam.test"], b"Subject: Hello\r\n\r\nHi.\r\n")
    get_engine().deliver_now(internet.pk, "partial.test")
    reset_engine()
    monkeypatch.setattr(flow, "_last_sampled", None)
    flow.sample_queue_depth()
    return internet


def test_charts_render_with_data_without_javascript(browser, live_server, org_admin, delivered, request, tmp_path):
    context = browser.new_context(java_script_enabled=False)
    request.addfinalizer(context.close)
    page = context.new_page()
    page.goto(f"{live_server.url}{reverse('login')}?next={reverse('ops:dashboard')}")
    page.get_by_label("User name:").fill(org_admin.username)
    page.get_by_label("Password:").fill(f"Pa$$w0rd-{org_admin.username}")
    page.get_by_role("button", name="sign in").click()
    page.wait_for_url(f"{live_server.url}{reverse('ops:dashboard')}")

    mail = page.locator("#mail-flow")
    expect(mail.get_by_role("img")).to_be_visible()
    delivered_bar = mail.locator("rect.flow-delivered")
    expect(delivered_bar).to_have_count(1)
    assert delivered_bar.bounding_box()["height"] > 10  # 2 of a 2-high axis: two thirds of the plot
    assert delivered_bar.evaluate("rect => getComputedStyle(rect).fill") == "rgb(16, 124, 16)"  # the stylesheet's
    assert mail.locator("rect.flow-failed").evaluate("rect => getComputedStyle(rect).fill") == "rgb(204, 0, 0)"
    expect(mail.locator("g.chart-period title")).to_have_text(
        [re.compile(r"^\d\d:\d[05] UTC: 2 delivered, 0 deferred, 1 failed$")]
    )  # the hover text
    expect(mail).to_contain_text("Delivered 2")
    depth = page.locator("#queue-depth")
    expect(depth.locator("circle.depth-point")).to_have_count(1)
    expect(depth).to_contain_text("Now 2 waiting")  # the message to ann, and the NDR of gone@ to julia
    page.screenshot(path=tmp_path / "dashboard.png", full_page=True)

    page.goto(f"{live_server.url}{reverse('connectors:detail', args=[delivered.guid])}")
    expect(page.locator("#mail-flow")).to_contain_text("Mail through this connector")
    expect(page.locator("#mail-flow rect.flow-delivered")).to_have_count(1)
    expect(page.locator("#queue-depth")).to_contain_text("Now 1 waiting")  # the NDR goes out through it
