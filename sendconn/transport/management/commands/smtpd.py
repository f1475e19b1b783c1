import logging
import os
import signal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from sendconn.connectors.servers import local_server
from sendconn.transport import smtpd


class Command(BaseCommand):
    help = "Run the SMTP submission listener: queue the mail that clients and applications submit."

    def add_arguments(self, parser):
        parser.add_argument("--listen", help="host:port to listen on (default: SENDCONN_SMTP_LISTEN)")
        parser.add_argument(
            "--processes", type=int, help="listener processes sharing the socket (default: SENDCONN_SMTP_PROCESSES)"
        )

    def handle(self, *args, listen=None, processes=None, **options):
        try:
            host, port = smtpd.parse_listen(listen or settings.SENDCONN_SMTP_LISTEN)
            # Made before the fork: the processes share its connection counts.
            handler = smtpd.SubmissionHandler.from_settings(local_server())
            tls_context = smtpd.tls_context_from_settings()
        except (ValueError, ImproperlyConfigured) as error:
            raise CommandError(str(error)) from None
        connections.close_all()  # queuing happens in worker threads with their own connections
        if options["verbosity"] < 2:
            logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command at INFO

        def ready(server):
            bound = ", ".join("{}:{}".format(*sock.getsockname()[:2]) for sock in server.sockets)
            auth = "STARTTLS and AUTH offered" if tls_context else "no STARTTLS, no AUTH (SENDCONN_SMTP_TLS_CERT unset)"
            self.stdout.write(f"smtpd listening on {bound} as {handler.server.fqdn} ({processes} processes); {auth}")
            self.stdout.flush()

        processes = settings.SENDCONN_SMTP_PROCESSES if processes is None else processes
        if processes < 1:
            raise CommandError("--processes must be 1 or more.")
        try:
            sock = smtpd.listening_socket(host, port)
        except OSError as error:
            raise CommandError(f"Can't listen on {host}:{port}: {error.strerror or error}") from None
        # One event loop is one core: more processes share the socket (the kernel hands each connection to one).
        parent = os.getpid()
        children = []
        for _ in range(processes - 1):
            pid = os.fork()
            if pid == 0:
                try:
                    smtpd.run(smtpd.serve_until_stopped(handler, sock, tls_context, parent_pid=parent))
                finally:
                    os._exit(0)
            children.append(pid)
        try:
            smtpd.run(smtpd.serve_until_stopped(handler, sock, tls_context, on_ready=ready))
        finally:
            for pid in children:
                os.kill(pid, signal.SIGTERM)
            for pid in children:
                os.waitpid(pid, 0)
        self.stdout.write("smtpd stopped")
