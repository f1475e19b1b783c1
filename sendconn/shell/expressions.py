"""The filters admins pipe objects through: ``Where-Object {$_.Enabled -eq $true -and $_.Name -like "To*"}``.

A small part of PowerShell's expression language, evaluated against one output object (``$_`` or ``$PSItem``):
property access (``$_.Name``), strings, numbers (with PowerShell's ``KB``/``MB``/``GB``/``TB`` suffixes),
``$true``/``$false``/``$null``, parentheses, ``-not``/``!``, ``-and``/``-or``/``-xor`` and the comparison
operators ``-eq -ne -gt -ge -lt -le -like -notlike -match -notmatch -contains -notcontains -in -notin`` (with
their case-sensitive ``-c…`` and explicit ``-i…`` forms). As in PowerShell, comparing a list filters it
(``$_.AddressSpaces -like "*contoso*"`` is true when an item matches), and comparing to a number or a Boolean
converts the other side first (a size such as ``35 MB (36,700,160 bytes)`` compares with ``10MB``). Anything
else raises ``ExpressionError`` saying what isn't understood.
"""

import fnmatch
import re

COMPARISONS = (
    "eq",
    "ne",
    "gt",
    "ge",
    "lt",
    "le",
    "like",
    "notlike",
    "match",
    "notmatch",
    "contains",
    "notcontains",
    "in",
    "notin",
)
LOGICAL = ("and", "or", "xor", "not")
NUMBER_SUFFIXES = {"kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<open>\()|(?P<close>\))|(?P<bang>!)
      | \$(?P<variable>[A-Za-z_][A-Za-z0-9_]*)(?P<members>(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
      | -(?P<operator>[A-Za-z]+)\b
      | '(?P<single>(?:[^']|'')*)'
      | "(?P<double>(?:[^"`]|`.|"")*)"
      | (?P<number>[-+]?\d+(?:\.\d+)?(?:[kKmMgGtT][bB])?)(?![\w.])
      | (?P<word>[^\s()'"$!]+)
    )""",
    re.VERBOSE,
)


class ExpressionError(Exception):
    pass


def tokens(text):
    position, found = 0, []
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ExpressionError(f"Unexpected token '{text[position:].strip()[:20]}' in the filter.")
        position = match.end()
        kind = match.lastgroup if match.lastgroup != "members" else "variable"
        found.append((kind, match))
    return found


def evaluate(text, item):
    """Is the script block ``text`` true for ``item`` (a mapping of property names to values)?"""
    parser = _Evaluator(tokens(text), item)
    if not parser.tokens:
        raise ExpressionError("The filter is empty. Use a condition such as {$_.Enabled -eq $true}.")
    value = parser.expression()
    if parser.position < len(parser.tokens):
        raise ExpressionError(f"Unexpected token '{parser.tokens[parser.position][1].group().strip()}' in the filter.")
    return truthy(value)


def truthy(value):
    """PowerShell's conversion to Boolean: empty strings, 0, $null and empty lists are false."""
    if isinstance(value, (list, tuple)):
        return len(value) > 1 or (len(value) == 1 and truthy(value[0]))
    return bool(value)


class _Evaluator:
    """Recursive descent over the tokens: or/xor < and < not < comparison < operand."""

    def __init__(self, tokens, item):
        self.tokens = tokens
        self.position = 0
        self.item = item

    def peek_operator(self, names):
        if self.position < len(self.tokens):
            kind, match = self.tokens[self.position]
            if kind == "operator" and match.group("operator").lower() in names:
                return match.group("operator").lower()
        return None

    def expression(self):
        value = self.conjunction()
        while operator := self.peek_operator(("or", "xor")):
            self.position += 1
            other = self.conjunction()
            value = (truthy(value) or truthy(other)) if operator == "or" else (truthy(value) != truthy(other))
        return value

    def conjunction(self):
        value = self.negation()
        while self.peek_operator(("and",)):
            self.position += 1
            other = self.negation()
            value = truthy(value) and truthy(other)
        return value

    def negation(self):
        if self.peek_operator(("not",)) or self._next_kind() == "bang":
            self.position += 1
            return not truthy(self.negation())
        return self.comparison()

    def comparison(self):
        left = self.operand()
        if self.position < len(self.tokens) and self._next_kind() == "operator":
            name = self.tokens[self.position][1].group("operator").lower()
            if name in LOGICAL:
                return left
            case_sensitive = name.startswith("c") and name[1:] in COMPARISONS
            base = name[1:] if (name[:1] in ("c", "i") and name[1:] in COMPARISONS) else name
            if base not in COMPARISONS:
                raise ExpressionError(
                    f"The operator '-{name}' isn't supported in filters. Use -eq, -ne, -like, "
                    "-match, -contains, -gt, -lt, -and, -or or -not."
                )
            self.position += 1
            right = self.operand()
            return compare(base, left, right, case_sensitive)
        return left

    def operand(self):
        if self.position >= len(self.tokens):
            raise ExpressionError("The filter ends where a value was expected.")
        kind, match = self.tokens[self.position]
        self.position += 1
        if kind == "open":
            value = self.expression()
            if self._next_kind() != "close":
                raise ExpressionError("Missing closing ')' in the filter.")
            self.position += 1
            return value
        if kind == "variable":
            return self._variable(match.group("variable"), match.group("members"))
        if kind == "single":
            return match.group("single").replace("''", "'")
        if kind == "double":
            return re.sub(r"`(.)", r"\1", match.group("double")).replace('""', '"')
        if kind == "number":
            return parse_number(match.group("number"))
        if kind == "word":
            return match.group("word")
        raise ExpressionError(f"Unexpected token '{match.group().strip()}' in the filter.")

    def _variable(self, name, members):
        lowered = name.lower()
        constants = {"true": True, "false": False, "null": None}
        if lowered in constants and not members:
            return constants[lowered]
        if lowered not in ("_", "psitem"):
            raise ExpressionError(f"The variable '${name}' can't be used in a filter: use $_ for the object.")
        value = self.item
        for member in filter(None, members.split(".")):
            value = member_of(value, member)
        return value

    def _next_kind(self):
        return self.tokens[self.position][0] if self.position < len(self.tokens) else None


def member_of(value, name):
    """``$_.Name``: a property looked up case-insensitively ($null when the object has none, as in PowerShell)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key.lower() == name.lower():
                return item
    return None


def parse_number(text):
    suffix = text[-2:].lower()
    factor = NUMBER_SUFFIXES.get(suffix, 1)
    digits = text[:-2] if suffix in NUMBER_SUFFIXES else text
    number = float(digits) * factor
    return int(number) if number.is_integer() else number


def compare(operator, left, right, case_sensitive=False):
    """PowerShell's comparison: a list on the left is filtered (its matching items are the result)."""
    if operator in ("contains", "notcontains", "in", "notin"):
        collection, wanted = (left, right) if operator in ("contains", "notcontains") else (right, left)
        items = collection if isinstance(collection, (list, tuple)) else [collection]
        found = any(_equal(item, wanted, case_sensitive) for item in items)
        return found if operator in ("contains", "in") else not found
    if isinstance(left, (list, tuple)):
        return [item for item in left if compare(operator, item, right, case_sensitive)]
    if operator in ("eq", "ne"):
        return _equal(left, right, case_sensitive) == (operator == "eq")
    if operator in ("like", "notlike"):
        text, pattern = _text(left), _text(right)
        if not case_sensitive:
            text, pattern = text.lower(), pattern.lower()
        return fnmatch.fnmatchcase(text, pattern) == (operator == "like")
    if operator in ("match", "notmatch"):
        try:
            found = re.search(_text(right), _text(left), 0 if case_sensitive else re.IGNORECASE) is not None
        except re.error as error:
            raise ExpressionError(f"The regular expression '{right}' isn't valid: {error}.") from None
        return found == (operator == "match")
    return _order(operator, left, right, case_sensitive)


def _text(value):
    if isinstance(value, bool):
        return "True" if value else "False"
    return "" if value is None else str(value)


def _converted(left, right):
    """The right side in the left side's type, as PowerShell converts it (None when it can't be)."""
    if right is None or left is None:
        return right
    if isinstance(left, bool):
        if isinstance(right, bool):
            return right
        if isinstance(right, (int, float)):
            return bool(right)
        return {"true": True, "false": False, "1": True, "0": False}.get(str(right).strip().lower())
    if isinstance(left, (int, float)):
        if isinstance(right, (int, float)) and not isinstance(right, bool):
            return right
        try:
            return parse_number(str(right).strip())
        except ValueError:
            return None
    return _text(right)


_BYTES = re.compile(r"\(([\d,]+) bytes\)$")


def _as_number(value):
    """A number, a numeric string or a size as Exchange shows it (``35 MB (36,700,160 bytes)``) → its number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        sized = _BYTES.search(value)
        if sized:
            return int(sized.group(1).replace(",", ""))
        try:
            return parse_number(value.strip())
        except ValueError:
            return None
    return None


def _numbers(left, right):
    """Both sides as numbers when one is a number and the other reads as one (sizes compare with 10MB)."""
    if not any(isinstance(side, (int, float)) and not isinstance(side, bool) for side in (left, right)):
        return None
    pair = (_as_number(left), _as_number(right))
    return pair if None not in pair else None


def _equal(left, right, case_sensitive):
    if left is None or right is None:
        return left is None and right is None
    if numbers := _numbers(left, right):
        return numbers[0] == numbers[1]
    converted = _converted(left, right)
    if isinstance(left, str) and not case_sensitive:
        return left.lower() == str(converted).lower()
    return left == converted


def _order(operator, left, right, case_sensitive):
    if numbers := _numbers(left, right):
        left, converted = numbers
    else:
        converted = _converted(left, right)
        if left is None or converted is None:
            return False
        if isinstance(left, str) and not case_sensitive:
            left, converted = left.lower(), str(converted).lower()
    return {"gt": left > converted, "ge": left >= converted, "lt": left < converted, "le": left <= converted}[operator]
