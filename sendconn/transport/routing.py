"""Connector selection: which Send connector a recipient domain leaves through, and its next hop.

Exchange's order (reference §3): drop connectors whose MaxMessageSize is smaller than the message; keep enabled,
in-scope connectors (unscoped, or scoped with a source server in the routing server's site) whose address space
matches; the most specific address space wins, then the lowest cost, then a connector whose source server is the
routing server, then one with a source server in its site, then the alphanumerically lowest name.

A domain costs one query however many connectors exist (plus one for a smart-host connector's hosts): address
spaces are looked up by the suffixes of the domain through the indexed ``match_domain``, and the scope and
source-server facts are computed in the same query. A ``Router`` caches each domain for a message or a batch.
"""

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, Max, OuterRef, Q

from sendconn.connectors.models import AddressSpace, SendConnector, SmartHost, TransportServer
from sendconn.connectors.values import format_byte_quantity, validate_host_name

RULE_MOST_SPECIFIC = "most specific address space"
RULE_LOWEST_COST = "lowest cost"
RULE_LOCAL_SERVER = "source server is the local server"
RULE_LOCAL_SITE = "source server in the local site"
RULE_LOWEST_NAME = "lowest name"
RULE_ONLY_CANDIDATE = "only candidate"

# How far a connector's nearest source server is from the routing server (Exchange's hop count).
HOP_LOCAL_SERVER, HOP_LOCAL_SITE, HOP_REMOTE_SITE = 0, 1, 2

# The connector count, the latest connector change, each server's (pk, site).
RoutingVersion = tuple[int, datetime | None, tuple[tuple[int, str], ...]]

_T = TypeVar("_T")


@dataclass(frozen=True)
class Candidate:
    """A connector that can take the domain, with its most specific matching address space."""

    connector: SendConnector
    address_space: AddressSpace
    hop: int

    @property
    def rank(self) -> tuple[int, bool, int, int, str]:
        """Sort key in Exchange's order of preference; the positions are the selection rules."""
        space = self.address_space
        return (-len(space.match_domain), space.is_wildcard, space.cost, self.hop, self.connector.name.lower())

    def fits(self, message_size: int) -> bool:
        limit = self.connector.max_message_size
        return limit is None or message_size <= limit


@dataclass(frozen=True)
class Beaten:
    """A candidate the chosen connector beat, and why it lost."""

    connector: SendConnector
    address_space: AddressSpace
    reason: str


@dataclass(frozen=True)
class Route:
    domain: str
    connector: SendConnector | None
    address_space: AddressSpace | None
    next_hop_domain: str  # Exchange's NextHopDomain: the domain, or the smart-host set
    rule: str  # the rule that decided ("" when nothing was chosen)
    beaten: tuple[Beaten, ...]
    too_big: bool  # connectors matched, but the message exceeds every one's MaxMessageSize

    @property
    def unreachable(self) -> bool:
        return self.connector is None and not self.too_big


def recipient_domain(address: str) -> str:
    """The domain of an SMTP address, lower-case without a trailing dot; ValueError unless it is a host name."""
    local, at, domain = address.rpartition("@")
    try:
        if not at or not local.strip():
            raise ValidationError("no local part or domain")
        return validate_host_name(domain, "domain")
    except ValidationError:
        raise ValueError(f"'{address}' isn't a valid SMTP address.") from None


def domain_suffixes(domain: str) -> list[str]:
    """``a.b.c`` → ``["a.b.c", "b.c", "c", ""]``: every ``match_domain`` that can cover the domain."""
    labels = domain.split(".")
    return [".".join(labels[index:]) for index in range(len(labels))] + [""]


def smart_host_set(hosts: Iterable[SmartHost]) -> str:
    """The next hop of a smart-host connector: its smart hosts in order, IP addresses in brackets."""
    return ",".join(f"[{host.host}]" if host.is_ip_address else host.host for host in hosts)


def _loss_reason(loser: Candidate, winner: Candidate) -> tuple[str, str]:
    """The first rule, in Exchange's order, on which ``loser`` ranks below ``winner``."""
    for position, (theirs, ours) in enumerate(zip(loser.rank, winner.rank, strict=True)):
        if theirs == ours:
            continue
        if position <= 1:
            return (
                f"address space {loser.address_space} is less specific than {winner.address_space}",
                RULE_MOST_SPECIFIC,
            )
        if position == 2:
            return f"higher cost ({loser.address_space.cost} > {winner.address_space.cost})", RULE_LOWEST_COST
        if position == 3:
            if winner.hop == HOP_LOCAL_SERVER:
                return "no source server is the local server", RULE_LOCAL_SERVER
            return "no source server in the local site", RULE_LOCAL_SITE
        return f"name sorts after '{winner.connector.name}'", RULE_LOWEST_NAME
    raise AssertionError("two candidates with the same name")  # names are unique, case-insensitively


