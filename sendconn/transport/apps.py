from django.apps import AppConfig


class TransportConfig(AppConfig):
    name = "sendconn.transport"
    verbose_name = "Transport"

    def ready(self):
        from . import checks  # noqa: F401 - registers the system checks
