"""Delivery bench: N messages submitted over SMTP to smtpd, delivered by the workers to sinks on loopback.

    python bench/delivery.py --messages 10000 --domains 50 --size 2048
    python bench/delivery.py --messages 2000 --rtt-ms 50      # every MX 50 ms away (a latency proxy in front)
    python bench/delivery.py --messages 2000 --silent 24      # 24 domains whose MX never greets, mailed first

Everything runs on this machine, on loopback: its own nsd (tests/peers) serving ``d1.bench.test`` … with one MX
each, pointing at an aiosmtpd sink on 127.0.1.<n> (port 25 when it can be bound, as DNS routing uses; else a free
port set on the connector), the sinks in a process of their own. With ``--rtt-ms N`` the MX addresses are latency
proxies (tests/peers/hostile.py) in front of the sinks, every byte N/2 ms late each way; with ``--silent K``, K
more domains ``t1.bench.test`` … have their MX on a server that accepts and never greets, and one message to each
goes first, outside the clock: does it hold up everybody else's? sendconn runs as ``make run`` runs it, in
embedded mode: a temporary SENDCONN_VAR_DIR (SQLite, filesystem broker), the Procfile's smtpd, worker and beat
under ``manage.py runall``, SENDCONN_DNS_SERVERS pointed at the nsd, and the connector created with
``manage.py cmdlet "New-SendConnector -Name 'To internet' -AddressSpaces * -Internet"``. With ``--scale-out`` the
same processes use the scale-out mode instead: a fresh PostgreSQL database on 127.0.0.1:5432 (dropped afterwards)
and Redis on 127.0.0.1:6379 as the broker.

Prints: messages/second from the first submission to the last 250 at the sink (and the submission rate alone),
DNS queries per message, SMTP sessions opened, the workers' peak memory, the sink's own capacity, then the same
workload sent by a plain smtplib loop (one connection per message) straight to the sinks: the naive baseline.
The last line is ``messages_per_second=<end-to-end rate>``.
"""

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import re
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.peers import free_port  # noqa: E402
from tests.peers.dns import NsdServer, Zone  # noqa: E402
from tests.peers.stack import TransportStack, empty_redis_db, fresh_database  # noqa: E402

ZONE = "bench.test"
SCALE_OUT_BROKER = "redis://127.0.0.1:6379/15"  # a Redis db of its own, emptied before and after the run
SENDER = "bench@contoso.test"
SILENT_MX = "127.0.3.1"  # the MX of every --silent domain: accepts TCP, never greets


# --- sinks ----------------------------------------------------------------------------------------------------


def serve_sinks(addresses, port, counters, ready, stop, rtt_ms=0.0, silent=False):
    """The sink process: aiosmtpd on every address (behind latency proxies with ``rtt_ms``; the silent MX too),
    counting messages, recipients, sessions, duplicates."""
    import logging

    from sendconn.transport.smtp_server import PlainPathSMTP
    from tests.peers.hostile import LatencyProxy, SilentServer

    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    seen = set()

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            counters[0] += 1
            counters[1] += len(envelope.rcpt_tos)
            for address in envelope.rcpt_tos:
                if address in seen:
                    counters[3] += 1
                seen.add(address)
            counters[4] = time.time()
            if not counters[5]:
                counters[5] = counters[4]
            return "250 2.6.0 Queued mail for delivery"

    class CountingSMTP(PlainPathSMTP):
        def connection_made(self, transport):
            if self.transport is None:
                counters[2] += 1
            super().connection_made(transport)

    async def main():
        handler = Handler()
        loop = asyncio.get_running_loop()
        for address in addresses:
            sink_address = address.replace("127.0.1.", "127.0.2.") if rtt_ms else address
            await loop.create_server(lambda: CountingSMTP(handler, hostname="sink.bench.test"), sink_address, port)
            if rtt_ms:
                await LatencyProxy(address, port, (sink_address, port), rtt_ms).listen()
        if silent:
            await SilentServer(SILENT_MX, port).listen()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)

    asyncio.run(main())


