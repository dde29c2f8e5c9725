"""Rows as the drivers give them: ids read back as `UUID`s, and many rows' columns written
by primary key in one prepared statement, executed per row.

Tortoise's `bulk_update` writes a batch as one statement with a `CASE WHEN id = ? THEN ?`
per column over every id of the batch; SQLite evaluates those CASEs for each row it
updates, so the statement's cost grows with the square of the batch (3 ms for the 125
signals a close moves, measured in `benchmarks.trading`). `update_each` sends
`UPDATE t SET a = ?, b = ? WHERE id = ?` once and executes it for every row (the driver's
executemany: sqlite3's, asyncpg's), inside the caller's transaction when there is one.
The statement and the values are Tortoise's own (`get_update_sql`, each field's
`to_db_value`), so each back end gets its placeholders and its column encodings.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TypeVar

from tortoise.models import Model

ModelT = TypeVar("ModelT", bound=Model)


def as_uuid(value: object) -> uuid.UUID:
    """An id column's value: asyncpg gives a `UUID`, sqlite3 the text."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


async def update_each(rows: Sequence[ModelT], fields: Sequence[str]) -> None:
    """Write `fields` of each of `rows` (all of one model) by its primary key."""
    if not rows or not fields:
        return
    meta = type(rows[0])._meta
    db = meta.db
    sql = db.executor_class(model=type(rows[0]), db=db).get_update_sql(fields, None)
    columns = [meta.fields_map[name] for name in fields]
    values = [
        [field.to_db_value(getattr(row, field.model_field_name), row) for field in columns]
        + [meta.pk.to_db_value(row.pk, row)]
        for row in rows
    ]
    await db.execute_many(sql, values)
