"""Worker start-up: each Celery worker registers its machine as a transport server, consumes its queue and runs
a delivery engine (``engine.py``) in each process that executes tasks.

Connected from ``sendconn/celery.py``, so it runs in every ``celery -A sendconn worker`` whatever its command
line: the worker consumes ``celery`` (unless ``-Q`` says otherwise) plus ``server.<name>``, the queue that
tasks for connectors whose source servers include this machine are sent to, and ``verify.<name>``, where
verify-delivery runs wait apart from mail (a backlog of wake-ups never delays them).
"""

from celery.signals import (
    celeryd_after_setup,
    task_prerun,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
)
from django.conf import settings
from django.db import close_old_connections


@celeryd_after_setup.connect
def register_this_server(sender, instance, **kwargs):
    from django.db import connections

    from sendconn.connectors.servers import register_transport_server

    server = register_transport_server(
        settings.SENDCONN_SERVER_NAME, settings.SENDCONN_SERVER_FQDN, settings.SENDCONN_SITE
    )
    # Forked pool processes must not inherit the parent's connection.
    connections.close_all()
    instance.app.amqp.queues.select_add(server.queue_name)
    instance.app.amqp.queues.select_add(server.verify_queue_name)
    if not _forks_children(instance):
        from .engine import get_engine

        get_engine().start()  # the threads (or solo) pool runs tasks in this process: its engine delivers


def _forks_children(worker):
    return getattr(worker.pool_cls, "__module__", "").endswith("prefork")


@worker_process_init.connect
def start_engine_in_pool_process(**kwargs):
    """A prefork pool process executes the wake-ups: the engine lives there."""
    from .engine import get_engine

    get_engine().start()


@worker_shutdown.connect
@worker_process_shutdown.connect
def stop_engine(**kwargs):
    """Warm shutdown: sessions finish the message in hand, outcomes are recorded, unsent claims released."""
    from .engine import reset_engine

    reset_engine()


@task_prerun.connect
def check_database_connection(task=None, **kwargs):
    """Connections are reused across tasks (CELERY_DB_REUSE_MAX): drop one that is broken or past CONN_MAX_AGE.
    Not for eager tasks, which run inside their caller's transaction."""
    if task is not None and not task.request.is_eager:
        close_old_connections()
