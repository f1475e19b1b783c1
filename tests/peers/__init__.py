"""Real network peers for tests and benches, on loopback only: nsd (DNS), aiosmtpd sinks, throwaway certificates,
slapd (LDAP) and an OpenID Connect provider."""

import socket


class Peer:
    """A server a test starts with ``with``: ``start()`` on entry, ``stop()`` on exit."""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()


def free_port(host="127.0.0.1", udp_too=False):
    """A port nobody listens on right now (TCP, and UDP when asked); the kernel picks it."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = tcp.getsockname()[1]
            if not udp_too:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no free port on {host}")
