import asyncio
import logging

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

    def handle(self, *args, listen=None, **options):
        try:
            host, port = smtpd.parse_listen(listen or settings.SENDCONN_SMTP_LISTEN)
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
            self.stdout.write(f"smtpd listening on {bound} as {handler.server.fqdn}; {auth}")
            self.stdout.flush()

        try:
            asyncio.run(smtpd.serve_until_stopped(handler, host, port, tls_context, on_ready=ready))
        except OSError as error:
            raise CommandError(f"Can't listen on {host}:{port}: {error.strerror or error}") from None
        self.stdout.write("smtpd stopped")
