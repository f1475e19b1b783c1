"""Test-SendConnectorRoute, Get-MessageTrackingLog and the queue cmdlets (Get-Queue, Get-Message, Retry-Queue,
Suspend-/Resume-Queue, Suspend-/Resume-/Remove-Message), found by the shell's ``autodiscover_modules("cmdlets")``."""

from datetime import UTC, datetime
from functools import partial

from django.core.exceptions import ValidationError

from sendconn.connectors.servers import local_server
from sendconn.connectors.values import format_byte_quantity, parse_byte_quantity, parse_unlimited_count
from sendconn.transport import opath, tracking
from sendconn.transport.models import TrackingEventId
from sendconn.transport.queues import selectors as queue_selectors
from sendconn.transport.queues import services as queue_services
from sendconn.transport.queues.objects import QueueError, QueueNotFound
from sendconn.transport.routing import Router, recipient_domain

from ..output import Record, utc_text
from ..registry import (
    CmdletError,
    Parameter,
    boolean,
    choice,
    cmdlet,
    converter,
    integer,
    parsed,
    switch,
    text,
    text_list,
)
from .connectors import transport_server


@converter("ByteQuantifiedSize")
def message_size(value, session):
    size = parse_byte_quantity(str(value))
    if size is None:
        raise ValidationError("A message size can't be unlimited. Enter a size such as 10MB.")
    return size


@converter("ServerIdParameter")
def server(value, session):
    return transport_server(str(value))


_DATE_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p", "%m/%d/%Y")


