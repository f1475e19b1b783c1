from django.apps import AppConfig


class ShellConfig(AppConfig):
    name = "sendconn.shell"
    verbose_name = "Exchange Management Shell"

    def ready(self):
        from . import cmdlets  # noqa: F401  (registers every cmdlet)
