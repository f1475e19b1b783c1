"""Property tests: the address-space and smart-host parsers, the shell's line parser and the OPATH filters of the
queue cmdlets, on generated input."""

import ipaddress

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendconn.connectors.models import SendConnector
from sendconn.connectors.values import AddressSpaceValue, SmartHostValue, parse_address_space, parse_smart_host
from sendconn.shell.cmdlets.transport import QUEUE_PROPERTIES, queue_record
from sendconn.shell.parser import ParseError, parse
from sendconn.transport import opath
from sendconn.transport.queues import selectors
from tests.factories import queued, retry_values

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)
DOMAINS = st.lists(LABEL, min_size=1, max_size=4).map(".".join).filter(lambda domain: len(domain) <= 255)
COSTS = st.integers(min_value=1, max_value=100)
JUNK = st.text(st.characters(blacklist_categories=("Cs",)), max_size=80)


def is_ip(text):
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@given(domain=DOMAINS, cost=COSTS, wildcard=st.booleans(), upper=st.booleans())
def test_smtp_address_spaces_round_trip(domain, cost, wildcard, upper):
    typed = ("*." if wildcard else "") + (domain.upper() if upper else domain)
    value = parse_address_space(f"SMTP:{typed};{cost}")
    assert value == AddressSpaceValue("SMTP", ("*." if wildcard else "") + domain, cost)
    assert value.match_domain == domain
    assert parse_address_space(str(value)) == value
    assert parse_address_space(typed) == AddressSpaceValue("SMTP", value.domain, 1)  # type and cost default


@given(
    address_type=st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,10}", fullmatch=True).filter(
        lambda kind: kind.upper() != "SMTP"
    ),
    text=st.text("abcXYZ019=/.,:- ", min_size=1, max_size=40).filter(str.strip),
    cost=COSTS,
)
def test_other_address_space_types_round_trip(address_type, text, cost):
    value = parse_address_space(f"{address_type}:{text};{cost}")
    assert (value.address_type, value.domain, value.cost) == (address_type, text.strip(), cost)
    assert parse_address_space(str(value)) == value


def ends_with_a_number(domain):
    return domain.rpartition(".")[2].isdecimal()


@given(domain=DOMAINS.filter(lambda domain: not ends_with_a_number(domain)))
def test_smart_host_names_round_trip(domain):
    value = parse_smart_host(f" {domain.upper()} ")
    assert value == SmartHostValue(domain, False)
    assert parse_smart_host(str(value)) == value


@given(domain=DOMAINS.filter(ends_with_a_number), bracketed=st.booleans())
def test_smart_hosts_ending_with_a_number_must_be_ip_addresses(domain, bracketed):
    typed = f"[{domain}]" if bracketed else domain
    if is_ip(domain):
        assert parse_smart_host(typed) == SmartHostValue(str(ipaddress.ip_address(domain)), True)
    else:
        with pytest.raises(ValidationError, match="valid smart host"):
            parse_smart_host(typed)


@given(address=st.ip_addresses(), bracketed=st.booleans())
def test_smart_host_ip_literals_round_trip(address, bracketed):
    value = parse_smart_host(f"[{address}]" if bracketed else str(address))
    assert value == SmartHostValue(str(address), True)
    assert parse_smart_host(str(value)) == value


@given(JUNK)
def test_junk_address_spaces_raise_only_validation_errors(text):
    try:
        value = parse_address_space(text)
    except ValidationError:
        return
    assert parse_address_space(str(value)) == value
    assert 1 <= value.cost <= 100


@given(JUNK)
def test_junk_smart_hosts_raise_only_validation_errors(text):
    try:
        value = parse_smart_host(text)
    except ValidationError:
        return
    assert parse_smart_host(str(value)) == value
    assert not any(ch.isspace() for ch in value.host)


@given(JUNK)
def test_junk_lines_raise_only_parse_errors(line):
    try:
        parse(line)
    except ParseError as error:
        assert 0 <= error.offset <= len(line)


