from django.apps import AppConfig


class VerificationConfig(AppConfig):
    name = "sendconn.verification"
    verbose_name = "Verify delivery"

    def ready(self) -> None:
        from sendconn.connectors import columns

        from .selectors import with_last_verification

        columns.register(
            columns.ListColumn("LAST VERIFICATION", "verification/_last_verification_cell.html", with_last_verification)
        )
