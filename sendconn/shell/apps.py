from django.apps import AppConfig


class ShellConfig(AppConfig):
    name = "sendconn.shell"
    verbose_name = "Exchange Management Shell"
