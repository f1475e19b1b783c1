import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sendconn.connectors.models import AddressSpace, SendConnector
from sendconn.connectors.servers import local_server, register_transport_server
from sendconn.connectors.services import Caller, set_send_connector
from sendconn.transport import routing
from sendconn.transport.routing import Router, domain_suffixes, recipient_domain

pytestmark = pytest.mark.django_db
MB = 1024 * 1024


@pytest.fixture
def ex01(db):
    return local_server()


@pytest.fixture
def ex02(db):
    return register_transport_server("EX02", "ex02.contoso.test", "Default-First-Site-Name")


@pytest.fixture
def branch(db):
    return register_transport_server("BR01", "br01.contoso.test", "Branch-Site")


def route(domain, size=0, server=None):
    return Router(server or local_server()).route(domain, size)


def beaten(result):
    return {loser.connector.name: loser.reason for loser in result.beaten}


def test_domain_helpers():
    assert domain_suffixes("a.b.contoso.com") == ["a.b.contoso.com", "b.contoso.com", "contoso.com", "com", ""]
    assert recipient_domain("Julia@Marketing.Contoso.COM.") == "marketing.contoso.com"
    for bad in ("julia", "@contoso.com", "julia@", "julia@contoso..com", "julia@[10.0.0.1]", "julia@bad_name.com"):
        with pytest.raises(ValueError):
            recipient_domain(bad)


def test_most_specific_address_space_wins(make_connector):
    make_connector("All", ["*"])
    make_connector("Contoso and subdomains", ["*.contoso.com"])
    make_connector("Marketing", ["marketing.contoso.com"])

    result = route("marketing.contoso.com")
    assert result.connector.name == "Marketing"
    assert result.rule == routing.RULE_MOST_SPECIFIC
    assert beaten(result) == {
        "Contoso and subdomains": (
            "address space SMTP:*.contoso.com;1 is less specific than SMTP:marketing.contoso.com;1"
        ),
        "All": "address space SMTP:*;1 is less specific than SMTP:marketing.contoso.com;1",
    }
    assert route("sales.contoso.com").connector.name == "Contoso and subdomains"
    assert route("contoso.com").connector.name == "Contoso and subdomains"  # *.contoso.com covers the domain itself
    assert route("fabrikam.com").connector.name == "All"


def test_exact_address_space_matches_only_that_domain(make_connector):
    make_connector("Contoso only", ["contoso.com"])
    assert route("contoso.com").connector.name == "Contoso only"
    assert route("contoso.com").rule == routing.RULE_ONLY_CANDIDATE
    assert route("sales.contoso.com").unreachable
    assert route("notcontoso.com").unreachable


def test_exact_beats_wildcard_of_the_same_domain(make_connector):
    make_connector("A wildcard", ["*.contoso.com"])
    make_connector("B exact", ["contoso.com"])
    result = route("contoso.com")
    assert result.connector.name == "B exact" and result.rule == routing.RULE_MOST_SPECIFIC


def test_lowest_cost_breaks_a_specificity_tie(make_connector):
    make_connector("A expensive", ["*;5"])
    make_connector("B cheap", ["*;1"])
    result = route("fabrikam.com")
    assert result.connector.name == "B cheap"
    assert result.rule == routing.RULE_LOWEST_COST
    assert beaten(result) == {"A expensive": "higher cost (5 > 1)"}


def test_connector_of_the_local_server_beats_one_in_the_site(make_connector, ex01, ex02):
    make_connector("A on EX02", ["*"], source_transport_servers=["EX02"])
    make_connector("B on EX01", ["*"], source_transport_servers=["EX01"])
    result = route("fabrikam.com")
    assert result.connector.name == "B on EX01"
    assert result.rule == routing.RULE_LOCAL_SERVER
    assert beaten(result) == {"A on EX02": "no source server is the local server"}


def test_connector_in_the_local_site_beats_a_remote_one(make_connector, ex01, ex02, branch):
    make_connector("A in branch", ["*"], source_transport_servers=["BR01"])
    make_connector("B on EX02", ["*"], source_transport_servers=["EX02"])
    result = route("fabrikam.com")
    assert result.connector.name == "B on EX02"
    assert result.rule == routing.RULE_LOCAL_SITE
    assert beaten(result) == {"A in branch": "no source server in the local site"}


def test_lowest_name_breaks_the_last_tie(make_connector):
    make_connector("beta", ["*"])
    make_connector("Alpha", ["*"])
    result = route("fabrikam.com")
    assert result.connector.name == "Alpha"
    assert result.rule == routing.RULE_LOWEST_NAME
    assert beaten(result) == {"beta": "name sorts after 'Alpha'"}


def test_scoped_connector_of_another_site_is_ignored(make_connector, ex01, branch):
    make_connector("All", ["*"])
    make_connector("Branch egress", ["*.contoso.com"], is_scoped_connector=True, source_transport_servers=["BR01"])
    assert route("contoso.com").connector.name == "All"
    # Servers of the branch site see it, and it is the more specific match there.
    assert route("contoso.com", server=branch).connector.name == "Branch egress"


def test_scoped_connector_of_the_local_site_is_used(make_connector, ex01):
    make_connector("Scoped here", ["*"], is_scoped_connector=True)
    assert route("fabrikam.com").connector.name == "Scoped here"


def test_disabled_connector_is_ignored(make_connector):
    make_connector("All", ["*"])
    make_connector("Contoso", ["contoso.com"], enabled=False)
    assert route("contoso.com").connector.name == "All"


