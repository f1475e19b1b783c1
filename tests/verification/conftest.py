"""Fixtures for the Verify delivery tests: the transport's loopback peers (nsd, SMTP sinks, certificates)."""

from tests.transport.conftest import dns_settings, nsd, sink, tls_certs  # noqa: F401  (fixtures, shared)
