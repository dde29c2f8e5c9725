"""The migrations describe the models exactly, and apply and roll back on both back ends."""

from __future__ import annotations

from tortoise.cli.cli import tortoise_cli_context
from tortoise.migrations.api import migrate
from tortoise.migrations.autodetector import MigrationAutodetector

from app.db.config import close_db, tortoise_config


async def test_models_and_migrations_agree() -> None:
    config = tortoise_config("sqlite://:memory:")
    async with tortoise_cli_context(config) as ctx:
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
