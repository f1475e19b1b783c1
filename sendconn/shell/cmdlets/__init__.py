"""Every cmdlet, one module per family: the shell is the adapter of the Exchange Management Shell door, as views are
of the browser's. Importing this package registers them (see ``sendconn.shell.registry``)."""

from . import (  # noqa: F401
    connectors,
    credentials,
    filtering,
    formatting,
    help,
    roles,
    servers,
    transport,
    verification,
)
