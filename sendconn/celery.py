import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sendconn.settings")

app = Celery("sendconn")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from sendconn.transport import worker  # noqa: E402,F401  (worker start-up: server registration, own queue)
