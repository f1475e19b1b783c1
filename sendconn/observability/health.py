"""Readiness: can this process serve? The database answers with every migration applied, the broker answers."""

import logging

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

log = logging.getLogger(__name__)

BROKER_TIMEOUT = 3.0  # seconds: a probe must answer before the orchestrator's own timeout


def database_problem():
    """None when the database answers a query, else what went wrong."""
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:  # any driver's error: the probe says unreachable rather than failing itself
        log.warning("Readiness: the database doesn't answer: %s", error)
        return f"unreachable ({type(error).__name__})"
    return None


_migrated = False  # once every migration of this code is applied, it stays so: later probes skip the check


def migrations_problem():
    """None when every migration is applied, else how many are not (run `manage.py migrate`)."""
    global _migrated
    if _migrated:
        return None
    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as error:
        return f"can't be read ({type(error).__name__})"
    if plan:
        return f"{len(plan)} not applied"
    _migrated = True
    return None


def broker_problem():
    """None when the Celery broker accepts a connection, else what went wrong."""
    from sendconn.celery import app

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT)
    except Exception as error:
        log.warning("Readiness: the broker doesn't answer: %s", error)
        return f"unreachable ({type(error).__name__})"
    return None


def readiness():
    """``[(check, problem or None)]``; migrations are checked only when the database answers."""
    checks = [("database", database_problem())]
    checks.append(("migrations", migrations_problem() if checks[0][1] is None else "not checked"))
    checks.append(("broker", broker_problem()))
    return checks