class Sinks:
    """The sink process; ``counters``: messages, recipients, sessions, duplicate recipients, times of the last and
    the first 250."""

    def __init__(self, addresses, port, rtt_ms=0.0, silent=False):
        context = multiprocessing.get_context("spawn")
        self.counters = context.Array("d", 6, lock=False)
        self.ready, self.stop_event = context.Event(), context.Event()
        self.process = context.Process(
            target=serve_sinks,
            args=(addresses, port, self.counters, self.ready, self.stop_event, rtt_ms, silent),
            daemon=True,
        )
        self.process.start()
        if not self.ready.wait(30):
            raise RuntimeError("the sinks did not start")

    def reset(self):
        for index in range(6):
            self.counters[index] = 0

    @property
    def messages(self):
        return int(self.counters[0])

    def stop(self):
        self.stop_event.set()
        self.process.join(10)


def silent_workload(count):
    """One message to each of ``count`` domains whose MX never greets."""
    return [
        (f"held{number}@t{number}.{ZONE}", f"Subject: silent {number}\r\n\r\nx\r\n".encode())
        for number in range(1, count + 1)
    ]


def common_port(addresses):
    """25 when every address can bind it (root), else a port free on all of them."""
    for candidate in [25] + [free_port(addresses[0]) for _ in range(20)]:
        try:
            for address in addresses:
                with socket.socket() as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind((address, candidate))
        except OSError:
            continue
        return candidate
    raise RuntimeError("no port free on every sink address")


# --- workload -------------------------------------------------------------------------------------------------


