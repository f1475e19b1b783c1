"""Queue and message identities, written and parsed as Exchange does.

``EX01\\contoso.com`` is the queue of next hop ``contoso.com`` (a recipient domain, or a smart-host set such as
``relay.contoso.com,[10.0.0.1]``): Exchange's ``Server\\NextHopDomain``. When two connectors have queues for the
same next hop (an address space moved while mail was queued), each is named with its connector as a third part,
``EX01\\contoso.com\\To internet``; that long form (connector name or GUID) is accepted for every queue, so
scripts may always use it. A next hop never contains a backslash, so the first two parts split unambiguously.
The special queues are ``EX01\\Submission`` and ``EX01\\Unreachable``. The server part is the local server's name
(all servers share the one queue database; the console shows it as the server it runs on); an identity without a
server part means the local server. A queued message is ``<queue identity>\\<message id>``, e.g.
``EX01\\contoso.com\\1234``, the message id being the queue id of ``Message``.
"""

import re

from django.conf import settings

from sendconn.connectors.models import SendConnector

from .objects import NEXT_HOP, QueueNotFound

MAX_MESSAGE_ID = 2**63 - 1  # Message ids are BigAutoField: a larger number names no message (and overflows SQLite)


def not_found(identity: str) -> QueueNotFound:
    return QueueNotFound(f"The operation couldn't be performed because object '{identity}' couldn't be found.")


def server_name() -> str:
    return settings.SENDCONN_SERVER_NAME


def queue_identity(kind: str, next_hop_domain: str, connector: SendConnector | None, shared: bool) -> str:
    """The identity of a queue of ``kind``; a delivery queue's names its connector when the queue is ``shared``
    (another connector has a queue for the same next hop)."""
    if kind != NEXT_HOP:
        return f"{server_name()}\\{kind}"
    assert connector is not None  # a NextHop queue is a connector's
    identity = f"{server_name()}\\{next_hop_domain}"
    return f"{identity}\\{connector.name}" if shared else identity


def parse_queue_identity(identity: str) -> tuple[str, str]:
    """``[Server\\]Queue[\\Connector]`` (stripped) → (queue part, connector part or ""); QueueNotFound for another
    server's identity or one without a queue part."""
    if "\0" in identity:  # from a URL: no queue has one, and PostgreSQL can't compare text holding it
        raise not_found(identity)
    server, separator, rest = identity.partition("\\")
    if not separator:
        rest = server
    elif server.strip().lower() not in (server_name().lower(), settings.SENDCONN_SERVER_FQDN.lower()):
        raise not_found(identity)
    queue_part, _, connector_part = rest.partition("\\")
    queue_part = queue_part.strip()
    if not queue_part:
        raise not_found(identity)
    return queue_part, connector_part


def parse_message_identity(identity: str) -> tuple[str, int]:
    """``<queue identity>\\<message id>`` (stripped) → (queue identity, message id); QueueNotFound unless the id is
    a number that can name a message."""
    queue_part, _, number = identity.rpartition("\\")
    if not queue_part or not re.fullmatch(r"[0-9]{1,19}", number.strip()) or int(number) > MAX_MESSAGE_ID:
        raise not_found(identity)
    return queue_part, int(number)
