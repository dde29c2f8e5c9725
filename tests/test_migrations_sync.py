"""The migrations describe the models exactly, and apply and roll back on both back ends."""

from __future__ import annotations

from typing import Any

import pytest
from tortoise.cli.cli import tortoise_cli_context
from tortoise.connection import get_connection
from tortoise.migrations.api import migrate
from tortoise.migrations.autodetector import MigrationAutodetector

from app.db.config import close_db, init_db, tortoise_config


async def test_models_and_migrations_agree() -> None:
    config = tortoise_config("sqlite://:memory:")
    async with tortoise_cli_context(config) as ctx:
        assert ctx.apps is not None
        writers = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
    pending = [operation for writer in writers for operation in writer.operations]
    assert pending == [], (
        "models changed without a migration: run `python -m tortoise makemigrations`"
    )


async def test_downgrade_then_upgrade(database_url: str) -> None:
    config = tortoise_config(database_url)
    try:
        await migrate(config=config, target="models.__first__", direction="backward")
        await migrate(config=config)
    finally:
        await close_db()


async def _indexes(database_url: str) -> set[tuple[str, str]]:
    """(table, index) of every index the migrations created by name, on one back end; unique
    constraints are left out (SQLite keeps them in the table, unnamed)."""
    await init_db(database_url)
    try:
        connection = get_connection("default")
        if database_url.startswith("sqlite"):
            rows = await connection.execute_query_dict(
                "SELECT tbl_name AS tablename, name AS indexname FROM sqlite_master "
                "WHERE type = 'index' AND sql IS NOT NULL AND name NOT LIKE 'uid\\_%' ESCAPE '\\'"
            )
        else:
            rows = await connection.execute_query_dict(
                "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = 'public' "
                "AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key' "
                "AND indexname NOT LIKE 'uid\\_%'"
            )
    finally:
        await close_db()
    return {
        (row["tablename"], row["indexname"])
        for row in rows
        if row["tablename"] != "tortoise_migrations"
    }


@pytest.fixture
def both_databases(database_url_for: Any) -> tuple[str, str]:
    return database_url_for("sqlite"), database_url_for("postgres")


async def test_both_back_ends_end_with_the_same_indexes(both_databases: tuple[str, str]) -> None:
    """Tortoise rebuilds an SQLite table to alter a column and forgets its indexes then; a
    migration that alters a column must recreate them (0002 does)."""
    sqlite_url, postgres_url = both_databases
    sqlite, postgres = await _indexes(sqlite_url), await _indexes(postgres_url)
    assert ("signals", "signals_one_active") in postgres
    assert sqlite == postgres
