from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "sendconn.accounts"
    verbose_name = "Role groups"
