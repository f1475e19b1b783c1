"""A refused request is logged in one line; a server error keeps its traceback."""

import logging
import sys

import pytest

from sendconn.log_filters import RefusalsWithoutTraceback


@pytest.mark.django_db
def test_a_forbidden_page_is_logged_without_a_traceback(nobody_client, caplog):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert nobody_client.get("/connectors/").status_code == 403

    [record] = [record for record in caplog.records if record.name == "django.request"]
    assert record.getMessage() == "Forbidden (Permission denied): /connectors/"
    assert record.exc_info is None


def test_a_server_error_keeps_its_traceback():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.getLogger("django.request").makeRecord(
            "django.request",
            logging.ERROR,
            __file__,
            1,
            "Internal Server Error: /",
            (),
            sys.exc_info(),
            extra={"status_code": 500},
        )
    assert RefusalsWithoutTraceback().filter(record) and record.exc_info is not None
