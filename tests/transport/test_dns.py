"""MX and smart-host resolution against a real nsd on loopback (zones in conftest.py)."""

import time

import pytest
from django.core.exceptions import ImproperlyConfigured

from sendconn.settings import env_dns_servers
from sendconn.transport import dns as transport_dns
from sendconn.transport.dns import (
    DnsPermanentError,
    DnsTransientError,
    MxResolver,
    Target,
    get_resolver,
    resolve_next_hop,
)


def hosts(targets):
    return [(t.preference, t.hostname, t.address) for t in targets]


def test_mx_hosts_come_in_preference_order_with_their_addresses(resolver):
    targets = resolver.resolve_mx("contoso.test")

    assert sorted(hosts(targets)[:2]) == [(10, "mx1.contoso.test", "127.0.0.2"), (10, "mx2.contoso.test", "127.0.0.3")]
    assert hosts(targets)[2] == (20, "mx3.contoso.test", "127.0.0.4")
    assert {t.port for t in targets} == {25}


def test_equal_preferences_are_shuffled(resolver):
    firsts = {resolver.resolve_mx("contoso.test")[0].hostname for _ in range(40)}

    assert firsts == {"mx1.contoso.test", "mx2.contoso.test"}  # both lead sometimes; mx3 (20) never


def test_connector_port_applies_to_every_target(resolver):
    assert {t.port for t in resolver.resolve_mx("contoso.test", port=2525)} == {2525}


def test_domain_without_mx_uses_its_own_addresses(resolver):
    assert resolver.resolve_mx("implicit.test") == [
        Target("implicit.test", "127.0.0.5", 25, 0),
        Target("implicit.test", "::1", 25, 0),
    ]


def test_cname_is_followed(resolver):
    assert {t.hostname for t in resolver.resolve_mx("alias.test")} == {
        "mx1.contoso.test",
        "mx2.contoso.test",
        "mx3.contoso.test",
    }


def test_null_mx_fails_at_once(resolver):
    with pytest.raises(DnsPermanentError) as caught:
        resolver.resolve_mx("nullmx.test")

    assert caught.value.response == "556 5.1.10 Recipient address has null MX"


def test_null_mx_stays_permanent_when_dns_failures_are_downgraded(resolver):
    with pytest.raises(DnsPermanentError):
        resolver.resolve_mx("nullmx.test", downgrade_dns_failures=True)


def test_nonexistent_domain_is_permanent(resolver):
    with pytest.raises(DnsPermanentError) as caught:
        resolver.resolve_mx("nxdomain.test")

    error = caught.value
    assert (error.smtp_code, error.enhanced_status) == (550, "5.1.2")
    assert error.response == "550 5.1.2 SMTPSEND.DNS.NonExistentDomain; nonexistent domain"
    assert not error.transient


def test_downgrade_dns_failures_makes_nxdomain_a_retry(resolver):
    with pytest.raises(DnsTransientError) as caught:
        resolver.resolve_mx("nxdomain.test", downgrade_dns_failures=True)

    assert caught.value.response == (
        "451 4.4.0 DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain; nonexistent domain"
    )


def test_servfail_is_a_retry(resolver):
    with pytest.raises(DnsTransientError) as caught:
        resolver.resolve_mx("servfail.test")

    assert caught.value.response.startswith("451 4.4.0 DNS query failed")
    assert "SERVFAIL" in caught.value.detail


def test_domain_nobody_serves_is_a_retry(resolver):
    with pytest.raises(DnsTransientError) as caught:  # nsd answers REFUSED: as if every server failed
        resolver.resolve_mx("fabrikam.example")

    assert "REFUSED" in caught.value.detail


def test_timeout_is_a_retry(dead_dns):
    resolver = MxResolver([dead_dns], timeout=0.3, lifetime=0.5)
    started = time.monotonic()

    with pytest.raises(DnsTransientError) as caught:
        resolver.resolve_mx("contoso.test")

    assert time.monotonic() - started < 3
    assert caught.value.response.startswith("451 4.4.0 DNS query failed")
    assert "timed out" in caught.value.text


def test_mx_host_without_address_is_skipped(resolver):
    assert hosts(resolver.resolve_mx("partial.test")) == [(20, "mx.partial.test", "127.0.0.6")]


def test_no_usable_mx_host_is_permanent_without_falling_back_to_a(resolver):
    with pytest.raises(DnsPermanentError) as caught:
        resolver.resolve_mx("badmx.test")

    assert (caught.value.smtp_code, caught.value.enhanced_status) == (550, "5.4.4")
    assert "no MX host of badmx.test" in caught.value.text


def test_no_usable_mx_host_downgraded(resolver):
    with pytest.raises(DnsTransientError):
        resolver.resolve_mx("badmx.test", downgrade_dns_failures=True)


def test_mx_host_lookup_failing_transiently_makes_the_result_transient(resolver):
    with pytest.raises(DnsTransientError):
        resolver.resolve_mx("softmx.test")


def test_address_literal_needs_no_dns(resolver):
    assert resolver.resolve_mx("[127.0.0.9]") == [Target("[127.0.0.9]", "127.0.0.9", 25, 0)]
    assert resolver.queries_sent == 0


def test_answers_are_cached_by_ttl(resolver, nsd):
    resolver.resolve_mx("contoso.test")
    sent, answered = resolver.queries_sent, nsd.query_count()

    again = resolver.resolve_mx("contoso.test")

    assert len(again) == 3
    assert resolver.queries_sent == sent
    assert nsd.query_count() == answered


def test_nonexistent_domain_is_cached(resolver):
    with pytest.raises(DnsPermanentError):
        resolver.resolve_mx("nxdomain.test")
    sent = resolver.queries_sent

    with pytest.raises(DnsPermanentError):
        resolver.resolve_mx("nxdomain.test")

    assert resolver.queries_sent == sent


