"""Row locks where the back end has them: PostgreSQL's `FOR UPDATE`; SQLite has one writer
at a time, so a transaction there already holds what it read."""

from __future__ import annotations

from typing import Any

from tortoise.connection import get_connection
from tortoise.queryset import QuerySet


def postgres() -> bool:
    return get_connection("default").capabilities.dialect == "postgres"


def locked(query: QuerySet[Any]) -> QuerySet[Any]:
    """`query` taking row locks until the transaction ends (PostgreSQL)."""
    return query.select_for_update() if postgres() else query
