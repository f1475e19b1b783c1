"""Hand-built statements on the mail path, where compiling ORM queries cost more than running them.

smtpd and the workers write and read a few rows many times a second; ``QuerySet`` and ``bulk_create`` compile
their SQL anew for every call. ``insert`` builds each model's INSERT once per process and hands the rows to the
driver (executemany); ``load`` turns the rows of a hand-written SELECT into model instances. Both apply the same
field conversions as the ORM (``pre_save`` and ``get_db_prep_save`` going in, the backend's and the fields'
converters coming out); ``adapters`` gives the going-in conversions of chosen fields, for hand-written UPDATEs.
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field, Model

# Internal types whose get_db_prep_save returns a value of this exact Python type (or None) unchanged: the adapter
# skips the field's three or four calls for them, the hot path's biggest cost after the statements themselves.
_UNCHANGED_TYPES = {
    "CharField": str,
    "TextField": str,
    "BooleanField": bool,
    "IntegerField": int,
    "SmallIntegerField": int,
    "BigIntegerField": int,
    "PositiveIntegerField": int,
    "PositiveSmallIntegerField": int,
    "PositiveBigIntegerField": int,
    "AutoField": int,
    "BigAutoField": int,
}


Adapter = Callable[[Any, Any], Any]  # (value, connection) → the value to bind


def _adapter(field: Field) -> Adapter:
    """``field.get_db_prep_save``, with a shortcut for the values it leaves alone."""
    exact = field.get_db_prep_save
    # A foreign key's value is its target's (the other model's key).
    kind = (field.target_field if field.is_relation else field).get_internal_type()  # type: ignore[attr-defined]
    if kind == "DateTimeField":
        return lambda value, db: (
            db.ops.adapt_datetimefield_value(value) if type(value) is datetime else exact(value, db)
        )
    unchanged = _UNCHANGED_TYPES.get(kind)
    if unchanged is None:
        return exact
    return lambda value, db: value if value is None or type(value) is unchanged else exact(value, db)


@cache
def adapters(model, names: tuple[str, ...]) -> list[tuple[str, Adapter]]:
    """(attribute name, adapter) for the fields ``names`` of ``model``; ``adapter(value, connection)`` is the
    value to bind, as ``get_db_prep_save`` gives it."""
    fields = [model._meta.get_field(name) for name in names]
    return [(field.attname, _adapter(field)) for field in fields]


def _sets_value(field) -> bool:
    """True when the field's ``pre_save`` sets the value; the others' is ``getattr(obj, attname)``."""
    return getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)


@cache
def _statement(model, vendor):
    """The model's fields (all concrete ones but the auto-incremented key) as (attribute name, adapter, the field
    when its ``pre_save`` sets the value: auto_now, auto_now_add), and its INSERT statement."""
    db = connections[DEFAULT_DB_ALIAS]
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    columns = ", ".join(db.ops.quote_name(field.column) for field in fields)
    values = ", ".join(["%s"] * len(fields))
    prepare = [(field.attname, _adapter(field), field if _sets_value(field) else None) for field in fields]
    return prepare, f"INSERT INTO {db.ops.quote_name(model._meta.db_table)} ({columns}) VALUES ({values})"


def insert(objects: Sequence[Model], *, returning_ids: bool = False) -> None:
    """INSERT ``objects`` (unsaved instances of one model, related objects saved) in the current transaction.

    With ``returning_ids`` each object gets its primary key (one statement per row, INSERT … RETURNING);
    otherwise the rows go in one executemany and the objects stay without keys.
    """
    if not objects:
        return
    db = connections[DEFAULT_DB_ALIAS]  # the connection itself: the proxy costs an indirection per value
    model = type(objects[0])
    prepare, sql = _statement(model, db.vendor)
    rows = []
    for obj in objects:
        # A related object saved after assignment (a private Model method, missing from django-stubs).
        obj._prepare_related_fields_for_save(operation_name="insert")  # type: ignore[attr-defined]
        rows.append(
            [
                adapt(getattr(obj, attname) if setter is None else setter.pre_save(obj, True), db)
                for attname, adapt, setter in prepare
            ]
        )
    with db.cursor() as cursor:
        if not returning_ids:
            cursor.executemany(sql, rows)
            return
        ops: Any = db.ops  # the backends with RETURNING (PostgreSQL, SQLite) have these; the base class hasn't
        returning, params = ops.return_insert_columns([model._meta.pk])
        for obj, row in zip(objects, rows, strict=True):
            cursor.execute(f"{sql} {returning}", [*row, *params])
            obj.pk = ops.fetch_returned_insert_columns(cursor, params)[0]
            obj._state.adding, obj._state.db = False, db.alias


def columns(model, table_alias):
    """The SELECT list of every concrete field of ``model`` (for ``load``), from ``table_alias``."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    return ", ".join(f"{table_alias}.{quote(field.column)}" for field in model._meta.concrete_fields)


def load(models, sql, params):
    """Run ``sql``, a SELECT of ``columns(model, …)`` for each of ``models`` in turn; return a tuple of instances
    (one per model) for every row."""
    db = connections[DEFAULT_DB_ALIAS]
    layouts = []  # per model: (model, field names, [(position, field, converters)])
    for model in models:
        fields = model._meta.concrete_fields
        converting = []
        for position, field in enumerate(fields):
            column = field.get_col(model._meta.db_table)
            converters = db.ops.get_db_converters(column) + field.get_db_converters(db)
            if converters:
                converting.append((position, column, converters))
        layouts.append((model, [field.attname for field in fields], converting))
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    loaded = []
    for values in fetched:
        instances, start = [], 0
        for model, names, converting in layouts:
            part = list(values[start : start + len(names)])
            start += len(names)
            for position, column, converters in converting:
                for converter in converters:
                    part[position] = converter(part[position], column, db)
            instances.append(model.from_db(db.alias, names, part))
        loaded.append(tuple(instances))
    return loaded
