"""Tortoise configuration, connection and migration for one database URL.

SQLite runs in WAL mode (Tortoise's default) with `synchronous=NORMAL` unless the URL says
otherwise (`sqlite://path?synchronous=FULL`): the pairing Rails 8 and Litestream default to.
A commit then no longer waits for an fsync (3.4 ms each on this machine, against 0.02 ms),
and the workflow commits several times per signal; the database stays consistent through
any crash of the process, and only a power loss or an OS crash can roll back the last
transactions. Production and live trading belong on PostgreSQL, which keeps its own
durability settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate

from app.core.settings import get_settings

MODELS_MODULE = "app.db.models"
MIGRATIONS_MODULE = "migrations"


SQLITE_DEFAULTS = {"synchronous": "NORMAL"}


def connection_config(database_url: str) -> str | dict[str, Any]:
    """The URL, or for SQLite its expanded form with our pragmas where the URL sets none."""
    if not database_url.startswith("sqlite://"):
        return database_url
    config = expand_db_url(database_url)
    for pragma, value in SQLITE_DEFAULTS.items():
        config["credentials"].setdefault(pragma, value)
    return config


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": connection_config(database_url)},
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
