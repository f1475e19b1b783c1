from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "sendconn.ops"
    verbose_name = "Operations"
