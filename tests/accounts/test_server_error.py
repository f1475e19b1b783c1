"""Django's 500 handler: a database that can't be reached gets the console's 503 page, anything else the plain 500.
The outage itself, with a real PostgreSQL stopped under gunicorn, is in tests/transport/test_database_restart.py."""

import pytest
from django.db import InterfaceError, OperationalError
from django.test import RequestFactory

from sendconn.accounts.views import server_error


def handled(error):
    """The handler's answer while ``error`` is being handled, as Django calls it."""
    request = RequestFactory().get("/dashboard/")
    try:
        raise error
    except Exception:  # noqa: BLE001 - any exception, like Django's handler
        return server_error(request)


@pytest.mark.parametrize("error", [OperationalError("connection refused"), InterfaceError("connection already closed")])
def test_a_database_that_cant_be_reached_gets_a_503_page_in_the_console_look(error):
    response = handled(error)

    assert response.status_code == 503 and response["Retry-After"] == "10"
    page = response.content.decode()
    assert "<h1>The database can't be reached</h1>" in page and "sendconn admin center" in page
    assert "connection refused" not in page and "Traceback" not in page


def test_other_errors_get_the_plain_500():
    response = handled(ValueError("a bug"))

    assert response.status_code == 500 and b"a bug" not in response.content
