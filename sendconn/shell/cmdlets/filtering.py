"""Where-Object (``where``, ``?``): keeps the objects piped in for which a condition holds.

Both of PowerShell's forms: the script block ``Where-Object {$_.Enabled -eq $true -and $_.Name -like "To*"}``
and the simplified ``Where-Object Enabled -eq $true``. The conditions are read by ``sendconn.shell.expressions``.
"""

from ..expressions import ExpressionError, compare, evaluate, member_of, tokens, truthy
from ..parser import ScriptBlock
from ..registry import CmdletError, Parameter, cmdlet, converter, switch

OPERATOR_SWITCHES = {
    name: switch(name)
    for name in (
        "EQ",
        "NE",
        "GT",
        "GE",
        "LT",
        "LE",
        "Like",
        "NotLike",
        "Match",
        "NotMatch",
        "Contains",
        "NotContains",
        "In",
        "NotIn",
    )
}


@converter("System.Object", nullable=True)
def as_given(value, session):
    return value


def _condition(params):
    """``(item) → bool`` for the given form of the command."""
    filter_script = params.get("FilterScript")
    if isinstance(filter_script, ScriptBlock):
        tokens(filter_script)  # a typing mistake is reported even when nothing is piped in
        return lambda item: evaluate(filter_script, item)
    if not isinstance(filter_script, str) or not filter_script.strip():
        raise CmdletError("Specify a condition, such as {$_.Enabled -eq $true} or Enabled -eq $true.")
    operators = [name for name in OPERATOR_SWITCHES if params.get(name)]
    if len(operators) > 1:
        raise CmdletError(
            "Parameter set cannot be resolved using the specified named parameters: use one comparison operator."
        )
    prop = filter_script.strip()
    if not operators:
        return lambda item: truthy(member_of(item, prop))
    operator = operators[0].lower()
    value = params.get("Value")
    return lambda item: truthy(compare(operator, member_of(item, prop), value))


@cmdlet(
    "Where-Object",
    Parameter("FilterScript", as_given, mandatory=True, position=0, aliases=("Property",)),
    Parameter("Value", as_given, position=1),
    *OPERATOR_SWITCHES.values(),
    aliases=("where", "?"),
    takes_input=True,
)
def where_object(invocation):
    """Selects the objects piped in for which a condition holds."""
    try:
        condition = _condition(invocation.params)
        return [item for item in invocation.input if condition(item)]
    except ExpressionError as error:
        raise CmdletError(str(error)) from None
