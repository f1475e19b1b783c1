from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "sendconn.accounts"
    verbose_name = "Role groups"

    def ready(self):
        from . import lockouts  # noqa: F401  (connects the audit of sign-in lockouts)