def workload(messages, domains, size, prefix="user"):
    """(recipient, content) per message: one recipient each, domains in turn, content padded to ``size`` bytes."""
    items = []
    for number in range(messages):
        recipient = f"{prefix}{number}@d{number % domains + 1}.{ZONE}"
        head = (
            f"From: {SENDER}\r\nTo: {recipient}\r\nSubject: bench message {number}\r\n"
            f"Message-ID: <bench{number}@contoso.test>\r\n\r\n"
        )
        body_length = max(0, size - len(head))
        line = ("x" * 76 + "\r\n") * (body_length // 78 + 1)
        items.append((recipient, (head + line[:body_length]).encode()))
    return items


def submit(host, port, items, connections):
    """Send ``items`` over ``connections`` parallel SMTP connections; return (first start, last 250) times."""
    chunks = [items[index::connections] for index in range(connections)]
    started, errors = [], []

    def send(chunk):
        try:
            with smtplib.SMTP(host, port, timeout=120) as client:
                started.append(time.time())
                for recipient, content in chunk:
                    client.sendmail(SENDER, [recipient], content)
        except Exception as error:  # noqa: BLE001 - reported after the run
            errors.append(error)

    threads = [threading.Thread(target=send, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"submission failed: {errors[0]!r}")
    return min(started), time.time()


def naive_loop(items, sink_port):
    """The baseline: a plain smtplib loop, one connection per message, straight to each domain's sink."""
    started = time.time()
    for recipient, content in items:
        number = int(recipient.split("@")[1].split(".")[0][1:])
        with smtplib.SMTP(f"127.0.1.{number}", sink_port, timeout=30) as client:
            client.sendmail(SENDER, [recipient], content)
    return time.time() - started


def sink_alone(items, sink_port, connections):
    """The sink's capacity without sendconn: persistent connections, one per thread, messages in turn."""
    chunks = [items[index::connections] for index in range(connections)]

    def send(chunk):
        clients = {}
        for recipient, content in chunk:
            address = "127.0.1." + recipient.split("@")[1].split(".")[0][1:]
            if address not in clients:
                clients[address] = smtplib.SMTP(address, sink_port, timeout=30)
            clients[address].sendmail(SENDER, [recipient], content)
        for client in clients.values():
            client.quit()

    started = time.time()
    threads = [threading.Thread(target=send, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.time() - started


# --- processes --------------------------------------------------------------------------------------------------


def procfile_without_web(path):
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if not line.startswith("web:")]
    path.write_text("\n".join(lines) + "\n")
    return path


def descendants(pid):
    """``pid`` and every process below it (from /proc)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(re.search(r"^PPid:\s+(\d+)", (entry / "status").read_text(), re.M).group(1))
            except (OSError, AttributeError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pids):
    """User + system CPU time of ``pids`` so far (children included once they are waited for)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def cpu_model():
    """The processor's name, so that figures from different machines aren't compared as if alike."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown processor"
    field = {key: re.search(rf"^{key}\s*:\s*(.+)$", info, re.M) for key in ("model name", "cpu family", "model")}
    name, family, model = (match.group(1).strip() if match else "?" for match in field.values())
    return f"{name}, family {family} model {model}"


def peak_memory_kib(pid):
    try:
        return int(re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M).group(1))
    except (OSError, AttributeError):
        return 0


def worker_answers(stack):
    """`celery inspect ping` (the filesystem broker has a control folder): the worker consumes its queues."""
    ping = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "sendconn", "inspect", "ping", "--timeout", "2"],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
    )
    return ping.returncode == 0 and "pong" in ping.stdout


def wait_for(what, check, timeout, runall):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if not runall.running:
            raise RuntimeError(f"runall stopped\n{runall.tail(60)}")
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}\n{runall.tail(60)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--domains", type=int, default=50)
    parser.add_argument("--size", type=int, default=2048, help="bytes per message")
    parser.add_argument("--connections", type=int, default=4, help="parallel client connections to smtpd")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the sinks")
    parser.add_argument("--smtpd-processes", type=int, help="SENDCONN_SMTP_PROCESSES (default: the product's)")
    parser.add_argument(
        "--scale-out",
        action="store_true",
        help="PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) instead of SQLite and the filesystem broker",
    )
    parser.add_argument(
        "--no-drain",
        dest="drain",
        action="store_false",
        help="skip the queue-drain run (delivery alone, from a queue filled while no worker ran)",
    )
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="every MX this many ms away (a latency proxy)")
    parser.add_argument(
        "--silent",
        type=int,
        default=0,
        help="first mail one message to each of this many domains whose MX never greets",
    )
    args = parser.parse_args()
    if not 1 <= args.domains <= 250:
        parser.error("--domains must be 1 to 250 (one loopback address each)")

    addresses = [f"127.0.1.{n}" for n in range(1, args.domains + 1)]
    zone = Zone(ZONE)
    for n in range(1, args.domains + 1):
        zone.mx(f"d{n}", 10, f"mx.d{n}", f"127.0.1.{n}")
    if args.silent:
        zone.a("mx.silent", SILENT_MX)
        for n in range(1, args.silent + 1):
            zone.mx(f"t{n}", 10, "mx.silent")
    items = workload(args.messages, args.domains, args.size)
    sink_port = common_port(
        addresses + [address.replace("127.0.1.", "127.0.2.") for address in addresses] + [SILENT_MX]
    )

    with contextlib.ExitStack() as resources:
        scratch = resources.enter_context(tempfile.TemporaryDirectory(prefix="sendconn-bench-"))
        nsd = resources.enter_context(NsdServer([zone]))
        tuning = {"SENDCONN_SMTP_PROCESSES": args.smtpd_processes} if args.smtpd_processes else {}
        if args.scale_out:
            tuning["database_url"] = resources.enter_context(fresh_database("sendconn_bench"))
            resources.enter_context(empty_redis_db(SCALE_OUT_BROKER))
            tuning["broker_url"] = SCALE_OUT_BROKER
        sinks = Sinks(addresses, sink_port, args.rtt_ms, bool(args.silent))
        stack = TransportStack(
            Path(scratch),
            SENDCONN_DNS_SERVERS=nsd.address,
            LOG_LEVEL="WARNING",
            SENDCONN_SMTP_LISTEN=f"127.0.0.1:{free_port()}",
            **tuning,
        )
        try:
            stack.migrate()
            port_option = "" if sink_port == 25 else f" -Port {sink_port}"
            stack.cmdlet(f"New-SendConnector -Name 'To internet' -AddressSpaces * -Internet{port_option}")
            if args.drain:  # fill the queue while no worker runs: smtpd alone
                smtpd = stack.start_smtpd()
                started, ended = submit(
                    smtpd.host, smtpd.port, workload(args.messages, args.domains, args.size, "drain"), args.connections
                )
                accepted_alone = args.messages / (ended - started)
                smtpd.stop()
            procfile = procfile_without_web(Path(scratch) / "Procfile")
            runall = stack.start("runall", [sys.executable, "manage.py", "runall", "--procfile", str(procfile)])
            wait_for("smtpd", lambda: "smtpd listening on" in runall.output(), 60, runall)
            worker_pid = int(re.search(r"worker started \(pid (\d+)\)", runall.output()).group(1))
            if args.drain:
                wait_for("the queue to drain", lambda: sinks.messages >= args.messages, args.timeout, runall)
                drained = args.messages / (sinks.counters[4] - sinks.counters[5])
                drain_sessions = int(sinks.counters[2])
                sinks.reset()
            wait_for("the worker", lambda: worker_answers(stack), 60, runall)
            smtpd_host, smtpd_port = stack.env["SENDCONN_SMTP_LISTEN"].rsplit(":", 1)
            queries_before = nsd.query_count()
            groups = {
                name: descendants(int(pid)) for name, pid in re.findall(r"(\w+) started \(pid (\d+)\)", runall.output())
            }
            groups.update(sinks=[sinks.process.pid], client=[os.getpid()], worker_main=[worker_pid])
            cpu_before = {name: cpu_seconds(pids) for name, pids in groups.items()}

            if args.silent:
                submit(smtpd_host, int(smtpd_port), silent_workload(args.silent), 1)
            try:
                first, accepted = submit(smtpd_host, int(smtpd_port), items, args.connections)
            except RuntimeError as error:
                raise RuntimeError(f"{error}\n{runall.tail(60)}") from None
            wait_for("every message at the sinks", lambda: sinks.messages >= args.messages, args.timeout, runall)
            last = sinks.counters[4]
            cpu = {name: cpu_seconds(pids) - cpu_before[name] for name, pids in groups.items()}
            memory = {pid: peak_memory_kib(pid) for pid in descendants(worker_pid)}
            queries = nsd.query_count() - queries_before
            sessions, duplicates = int(sinks.counters[2]), int(sinks.counters[3])
        finally:
            stack.stop()

        rate = args.messages / (last - first)
        mode = "scale-out: PostgreSQL, Redis" if args.scale_out else "embedded: SQLite, filesystem broker"
        print(
            f"delivery bench ({mode}): {args.messages} messages of {args.size} bytes to {args.domains} domains, "
            f"{args.connections} client connections, {os.cpu_count()} CPUs ({cpu_model()})"
        )
        if args.rtt_ms or args.silent:
            print(f"every MX {args.rtt_ms:g} ms away; {args.silent} silent domains mailed first")
        print(f"end to end (first submission to last 250 at the sink): {last - first:.2f} s, {rate:.0f} messages/s")
        print(f"submission (accepted by smtpd, while delivering): {args.messages / (accepted - first):.0f} messages/s")
        if args.drain:
            print(f"submission alone (no worker running): {accepted_alone:.0f} messages/s")
            print(
                f"queue drain (delivery alone, from {args.messages} queued while no worker ran): {drained:.0f} "
                f"messages/s over {drain_sessions} SMTP sessions"
            )
        print(f"DNS queries: {queries} ({queries / args.messages:.3f} per message)")
        print(f"SMTP sessions opened: {sessions} ({args.messages / max(sessions, 1):.1f} messages per session)")
        print(f"duplicates at the sinks: {duplicates}")
        print(
            "CPU per message (ms): "
            + ", ".join(f"{name} {seconds * 1000 / args.messages:.2f}" for name, seconds in cpu.items())
        )
        print(
            f"workers' peak memory (VmHWM): {sum(memory.values()) / 1024:.0f} MiB in {len(memory)} processes "
            f"(largest {max(memory.values()) / 1024:.0f} MiB)"
        )

        sinks.reset()
        alone = sink_alone(items, sink_port, args.connections)
        print(f"sink alone, {args.connections} persistent connections: {args.messages / alone:.0f} messages/s")
        sinks.reset()
        naive = naive_loop(items, sink_port)
        print(
            f"naive baseline, plain smtplib loop with a connection per message: {args.messages / naive:.0f} "
            f"messages/s (no queue, no DNS, no durability)"
        )
        sinks.stop()
    print(f"messages_per_second={rate:.1f}")


if __name__ == "__main__":
    main()