def test_transient_failures_are_not_cached(resolver):
    with pytest.raises(DnsTransientError):
        resolver.resolve_mx("servfail.test")
    sent = resolver.queries_sent

    with pytest.raises(DnsTransientError):
        resolver.resolve_mx("servfail.test")

    assert resolver.queries_sent > sent


def test_queries_are_counted_for_the_process(resolver):
    before = transport_dns.queries_sent()

    resolver.resolve_mx("contoso.test")

    assert transport_dns.queries_sent() - before == resolver.queries_sent == 7  # MX + A/AAAA of 3 hosts


def test_smart_hosts_resolve_in_order(resolver):
    targets = resolver.resolve_smart_hosts(["smtp.relay.test", "127.0.0.9", "[127.0.0.10]", "smtp2.relay.test"], 587)

    assert [(t.hostname, t.address, t.port, t.preference) for t in targets] == [
        ("smtp.relay.test", "127.0.0.7", 587, None),
        ("127.0.0.9", "127.0.0.9", 587, None),
        ("127.0.0.10", "127.0.0.10", 587, None),
        ("smtp2.relay.test", "127.0.0.8", 587, None),
    ]


def test_smart_host_that_does_not_resolve_is_skipped(resolver):
    targets = resolver.resolve_smart_hosts(["missing.relay.test", "smtp2.relay.test"])

    assert [t.address for t in targets] == ["127.0.0.8"]


def test_no_smart_host_resolving_is_a_retry(resolver):
    with pytest.raises(DnsTransientError) as caught:
        resolver.resolve_smart_hosts(["missing.relay.test"])

    assert caught.value.response == (
        "451 4.4.0 DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain; nonexistent domain"
    )


def next_hop(domain, dns_routing=True, smart_hosts=(), **options):
    options = {"port": 25, "external_dns": False, "downgrade_dns_failures": False} | options
    return resolve_next_hop(domain, dns_routing=dns_routing, smart_hosts=smart_hosts, **options)


def test_next_hop_by_mx_honours_downgrade_dns_failures(dns_settings):
    """Delivery and Verify delivery both resolve through resolve_next_hop: a nonexistent domain fails at once,
    or is retried when the connector has DowngradeDnsFailures."""
    assert hosts(next_hop("implicit.test", port=2525)) == [
        (0, "implicit.test", "127.0.0.5"),
        (0, "implicit.test", "::1"),
    ]
    with pytest.raises(DnsPermanentError) as failed:
        next_hop("nxdomain.test")
    with pytest.raises(DnsTransientError) as retried:
        next_hop("nxdomain.test", downgrade_dns_failures=True)

    assert failed.value.response == "550 5.1.2 SMTPSEND.DNS.NonExistentDomain; nonexistent domain"
    assert retried.value.response == (
        "451 4.4.0 DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain; nonexistent domain"
    )


def test_next_hop_by_smart_hosts_tells_each_host_in_order(dns_settings):
    heard = []
    targets = next_hop(
        "missing.relay.test,smtp.relay.test,[127.0.0.10]",
        dns_routing=False,
        smart_hosts=("missing.relay.test", "smtp.relay.test", "[127.0.0.10]"),
        port=587,
        on_smart_host=lambda host, found: heard.append((host, getattr(found, "text", found))),
    )

    assert [(t.hostname, t.address, t.port) for t in targets] == [
        ("smtp.relay.test", "127.0.0.7", 587),
        ("127.0.0.10", "127.0.0.10", 587),
    ]
    assert heard == [
        ("missing.relay.test", "SMTPSEND.DNS.NonExistentDomain; nonexistent domain"),
        ("smtp.relay.test", [targets[0]]),
        ("[127.0.0.10]", [targets[1]]),
    ]


def test_next_hop_is_looked_up_with_the_external_dns_servers_when_the_connector_says_so(dns_settings, dead_dns):
    dns_settings.SENDCONN_EXTERNAL_DNS_SERVERS = [dead_dns]

    assert next_hop("implicit.test")
    with pytest.raises(DnsTransientError) as caught:
        next_hop("implicit.test", external_dns=True)

    assert caught.value.response == "451 4.4.0 DNS query failed. The error was: MX lookup for implicit.test timed out"


def test_process_resolvers_follow_settings_and_share_their_cache(dns_settings, nsd, dead_dns):
    assert get_resolver().nameservers == [nsd.nameserver]
    assert get_resolver() is get_resolver()
    assert get_resolver(use_external_dns_servers=True) is get_resolver()  # no external servers: the same

    dns_settings.SENDCONN_EXTERNAL_DNS_SERVERS = [dead_dns]

    assert get_resolver(use_external_dns_servers=True).nameservers == [dead_dns]
    assert get_resolver().nameservers == [nsd.nameserver]


def test_dns_server_setting_is_parsed(monkeypatch):
    monkeypatch.setenv("SENDCONN_DNS_SERVERS", "127.0.0.1:5353, ::1,[::1]:5300,192.0.2.53")

    assert env_dns_servers("SENDCONN_DNS_SERVERS") == [
        ("127.0.0.1", 5353),
        ("::1", 53),
        ("::1", 5300),
        ("192.0.2.53", 53),
    ]


@pytest.mark.parametrize("value", ["dns.contoso.test", "127.0.0.1:0", "127.0.0.1:port", "[::1]x"])
def test_bad_dns_server_setting_is_refused_clearly(monkeypatch, value):
    monkeypatch.setenv("SENDCONN_DNS_SERVERS", value)

    with pytest.raises(ImproperlyConfigured, match="is not a DNS server. Use ip\\[:port\\]"):
        env_dns_servers("SENDCONN_DNS_SERVERS")
