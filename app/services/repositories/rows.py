"""Rows as the drivers give them: ids read back as `UUID`s, and many rows inserted, or their
columns written by primary key, in one prepared statement executed per row.

Tortoise's `bulk_update` writes a batch as one statement with a `CASE WHEN id = ? THEN ?`
per column over every id of the batch; SQLite evaluates those CASEs for each row it
updates, so the statement's cost grows with the square of the batch (3 ms for the 125
signals a close moves, measured in `benchmarks.trading`). `update_each` sends
`UPDATE t SET a = ?, b = ? WHERE id = ?` once and executes it for every row (the driver's
executemany: sqlite3's, asyncpg's), inside the caller's transaction when there is one.
The statement and the values are Tortoise's own (`get_update_sql`, each field's
`to_db_value`), so each back end gets its placeholders and its column encodings.

`insert_each` inserts rows given as values, as Tortoise's `bulk_create` does (one
`INSERT` executed for every row, the same statement and encodings) but without building a
model instance per row first: for the 250 decisions of a close that construction costs
more than the insert itself (16 ms against 12, measured).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from tortoise import timezone
from tortoise.fields import Field
from tortoise.models import Model

ModelT = TypeVar("ModelT", bound=Model)


def as_uuid(value: object) -> uuid.UUID:
    """An id column's value: asyncpg gives a `UUID`, sqlite3 the text."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


async def update_each(rows: Sequence[ModelT], fields: Sequence[str]) -> None:
    """Write `fields` of each of `rows` (all of one model) by its primary key."""
    if not rows or not fields:
        return
    model = type(rows[0])
    meta = model._meta
    db = meta.db
    sql = db.executor_class(model=model, db=db).get_update_sql(fields, None)
    columns = [meta.fields_map[name] for name in fields]
    # Encoded as values of the model, not of the row: given the row, Tortoise would write
    # an auto_now timestamp (an order's updated_at) with the wall clock's time instead of
    # the engine clock's that the caller set.
    values = [
        [field.to_db_value(getattr(row, field.model_field_name), model) for field in columns]
        + [meta.pk.to_db_value(row.pk, model)]
        for row in rows
    ]
    await db.execute_many(sql, values)


async def insert_each(
    model: type[Model], rows: Sequence[Mapping[str, Any]], *, ignore_conflicts: bool = False
) -> None:
    """Insert `rows` of `model`, each its field values by name (every row the same fields; a
    field left out gets its default, a generated one its value from the database), inside
    the caller's transaction when there is one. `ignore_conflicts`: a row a unique index
    refuses is skipped (INSERT OR IGNORE, ON CONFLICT DO NOTHING)."""
    if not rows:
        return
    meta = model._meta
    given = list(rows[0])
    defaults = {
        name: field
        for name, field in meta.fields_map.items()
        if name in meta.fields_db_projection and name not in given and not field.generated
    }
    names = given + list(defaults)
    fields = [meta.fields_map[name] for name in names]
    db = meta.db
    executor = db.executor_class(model=model, db=db)
    # The statement Tortoise's bulk_create prepares for these columns.
    sql = executor._prepare_insert_statement(
        [meta.fields_db_projection[name] for name in names], ignore_conflicts=ignore_conflicts
    ).get_sql()
    values = []
    for row in rows:
        if len(row) != len(given):
            raise ValueError(f"{model.__name__} rows name different fields: {sorted(row)}")
        row_values = [row[name] for name in given] + [_default(f) for f in defaults.values()]
        values.append(
            [
                field.to_db_value(value, model)
                for field, value in zip(fields, row_values, strict=True)
            ]
        )
    await db.execute_many(sql, values)


def _default(field: Field[Any]) -> Any:
    """What a model instance would hold for a field it was not given: the moment of the
    insert for an `auto_now` or `auto_now_add` timestamp (as Tortoise's own insert
    sets it), else the field's default."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return timezone.now()
    return field.default() if callable(field.default) else field.default
