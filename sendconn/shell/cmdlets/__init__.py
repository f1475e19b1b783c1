"""The shell's own cmdlets; importing this package registers them (see ``sendconn.shell.registry``)."""
from . import connectors, credentials, filtering, formatting, help, roles, servers  # noqa: F401