def test_non_smtp_address_spaces_never_match_smtp_recipients(make_connector):
    connector = make_connector(
        "X400", ["X400:c=US;a= ;p=Contoso;o=Exchange;1"], dns_routing_enabled=False, smart_hosts=["relay.contoso.com"]
    )
    assert AddressSpace.objects.get(connector=connector).match_domain == ""
    assert route("contoso.com").unreachable


def test_too_small_connectors_are_dropped_before_specificity(make_connector):
    make_connector("All", ["*"], max_message_size=None)
    make_connector("Contoso", ["contoso.com"], max_message_size=1 * MB)
    result = route("contoso.com", size=2 * MB)
    assert result.connector.name == "All"
    assert beaten(result) == {
        "Contoso": "message size 2 MB (2,097,152 bytes) exceeds MaxMessageSize 1 MB (1,048,576 bytes)"
    }
    assert route("contoso.com", size=1 * MB).connector.name == "Contoso"  # equal to the limit fits


def test_message_bigger_than_every_matching_connector(make_connector):
    make_connector("Contoso", ["contoso.com"], max_message_size=1 * MB)
    result = route("contoso.com", size=2 * MB)
    assert result.connector is None and result.too_big and not result.unreachable


def test_no_matching_connector_is_unreachable(make_connector):
    make_connector("Contoso", ["contoso.com"])
    result = route("fabrikam.com")
    assert result.connector is None and result.unreachable and result.next_hop_domain == ""


def test_next_hop_is_the_domain_or_the_smart_host_set(make_connector):
    make_connector("Internet", ["*"])
    make_connector("Relay", ["contoso.com"], dns_routing_enabled=False, smart_hosts=["relay.contoso.com", "10.0.0.1"])
    assert route("fabrikam.com").next_hop_domain == "fabrikam.com"
    assert route("contoso.com").next_hop_domain == "relay.contoso.com,[10.0.0.1]"


def test_router_caches_each_domain(make_connector, ex01):
    make_connector("Relay", ["*"], dns_routing_enabled=False, smart_hosts=["relay.contoso.com"])
    router = Router(ex01)
    with CaptureQueriesContext(connection) as queries:
        for size in (10, 20, 30):
            router.route("contoso.com", size)
            router.route("fabrikam.com", size)
    assert len(queries) == 3  # one per domain, plus the connector's smart hosts once


def test_long_lived_router_rereads_connectors_after_max_age(make_connector, ex01, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(routing.time, "monotonic", lambda: clock[0])
    make_connector("Internet", ["*"])
    router = Router(ex01, max_age=5)
    assert router.route("contoso.com").connector.name == "Internet"
    make_connector("Contoso", ["contoso.com"])
    clock[0] += 4
    assert router.route("contoso.com").connector.name == "Internet"  # still the remembered routing table
    clock[0] += 1
    assert router.route("contoso.com").connector.name == "Contoso"
    assert router.route("fabrikam.com").connector.name == "Internet"
    make_connector("Fabrikam", ["fabrikam.com"])
    router.forget()
    assert router.route("fabrikam.com").connector.name == "Fabrikam"


def test_long_lived_router_keeps_its_table_while_no_connector_changes(make_connector, ex01, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(routing.time, "monotonic", lambda: clock[0])
    make_connector("Internet", ["*"])
    router = Router(ex01, max_age=5)
    router.route("contoso.com")
    clock[0] += 60
    with CaptureQueriesContext(connection) as queries:
        assert router.route("contoso.com").connector.name == "Internet"
        assert router.route("contoso.com").connector.name == "Internet"
    assert len(queries) == 2  # the routing version (connectors, servers' sites) once; no candidates query
    connector = SendConnector.objects.get(name="Internet")
    set_send_connector(Caller("tests", "Shell"), connector, enabled=False)
    clock[0] += 5
    assert router.route("contoso.com").connector is None  # the disabled connector is gone from the table


def _bulk_connectors(count, start, server):
    """``count`` connectors for distinct domains, created in bulk (the service would take minutes for 10,000)."""
    connectors = SendConnector.objects.bulk_create(
        SendConnector(name=f"Partner {index:05d}") for index in range(start, start + count)
    )
    AddressSpace.objects.bulk_create(
        AddressSpace(
            connector=connector, domain=f"*.partner{index}.test", is_wildcard=True, match_domain=f"partner{index}.test"
        )
        for index, connector in enumerate(connectors, start)
    )
    Through = SendConnector.source_transport_servers.through
    Through.objects.bulk_create(Through(sendconnector=connector, transportserver=server) for connector in connectors)


def _measure(router_server, domains):
    """Best-of-5 time to route ``domains`` with a fresh router (no cache), and the queries one route costs."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        router = Router(router_server)
        for domain in domains:
            router.route(domain, 1000)
        best = min(best, time.perf_counter() - started)
    with CaptureQueriesContext(connection) as queries:
        Router(router_server).route(domains[0], 1000)
    return best, len(queries)


def test_ten_thousand_connectors_cost_what_ten_do(make_connector, ex01):
    make_connector("Internet", ["*"])
    _bulk_connectors(10, 0, ex01)
    domains = [f"mail.partner{index}.test" for index in range(10)] + ["fabrikam.com"]
    small_time, small_queries = _measure(ex01, domains)
    assert Router(ex01).route("mail.partner7.test").connector.name == "Partner 00007"

    _bulk_connectors(9990, 10, ex01)
    assert SendConnector.objects.count() == 10001
    big_time, big_queries = _measure(ex01, domains)
    assert Router(ex01).route("mail.partner7.test").connector.name == "Partner 00007"
    assert Router(ex01).route("x.partner9999.test").connector.name == "Partner 09999"

    assert big_queries == small_queries == 1
    # Generous: the machine is shared. Scanning 10,000 connectors per route would take seconds here.
    assert big_time < 5 * small_time + 0.1, (small_time, big_time)
