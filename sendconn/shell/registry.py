"""The cmdlet registry: every command the shell knows, its parameters, and PowerShell's parameter binding.

Adding a cmdlet
---------------
Cmdlets live in ``sendconn/shell/cmdlets/``, one module per family, imported at start-up
(``ShellConfig.ready``); they call the same services and selectors as the views. A cmdlet is a function
decorated with ``@cmdlet``::

    from sendconn.shell.output import Record
    from sendconn.shell.registry import CmdletError, Parameter, cmdlet, text

    @cmdlet("Test-SendConnectorRoute", Parameter("Recipient", text, mandatory=True, position=0))
    def test_send_connector_route(invocation):
        route = choose_route(invocation.params["Recipient"])
        if route is None:
            raise CmdletError("No Send connector matches the recipient.")
        return [Record({"Recipient": ..., "Connector": ..., "NextHop": ...}, table=("Recipient", "Connector"))]

- ``Parameter(name, convert=text, mandatory=False, position=None, pipeline=False, aliases=())``: ``name`` is
  Exchange's spelling; users may type it in any case, or any unambiguous prefix of it. ``convert(value,
  session)`` turns what the parser produced (str, bool, None, list, dict for ``@{…}``, ``ScriptBlock``, or
  the value of a ``(Sub-Command)`` or ``$variable``) into the value the cmdlet wants, raising ``ValidationError`` with a
  message when it can't. Ready-made converters: ``text``, ``boolean``, ``integer``, ``text_list``,
  ``choice(values, type_name)``, ``parsed(values_parser, type_name)``, ``script_block``.
  ``pipeline=True`` binds the ``Identity`` of each object piped in (``Get-X | Set-X``); the cmdlet then runs
  once per object.
- ``switch(name)``: present → True; ``-Name:$false`` → False.
- ``@cmdlet(name, *parameters, aliases=(), should_process=False, confirm=False, takes_input=False)``:
  ``should_process`` adds ``-WhatIf`` and ``-Confirm`` (use ``invocation.should_process``); ``confirm`` makes the
  cmdlet ask before acting unless ``-Confirm:$false`` (Remove-* cmdlets); ``takes_input`` hands every piped
  object to one call in ``invocation.input`` (formatters).

The function gets an ``Invocation``: ``params`` (the given parameters by declared name, converted),
``session`` (the console and the ``Caller``) and ``input``. It returns an iterable of output objects:
``output.Record`` (shown as a table, a list or JSON) or ``str`` lines. On failure it raises ``CmdletError``
or django's ``ValidationError``; the runner prints the message in Exchange's form and exits 1.
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from .parser import NO_VALUE, Argument, ScriptBlock

COMMANDS: dict[str, "Cmdlet"] = {}  # lower-case name or alias → Cmdlet


class CmdletError(Exception):
    """A failure to report as ``<Cmdlet> : <message>``; several messages give several lines."""

    def __init__(self, messages, cmdlet=None):
        self.messages = [messages] if isinstance(messages, str) else list(messages)
        self.cmdlet = cmdlet
        super().__init__("\n".join(self.messages))


# -- converters ------------------------------------------------------------------------------------------


def converter(type_name, nullable=False):
    """Mark a converter with the .NET type named in binding errors, and whether ``$null`` may reach it."""

    def mark(function):
        function.type_name = type_name
        function.nullable = nullable
        return function

    return mark


def _not_a_list(value, type_name):
    if isinstance(value, (list, dict)):
        kind = "System.Object[]" if isinstance(value, list) else "System.Collections.Hashtable"
        raise ValidationError(f'Cannot convert "{kind}" to the type "{type_name}".')


@converter("System.String", nullable=True)
def text(value, session):
    _not_a_list(value, "System.String")
    if isinstance(value, bool):
        return str(value)  # PowerShell turns $true into "True"
    return value if value is None else str(value)


@converter("System.Boolean")
def boolean(value, session):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return value.strip() == "1"
    kind = "System.Object[]" if isinstance(value, list) else "System.String"
    raise ValidationError(
        f'Cannot convert value "{kind}" to type "System.Boolean". Boolean parameters accept only Boolean values '
        f"and numbers, such as $True, $False, 1 or 0."
    )


@converter("System.Int32")
def integer(value, session):
    _not_a_list(value, "System.Int32")
    text_value = str(value).strip()
    if not re.fullmatch(r"[-+]?\d+", text_value):
        raise ValidationError(
            f'Cannot convert value "{value}" to type "System.Int32". Error: "Input string was not in a correct format."'
        )
    number = int(text_value)
    if not -(2**31) <= number < 2**31:
        raise ValidationError(
            f'Cannot convert value "{value}" to type "System.Int32". Error: "Value was either too large or too small '
            f'for an Int32."'
        )
    return number


@converter("System.String[]", nullable=True)
def text_list(value, session):
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    for item in items:
        _not_a_list(item, "System.String")
    return [str(item) for item in items]


@converter("System.Management.Automation.ScriptBlock", nullable=True)
def script_block(value, session):
    return value if value is None or isinstance(value, ScriptBlock) else ScriptBlock(str(value))


def choice(values, type_name, nullable=False):
    """An enum: matched case-insensitively, returned in its canonical spelling."""

    @converter(type_name, nullable)
    def convert(value, session):
        if value is None:
            return None
        _not_a_list(value, type_name)
        for allowed in values:
            if str(value).strip().lower() == allowed.lower():
                return allowed
        raise ValidationError(
            f'Cannot convert value "{value}" to type "{type_name}". Error: "Unable to match the identifier name '
            f"{value} to a valid enumerator name. Specify one of the following enumerator names and try again: "
            f'{", ".join(values)}"'
        )

    return convert


def parsed(parse, type_name):
    """A single value read by one of ``sendconn.connectors.values``' parsers (sizes, time spans, ports)."""

    @converter(type_name)
    def convert(value, session):
        _not_a_list(value, type_name)
        return parse(str(value))

    return convert


