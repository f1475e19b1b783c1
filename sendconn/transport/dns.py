"""Where to connect: MX routing (RFC 5321 §5.1, RFC 7505 null MX) and smart-host resolution, with dnspython.

``get_resolver().resolve_mx("contoso.com")`` returns the ``Target`` list to try in order, or raises a
``DnsPermanentError`` (fail the recipients now) or ``DnsTransientError`` (retry later). ``resolve_next_hop`` is
the one lookup of a connector's next hop, MX or smart hosts, that delivery and Verify delivery both make, so
Verify finds what delivery would. Names are always absolute (no search list). Answers, NXDOMAIN included, are
cached by their TTL in one LRU cache per resolver set, shared by the process; SERVFAIL, REFUSED and timeouts are
never cached (dnspython doesn't, and neither do we).
"""

import ipaddress
import itertools
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdatatype
import dns.resolver
from django.conf import settings

MAX_CACHED_ANSWERS = 100_000


@dataclass(frozen=True)
class Target:
    """One address to try: an MX host (with its preference) or a smart host (preference None)."""

    hostname: str
    address: str
    port: int
    preference: int | None = None

    @property
    def endpoint(self):
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


class DnsError(Exception):
    """A routing failure with the SMTP reply that the recipient's status and NDR carry."""

    transient: bool | None = None

    def __init__(self, smtp_code, enhanced_status, text, domain="", detail=""):
        super().__init__(f"{smtp_code} {enhanced_status} {text}")
        self.smtp_code = smtp_code
        self.enhanced_status = enhanced_status
        self.text = text
        self.domain = domain
        self.detail = detail  # what the resolver saw, for the verify page

    @property
    def response(self):
        return f"{self.smtp_code} {self.enhanced_status} {self.text}"


class DnsPermanentError(DnsError):
    transient = False


class DnsTransientError(DnsError):
    transient = True


def dns_query_failed(reason, domain=""):
    return DnsTransientError(451, "4.4.0", f"DNS query failed. The error was: {reason}", domain, reason)


def nonexistent_domain(domain):
    return DnsPermanentError(550, "5.1.2", "SMTPSEND.DNS.NonExistentDomain; nonexistent domain", domain, "NXDOMAIN")


def null_mx(domain):
    return DnsPermanentError(556, "5.1.10", "Recipient address has null MX", domain, "MX 0 .")


def no_address(domain, what):
    return DnsPermanentError(550, "5.4.4", f"Unable to route: {what}", domain, what)


