from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "sendconn.observability"
    verbose_name = "Observability"

    def ready(self):
        from . import metrics

        metrics.connect_task_signals()
