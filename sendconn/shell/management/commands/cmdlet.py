"""``manage.py cmdlet "<line>"``: run one Exchange Management Shell line against this installation."""

import sys

from django.core.management.base import BaseCommand

from sendconn.shell.runner import default_caller, run_line


class Command(BaseCommand):
    help = (
        'Run one Exchange Management Shell line, for example: cmdlet "Get-SendConnector | Format-List". '
        "Exits 1 with the error on stderr when the command fails."
    )
    requires_system_checks = []  # a cmdlet should start fast; `manage.py check` covers the checks
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("line", help="The cmdlet line, quoted as one argument.")
        parser.add_argument(
            "--caller",
            default=None,
            help="User name recorded in the admin audit log (default: the operating system login name).",
        )

    def handle(self, *args, line, caller, **options):
        try:
            status = run_line(
                line,
                stdin=options.get("stdin") or sys.stdin,
                stdout=options.get("stdout") or sys.stdout,
                stderr=options.get("stderr") or sys.stderr,
                caller=caller or default_caller(),
            )
        except KeyboardInterrupt:  # Ctrl+C at a prompt: stop quietly, as the shell does
            (options.get("stderr") or sys.stderr).write("\n")
            status = 130
        if status:
            sys.exit(status)