# -- parameters and cmdlets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    name: str
    convert: object = text
    mandatory: bool = False
    position: int | None = None
    pipeline: bool = False
    is_switch: bool = False
    aliases: tuple = ()

    @property
    def type_name(self):
        return getattr(self.convert, "type_name", "System.Object")


def switch(name, aliases=()):
    return Parameter(name, boolean, is_switch=True, aliases=tuple(aliases))


COMMON_SHOULD_PROCESS = (switch("WhatIf", aliases=("wi",)), switch("Confirm", aliases=("cf",)))


@dataclass
class Invocation:
    cmdlet: "Cmdlet"
    params: dict
    session: Any  # runner.Session (runner imports this module)
    input: list = field(default_factory=list)

    def should_process(self, description, rehearse=None):
        """PowerShell's ShouldProcess: True when the cmdlet may act.

        Under ``-WhatIf`` prints ``What if: <description>`` and returns False; otherwise asks for confirmation
        when the cmdlet confirms by default or ``-Confirm`` was given. In both cases ``rehearse`` (the write
        itself) runs first inside a rolled-back transaction, so the same errors a real run would give come out
        before anything is asked or reported, and nothing is saved.
        """
        what_if = self.params.get("WhatIf", False)
        ask = not what_if and self.params.get("Confirm", self.cmdlet.confirm)
        if (what_if or ask) and rehearse is not None:
            with transaction.atomic():
                rehearse()
                transaction.set_rollback(True)
        if what_if:
            self.session.write(f"What if: {description}")
            return False
        return self.session.confirm(description) if ask else True


