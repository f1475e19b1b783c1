"""The verify-delivery task, sent to the ``verify.<server>`` queue of one of the connector's source servers."""

from celery import shared_task

from . import verification


@shared_task(ignore_result=True)
def verify_connector(run_id):
    """Send the test message of run ``run_id`` through its connector, saving each step as it goes.

    Delivered twice (acks_late after a worker loss), the second delivery finds the run taken and, if it is still
    running, fails it: the worker that had it is gone.
    """
    verification.run_verification(run_id)
