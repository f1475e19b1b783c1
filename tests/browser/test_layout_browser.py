"""The console at the widths admins use: from 1024 px up nothing overlaps and nothing scrolls sideways."""

import pytest
from playwright.sync_api import expect

from sendconn.connectors.services import Caller, new_send_connector
from tests.factories import queued, retry_values

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("tracking_log_dir", "woken"),
]

WIDTHS = [1024, 1366]
LONG_DOMAIN = "a-rather-long-subsidiary-name.northwind-traders-europe.example"


def fits_the_window(page):
    """Nothing is wider than the window (no horizontal scroll bar), and the top bar spans the whole page."""
    widths = page.evaluate("""() => ({
        window: document.documentElement.clientWidth,
        page: document.documentElement.scrollWidth,
        topbar: document.querySelector('.topbar').getBoundingClientRect().width,
    })""")
    assert widths["page"] <= widths["window"], widths
    assert widths["topbar"] == widths["window"], widths


def right_of(page, left_selector, right_selector):
    left, right = (page.locator(selector).bounding_box() for selector in (left_selector, right_selector))
    return left["x"] + left["width"] <= right["x"]


@pytest.fixture
def connectors():
    for index in range(3):
        new_send_connector(
            Caller("tests", "Shell"),
            name=f"Smart hosts to Northwind Traders Europe {index}",
            address_spaces=[f"{LONG_DOMAIN}", f"*.{LONG_DOMAIN}"],
            dns_routing_enabled=False,
            smart_hosts=[f"smtp{n}.{LONG_DOMAIN}" for n in range(3)],
        )


@pytest.mark.parametrize("width", WIDTHS)
def test_the_list_and_its_details_pane_side_by_side(admin_page, live_server, connectors, width):
    page = admin_page
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(f"{live_server.url}/connectors/")
    expect(page.locator("#details")).to_be_visible()
    fits_the_window(page)
    assert right_of(page, ".listpane table", "#details")  # the pane no longer covers the table


@pytest.mark.parametrize("width", WIDTHS)
def test_the_queues_table_fits(admin_page, live_server, connectors, width):
    page = admin_page
    queued(f"julia@{LONG_DOMAIN}", f"kim@mail.{LONG_DOMAIN}", **retry_values())  # a queue of three smart hosts
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(f"{live_server.url}/queues/")
    expect(page.get_by_role("cell", name="SmartHostConnectorDelivery")).to_be_visible()
    fits_the_window(page)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_wizard_window_fits(admin_page, live_server, width):
    page = admin_page
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(f"{live_server.url}/connectors/")
    page.get_by_role("toolbar").get_by_role("link", name="New", exact=True).click()
    window = page.get_by_role("dialog", name="new send connector")
    expect(window).to_be_visible()
    box = window.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width
    fits_the_window(page)
