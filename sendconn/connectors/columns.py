"""Columns that apps above connectors add to the send connectors list, such as Verify delivery's LAST VERIFICATION.

Connectors sit below those apps and never import them: an app registers its column from its ``AppConfig.ready``,
and the list page asks this module for the columns.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import QuerySet


@dataclass(frozen=True)
class ListColumn:
    heading: str
    template: str  # renders the row's cell (a <td>) from ``row``
    annotate: Callable[[QuerySet], QuerySet]  # adds what the cell shows to the rows, in the page's one query


_columns: dict[str, ListColumn] = {}


def register(column: ListColumn) -> None:
    _columns[column.heading] = column  # by heading: registering again (a second ready()) replaces, never doubles


def list_columns() -> list[ListColumn]:
    return list(_columns.values())


def annotate(rows: QuerySet) -> QuerySet:
    """``rows`` with what every registered column shows."""
    for column in _columns.values():
        rows = column.annotate(rows)
    return rows
