"""System checks (``manage.py check``, and every management command that starts the product) for transport
settings that work but will hurt once mail goes to the internet."""

from django.conf import settings
from django.core.checks import Warning, register


@register()
def server_fqdn_is_qualified(app_configs, **kwargs):
    """SENDCONN_SERVER_FQDN is what a Send connector says in EHLO unless its Fqdn is set: a name without a dot
    (``localhost``, a bare host name) is refused by many servers on the internet."""
    fqdn = settings.SENDCONN_SERVER_FQDN.strip().rstrip(".")
    if "." in fqdn and not fqdn.lower().startswith("localhost."):
        return []
    return [
        Warning(
            f"SENDCONN_SERVER_FQDN is '{fqdn}', which isn't a fully qualified domain name.",
            hint="Send connectors give this name in EHLO unless their Fqdn is set, and many servers on the internet "
            "refuse a name like this one. Set SENDCONN_SERVER_FQDN to this server's name in DNS, for example "
            "mail01.contoso.com.",
            id="sendconn.W001",
        )
    ]
