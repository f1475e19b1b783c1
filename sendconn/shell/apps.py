from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class ShellConfig(AppConfig):
    name = "sendconn.shell"
    verbose_name = "Exchange Management Shell"

    def ready(self):
        # Every app's cmdlets.py registers its cmdlets (sendconn.shell.cmdlets holds the shell's own).
        autodiscover_modules("cmdlets")
