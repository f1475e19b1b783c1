"""The queue viewer: queues as Exchange shows them, the messages in them, and the actions on both.

Queues aren't stored. A delivery queue is the set of queued Recipient rows (Ready, Retry, Suspended) with the
same next hop — Exchange's NextHopSolutionKey: the connector plus ``next_hop_domain``. Two more queues always
exist:

- ``Submission``: messages received but not routed yet. Routing happens while a message is queued
  (``queueing.queue_messages``), so the only rows waiting here are those whose connector was removed (or that an
  administrator resubmitted) until they are routed again; the queue is normally empty.
- ``Unreachable``: recipients no Send connector matches, and suspended rows without a connector.

Suspend-Queue suspends the queue itself (a ``SuspendedQueue`` row), as Exchange does: its messages keep their
status, mail routed to it later waits in it too, and it is listed, as Suspended, even while empty. A delivery
queue that emptied stays listed for SENDCONN_QUEUE_MAX_IDLE_TIME (Exchange's QueueMaxIdleTime, 3 minutes), found
from the SEND and FAIL entries of the tracking log, so that it can still be suspended.

- ``objects``: Queue and QueuedMessage (what Get-Queue and Get-Message show), the queue kinds and statuses, errors.
- ``identities``: ``EX01\\contoso.com`` and ``EX01\\contoso.com\\1234``, written and parsed.
- ``selectors``: the reads — the queue list, a queue, the messages of a queue, a message.
- ``services``: the actions — Retry-, Suspend-, Resume-Queue and Suspend-, Resume-, Remove-Message.
"""