class MxResolver:
    """A dnspython resolver on a fixed server list (empty: /etc/resolv.conf), counting the queries it sends."""

    def __init__(self, nameservers=(), timeout=5.0, lifetime=15.0, cache=None):
        if nameservers:
            resolver = dns.resolver.Resolver(configure=False)
            servers = list(nameservers)
        else:
            resolver = dns.resolver.Resolver()
            servers = [
                (ns, resolver.nameserver_ports.get(ns, resolver.port))  # type: ignore[arg-type]  # resolv.conf: addresses
                for ns in resolver.nameservers
            ]
        resolver.nameservers = [_CountingNameserver(self, address, port) for address, port in servers]
        resolver.search = []
        resolver.use_search_by_default = False
        resolver.timeout = timeout
        resolver.lifetime = lifetime
        resolver.cache = cache if cache is not None else dns.resolver.LRUCache(MAX_CACHED_ANSWERS)
        self.resolver = resolver
        self.nameservers = servers
        self.queries_sent = 0
        self._count_lock = threading.Lock()

    def resolve_mx(self, domain, port=25, downgrade_dns_failures=False):
        """MX hosts in preference order (equal preferences shuffled), each expanded to its A then AAAA addresses.

        ``downgrade_dns_failures`` (ErrorPolicies DowngradeDnsFailures) turns permanent DNS errors into
        ``451 4.4.0`` retries. A null MX stays permanent: it is the domain's answer, not a DNS error.
        """
        try:
            return self._mx_targets(domain, port)
        except DnsPermanentError as error:
            if downgrade_dns_failures and error.smtp_code != 556:
                raise dns_query_failed(error.text, error.domain) from error
            raise

    def resolve_smart_hosts(self, hosts, port=25, on_smart_host=None):
        """Targets for smart hosts in their configured order; names resolve to A then AAAA.

        A smart host that doesn't resolve is skipped. None left is always a retry (Exchange keeps the queue in
        Retry with ``451 4.4.0 DNS query failed``): it is a configuration or DNS problem, not the recipient's.
        ``on_smart_host(host, found)`` hears each host in turn with its targets or the DnsError that skipped it.
        """
        targets, errors = [], []
        for host in hosts:
            name = host.strip().strip("[]")
            found: list[Target] | DnsError
            try:
                if _ip_literal(name):
                    found = [Target(name, name, port)]
                else:
                    found = [Target(name.rstrip("."), address, port) for address in self._addresses(name)]
            except DnsError as error:
                errors.append(error)
                found = error
            else:
                targets.extend(found)
            if on_smart_host is not None:
                on_smart_host(host, found)
        if targets:
            return targets
        raise dns_query_failed(errors[-1].text if errors else "no smart host is configured", ",".join(hosts))

    def _mx_targets(self, domain, port):
        domain = domain.strip().rstrip(".").lower()
        literal = _address_literal(domain)
        if literal:
            return [Target(domain, literal, port, 0)]
        try:
            name = dns.name.from_text(domain)
        except dns.exception.DNSException:
            raise DnsPermanentError(550, "5.1.3", f"Invalid recipient domain name {domain}", domain) from None
        implicit = False
        try:
            answer = self._query(name, dns.rdatatype.MX, domain)
        except dns.resolver.NXDOMAIN:
            raise nonexistent_domain(domain) from None
        except dns.resolver.NoAnswer:
            hosts = [(0, name)]  # RFC 5321 §5.1 implicit MX: the domain itself, preference 0
            implicit = True
        else:
            records = list(answer)
            if len(records) == 1 and records[0].exchange == dns.name.root:
                raise null_mx(domain)
            hosts = _ordered(records)
        targets: list[Target] = []
        transient: DnsTransientError | None = None
        for preference, host in hosts:
            try:
                addresses = self._addresses(host)
            except DnsTransientError as error:
                transient = transient or error
                continue
            except DnsPermanentError:
                continue
            hostname = host.to_text(omit_final_dot=True)
            targets.extend(Target(hostname, address, port, preference) for address in addresses)
        if targets:
            return targets
        if transient:  # a soft error dominates hard ones: that host may resolve next time
            raise transient
        if implicit:
            raise no_address(domain, f"{domain} has no MX or address record")
        raise no_address(domain, f"no MX host of {domain} has an address record")

    def _addresses(self, host):
        """A then AAAA addresses of a host name; DnsPermanentError when it has none, DnsTransientError on failure."""
        name = host if isinstance(host, dns.name.Name) else dns.name.from_text(host)
        label = name.to_text(omit_final_dot=True)
        addresses: list[str] = []
        transient: DnsTransientError | None = None
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            try:
                addresses.extend(record.address for record in self._query(name, rdtype, label))
            except dns.resolver.NXDOMAIN:
                raise nonexistent_domain(label) from None
            except dns.resolver.NoAnswer:
                continue
            except DnsTransientError as error:
                transient = error
        if addresses:
            return addresses
        if transient:
            raise transient
        raise no_address(label, f"{label} has no address record")

    def _query(self, name, rdtype, domain):
        try:
            return self.resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            raise
        except dns.exception.Timeout:
            raise dns_query_failed(f"{dns.rdatatype.to_text(rdtype)} lookup for {domain} timed out", domain) from None
        except dns.resolver.NoNameservers as error:
            raise dns_query_failed(
                f"{_rcodes(error)} for the {dns.rdatatype.to_text(rdtype)} lookup of {domain}", domain
            ) from None
        except dns.exception.DNSException as error:
            raise dns_query_failed(f"{dns.rdatatype.to_text(rdtype)} lookup for {domain}: {error}", domain) from None

    def _count(self):
        global _queries_sent
        with self._count_lock:
            self.queries_sent += 1
        with _total_lock:
            _queries_sent += 1


