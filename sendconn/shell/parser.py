"""A PowerShell-syntax parser for a shell line, as admins paste it from Microsoft's docs.

It understands what Exchange cmdlet lines use: ``-Name value`` and ``-Name:value`` parameters, bare words,
'single' and "double" quoted strings (PowerShell escaping: ``''`` inside single quotes, backtick escapes and
``""`` inside double quotes), ``$true``/``$false``/``$null``, comma lists, ``@{Add=…;Remove=…}`` hash
tables, ``@(…)`` arrays, ``(Sub-Command …)`` sub-expressions, ``{…}`` script blocks (kept as text), pipes,
``#`` comments and backtick line continuations; and several statements separated by ``;`` or new lines, with
variables: ``$cred = Get-Credential; New-SendConnector … -AuthenticationCredential $cred``. The typographic
quotes and dashes that Word and web pages put into pasted commands count as their plain forms, as they do in
PowerShell.

The result is a list of ``Statement``: an optional variable to assign, a value that starts it (``$c | fl``,
``$name = 'To internet'``) and a list of ``Command`` (one per pipeline element). Values are ``str``, ``bool``,
``None``, ``list``, ``dict`` (hash tables, keys as typed), ``Variable``, ``SubExpression`` or ``ScriptBlock``.
Syntax errors, a variable used before a statement sets it included, raise ``ParseError`` with PowerShell's
wording and the offset of the offending character.
"""

import re
from dataclasses import dataclass, field
from typing import Any

DASHES = "-\u2013\u2014\u2015"
SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
DOUBLE_QUOTES = '"\u201c\u201d\u201e'
# Characters that end a bare word in argument mode.
WORD_END = " \t\r\n,;|(){}"
BACKTICK_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
CONSTANTS = {"true": True, "false": False, "null": None}


class ParseError(Exception):
    def __init__(self, message, offset):
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass
class Parameter:
    """``-Name`` (``value`` is NO_VALUE) or ``-Name:value``."""

    name: str
    value: object
    offset: int


@dataclass
class Argument:
    """A positional value, or the value that follows a ``-Name``; ``text`` is what was typed."""

    value: object
    text: str
    offset: int


@dataclass
class Command:
    name: str
    elements: list = field(default_factory=list)
    offset: int = 0


@dataclass
class SubExpression:
    """``(Get-Credential)``: a pipeline run first, its output used as the value."""

    pipeline: list
    text: str


@dataclass
class Variable:
    """``$cred``: set by an earlier statement of the line (names are case-insensitive)."""

    name: str


@dataclass
class Statement:
    """``[$variable =] [value |] pipeline``: ``source`` (NO_VALUE when absent) feeds the pipeline's first
    command, or is the statement's whole output when there is no command."""

    pipeline: list
    variable: str | None
    source: object


class ScriptBlock(str):
    """``{ … }``: kept as its source text for cmdlets that take filters."""


class _NoValue:
    def __repr__(self):
        return "NO_VALUE"


NO_VALUE = _NoValue()


def parse(text):
    """Parse a line (or several) into its statements ([] for an empty line or a comment)."""
    parser = _Parser(text)
    statements: list[Statement] = []
    while True:
        parser.skip_blanks(newlines=True)
        if parser.at_end():
            return statements
        statements.append(parser.statement())
        parser.skip_blanks()
        if parser.at_end():
            return statements
        if parser.peek() not in ";\r\n":
            parser.unexpected()
        parser.separator = parser.pos
        parser.pos += 1


_ASSIGNMENT = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)[ \t]*=(?!=)")