@pytest.mark.django_db
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(address_space=JUNK, smart_host=JUNK)
def test_junk_through_the_shell_exits_0_or_1_and_saves_all_or_nothing(cmdlet, address_space, smart_host):
    def quoted(text):
        return (
            "'"
            + text.replace("'", "''")
            .replace("\u2018", "''")
            .replace("\u2019", "''")
            .replace("\u201a", "''")
            .replace("\u201b", "''")
            + "'"
        )

    before = SendConnector.objects.count()
    result = cmdlet(
        f"New-SendConnector -Name J{before} -AddressSpaces {quoted(address_space)} "
        f"-DNSRoutingEnabled $false -SmartHosts {quoted(smart_host)}"
    )
    assert result.status in (0, 1)
    assert SendConnector.objects.count() == before + (1 - result.status)
    assert "Traceback" not in result.err


# -- OPATH filters ------------------------------------------------------------------------------------------------

FILTER_PROPERTIES = st.sampled_from([*selectors.MESSAGE_FILTER_FIELDS, *QUEUE_PROPERTIES, "Colour"])
FILTER_OPERATORS = st.sampled_from([*opath.OPERATORS, "-is", "-and", "-not", "("])
FILTER_VALUES = st.one_of(
    st.sampled_from(
        [
            "nan",
            "inf",
            "-Infinity",
            "1e400",
            "9223372036854775808",
            "-9223372036854775809",
            "$null",
            "$true",
            "'*a*a*a*b'",
            "'%_\\'",
            "''",
            "0",
            "1.5",
            "99999999999999999999999",
            "1e-400",
            ")",
        ]
    ),
    st.integers().map(str),
    st.floats().map(repr),
    JUNK.map(lambda text: "'" + text.replace("'", "''") + "'"),
)
COMPARISONS = st.builds(" ".join, st.tuples(FILTER_PROPERTIES, FILTER_OPERATORS, FILTER_VALUES))
FILTERS = st.one_of(
    st.recursive(
        COMPARISONS,
        lambda inner: st.one_of(
            st.builds("{} -and {}".format, inner, inner),
            st.builds("{} -or {}".format, inner, inner),
            inner.map("-not {}".format),
            inner.map("({})".format),
        ),
        max_leaves=12,
    ),
    JUNK,
    st.integers(0, 1100).map(lambda depth: "(" * depth + "Size -gt 1" + ")" * depth),
    st.integers(0, 2100).map(lambda count: " -and ".join(["RetryCount -ge 0"] * count)),
)


@pytest.fixture
def queued_mail(make_connector, tracking_log_dir, woken):
    make_connector("To internet", ["*"])
    queued("a@contoso.test", "b@fabrikam.test", **retry_values())
    queued("c@contoso.test")


@pytest.mark.django_db
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=FILTERS)
def test_any_filter_selects_messages_and_queues_or_raises_a_filter_error(queued_mail, text):
    fields = selectors.MESSAGE_FILTER_FIELDS
    try:
        rows = list(selectors.message_rows().filter(opath.to_q(opath.parse(text, fields), fields)))
    except opath.FilterError:
        pass
    else:
        assert len(rows) <= 3
    try:
        tree = opath.parse(text, QUEUE_PROPERTIES)
        [opath.matches(tree, queue_record(queue)) for queue in selectors.queue_list()]
    except opath.FilterError:
        pass


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=FILTERS, command=st.sampled_from(["Get-Message", "Get-Queue", "Suspend-Message -WhatIf"]))
def test_any_filter_through_the_shell_gives_output_or_a_clean_error(cmdlet, queued_mail, text, command):
    quoted = "'" + "".join("''" if ch in "'\u2018\u2019\u201a\u201b" else ch for ch in text) + "'"
    result = cmdlet(f"{command} -Filter {quoted}")
    assert result.status in (0, 1)
    if result.status:
        assert result.err.startswith(command.split()[0] + " : ") or result.err.startswith("At line:"), result.err
    assert "Traceback" not in result.err
