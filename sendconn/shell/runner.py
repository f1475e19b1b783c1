"""Runs one shell line: parse it, run each statement's pipeline, print the output or the error.

``run_line`` is the entry point for ``manage.py cmdlet``, the tests and the benches. Exit status 0 means the
line did what it said; 1 means an error was printed on stderr (or a confirmation was declined) and nothing
was changed by the failing command.
"""

import getpass
import sys

from django.core.exceptions import ValidationError

from sendconn.connectors.models import AdminAuditLogEntry
from sendconn.connectors.properties import ERROR_POLICY_FLAGS, EXCHANGE_NAMES
from sendconn.connectors.services import Caller

from . import registry
from .output import render
from .parser import NO_VALUE, ParseError, SubExpression, Variable, parse
from .registry import CmdletError


def default_caller():
    """The OS login name, as Exchange records the Windows account running the shell."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return "admin"


class Session:
    """The console a line runs in: its streams, who is running it, and the answers given to prompts.

    Prompts go to stderr so that stdout carries only the output (``… | ConvertTo-Json > file`` stays valid).
    """

    def __init__(self, stdin, stdout, stderr, caller):
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.caller = caller
        self.declined = False
        self.variables = {}  # lower-case name → value, set by the line's statements
        self._answer_for_all = None  # True after "Yes to All", False after "No to All"

    def write(self, line=""):
        self.stdout.write(line + "\n")

    def warn(self, message):
        prefix = "" if message.startswith("WARNING:") else "WARNING: "
        self.stderr.write(f"{prefix}{message}\n")

    def ask(self, prompt):
        """One line typed by the user, without its line end; None at end of input."""
        self.stderr.write(prompt)
        self.stderr.flush()
        line = self.stdin.readline()
        if not line or not self.stdin.isatty():
            self.stderr.write("\n")  # end the prompt's line, as a terminal's echo of Enter would
        return line.rstrip("\r\n") if line else None

    def ask_secret(self, prompt):
        """Like ``ask`` but without echo on a terminal; from a pipe or file, the next line."""
        if self.stdin.isatty():
            try:
                return getpass.getpass(prompt, stream=self.stderr)
            except EOFError:
                return None
        return self.ask(prompt)

    def confirm(self, description):
        """PowerShell's confirmation prompt; only an explicit Yes proceeds."""
        if self._answer_for_all is not None:
            return self._answer_for_all
        self.stderr.write(f"\nConfirm\nAre you sure you want to perform this action?\n{description}\n")
        while True:
            answer = self.ask('[Y] Yes  [A] Yes to All  [N] No  [L] No to All (default is "N"): ')
            if answer is None:
                self.stderr.write(
                    "No answer was read from standard input, so nothing was changed. "
                    "Add -Confirm:$false to run the command without asking.\n"
                )
                choice = "n"
            else:
                choice = answer.strip().lower()[:1] or "n"
            if choice in ("y", "a", "n", "l"):
                break
        if choice in ("a", "l"):
            self._answer_for_all = choice == "a"
        if choice in ("n", "l"):
            self.declined = True
        return choice in ("y", "a")

    def resolve(self, value):
        """``value`` with its ``(Sub-Command …)`` run and its ``$variables`` read, in lists and hash tables too."""
        if isinstance(value, SubExpression):
            return single_value(run_pipeline(value.pipeline, self))
        if isinstance(value, Variable):
            return self.variables[value.name.lower()]
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if isinstance(value, dict):
            return {key: self.resolve(item) for key, item in value.items()}
        return value


def single_value(objects):
    """What a pipeline's output is as a value: its one object, a list of several, or None."""
    if not objects:
        return None
    return objects[0] if len(objects) == 1 else list(objects)


def validation_messages(error):
    """A ValidationError's messages, each prefixed with the Exchange property its field maps to."""
    if not hasattr(error, "error_dict"):
        return error.messages
    lines: list[str] = []
    for key, messages in error.message_dict.items():
        name = EXCHANGE_NAMES.get(key) or ("ErrorPolicies" if key in ERROR_POLICY_FLAGS else None)
        lines.extend(f"{name}: {message}" if name else message for message in messages)
    return lines


def run_pipeline(commands, session, objects=None):
    """Run ``commands`` one after the other, each getting the previous one's output (``objects`` for the first)."""
    for command in commands:
        definition = registry.lookup(command.name)
        try:
            objects = definition.invoke(command, objects, session)
        except ValidationError as error:
            raise CmdletError(validation_messages(error), cmdlet=definition.name) from None
        except CmdletError as error:
            error.cmdlet = error.cmdlet or definition.name
            raise
    return objects or []


def parse_error_text(line, error):
    """PowerShell's parser error: where, the line with a marker under the spot, then the message."""
    before = line[: error.offset]
    number = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1)
    text = line.split("\n")[number - 1].rstrip("\r")
    return f"At line:{number} char:{column + 1}\n+ {text}\n+ {' ' * column}~\n{error.message}\n"


def run_line(line, *, stdin=None, stdout=None, stderr=None, caller=None):
    """Run one shell line as ``caller`` (a user name or ``Caller``; default the OS login); return the exit status."""
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    if not isinstance(caller, Caller):
        caller = Caller(caller or default_caller(), AdminAuditLogEntry.Source.SHELL)
    session = Session(stdin, stdout, stderr, caller)
    try:
        statements = parse(line)
    except ParseError as error:
        stderr.write(parse_error_text(line, error))
        return 1
    for statement in statements:
        try:
            objects = run_statement(statement, session)
        except CmdletError as error:
            for message in error.messages:
                stderr.write(f"{error.cmdlet} : {message}\n" if error.cmdlet else f"{message}\n")
            return 1  # later statements may depend on this one ($cred = Get-Credential; New-SendConnector …)
        if statement.variable is not None:
            session.variables[statement.variable.lower()] = single_value(objects)
            continue
        for text in render(objects):
            session.write(text)
    return 1 if session.declined else 0


def run_statement(statement, session):
    """A statement's output objects: its starting value, run through its pipeline if it has one."""
    if statement.source is NO_VALUE:
        return run_pipeline(statement.pipeline, session)
    value = session.resolve(statement.source)
    objects = [] if value is None else value if isinstance(value, list) else [value]
    return run_pipeline(statement.pipeline, session, objects) if statement.pipeline else objects
