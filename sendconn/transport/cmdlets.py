"""Test-SendConnectorRoute and Get-MessageTrackingLog (found by the shell's ``autodiscover_modules("cmdlets")``)."""
from datetime import datetime, timezone

from django.core.exceptions import ValidationError

from sendconn.connectors.servers import local_server
from sendconn.connectors.values import format_byte_quantity, parse_byte_quantity
from sendconn.shell.cmdlets.connectors import transport_server
from sendconn.shell.output import Record
from sendconn.shell.registry import CmdletError, Parameter, choice, cmdlet, converter, text, text_list

from . import tracking
from .models import TrackingEventId
from .routing import Router, recipient_domain


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
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@converter("Unlimited")
def result_size(value, session):
    typed = str(value).strip()
    if typed.lower() == "unlimited":
        return None
    if not typed.isdigit() or int(typed) < 1:
        raise ValidationError(f'Cannot convert value "{value}" to type "Unlimited". Use a whole number above 0 or Unlimited.')
    return int(typed)


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
    return [Record({
        "Recipient": address,
        "Connector": connector.name,
        "AddressSpace": str(route.address_space),
        "NextHopDomain": route.next_hop_domain,
        "DeliveryType": "DnsConnectorDelivery" if connector.dns_routing_enabled else "SmartHostConnectorDelivery",
        "Rule": route.rule,
        "Candidates": [f"{loser.connector.name}: {loser.reason}" for loser in route.beaten],
    })]


def _utc(moment):
    moment = moment.astimezone(timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


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
    properties["Timestamp"] = _utc(event.timestamp)
    properties["Recipients"] = [event.recipient]  # multi-valued in Exchange
    properties["RecipientStatus"] = [event.recipient_status] if event.recipient_status else []
    return Record(properties, table=("EventId", "Source", "Sender", "Recipients", "MessageSubject"))


@cmdlet(
    "Get-MessageTrackingLog",
    Parameter("Sender", text),
    Parameter("Recipients", text_list),
    Parameter("MessageId", text),
    Parameter("EventId", choice(TrackingEventId.values, "EventId")),
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
        start=params.get("Start"),
        end=params.get("End"),
        result_size=params.get("ResultSize", tracking.DEFAULT_RESULT_SIZE),
    )
    return [tracking_record(event) for event in events]
