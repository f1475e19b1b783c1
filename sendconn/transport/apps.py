from django.apps import AppConfig


class TransportConfig(AppConfig):
    name = "sendconn.transport"
    verbose_name = "Transport"
