"""Worker start-up: each Celery worker registers its machine as a transport server and consumes its queue.

Connected from ``sendconn/celery.py``, so it runs in every ``celery -A sendconn worker`` whatever its command
line: the worker consumes ``celery`` (unless ``-Q`` says otherwise) plus ``server.<name>``, the queue that
tasks for connectors whose source servers include this machine are sent to, and ``verify.<name>``, where
verify-delivery runs wait apart from mail (a backlog of wake-ups never delays them).
"""
from celery.signals import celeryd_after_setup, task_prerun
from django.conf import settings
from django.db import close_old_connections


@celeryd_after_setup.connect
def register_this_server(sender, instance, **kwargs):
    from django.db import connections

    from sendconn.connectors.servers import register_transport_server
    from sendconn.ops.verification import verify_queue_name

    server = register_transport_server(
        settings.SENDCONN_SERVER_NAME, settings.SENDCONN_SERVER_FQDN, settings.SENDCONN_SITE
    )
    # Forked pool processes must not inherit the parent's connection.
    connections.close_all()
    instance.app.amqp.queues.select_add(server.queue_name)
    instance.app.amqp.queues.select_add(verify_queue_name(server))


@task_prerun.connect
def check_database_connection(task=None, **kwargs):
    """Connections are reused across tasks (CELERY_DB_REUSE_MAX): drop one that is broken or past CONN_MAX_AGE.
    Not for eager tasks, which run inside their caller's transaction."""
    if task is not None and not task.request.is_eager:
        close_old_connections()
