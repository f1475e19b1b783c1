"""Queue and message identities, written and parsed without the database."""

import pytest

from sendconn.connectors.models import SendConnector
from sendconn.transport.queues import identities
from sendconn.transport.queues.objects import NEXT_HOP, SUBMISSION, UNREACHABLE, QueueNotFound


def test_a_queue_is_named_by_its_next_hop_and_by_its_connector_too_when_shared():
    connector = SendConnector(name="To internet")
    assert identities.queue_identity(NEXT_HOP, "contoso.com", connector, shared=False) == "EX01\\contoso.com"
    assert identities.queue_identity(NEXT_HOP, "contoso.com", connector, shared=True) == (
        "EX01\\contoso.com\\To internet"
    )
    assert identities.queue_identity(SUBMISSION, "", None, shared=False) == "EX01\\Submission"
    assert identities.queue_identity(UNREACHABLE, "", None, shared=False) == "EX01\\Unreachable"


@pytest.mark.parametrize(
    "identity, parts",
    [
        ("EX01\\contoso.com", ("contoso.com", "")),
        ("contoso.com", ("contoso.com", "")),  # the local server
        ("ex01.contoso.test\\ contoso.com \\To internet", ("contoso.com", "To internet")),
        ("ex01\\relay.contoso.com,[10.0.0.1]", ("relay.contoso.com,[10.0.0.1]", "")),
    ],
)
def test_parse_queue_identity(identity, parts):
    assert identities.parse_queue_identity(identity) == parts


@pytest.mark.parametrize("identity", ["BR01\\contoso.com", "", "EX01\\", "EX01\\ \\To internet", "EX01\\conto\0so.com"])
def test_parse_queue_identity_refuses_what_names_no_queue_here(identity):
    with pytest.raises(QueueNotFound, match="couldn't be found"):
        identities.parse_queue_identity(identity)


def test_parse_message_identity():
    assert identities.parse_message_identity("EX01\\contoso.com\\1234") == ("EX01\\contoso.com", 1234)
    assert identities.parse_message_identity(f"contoso.com\\{2**63 - 1}") == ("contoso.com", 2**63 - 1)


@pytest.mark.parametrize(
    "identity", ["1234", "EX01\\contoso.com\\x", "EX01\\contoso.com\\-1", f"EX01\\contoso.com\\{2**63}", "EX01\\a\\"]
)
def test_parse_message_identity_refuses_what_names_no_message(identity):
    with pytest.raises(QueueNotFound, match="couldn't be found"):
        identities.parse_message_identity(identity)
