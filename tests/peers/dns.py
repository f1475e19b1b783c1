"""A loopback nsd serving test zones, for tests and benches.

    with NsdServer([Zone("contoso.test").mx("@", 10, "mx1", "127.0.0.2")], servfail_zones=["broken.test"]) as dns:
        settings.SENDCONN_DNS_SERVERS = [dns.address]

nsd answers REFUSED for zones it doesn't serve and SERVFAIL, instantly, for a configured zone whose file is
missing (tooling-notes §5). Serving a ``test`` zone makes every unknown ``*.test`` name NXDOMAIN.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode

from . import Peer, free_port

NSD = shutil.which("nsd") or "/usr/sbin/nsd"
NSD_CONTROL = shutil.which("nsd-control") or "/usr/sbin/nsd-control"
NSD_CHECKZONE = shutil.which("nsd-checkzone") or "/usr/sbin/nsd-checkzone"


class Zone:
    """Zone file text with an SOA and NS added. Names are as in a zone file: ``@``, relative, or absolute with a dot."""

    def __init__(self, origin, ttl=60, negative_ttl=60):
        self.origin = origin.strip(".").lower()
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.records = []

    def record(self, line):
        self.records.append(line)
        return self

    def a(self, name, address):
        return self.record(f"{name} IN A {address}")

    def aaaa(self, name, address):
        return self.record(f"{name} IN AAAA {address}")

    def address(self, name, address):
        return self.aaaa(name, address) if ":" in address else self.a(name, address)

    def mx(self, name, preference, exchange, *addresses):
        """An MX record; ``addresses`` also create the exchange's A/AAAA records in this zone."""
        self.record(f"{name} IN MX {preference} {exchange}")
        for address in addresses:
            self.address(exchange, address)
        return self

    def null_mx(self, name="@"):
        return self.record(f"{name} IN MX 0 .")

    def cname(self, name, target):
        return self.record(f"{name} IN CNAME {target}")

    def text(self):
        header = [
            f"$ORIGIN {self.origin}.",
            f"$TTL {self.ttl}",
            f"@ IN SOA ns1.{self.origin}. hostmaster.{self.origin}. 1 3600 600 86400 {self.negative_ttl}",
            f"@ IN NS ns1.{self.origin}.",
            f"ns1.{self.origin}. IN A 127.0.0.1",
        ]
        return "\n".join(header + self.records) + "\n"


class NsdServer(Peer):
    """nsd on 127.0.0.1:<free port> (UDP and TCP), in a temporary directory, stopped by the PID in its pidfile."""

    host = "127.0.0.1"

    def __init__(self, zones, servfail_zones=(), start_timeout=10.0):
        if isinstance(zones, dict):
            self.zones = {origin.strip(".").lower(): _zone_text(z) for origin, z in zones.items()}
        else:
            self.zones = {z.origin: z.text() for z in zones}
        self.servfail_zones = [z.strip(".").lower() for z in servfail_zones]
        self.start_timeout = start_timeout
        self.port = None
        self.pid = None
        self.directory = None
        self._process = None

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    @property
    def nameserver(self):
        """(ip, port), the form of settings.SENDCONN_DNS_SERVERS entries."""
        return (self.host, self.port)

    def start(self):
        self.directory = Path(tempfile.mkdtemp(prefix="sendconn-nsd-"))
        for origin, text in self.zones.items():
            zonefile = self.directory / f"{origin}.zone"
            zonefile.write_text(text)
            check = subprocess.run([NSD_CHECKZONE, origin, str(zonefile)], capture_output=True, text=True)
            if check.returncode:
                raise RuntimeError(f"bad test zone {origin}: {check.stdout}{check.stderr}\n{text}")
        last_error = None
        for _ in range(3):  # another process may grab the port between our probe and nsd's bind
            self.port = free_port(self.host, udp_too=True)
            try:
                self._launch()
                return
            except RuntimeError as error:
                last_error = error
                self._terminate()
        shutil.rmtree(self.directory, ignore_errors=True)
        raise last_error

    def stop(self):
        self._terminate()
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def query_count(self):
        """Queries nsd has answered since it started (``nsd-control stats_noreset``: num.queries)."""
        out = subprocess.run(
            [NSD_CONTROL, "-c", str(self._conf), "stats_noreset"], capture_output=True, text=True, check=True
        ).stdout
        for line in out.splitlines():
            if line.startswith("num.queries="):
                return int(line.split("=", 1)[1])
        raise RuntimeError(f"nsd-control printed no num.queries: {out}")

    @property
    def _conf(self):
        return self.directory / "nsd.conf"

    def _launch(self):
        d = self.directory
        pidfile = d / "nsd.pid"
        pidfile.unlink(missing_ok=True)
        zone_blocks = "".join(
            f'zone:\n    name: "{origin}"\n    zonefile: "{origin}.zone"\n' for origin in self.zones
        ) + "".join(  # a zone without its file: nsd answers SERVFAIL
            f'zone:\n    name: "{origin}"\n    zonefile: "missing-{origin}.zone"\n' for origin in self.servfail_zones
        )
        self._conf.write_text(
            f"""server:
    ip-address: {self.host}@{self.port}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    pidfile: "{pidfile}"
    logfile: "{d}/nsd.log"
    server-count: 1
    verbosity: 0
remote-control:
    control-enable: yes
    control-interface: "{d}/nsd.sock"
{zone_blocks}"""
        )
        log = open(d / "nsd.out", "wb")
        self._process = subprocess.Popen([NSD, "-d", "-c", str(self._conf)], cwd=d, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"nsd exited with {self._process.returncode}: {self._log_tail()}")
            if pidfile.exists() and self._answers():
                self.pid = int(pidfile.read_text().split()[0])
                return
            time.sleep(0.05)
        raise RuntimeError(f"nsd did not answer on {self.address} within {self.start_timeout}s: {self._log_tail()}")

    def _answers(self):
        origin = next(iter(self.zones), None) or self.servfail_zones[0]
        try:
            query = dns.message.make_query(origin + ".", "SOA")
            response = dns.query.udp(query, self.host, timeout=0.2, port=self.port)
        except (dns.exception.Timeout, OSError):
            return False
        return response.rcode() in (dns.rcode.NOERROR, dns.rcode.SERVFAIL)

    def _terminate(self):
        pid = self.pid or (self._process.pid if self._process else None)
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if self._process:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        self._process = None
        self.pid = None

    def _log_tail(self):
        texts = [
            (self.directory / name).read_text(errors="replace")
            for name in ("nsd.out", "nsd.log")
            if (self.directory / name).exists()
        ]
        return "\n".join(texts)[-2000:]


def _zone_text(zone):
    return zone.text() if isinstance(zone, Zone) else zone