class _Parser:
    def __init__(self, text):
        self.text = text
        self.pos = 0
        self.assigned = set()  # lower-case names of the variables set by the statements so far
        self.separator = None  # where the last ';' or new line between statements was

    # -- characters ------------------------------------------------------------------------------------------

    def peek(self, ahead=0):
        index = self.pos + ahead
        return self.text[index] if index < len(self.text) else ""

    def at_end(self):
        return self.pos >= len(self.text)

    def skip_blanks(self, newlines=False):
        """Skip spaces, backtick line continuations, comments and (inside hash tables) newlines."""
        while not self.at_end():
            ch = self.peek()
            if ch in " \t" or (newlines and ch in "\r\n"):
                self.pos += 1
            elif ch == "`" and self.peek(1) in ("\n", "\r"):
                self.pos += 2
                if self.text[self.pos - 1] == "\r" and self.peek() == "\n":
                    self.pos += 1
            elif ch == "#":
                while not self.at_end() and self.peek() not in "\r\n":
                    self.pos += 1
            else:
                return

    def unexpected(self):
        ch = self.peek()
        if ch in ";\r\n":
            raise ParseError(
                "Only one pipeline can be run per line. To pass a value that contains ';', such as "
                '"SMTP:contoso.com;1", put it in quotes.',
                self.pos,
            )
        raise ParseError(f"Unexpected token '{ch}' in expression or statement.", self.pos)

    # -- statements and pipelines ----------------------------------------------------------------------------

    def statement(self):
        variable = None
        assignment = _ASSIGNMENT.match(self.text, self.pos)
        if assignment:
            variable = assignment.group(1)
            self.pos = assignment.end()
            self.skip_blanks()
            if self.at_end() or self.peek() in ";\r\n":
                raise ParseError("You must provide a value expression following the '=' operator.", self.pos)
        start = self.pos
        source = NO_VALUE
        if not (self.peek().isalpha() or self.peek() == "?"):
            source = self.argument().value
            if variable is None and not isinstance(source, Variable):
                # PowerShell would print the value; here it is a ';' that should have been quoted.
                raise ParseError(
                    f"Unexpected token '{self.text[start : self.pos]}' in expression or statement. To pass a value "
                    f"that contains ';', such as \"SMTP:contoso.com;1\", put it in quotes.",
                    self.separator if self.separator is not None else start,
                )
            self.skip_blanks()
            if self.peek() != "|":
                return self._statement([], variable, source)
            self.pos += 1
            self.skip_blanks()
            if self.at_end() or self.peek() in ";\r\n":
                raise ParseError("An empty pipe element is not allowed.", self.pos)
        return self._statement(self.pipeline(), variable, source)

    def _statement(self, pipeline, variable, source):
        if variable is not None:
            self.assigned.add(variable.lower())
        return Statement(pipeline, variable, source)

    def pipeline(self, closing=""):
        commands: list[Command] = []
        while True:
            self.skip_blanks()
            start = self.pos
            if self.at_end() or self.peek() in closing or self.peek() in ";\r\n":
                if commands:
                    raise ParseError("An empty pipe element is not allowed.", start)
                return commands
            commands.append(self.command(closing))
            self.skip_blanks()
            if self.peek() != "|":
                return commands
            self.pos += 1

    def command(self, closing):
        start = self.pos
        name = self.bare_word()
        if not name:
            self.unexpected()
        command = Command(name, offset=start)
        while True:
            self.skip_blanks()
            if self.at_end() or self.peek() in "|;\r\n" or (closing and self.peek() in closing):
                return command
            if self.peek() in ")}":
                self.unexpected()
            command.elements.append(self.element())

    def element(self):
        start = self.pos
        if self.peek() in DASHES and (self.peek(1).isalpha() or self.peek(1) in "_?"):
            self.pos += 1
            name_start = self.pos
            while not self.at_end() and self.peek() not in WORD_END + ":" + SINGLE_QUOTES + DOUBLE_QUOTES:
                self.pos += 1
            name = self.text[name_start : self.pos]
            value = NO_VALUE
            if self.peek() == ":":
                self.pos += 1
                self.skip_blanks()
                if not self.at_end() and self.peek() not in "|;\r\n)":
                    value = self.argument()
            return Parameter(name, value, start)
        return self.argument()

    # -- values ----------------------------------------------------------------------------------------------

    def argument(self):
        """A value in argument mode, with comma lists: ``a,"b c",$true``."""
        start = self.pos
        items = [self.primary()]
        while True:
            save = self.pos
            self.skip_blanks()
            if self.peek() != ",":
                self.pos = save
                break
            self.pos += 1
            self.skip_blanks()
            if self.at_end() or self.peek() in "|;)}\r\n":
                raise ParseError("Missing argument in parameter list.", self.pos)
            items.append(self.primary())
        value = items if len(items) > 1 else items[0]
        return Argument(value, self.text[start : self.pos], start)

    def primary(self):
        ch = self.peek()
        if ch == "$":
            return self.variable()
        if ch == "@" and self.peek(1) == "{":
            return self.hashtable()
        if ch == "@" and self.peek(1) == "(":
            self.pos += 2
            return self.array_body(")", "Missing closing ')' in subexpression.")
        if ch == "(":
            return self.parenthesised()
        if ch == "{":
            return self.script_block()
        start = self.pos
        word = self.bare_word(quoted_ok=True)
        if word is None:
            raise ParseError("Missing argument in parameter list.", start)
        return word

    def variable(self):
        start = self.pos
        self.pos += 1
        name_start = self.pos
        while not self.at_end() and (self.peek().isalnum() or self.peek() in "_:"):
            self.pos += 1
        name = self.text[name_start : self.pos]
        if name.lower() in CONSTANTS:
            return CONSTANTS[name.lower()]
        if name.lower() not in self.assigned:
            raise ParseError(f"The variable '${name}' cannot be retrieved because it has not been set.", start)
        if self.peek() in (".", "["):
            raise ParseError(
                f"Only the whole variable '${name}' can be used here, not its properties or items.", self.pos
            )
        return Variable(name)

    def bare_word(self, quoted_ok=False):
        """A word up to a space or operator; quoted parts and backtick escapes inside it are joined in.

        Returns None when no word starts here (the caller reports what is missing).
        """
        start = self.pos
        parts = []
        while not self.at_end():
            ch = self.peek()
            if ch in WORD_END:
                break
            if ch in SINGLE_QUOTES:
                parts.append(self.single_quoted())
            elif ch in DOUBLE_QUOTES:
                parts.append(self.double_quoted())
            elif ch == "`":
                if self.peek(1) == "":
                    break
                self.pos += 2
                escaped = self.text[self.pos - 1]
                parts.append(BACKTICK_ESCAPES.get(escaped, escaped))
            else:
                parts.append(ch)
                self.pos += 1
        if self.pos == start:
            return None
        if not quoted_ok and self.text[start] in SINGLE_QUOTES + DOUBLE_QUOTES:
            self.pos = start
            return None
        return "".join(parts)

    def single_quoted(self):
        start = self.pos
        self.pos += 1
        parts = []
        while True:
            if self.at_end():
                raise ParseError("The string is missing the terminator: '.", start)
            ch = self.peek()
            self.pos += 1
            if ch in SINGLE_QUOTES:
                if self.peek() and self.peek() in SINGLE_QUOTES:
                    parts.append("'")
                    self.pos += 1
                    continue
                return "".join(parts)
            parts.append(ch)

    def double_quoted(self):
        start = self.pos
        self.pos += 1
        parts = []
        while True:
            if self.at_end():
                raise ParseError('The string is missing the terminator: ".', start)
            ch = self.peek()
            self.pos += 1
            if ch == "`":
                if self.at_end():
                    raise ParseError('The string is missing the terminator: ".', start)
                escaped = self.peek()
                self.pos += 1
                parts.append(BACKTICK_ESCAPES.get(escaped, escaped))
            elif ch in DOUBLE_QUOTES:
                if self.peek() and self.peek() in DOUBLE_QUOTES:
                    parts.append('"')
                    self.pos += 1
                    continue
                return "".join(parts)
            else:
                parts.append(ch)

    def parenthesised(self):
        """``(Get-Credential)`` runs a command; ``("a","b")`` is just a value."""
        start = self.pos
        self.pos += 1
        self.skip_blanks()
        ch = self.peek()
        if ch.isalpha():
            pipeline = self.pipeline(closing=")")
            self.skip_blanks()
            if self.peek() != ")":
                if self.at_end():
                    raise ParseError("Missing closing ')' in expression.", start)
                self.unexpected()
            self.pos += 1
            return SubExpression(pipeline, self.text[start : self.pos])
        return self.array_body(")", "Missing closing ')' in expression.", start)

    def array_body(self, closing, missing, start=None):
        """The inside of ``@(…)`` or ``(…)``: values separated by commas, ';' or new lines."""
        start = self.pos - 1 if start is None else start
        items: list[Any] = []
        while True:
            self.skip_blanks(newlines=True)
            if self.at_end():
                raise ParseError(missing, start)
            if self.peek() == closing:
                self.pos += 1
                return items
            value = self.argument().value
            items.extend(value if isinstance(value, list) else [value])
            self.skip_blanks()
            if self.peek() in ";,":
                self.pos += 1

    def hashtable(self):
        start = self.pos
        self.pos += 2
        table: dict[str, Any] = {}
        while True:
            self.skip_blanks(newlines=True)
            if self.at_end():
                raise ParseError("The hash literal was incomplete.", start)
            if self.peek() == "}":
                self.pos += 1
                return table
            key_start = self.pos
            key = self.hashtable_key()
            if not key:
                raise ParseError("Missing key before '=' in hash literal.", key_start)
            self.skip_blanks()
            if self.peek() != "=":
                raise ParseError("Missing '=' operator after key in hash literal.", self.pos)
            self.pos += 1
            self.skip_blanks()
            if self.at_end() or self.peek() in ";}\r\n":
                raise ParseError("Missing statement after '=' in hash literal.", self.pos)
            if any(existing.lower() == key.lower() for existing in table):
                raise ParseError(f"Duplicate keys '{key}' are not allowed in hash literals.", key_start)
            table[key] = self.argument().value
            self.skip_blanks()
            if self.at_end():
                raise ParseError("The hash literal was incomplete.", start)
            if self.peek() in ";\r\n":
                self.pos += 1
            elif self.peek() != "}":
                raise ParseError("The hash literal was incomplete.", self.pos)

    def hashtable_key(self):
        if self.peek() and self.peek() in SINGLE_QUOTES:
            return self.single_quoted()
        if self.peek() and self.peek() in DOUBLE_QUOTES:
            return self.double_quoted()
        start = self.pos
        while not self.at_end() and (self.peek().isalnum() or self.peek() in "_-"):
            self.pos += 1
        return self.text[start : self.pos]

    def script_block(self):
        start = self.pos
        depth = 0
        while not self.at_end():
            ch = self.peek()
            if ch in SINGLE_QUOTES:
                self.single_quoted()
                continue
            if ch in DOUBLE_QUOTES:
                self.double_quoted()
                continue
            self.pos += 1
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return ScriptBlock(self.text[start + 1 : self.pos - 1].strip())
        raise ParseError("Missing closing '}' in statement block or type definition.", start)
