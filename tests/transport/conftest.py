"""Real delivery peers on loopback: nsd with the standard test zones, SMTP sinks, throwaway certificates; and
smtpd in a thread (``listen``) with smtplib or raw-socket clients.

Standard zones (everything under ``test.``; an unknown ``*.test`` name is NXDOMAIN):
  contoso.test      MX 10 mx1 (127.0.0.2), MX 10 mx2 (127.0.0.3), MX 20 mx3 (127.0.0.4)
  implicit.test     no MX; A 127.0.0.5 and AAAA ::1                 -> implicit MX
  nullmx.test       MX 0 .                                           -> 556 5.1.10
  nxdomain.test     (absent)                                         -> 550 5.1.2
  servfail.test     served without a zone file                       -> SERVFAIL, 451 4.4.0
  badmx.test        MX 10 nowhere.badmx.test (NXDOMAIN)              -> 550 5.4.4, no A fallback
  partial.test      MX 10 gone.partial.test (no address), MX 20 mx.partial.test (127.0.0.6)
  softmx.test       MX 10 mx.servfail.test (SERVFAIL)                -> 451 4.4.0
  alias.test        CNAME contoso.test                               -> contoso.test's MX
  relay.test        smart host names: smtp.relay.test 127.0.0.7, smtp2.relay.test 127.0.0.8
"""

import asyncio
import smtplib
import threading

import pytest

from sendconn.connectors.servers import local_server
from sendconn.transport.dns import MxResolver
from sendconn.transport.smtpd import SubmissionHandler, listening_socket, new_event_loop, start_server
from tests.peers import free_port
from tests.peers.certs import make_test_certificates
from tests.peers.dns import NsdServer, Zone
from tests.peers.servers import PrivateRedis
from tests.peers.smtp import RawClient, SmtpSink

TEST_DNS_LIFETIME = 1.0  # seconds: the dead-port timeout tests wait this long


class Listener:
    """smtpd's SubmissionHandler served on 127.0.0.1:<free port> by an event loop in a background thread, from a
    listening socket made as the smtpd command makes it."""

    def __init__(self, relay_networks, accepted_domains, tls_context=None):
        self.handler = SubmissionHandler(local_server(), relay_networks, accepted_domains)
        self.loop = new_event_loop()  # smtpd's own (uvloop)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        serving = start_server(self.handler, tls_context=tls_context, sock=listening_socket("127.0.0.1", 0))
        self.server = asyncio.run_coroutine_threadsafe(serving, self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]

    def client(self, source="127.0.0.1"):
        client = smtplib.SMTP("127.0.0.1", self.port, source_address=(source, 0), timeout=10)
        client.ehlo("client.contoso.test")
        return client

    def raw(self, source="127.0.0.1"):
        """A plain socket to the listener, its greeting read."""
        return RawClient(self.port, source)

    def stop(self):
        if self.loop.is_closed():
            return  # the test stopped it already

        async def close():
            self.server.close()
            await self.server.wait_closed()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()  # sessions the test left open

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.handler.close()


@pytest.fixture
def listen(transactional_db):
    """``listen(relay_networks=..., accepted_domains=...)`` → a running Listener, stopped after the test."""
    started = []

    def start(relay_networks=("127.0.0.0/8", "::1"), accepted_domains=(), tls_context=None):
        started.append(Listener(relay_networks, accepted_domains, tls_context))
        return started[-1]

    yield start
    for listener in started:
        listener.stop()


def standard_zone():
    return (
        Zone("test")
        .mx("contoso", 10, "mx1.contoso", "127.0.0.2")
        .mx("contoso", 10, "mx2.contoso", "127.0.0.3")
        .mx("contoso", 20, "mx3.contoso", "127.0.0.4")
        .a("implicit", "127.0.0.5")
        .aaaa("implicit", "::1")
        .null_mx("nullmx")
        .mx("badmx", 10, "nowhere.badmx")
        .mx("partial", 10, "gone.partial")
        .record('gone.partial IN TXT "no address here"')
        .mx("partial", 20, "mx.partial", "127.0.0.6")
        .mx("softmx", 10, "mx.servfail.test.")
        .cname("alias", "contoso")
        .a("smtp.relay", "127.0.0.7")
        .a("smtp2.relay", "127.0.0.8")
        .a("silent", "127.0.0.9")
    )


@pytest.fixture(scope="session")
def nsd():
    with NsdServer([standard_zone()], servfail_zones=["servfail.test"]) as server:
        yield server


@pytest.fixture
def resolver(nsd):
    """A resolver on the test nsd with its own empty cache."""
    return MxResolver([nsd.nameserver], timeout=TEST_DNS_LIFETIME, lifetime=TEST_DNS_LIFETIME)


@pytest.fixture
def dns_settings(settings, nsd):
    """Point the process's resolvers (get_resolver) at the test nsd, with a short lifetime."""
    settings.SENDCONN_DNS_SERVERS = [nsd.nameserver]
    settings.SENDCONN_EXTERNAL_DNS_SERVERS = []
    settings.SENDCONN_DNS_TIMEOUT = TEST_DNS_LIFETIME
    settings.SENDCONN_DNS_LIFETIME = TEST_DNS_LIFETIME
    return settings


@pytest.fixture
def dead_dns():
    """(ip, port) of a UDP port nobody answers on: every query times out."""
    return ("127.0.0.1", free_port("127.0.0.1", udp_too=True))


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory):
    """CA file + valid / expired / wrong_name / untrusted / self_signed leaves for mx.contoso.test and 127.0.0.x."""
    return make_test_certificates(tmp_path_factory.mktemp("certs"), "mx.contoso.test")


@pytest.fixture
def sink():
    """Factory: ``sink("127.0.0.2", rcpt_replies={...})`` starts an SmtpSink stopped after the test."""
    started = []

    def make(host="127.0.0.2", **kwargs):
        server = SmtpSink(host, **kwargs)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def implicit_sink():
    """An SMTP sink on implicit.test's address (127.0.0.5), for the tests that run sendconn's own processes."""
    with SmtpSink("127.0.0.5") as server:
        yield server


@pytest.fixture
def redis_server(tmp_path):
    """A Redis server of the test's own on loopback, for the tests that stop and start it."""
    with PrivateRedis(tmp_path) as server:
        yield server
