"""How the shell shows objects: PowerShell's default table, Format-List and ConvertTo-Json.

Cmdlets return ``Record``s: ordered ``{Exchange property name: value}`` with the columns of their default
table view. Values are what ``sendconn.connectors.properties`` produces (str, int, bool, None, lists of str).
"""

import fnmatch
import json
from datetime import UTC

FORMAT_ENUMERATION_LIMIT = 4  # PowerShell's $FormatEnumerationLimit: longer lists end in "..." in tables


class Record(dict):
    """One output object; ``table`` names its default table columns (None: PowerShell's automatic choice)."""

    def __init__(self, properties, table=None):
        super().__init__(properties)
        self.table = tuple(table) if table else None


def utc_text(moment):
    """A date and time as the shell shows it: ISO 8601 in UTC to the millisecond, ``2026-11-27T09:05:00.000Z``;
    None stays None (an empty property)."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def select_properties(record, patterns):
    """The record's property names matching ``patterns`` (case-insensitive, ``*`` wildcards), in pattern order."""
    names = []
    for pattern in patterns:
        for name in record:
            if fnmatch.fnmatchcase(name.lower(), pattern.lower()) and name not in names:
                names.append(name)
    return names


def _value_text(value, limit=None):
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        items = [_value_text(item) for item in value]
        if limit is not None and len(items) > limit:
            return "{" + ", ".join(items[:limit]) + "...}"
        return "{" + ", ".join(items) + "}"
    return str(value)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_table(records, columns=None):
    """PowerShell's Format-Table: header, dashes as long as each header, one line per object."""
    if not records:
        return []
    columns = select_properties(records[0], columns) if columns else list(records[0].table or records[0])
    rows = [
        [_value_text(record.get(column), FORMAT_ENUMERATION_LIMIT).replace("\n", " ") for column in columns]
        for record in records
    ]
    widths = [max([len(column)] + [len(row[index]) for row in rows]) for index, column in enumerate(columns)]
    right = [
        any(_is_number(record.get(column)) for record in records)
        and all(_is_number(record.get(column)) or record.get(column) is None for record in records)
        for column in columns
    ]

    def line(cells):
        return " ".join(
            cell.rjust(width) if align_right else cell.ljust(width)
            for cell, width, align_right in zip(cells, widths, right, strict=True)
        ).rstrip()

    return ["", line(columns), line(["-" * len(column) for column in columns]), *(line(row) for row in rows), ""]


def format_list(records, properties=None):
    """PowerShell's Format-List: ``Name : value`` with the names padded to the longest, a blank line between objects."""
    lines = []
    for record in records:
        names = select_properties(record, properties) if properties else list(record)
        if not names:
            continue
        width = max(len(name) for name in names)
        lines.append("")
        for name in names:
            first, *more = _value_text(record[name]).split("\n")
            lines.append(f"{name.ljust(width)} : {first}".rstrip())
            lines.extend(" " * (width + 3) + continuation for continuation in more)
    return lines + [""] if lines else []


def convert_to_json(objects, compress=False):
    """ConvertTo-Json: one object → a JSON object, several → an array (none → ``[]``, so scripts can parse it)."""
    data = [dict(item) if isinstance(item, dict) else item for item in objects]
    value = data[0] if len(data) == 1 else data
    if compress:
        return [json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)]
    return json.dumps(value, ensure_ascii=False, indent=2, default=str).split("\n")


def render(objects):
    """The lines PowerShell's Out-Default would print for a pipeline's output."""
    lines: list[str] = []
    batch: list[Record] = []

    def flush():
        if not batch:
            return
        first = batch[0]
        if first.table or len(first) <= 4:
            lines.extend(format_table(batch))
        else:
            lines.extend(format_list(batch))
        batch.clear()

    for item in objects:
        if isinstance(item, Record):
            batch.append(item)
            continue
        flush()
        lines.append(_value_text(item) if not isinstance(item, str) else item)
    flush()
    return lines
