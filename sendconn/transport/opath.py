"""OPATH filters as the queue cmdlets take them: ``-Filter "Status -eq 'Retry' -and MessageCount -gt 10"``.

``parse(text, properties)`` reads a filter into a tree of ``Comparison``s joined by ``-and``, ``-or`` and
``-not`` (parentheses group), naming only the given properties. The tree is then either evaluated against
output records (``matches``; queues are few) or turned into a Django ``Q`` (``to_q``; messages are many, so the
database filters them). Operators: -eq -ne -gt -lt -ge -le -like -notlike; as in PowerShell, text compares
case-insensitively and ``-like`` takes the wildcards ``*`` and ``?``.

A filter is typed by anyone who may read the queues, so its cost is bounded: at most ``MAX_LENGTH`` characters,
``MAX_COMPARISONS`` comparisons and ``MAX_DEPTH`` levels of parentheses and ``-not`` (the parser and the
database both recurse on the tree), numbers within the 64-bit range of the columns, and ``-like`` compiled to
SQL ``LIKE``, which SQLite and PostgreSQL match without the catastrophic backtracking of a regular expression.
"""

import fnmatch
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce
from typing import cast

from django.db.models import F, Lookup, Q, Value

MAX_LENGTH = 4096
MAX_COMPARISONS = 100
MAX_DEPTH = 32
_INT64 = (-(2**63), 2**63 - 1)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

