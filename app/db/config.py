"""Tortoise configuration, connection and migration for one database URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.migrations.api import migrate

from app.core.settings import get_settings

MODELS_MODULE = "app.db.models"
MIGRATIONS_MODULE = "migrations"


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": database_url},
        "apps": {
            "models": {
                "models": [MODELS_MODULE],
                "default_connection": "default",
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _ensure_sqlite_directory(database_url: str) -> None:
    if database_url.startswith("sqlite://") and ":memory:" not in database_url:
        Path(database_url.removeprefix("sqlite://")).parent.mkdir(parents=True, exist_ok=True)


async def init_db(database_url: str) -> None:
    """Connect for the whole process: the ASGI lifespan and the requests run in different
    tasks, so the context is also the global fallback, as Tortoise's own Starlette hook does."""
    _ensure_sqlite_directory(database_url)
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)


async def migrate_db(database_url: str) -> None:
    """Apply every pending migration; the same history serves SQLite and PostgreSQL."""
    _ensure_sqlite_directory(database_url)
    await migrate(config=tortoise_config(database_url))


async def close_db() -> None:
    await Tortoise.close_connections()


def __getattr__(name: str) -> Any:
    """`TORTOISE_ORM` for `python -m tortoise`, built lazily from the current settings."""
    if name == "TORTOISE_ORM":
        return tortoise_config(get_settings().database_url)
    raise AttributeError(name)