@converter("System.DateTime")
def date_time(value, session):
    """ISO 8601 or PowerShell's en-US ``11/27/2026 9:00 AM``; times without a zone are UTC."""
    typed = str(value).strip()
    try:
        moment = datetime.fromisoformat(typed)
    except ValueError:
        for date_format in _DATE_FORMATS:
            try:
                moment = datetime.strptime(typed.upper(), date_format)
                break
            except ValueError:
                continue
        else:
            raise ValidationError(
                f'Cannot convert value "{value}" to type "System.DateTime". Error: "String was not recognized as a '
                f'valid DateTime."'
            ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


result_size = parsed(parse_unlimited_count, "Unlimited")  # -ResultSize: 1 through 2147483647, or Unlimited


@cmdlet(
    "Test-SendConnectorRoute",
    Parameter("Recipient", text, mandatory=True, position=0),
    Parameter("MessageSize", message_size),
    Parameter("Server", server),
)
def test_send_connector_route(invocation):
    """Which Send connector a recipient's mail would leave through, the rule that decided, and the next hop."""
    address = invocation.params["Recipient"].strip()
    size = invocation.params.get("MessageSize", 0)
    try:
        domain = recipient_domain(address)
    except ValueError as error:
        raise CmdletError(str(error)) from None
    route = Router(invocation.params.get("Server") or local_server()).route(domain, size)
    if route.too_big:
        raise CmdletError(
            f"The message size {format_byte_quantity(size)} exceeds the MaxMessageSize of every Send connector "
            f"that matches the recipient domain '{domain}'; the recipient would get a non-delivery report "
            f"(550 5.3.4 Message size exceeds fixed maximum message size)."
        )
    if route.connector is None:
        raise CmdletError(
            f"No Send connector matches the recipient domain '{domain}'; the recipient would go to the "
            f"Unreachable queue."
        )
    connector = route.connector
    return [
        Record(
            {
                "Recipient": address,
                "Connector": connector.name,
                "AddressSpace": str(route.address_space),
                "NextHopDomain": route.next_hop_domain,
                "DeliveryType": "DnsConnectorDelivery"
                if connector.dns_routing_enabled
                else "SmartHostConnectorDelivery",
                "Rule": route.rule,
                "Candidates": [f"{loser.connector.name}: {loser.reason}" for loser in route.beaten],
            }
        )
    ]


# Tracking log field → Get-MessageTrackingLog property, in the order Exchange lists them.
PROPERTY_NAMES = {
    "date-time": "Timestamp",
    "client-ip": "ClientIp",
    "client-hostname": "ClientHostname",
    "server-ip": "ServerIp",
    "server-hostname": "ServerHostname",
    "connector-id": "ConnectorId",
    "source": "Source",
    "event-id": "EventId",
    "internal-message-id": "InternalMessageId",
    "message-id": "MessageId",
    "recipient-address": "Recipients",
    "recipient-status": "RecipientStatus",
    "total-bytes": "TotalBytes",
    "recipient-count": "RecipientCount",
    "message-subject": "MessageSubject",
    "sender-address": "Sender",
    "return-path": "ReturnPath",
    "directionality": "Directionality",
}


def tracking_record(event):
    fields = tracking.log_fields(event)
    properties = {name: fields.get(field) for field, name in PROPERTY_NAMES.items()}
    properties["Timestamp"] = utc_text(event.timestamp)
    properties["Recipients"] = [event.recipient]  # multi-valued in Exchange
    properties["RecipientStatus"] = [event.recipient_status] if event.recipient_status else []
    return Record(properties, table=("EventId", "Source", "Sender", "Recipients", "MessageSubject"))


@cmdlet(
    "Get-MessageTrackingLog",
    Parameter("Sender", text),
    Parameter("Recipients", text_list),
    Parameter("MessageId", text),
    Parameter("EventId", choice(TrackingEventId.values, "EventId")),
    Parameter("MessageSubject", text),
    Parameter("InternalMessageId", integer),
    Parameter("Server", server),
    Parameter("Start", date_time),
    Parameter("End", date_time),
    Parameter("ResultSize", result_size),
)
def get_message_tracking_log(invocation):
    params = invocation.params
    events = tracking.search(
        sender=params.get("Sender"),
        recipients=params.get("Recipients") or (),
        message_id=params.get("MessageId"),
        event_id=params.get("EventId"),
        subject=params.get("MessageSubject"),
        internal_message_id=params.get("InternalMessageId"),
        server_name=params["Server"].name if "Server" in params else None,
        start=params.get("Start"),
        end=params.get("End"),
        result_size=params.get("ResultSize", tracking.DEFAULT_RESULT_SIZE),
    )
    return [tracking_record(event) for event in events]


# -- queues and messages: Get-Queue, Get-Message, Retry-/Suspend-/Resume-Queue, Suspend-/Resume-/Remove-Message ----

QUEUE_TABLE = ("Identity", "DeliveryType", "Status", "MessageCount", "Velocity", "NextHopDomain")
MESSAGE_TABLE = ("Identity", "FromAddress", "Status", "Queue", "Subject")
QUEUE_PROPERTIES = (
    "Identity",
    "DeliveryType",
    "NextHopDomain",
    "NextHopConnector",
    "Status",
    "MessageCount",
    "LastError",
    "LastRetryTime",
    "NextRetryTime",
    "IncomingRate",
    "OutgoingRate",
    "Velocity",
)
DEFAULT_QUEUE_RESULT_SIZE = 1000  # Get-Queue's and Get-Message's default -ResultSize
QUEUE_IDENTITY = Parameter("Identity", text, position=0, pipeline=True)
QUEUE_FILTER = Parameter("Filter", text)


def _double(value):
    """A System.Double as PowerShell prints it: 0, not 0.0."""
    return int(value) if value == int(value) else value


def queue_record(queue):
    values = (
        queue.identity,
        queue.delivery_type,
        queue.next_hop_domain,
        queue.next_hop_connector,
        queue.status,
        queue.message_count,
        queue.last_error,
        utc_text(queue.last_retry_time),
        utc_text(queue.next_retry_time),
        _double(queue.incoming_rate),
        _double(queue.outgoing_rate),
        _double(queue.velocity),
    )
    return Record(dict(zip(QUEUE_PROPERTIES, values, strict=True)), table=QUEUE_TABLE)


def message_record(message):
    return Record(
        {
            "Identity": message.identity,
            "Subject": message.subject,
            "InternetMessageId": message.internet_message_id,
            "FromAddress": message.from_address or "<>",
            "Status": message.status,
            "Size": format_byte_quantity(message.size),
            "MessageSourceName": message.message_source_name,
            "SourceIP": message.source_ip,
            "DateReceived": utc_text(message.date_received),
            "ExpirationTime": utc_text(message.expiration_time),
            "LastError": message.last_error,
            "RetryCount": message.retry_count,
            "Recipients": [row.address for row in message.recipients],
            "Queue": message.queue.identity,
        },
        table=MESSAGE_TABLE,
    )


def _filter_error(error):
    return CmdletError(f'Cannot bind parameter \'Filter\' to the target. Exception setting "Filter": "{error}"')


def _target(params, *others):
    """``-Identity`` or ``-Filter`` (and ``others``), never both: Exchange's parameter sets."""
    given = [name for name in ("Identity", "Filter", *others) if params.get(name) is not None]
    if "Identity" in given and len(given) > 1:
        raise CmdletError("Parameter set cannot be resolved using the specified named parameters.")
    return params.get("Identity"), params.get("Filter")


def _find(lookup, identity):
    try:
        return lookup(identity)
    except QueueNotFound as error:
        raise CmdletError(str(error)) from None


def _queues(params, *, required=False):
    identity, filter_text = _target(params)
    if identity is not None:
        return [_find(queue_selectors.get_queue, identity)]
    if filter_text is None and required:
        raise CmdletError("Cannot process command because of one or more missing mandatory parameters: Identity.")
    queues = queue_selectors.queue_list()
    if filter_text is None:
        return queues
    try:
        tree = opath.parse(filter_text, QUEUE_PROPERTIES)
        return [queue for queue in queues if opath.matches(tree, queue_record(queue))]
    except opath.FilterError as error:
        raise _filter_error(error) from None


def _messages(params, *, required=False):
    identity, filter_text = _target(params, "Queue")
    if identity is not None:
        return [_find(queue_selectors.get_message, identity)]
    if filter_text is None and params.get("Queue") is None and required:
        raise CmdletError("Cannot process command because of one or more missing mandatory parameters: Identity.")
    queue, queues = None, None
    if params.get("Queue") is not None:
        queue = _find(queue_selectors.get_queue, params["Queue"])
        queues = {queue.key: queue}
    rows = queue_selectors.message_rows(queue)
    if filter_text is not None:
        fields = queue_selectors.MESSAGE_FILTER_FIELDS
        try:
            rows = rows.filter(opath.to_q(opath.parse(filter_text, fields), fields))
        except opath.FilterError as error:
            raise _filter_error(error) from None
    limit = params.get("ResultSize", DEFAULT_QUEUE_RESULT_SIZE)
    return queue_selectors.load_messages(rows if limit is None else rows[:limit], queues)


def _act(invocation, select, describe, act):
    """Run ``act(caller, target)`` on each queue or message ``select`` finds (at least one) that the user confirms;
    say when nothing changed or a worker held rows."""
    caller = invocation.session.caller
    for target in select(invocation.params, required=True):
        if not invocation.should_process(describe(target)):
            continue
        try:
            outcome = act(caller, target)
        except QueueError as error:
            raise CmdletError(str(error)) from None
        if outcome.active:
            invocation.session.warn(
                f"{outcome.active} recipient(s) of '{target.identity}' are being delivered right now and were left "
                f"as they are."
            )
        elif not outcome.changed:
            invocation.session.warn(
                f"The command completed successfully but no messages in '{target.identity}' have been modified."
            )
    return []


@cmdlet("Get-Queue", QUEUE_IDENTITY, QUEUE_FILTER, Parameter("ResultSize", result_size))
def get_queue(invocation):
    queues = _queues(invocation.params)
    limit = invocation.params.get("ResultSize", DEFAULT_QUEUE_RESULT_SIZE)
    return [queue_record(queue) for queue in (queues if limit is None else queues[:limit])]


@cmdlet(
    "Get-Message",
    QUEUE_IDENTITY,
    Parameter("Queue", text),
    QUEUE_FILTER,
    Parameter("ResultSize", result_size),
    switch("IncludeRecipientInfo"),
)
def get_message(invocation):
    """Recipients are always listed, so ``-IncludeRecipientInfo`` is accepted for Exchange's scripts and changes
    nothing."""
    return [message_record(message) for message in _messages(invocation.params)]


@cmdlet("Retry-Queue", QUEUE_IDENTITY, QUEUE_FILTER, Parameter("Resubmit", boolean), should_process=True)
def retry_queue(invocation):
    """Retry now; with ``-Resubmit $true`` route the queue's messages again (the only way for Unreachable)."""
    resubmit = invocation.params.get("Resubmit", False)
    return _act(
        invocation,
        _queues,
        lambda queue: f'{"Resubmitting" if resubmit else "Retrying"} queue "{queue.identity}".',
        partial(queue_services.retry_queue, resubmit=resubmit),
    )


@cmdlet("Suspend-Queue", QUEUE_IDENTITY, QUEUE_FILTER, should_process=True)
def suspend_queue(invocation):
    return _act(
        invocation, _queues, lambda queue: f'Suspending queue "{queue.identity}".', queue_services.suspend_queue
    )


@cmdlet("Resume-Queue", QUEUE_IDENTITY, QUEUE_FILTER, should_process=True)
def resume_queue(invocation):
    return _act(invocation, _queues, lambda queue: f'Resuming queue "{queue.identity}".', queue_services.resume_queue)


@cmdlet("Suspend-Message", QUEUE_IDENTITY, QUEUE_FILTER, should_process=True)
def suspend_message(invocation):
    return _act(
        invocation,
        _messages,
        lambda message: f'Suspending message "{message.identity}".',
        queue_services.suspend_message,
    )


@cmdlet("Resume-Message", QUEUE_IDENTITY, QUEUE_FILTER, should_process=True)
def resume_message(invocation):
    return _act(
        invocation, _messages, lambda message: f'Resuming message "{message.identity}".', queue_services.resume_message
    )


@cmdlet("Remove-Message", QUEUE_IDENTITY, QUEUE_FILTER, Parameter("WithNDR", boolean), confirm=True)
def remove_message(invocation):
    """Exchange's default is ``-WithNDR $true``: the sender gets a non-delivery report."""
    with_ndr = invocation.params.get("WithNDR", True)
    ndr = "with a non-delivery report to the sender" if with_ndr else "without a non-delivery report"
    return _act(
        invocation,
        _messages,
        lambda message: f'Removing message "{message.identity}" {ndr}.',
        partial(queue_services.remove_message, with_ndr=with_ndr),
    )