OPERATORS = ("-eq", "-ne", "-gt", "-lt", "-ge", "-le", "-like", "-notlike")
_ORDERING = {"-gt": "gt", "-lt": "lt", "-ge": "gte", "-le": "lte"}
_CONSTANTS = {"$true": True, "$false": False, "$null": None}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<paren>[()])
      | '(?P<single>(?:[^']|'')*)'
      | "(?P<double>(?:[^"]|"")*)"
      | (?P<word>[^\s()'"]+)
    )""",
    re.VERBOSE,
)


class FilterError(ValueError):
    """A filter that can't be read; the message is Exchange's."""


@dataclass(frozen=True)
class Comparison:
    name: str  # the property's canonical spelling
    operator: str  # one of OPERATORS, lower-case
    value: object  # str, or True / False / None for $true / $false / $null


@dataclass(frozen=True)
class Junction:
    operator: str  # "-and" / "-or"
    parts: tuple


@dataclass(frozen=True)
class Negation:
    part: object


@dataclass(frozen=True)
class _Token:
    kind: str  # "paren", "text" (quoted), "word"
    text: str
    position: int


def _syntax_error(text, position):
    return FilterError(
        f"Invalid filter syntax. For a description of the filter parameter syntax see the command help. "
        f'"{text}" at position {position + 1}.'
    )


def _tokens(text):
    tokens, position = [], 0
    while position < len(text):
        if not text[position:].strip():
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise _syntax_error(text, position)
        kind = cast(str, match.lastgroup)  # every alternative is a named group
        start = match.start(kind)
        if match.group("single") is not None:
            tokens.append(_Token("text", match.group("single").replace("''", "'"), start))
        elif match.group("double") is not None:
            tokens.append(_Token("text", match.group("double").replace('""', '"'), start))
        else:
            tokens.append(_Token(kind, match.group(kind), start))
        position = match.end()
    return tokens


def _too_complex():
    return FilterError(
        f"The filter is too complex. Use at most {MAX_COMPARISONS} comparisons and {MAX_DEPTH} levels of "
        f"parentheses and -not."
    )


def _check_text(text):
    if len(text) > MAX_LENGTH:
        raise FilterError(f"The filter is {len(text)} characters long. A filter can have at most {MAX_LENGTH}.")
    bad = next((ch for ch in text if ch == "\0" or "\ud800" <= ch <= "\udfff"), None)
    if bad is not None:
        raise FilterError(f"The filter contains the character U+{ord(bad):04X}, which can't be used in a filter.")


def parse(text, properties):
    """The tree of ``text``; ``properties`` are the names it may use (matched case-insensitively)."""
    _check_text(text)
    known = {name.lower(): name for name in properties}
    tokens = _tokens(text)
    position = 0
    depth = comparisons = 0

    def nested(read):
        """``read()`` one level deeper (a parenthesis or -not), refusing trees too deep to evaluate."""
        nonlocal depth
        depth += 1
        if depth > MAX_DEPTH:
            raise _too_complex()
        tree = read()
        depth -= 1
        return tree

    def peek():
        return tokens[position] if position < len(tokens) else None

    def take():
        nonlocal position
        token = peek()
        if token is None:
            raise _syntax_error(text, len(text))
        position += 1
        return token

    def keyword(token, *words):
        return token is not None and token.kind == "word" and token.text.lower() in words

    def junction(operator, operand):
        parts = [operand()]
        while keyword(peek(), operator):
            take()
            parts.append(operand())
        return parts[0] if len(parts) == 1 else Junction(operator, tuple(parts))

    def either():
        return junction("-or", both)

    def both():
        return junction("-and", negated)

    def negated():
        if keyword(peek(), "-not"):
            take()
            return Negation(nested(negated))
        return primary()

    def primary():
        nonlocal comparisons
        token = take()
        if token.kind == "paren" and token.text == "(":
            tree = nested(either)
            closing = take()
            if closing.text != ")" or closing.kind != "paren":
                raise _syntax_error(text, closing.position)
            return tree
        if token.kind != "word" or token.text.startswith("-"):
            raise _syntax_error(text, token.position)
        name = known.get(token.text.lower())
        if name is None:
            raise FilterError(
                f'"{token.text}" isn\'t a property that can be filtered on. Use one of: {", ".join(properties)}.'
            )
        comparisons += 1
        if comparisons > MAX_COMPARISONS:
            raise _too_complex()
        operator = take()
        if operator.kind != "word" or operator.text.lower() not in OPERATORS:
            raise _syntax_error(text, operator.position)
        value = take()
        if value.kind == "paren":
            raise _syntax_error(text, value.position)
        if value.kind == "word" and value.text.lower() in _CONSTANTS:
            return Comparison(name, operator.text.lower(), _CONSTANTS[value.text.lower()])
        return Comparison(name, operator.text.lower(), value.text)

    if not tokens:
        raise _syntax_error(text, 0)
    tree = either()
    if peek() is not None:
        raise _syntax_error(text, peek().position)
    return tree


# -- evaluating against records ---------------------------------------------------------------------------------


def _number(value, name):
    """A decimal number as an int (or a float when it has a fraction), within the 64-bit range of the columns."""
    text = str(value).strip()
    if isinstance(value, bool) or not _NUMBER.fullmatch(text):
        raise FilterError(f'The value "{value}" of the filter on {name} isn\'t a number.')
    number = Decimal(text)
    if not _INT64[0] <= number <= _INT64[1]:
        raise FilterError(
            f'The value "{value}" of the filter on {name} is out of range. Use a number from {_INT64[0]} through '
            f"{_INT64[1]}."
        )
    return int(number) if number == number.to_integral_value() else float(number)


def _text(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).lower()


def _compare(actual, comparison):
    operator, expected = comparison.operator, comparison.value
    if operator in ("-like", "-notlike"):
        # "[" is literal, as in the database's LIKE (``to_q``): the same filter selects the same way in both.
        hit = fnmatch.fnmatchcase(_text(actual), _text(expected).replace("[", "[[]"))
        return hit if operator == "-like" else not hit
    if isinstance(actual, (int, float)) and not isinstance(actual, bool) and expected is not None:
        left, right = actual, _number(expected, comparison.name)
    else:
        left, right = _text(actual), _text(expected)
    return {
        "-eq": left == right,
        "-ne": left != right,
        "-gt": left > right,
        "-lt": left < right,
        "-ge": left >= right,
        "-le": left <= right,
    }[operator]


def matches(tree, record):
    """Whether ``record`` (a mapping of property name → value) passes the filter."""
    if isinstance(tree, Negation):
        return not matches(tree.part, record)
    if isinstance(tree, Junction):
        combine = all if tree.operator == "-and" else any
        return combine(matches(part, record) for part in tree.parts)
    return _compare(record.get(tree.name), tree)


# -- compiling to a database filter -----------------------------------------------------------------------------


class Like(Lookup):
    """``lhs LIKE pattern ESCAPE '\\'``, case-insensitive: ILIKE on PostgreSQL; SQLite's LIKE ignores the case of
    ASCII letters, as Django's ``iexact`` does there. Both databases match LIKE without catastrophic backtracking."""

    lookup_name = "like"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        operator = "ILIKE" if connection.vendor == "postgresql" else "LIKE"
        return f"{lhs} {operator} {rhs} ESCAPE '\\'", [*lhs_params, *rhs_params]


def like_pattern(wildcard):
    """PowerShell wildcards (``*``, ``?``) as a LIKE pattern; LIKE's own ``%``, ``_`` and ``\\`` are escaped."""
    escaped = wildcard.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _comparison_q(comparison, fields):
    field, numeric = fields[comparison.name]
    operator, value = comparison.operator, comparison.value
    if value is None:
        empty = Q(**{f"{field}__isnull": True}) if numeric else Q(**{f"{field}__isnull": True}) | Q(**{field: ""})
        if operator in ("-eq", "-like"):
            return empty
        if operator in ("-ne", "-notlike"):
            return ~empty
        raise FilterError(f"$null can only be compared with -eq or -ne (property {comparison.name}).")
    if numeric:
        if operator in ("-like", "-notlike"):
            raise FilterError(f"{comparison.name} is a number: compare it with -eq, -ne, -gt, -lt, -ge or -le.")
        value = _number(value, comparison.name)
        if isinstance(value, float):  # the database's numbers are whole (Size, RetryCount): Django would truncate
            raise FilterError(
                f'The value "{comparison.value}" of the filter on {comparison.name} isn\'t a whole number.'
            )
    else:
        value = _text(value) if isinstance(value, bool) else str(value)
    if operator in ("-like", "-notlike"):
        q = Q(Like(F(field), Value(like_pattern(value))))
        return q if operator == "-like" else ~q
    if operator in ("-eq", "-ne"):
        q = Q(**{field if numeric else f"{field}__iexact": value})
        return q if operator == "-eq" else ~q
    return Q(**{f"{field}__{_ORDERING[operator]}": value})


def to_q(tree, fields):
    """The filter as a ``Q``; ``fields`` maps each property to ``(field or annotation name, is_numeric)``, numeric
    fields holding whole numbers."""
    if isinstance(tree, Negation):
        return ~to_q(tree.part, fields)
    if isinstance(tree, Junction):
        parts = [to_q(part, fields) for part in tree.parts]
        return reduce(lambda left, right: (left & right) if tree.operator == "-and" else (left | right), parts)
    return _comparison_q(tree, fields)
