from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "sendconn.connectors"
    verbose_name = "Send connectors"