class _CountingNameserver(dns.nameserver.Do53Nameserver):
    """Counts every packet the resolver sends (retries and failures included): the bench's queries per message."""

    def __init__(self, owner, address, port):
        super().__init__(address, port)
        self.owner = owner

    def query(self, *args, **kwargs):
        self.owner._count()
        return super().query(*args, **kwargs)


_resolvers: dict[tuple[Any, ...], MxResolver] = {}
_resolvers_lock = threading.Lock()
_queries_sent = 0
_total_lock = threading.Lock()


def get_resolver(use_external_dns_servers=False):
    """The process's resolver for SENDCONN_DNS_SERVERS, or SENDCONN_EXTERNAL_DNS_SERVERS for connectors with
    UseExternalDNSServersEnabled (falling back to the former when unset). One cache per server list."""
    servers = settings.SENDCONN_DNS_SERVERS
    if use_external_dns_servers and settings.SENDCONN_EXTERNAL_DNS_SERVERS:
        servers = settings.SENDCONN_EXTERNAL_DNS_SERVERS
    key = (tuple(tuple(s) for s in servers), settings.SENDCONN_DNS_TIMEOUT, settings.SENDCONN_DNS_LIFETIME)
    with _resolvers_lock:
        if key not in _resolvers:
            _resolvers[key] = MxResolver(key[0], timeout=key[1], lifetime=key[2])
        return _resolvers[key]


def resolve_next_hop(
    next_hop_domain: str,
    *,
    dns_routing: bool,
    smart_hosts: Sequence[str],
    port: int,
    external_dns: bool,
    downgrade_dns_failures: bool,
    on_smart_host: Callable[[str, list[Target] | DnsError], None] | None = None,
) -> list[Target]:
    """Where a connector's next hop is, as delivery and Verify delivery both find it: the targets to try, in order;
    DnsError when there are none (permanent: fail the recipients; transient: retry them).

    DNS routing looks up the MX hosts of ``next_hop_domain`` (the recipient domain), DowngradeDnsFailures turning
    permanent DNS errors into retries; otherwise the ``smart_hosts``, in the connector's order. Either way with
    the external DNS servers when the connector has UseExternalDNSServersEnabled.
    """
    resolver = get_resolver(external_dns)
    if dns_routing:
        return resolver.resolve_mx(next_hop_domain, port=port, downgrade_dns_failures=downgrade_dns_failures)
    return resolver.resolve_smart_hosts(smart_hosts, port=port, on_smart_host=on_smart_host)


def queries_sent():
    """DNS queries this process has sent, all resolvers together."""
    return _queries_sent


def _ordered(records):
    """(preference, exchange) by preference, lower first; random order among equal preferences (RFC 5321 §5.1)."""
    usable = sorted((r for r in records if r.exchange != dns.name.root), key=lambda r: r.preference)
    ordered: list[tuple[int, dns.name.Name]] = []
    for preference, group in itertools.groupby(usable, key=lambda r: r.preference):
        exchanges = [r.exchange for r in group]
        random.shuffle(exchanges)
        ordered.extend((preference, exchange) for exchange in exchanges)
    return ordered


def _rcodes(error):
    """'SERVFAIL' / 'REFUSED' from a NoNameservers error, as the servers answered."""
    seen = []
    for *_, exception, response in error.kwargs.get("errors", []):
        text = dns.rcode.to_text(response.rcode()) if response is not None else str(exception)
        if text not in seen:
            seen.append(text)
    return ", ".join(seen) or "no DNS server answered"


def _ip_literal(host):
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _address_literal(domain):
    """The address in ``[192.0.2.1]`` or ``[IPv6:2001:db8::1]`` (RFC 5321 §4.1.3), else None."""
    if domain.startswith("[") and domain.endswith("]"):
        inner = domain[1:-1]
        inner = inner[5:] if inner.lower().startswith("ipv6:") else inner
        if _ip_literal(inner):
            return inner
    return None
