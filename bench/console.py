"""Console bench: the send connectors list page and Get-SendConnector at 10 and 10,000 connectors.

    python bench/console.py [--runs N]

Runs against throwaway SQLite databases in a temporary directory (your var/ is never touched): one holding 10
connectors, one holding 10,000. The list page is rendered through Django's test client, signed in as an
"Organization Management" user. Runs alternate between the two databases so that load from other processes
hits both sizes alike; each figure is the median of the runs, as wall-clock and CPU time. The last line is
``list_page_ratio=<10,000 / 10>`` by CPU time (target: 2 or less).
"""

import argparse
import gc
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMALL, LARGE = 10, 10_000


def setup_django(var_dir):
    sys.path.insert(0, str(ROOT))
    os.environ.pop("DATABASE_URL", None)  # always a throwaway SQLite file, never a configured database
    os.environ.update(
        SENDCONN_VAR_DIR=var_dir,
        SECRET_KEY="bench-only-secret-key-not-for-production",
        DJANGO_SETTINGS_MODULE="sendconn.settings",
        ALLOWED_HOSTS="testserver",  # the test client's host name
        LOG_LEVEL="WARNING",
    )
    (Path(var_dir) / "staticfiles").mkdir(parents=True, exist_ok=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def copy_database(path):
    """A copy of the current database (schema, role groups, the signed-in user's session) at ``path``."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM INTO %s", [str(path)])
    return path


def use_database(path):
    """Point Django's default connection at another SQLite file; the next query opens it."""
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = str(path)


def add_connectors(count):
    """Insert ``count`` connectors in bulk, each with an address space and its source server; every third
    routes through a smart host."""
    from django.db import transaction

    from sendconn.connectors.models import AddressSpace, SendConnector, SmartHost
    from sendconn.connectors.servers import local_server

    server = local_server()
    through = SendConnector.source_transport_servers.through
    with transaction.atomic():
        connectors = SendConnector.objects.bulk_create(
            [
                SendConnector(name=f"Connector {number:05d}", usage="Custom", dns_routing_enabled=number % 3 != 0)
                for number in range(count)
            ],
            batch_size=1000,
        )
        AddressSpace.objects.bulk_create(
            [
                AddressSpace(
                    connector=connector,
                    domain=f"contoso{connector.name[-5:]}.test",
                    cost=1,
                    match_domain=f"contoso{connector.name[-5:]}.test",
                )
                for connector in connectors
            ],
            batch_size=1000,
        )
        SmartHost.objects.bulk_create(
            [
                SmartHost(connector=connector, position=0, host=f"relay{connector.pk}.contoso.test")
                for connector in connectors
                if not connector.dns_routing_enabled
            ],
            batch_size=1000,
        )
        through.objects.bulk_create(
            [through(sendconnector_id=connector.pk, transportserver_id=server.pk) for connector in connectors],
            batch_size=1000,
        )


def median_ms(action, databases, runs, warm=True):
    """{size: {"wall": ms, "cpu": ms}}: medians of ``action`` on each database, the runs interleaved.

    CPU time is this process's own work (the test client, the ORM and SQLite all run in it), so it swings less
    than wall time when the machine is shared. ``warm`` runs the action once, untimed, after each switch so a
    freshly opened connection's page cache doesn't count.
    """
    samples = {size: {"wall": [], "cpu": []} for size in databases}
    gc.collect()
    for _ in range(runs):
        for size, path in databases.items():
            use_database(path)
            if warm:
                action()
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            action()
            samples[size]["wall"].append(time.perf_counter() - wall_start)
            samples[size]["cpu"].append(time.process_time() - cpu_start)
    return {
        size: {kind: statistics.median(values) * 1000 for kind, values in timings.items()}
        for size, timings in samples.items()
    }


def list_page(client, params=None):
    def get():
        response = client.get("/connectors/", params or {})
        if response.status_code != 200:
            raise SystemExit(f"the list page answered {response.status_code}")

    return get


def get_send_connector():
    """Get-SendConnector (its default table) through the shell's runner; None when the shell isn't installed."""
    try:
        from sendconn.shell.runner import run_line
    except ImportError:
        return None

    def run():
        output, errors = io.StringIO(), io.StringIO()
        if run_line("Get-SendConnector", stdout=output, stderr=errors, caller="bench-admin"):
            raise RuntimeError(errors.getvalue().strip())

    return run


def signed_in_client():
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from sendconn.accounts.roles import ORGANIZATION_MANAGEMENT

    user = User.objects.create_user("bench-admin")
    user.groups.add(Group.objects.get(name=ORGANIZATION_MANAGEMENT))
    client = Client()
    client.force_login(user)
    return client


def measure(client, databases, runs):
    """Per figure, {size: times}: the list page (first page, last page, a search) and Get-SendConnector."""
    from sendconn.connectors.views import PAGE_SIZE

    last_page = (LARGE - 1) // PAGE_SIZE + 1  # on the small database this lands on its only page
    median_ms(list_page(client), databases, runs=5)  # warm-up (imports, template cache), not reported
    figures = {
        "list page": median_ms(list_page(client), databases, runs),
        "last page": median_ms(list_page(client, {"page": last_page}), databases, runs),
        "search": median_ms(list_page(client, {"q": "00007"}), databases, runs),
    }
    shell = get_send_connector()
    if shell is None:
        print("Get-SendConnector: not measured (the cmdlet shell isn't available)", file=sys.stderr)
    else:
        try:
            figures["Get-SendConnector"] = median_ms(shell, databases, runs=3, warm=False)  # whole listings
        except Exception as error:  # a broken shell must not hide the list-page figures
            print(f"Get-SendConnector failed: {error}", file=sys.stderr)
    return figures


def report(figures):
    print("median milliseconds, wall / CPU")
    print(f"{'connectors':>10}" + "".join(f"  {name:>19}" for name in figures))
    for size in (SMALL, LARGE):
        cells = (f"{times[size]['wall']:.1f} / {times[size]['cpu']:.1f}" for times in figures.values())
        print(f"{size:>10,}" + "".join(f"  {cell:>19}" for cell in cells))

    page = figures["list page"]
    ratio = page[LARGE]["cpu"] / page[SMALL]["cpu"]
    wall_ratio = page[LARGE]["wall"] / page[SMALL]["wall"]
    print(
        f"list page ratio ({LARGE:,} / {SMALL}): {ratio:.2f} by CPU time, {wall_ratio:.2f} by wall time "
        f"(target <= 2): {'OK' if ratio <= 2 else 'OVER TARGET'}"
    )
    shell = figures.get("Get-SendConnector")
    if shell:
        per_connector = (shell[LARGE]["cpu"] - shell[SMALL]["cpu"]) / (LARGE - SMALL)
        print(
            f"Get-SendConnector ratio ({LARGE:,} / {SMALL}): {shell[LARGE]['cpu'] / shell[SMALL]['cpu']:.0f} by CPU "
            f"time. It lists every connector, as Exchange's does (no paging): {per_connector:.3f} ms per connector."
        )
    print(f"list_page_ratio={ratio:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=31, help="timed runs per figure and size (median is printed)")
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="sendconn-bench-"))
    try:
        setup_django(str(var_dir))
        client = signed_in_client()
        databases = {size: copy_database(var_dir / f"{size}.sqlite3") for size in (SMALL, LARGE)}
        for size, path in databases.items():
            use_database(path)
            add_connectors(size)
        figures = measure(client, databases, args.runs)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
    report(figures)


if __name__ == "__main__":
    main()