def _holds_nul(value):
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, (list, tuple)):
        return any(_holds_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    return False


@dataclass
class Cmdlet:
    name: str
    function: Callable[[Invocation], Iterable[Any]]
    parameters: tuple
    confirm: bool = False
    takes_input: bool = False

    @property
    def pipeline_parameter(self):
        return next((parameter for parameter in self.parameters if parameter.pipeline), None)

    def find_parameter(self, typed):
        """Exchange's name, an alias, or an unambiguous prefix, in any case (PowerShell's rules)."""
        wanted = typed.lower()
        for parameter in self.parameters:
            if wanted == parameter.name.lower() or wanted in (alias.lower() for alias in parameter.aliases):
                return parameter
        matches = [parameter for parameter in self.parameters if parameter.name.lower().startswith(wanted)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            names = " ".join(f"-{parameter.name}" for parameter in matches)
            raise CmdletError(
                f"Parameter cannot be processed because the parameter name '{typed}' is ambiguous. "
                f"Possible matches include: {names}."
            )
        raise CmdletError(f"A parameter cannot be found that matches parameter name '{typed}'.")

    def bind(self, command):
        """Match the typed elements to parameters, PowerShell-style: {Parameter: the Argument given for it}."""
        given = {}
        positional = []
        elements = list(command.elements)
        while elements:
            element = elements.pop(0)
            if isinstance(element, Argument):
                positional.append(element)
                continue
            parameter = self.find_parameter(element.name)
            if parameter in given:
                raise CmdletError(
                    f"Cannot bind parameter because parameter '{parameter.name}' is specified more than once. To "
                    f"provide multiple values to parameters that can accept multiple values, use the array syntax. "
                    f'For example, "-parameter value1,value2,value3".'
                )
            if element.value is not NO_VALUE:
                given[parameter] = element.value
            elif parameter.is_switch:
                given[parameter] = Argument(True, "", element.offset)
            elif elements and isinstance(elements[0], Argument):
                given[parameter] = elements.pop(0)
            else:
                raise CmdletError(
                    f"Missing an argument for parameter '{parameter.name}'. Specify a parameter of type "
                    f"'{parameter.type_name}' and try again."
                )
        open_positions = sorted(
            (parameter for parameter in self.parameters if parameter.position is not None and parameter not in given),
            key=lambda parameter: parameter.position,
        )
        for argument in positional:
            if not open_positions:
                raise CmdletError(f"A positional parameter cannot be found that accepts argument '{argument.text}'.")
            given[open_positions.pop(0)] = argument
        return given

    def convert(self, parameter, argument, session):
        value = session.resolve(argument.value)
        if value is None and not getattr(parameter.convert, "nullable", False):
            raise CmdletError(f"Cannot bind argument to parameter '{parameter.name}' because it is null.")
        if _holds_nul(value):
            # PostgreSQL can neither store nor compare text holding NUL; no Exchange value contains one.
            raise CmdletError(
                f"Cannot process argument transformation on parameter '{parameter.name}'. The value contains the NUL "
                f"character (`0), which isn't allowed."
            )
        try:
            return parameter.convert(value, session)
        except ValidationError as error:
            raise CmdletError(
                [
                    f"Cannot process argument transformation on parameter '{parameter.name}'. {message}"
                    for message in error.messages
                ]
            ) from None

    def invoke(self, command, piped, session):
        """Run for one pipeline element; ``piped`` is the previous element's output (None when first)."""
        given = self.bind(command)
        pipeline_parameter = self.pipeline_parameter
        per_object = piped is not None and not self.takes_input
        if per_object and (pipeline_parameter is None or pipeline_parameter in given):
            raise CmdletError(
                "The input object cannot be bound to any parameters for the command either because the command does "
                "not take pipeline input or the input and its properties do not match any of the parameters that "
                "take pipeline input."
            )
        missing = [
            parameter.name
            for parameter in self.parameters
            if parameter.mandatory and parameter not in given and not (per_object and parameter is pipeline_parameter)
        ]
        if missing:
            raise CmdletError(
                f"Cannot process command because of one or more missing mandatory parameters: {' '.join(missing)}."
            )
        params = {parameter.name: self.convert(parameter, argument, session) for parameter, argument in given.items()}
        if not per_object:
            return list(self.function(Invocation(self, params, session, list(piped or []))))
        output: list[Any] = []
        for item in piped:
            identity = item.get("Identity") if isinstance(item, dict) else item
            argument = Argument(identity, str(identity), command.offset)
            bound = {**params, pipeline_parameter.name: self.convert(pipeline_parameter, argument, session)}
            output.extend(self.function(Invocation(self, bound, session)))
        return output


def cmdlet(name, *parameters, aliases=(), should_process=False, confirm=False, takes_input=False):
    """Register the decorated function as the cmdlet ``name`` (see the module docstring)."""

    def register(function):
        all_parameters = tuple(parameters) + (COMMON_SHOULD_PROCESS if should_process or confirm else ())
        definition = Cmdlet(name, function, all_parameters, confirm=confirm, takes_input=takes_input)
        for key in (name, *aliases):
            if key.lower() in COMMANDS:
                raise ImportError(f"The cmdlet {key} is registered twice.")
            COMMANDS[key.lower()] = definition
        function.cmdlet = definition
        return function

    return register


def lookup(name):
    definition = COMMANDS.get(name.lower())
    if definition is None:
        raise CmdletError(
            f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable "
            f"program. Check the spelling of the name, or if a path was included, verify that the path is correct "
            f"and try again.",
            cmdlet=name,
        )
    return definition
