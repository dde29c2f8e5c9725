"""Tortoise configuration, connection and migration for one database URL.

SQLite runs in WAL mode (Tortoise's default) with `synchronous=NORMAL` unless the URL says
otherwise (`sqlite://path?synchronous=FULL`): the pairing Rails 8 and Litestream default to.
A commit then no longer waits for an fsync (3.4 ms each on this machine, against 0.02 ms),
and the workflow commits several times per signal; the database stays consistent through
any crash of the process, and only a power loss or an OS crash can roll back the last
transactions. The process's connection leaves the log's checkpoints to a `Checkpointer`
of its own (`wal_autocheckpoint=0`, `app.db.checkpoints`), so that no commit of the
workflow copies the log back and syncs. Production and live trading belong on PostgreSQL,
which keeps its own durability settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate

from app.core.settings import get_settings
from app.db.checkpoints import Checkpointer

MODELS_MODULE = "app.db.models"
MIGRATIONS_MODULE = "migrations"


SQLITE_DEFAULTS: dict[str, str | int] = {"synchronous": "NORMAL", "wal_autocheckpoint": 0}


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


_checkpointer: Checkpointer | None = None


def _sqlite_file(database_url: str) -> str | None:
    """The database file of a SQLite URL; None for PostgreSQL or an in-memory database."""
    if not database_url.startswith("sqlite://") or ":memory:" in database_url:
        return None
    return str(expand_db_url(database_url)["credentials"]["file_path"])


def _ensure_sqlite_directory(database_url: str) -> None:
    if (path := _sqlite_file(database_url)) is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)


async def init_db(database_url: str) -> None:
    """Connect for the whole process: the ASGI lifespan and the requests run in different
    tasks, so the context is also the global fallback, as Tortoise's own Starlette hook does.
    A SQLite file gets its checkpointer until `close_db`."""
    global _checkpointer
    _ensure_sqlite_directory(database_url)
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)
    await _stop_checkpointer()
    if (path := _sqlite_file(database_url)) is not None:
        _checkpointer = Checkpointer(path)
        _checkpointer.start()


async def migrate_db(database_url: str) -> None:
    """Apply every pending migration; the same history serves SQLite and PostgreSQL."""
    _ensure_sqlite_directory(database_url)
    await migrate(config=tortoise_config(database_url))


async def close_db() -> None:
    await _stop_checkpointer()
    await Tortoise.close_connections()


async def _stop_checkpointer() -> None:
    global _checkpointer
    if _checkpointer is not None:
        await _checkpointer.stop()
        _checkpointer = None


def __getattr__(name: str) -> Any:
    """`TORTOISE_ORM` for `python -m tortoise`, built lazily from the current settings."""
    if name == "TORTOISE_ORM":
        return tortoise_config(get_settings().database_url)
    raise AttributeError(name)
