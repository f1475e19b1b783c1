"""The verify-delivery task, sent to the ``verify.<server>`` queue of one of the connector's source servers."""

from celery import shared_task

from . import runner


# The name it had in the ops app: a run queued before an upgrade is still found by the upgraded worker.
@shared_task(name="sendconn.ops.tasks.verify_connector", ignore_result=True)
def verify_connector(run_id: int) -> None:
    """Send the test message of run ``run_id`` through its connector, saving each step as it goes.

    Delivered twice (acks_late after a worker loss), the second delivery finds the run taken and, if it is still
    running, fails it: the worker that had it is gone.
    """
    runner.run_verification(run_id)