def routing_version() -> RoutingVersion:
    """What changes whenever a routing decision can: every connector write (``changed_at``, the count for removals;
    address spaces, smart hosts and source servers are only written with their connector) and the servers' sites."""
    connectors = SendConnector.objects.aggregate(count=Count("pk"), changed=Max("changed_at"))
    sites = tuple(TransportServer.objects.order_by("pk").values_list("pk", "site"))
    return connectors["count"], connectors["changed"], sites


class Router:
    """Routes recipient domains as ``server`` does (its site decides scope, it is the "local server").

    Each domain is looked up once and remembered: for the Router's lifetime (a message or a batch), or, when a
    long-lived process keeps one Router as its routing table as Exchange's transport service does, until the
    routing version changes, checked at most every ``max_age`` seconds (connector changes reach it within that).
    """

    def __init__(self, server: TransportServer, max_age: float | None = None) -> None:
        self.server = server
        self.max_age = max_age
        self._remembered: dict[tuple[str, Any], Any] = {}  # dict operations are thread-safe enough for a cache
        self._version: RoutingVersion | None = None
        self._checked_at: float | None = None

    def _remember(self, key: tuple[str, Any], compute: Callable[[], _T]) -> _T:
        if self.max_age is not None:
            self._check_version(self.max_age)
        if key not in self._remembered:
            self._remembered[key] = compute()
        return self._remembered[key]

    def _check_version(self, max_age: float) -> None:
        now = time.monotonic()
        if self._checked_at is not None and now - self._checked_at < max_age:
            return
        self._checked_at = now
        version = routing_version()
        if version != self._version:
            self._remembered.clear()
            self._version = version

    def forget(self) -> None:
        """Drop what was remembered (after a write failed because a connector changed under us)."""
        self._remembered.clear()
        self._checked_at = None

    def candidates(self, domain: str) -> list[Candidate]:
        """Enabled, in-scope connectors with an address space matching ``domain``, best first."""
        return self._remember(("domain", domain), lambda: self._query_candidates(domain))

    def _query_candidates(self, domain: str) -> list[Candidate]:
        sources = SendConnector.source_transport_servers.through.objects.filter(
            sendconnector_id=OuterRef("connector_id")
        )
        spaces = (
            AddressSpace.objects.filter(address_type="SMTP", match_domain__in=domain_suffixes(domain))
            # The domain itself matches "contoso.com" and "*.contoso.com"; a parent only matches wildcards.
            .filter(Q(match_domain=domain) | Q(is_wildcard=True))
            .filter(connector__enabled=True)
            .annotate(
                on_local_server=Exists(sources.filter(transportserver_id=self.server.pk)),
                in_local_site=Exists(sources.filter(transportserver__site=self.server.site)),
            )
            .filter(Q(connector__is_scoped_connector=False) | Q(in_local_site=True))
            .select_related("connector")
        )
        best: dict[int, Candidate] = {}
        for space in spaces:
            hop = (
                HOP_LOCAL_SERVER
                if space.on_local_server
                else HOP_LOCAL_SITE
                if space.in_local_site
                else HOP_REMOTE_SITE
            )
            candidate = Candidate(space.connector, space, hop)
            current = best.get(space.connector_id)
            if current is None or candidate.rank < current.rank:
                best[space.connector_id] = candidate
        return sorted(best.values(), key=lambda candidate: candidate.rank)

    def next_hop_domain(self, connector: SendConnector, domain: str) -> str:
        """Exchange's NextHopDomain of mail for ``domain`` through ``connector``: the domain itself (DNS routing),
        or the connector's smart-host set, read once per connector (no query when its smart hosts are prefetched)."""
        if connector.dns_routing_enabled:
            return domain
        return self._remember(("smart hosts", connector.pk), lambda: smart_host_set(connector.smart_hosts.all()))

    def route(self, domain: str, message_size: int = 0) -> Route:
        """Choose the connector for ``domain`` (lower-case) and a message of ``message_size`` bytes."""
        candidates = self.candidates(domain)
        fitting = [candidate for candidate in candidates if candidate.fits(message_size)]
        too_small = [
            Beaten(
                candidate.connector,
                candidate.address_space,
                f"message size {format_byte_quantity(message_size)} exceeds MaxMessageSize "
                f"{format_byte_quantity(candidate.connector.max_message_size)}",
            )
            for candidate in candidates
            if not candidate.fits(message_size)
        ]
        if not fitting:
            return Route(domain, None, None, "", "", tuple(too_small), too_big=bool(too_small))
        winner, losers = fitting[0], fitting[1:]
        rule = _loss_reason(losers[0], winner)[1] if losers else RULE_ONLY_CANDIDATE
        beaten = [Beaten(loser.connector, loser.address_space, _loss_reason(loser, winner)[0]) for loser in losers]
        return Route(
            domain,
            winner.connector,
            winner.address_space,
            self.next_hop_domain(winner.connector, domain),
            rule,
            tuple(beaten + too_small),
            too_big=False,
        )
