"""Shared fixtures. Database tests run once per back end: SQLite and PostgreSQL.

Each back end gets a fresh database for the whole run, built by the real migrations, and
every test starts from empty tables. PostgreSQL and Redis are the machine's real services;
a test that needs one skips with the reason only when it truly cannot be reached, and never
in CI (`CI=true`), where .ci/run starts them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from urllib.parse import urlsplit

import pytest
from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.connection import get_connection

from app.db.config import close_db, init_db, migrate_db

POSTGRES_ADMIN_URL = os.environ.get(
    "TRADERS_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TRADERS_TEST_REDIS", "redis://127.0.0.1:6379/0")
BACKENDS = ("sqlite", "postgres")
TABLES = (
    "llm_responses",
    "llm_calls",
    "decisions",
    "signal_transitions",
    "trade_audit_log",
    "fills",
    "equity_snapshots",
    "performance",
    "ledgers",
    "orders",
    "trades",
    "signals",
    "backtests",
    "traders",
    "exchange_credentials",
    "api_tokens",
    "users",
)


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1
        ):
            return True
    except OSError:
        return False


def require_service(name: str, url: str, default_port: int) -> None:
    if _reachable(url, default_port):
        return
    if os.environ.get("CI"):
        pytest.fail(f"{name} at {url} is not reachable, and CI must run every test")
    pytest.skip(f"{name} at {url} is not reachable")


def _postgres_database_url(name: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def _admin_postgres(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_ADMIN_URL.replace("postgres://", "postgresql://"))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def database_url_for(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """One migrated database per back end for the whole run, created on first use."""
    urls: dict[str, str] = {}

    def get(backend: str) -> str:
        if backend not in urls:
            if backend == "sqlite":
                urls[backend] = f"sqlite://{tmp_path_factory.mktemp('db') / 'traders.sqlite3'}"
            else:
                require_service("PostgreSQL", POSTGRES_ADMIN_URL, 5432)
                name = f"traders_test_{uuid.uuid4().hex[:12]}"
                asyncio.run(_admin_postgres(f'CREATE DATABASE "{name}"'))
                urls[backend] = _postgres_database_url(name)
            asyncio.run(_migrate(urls[backend]))
        return urls[backend]

    yield get
    if "postgres" in urls:
        name = urls["postgres"].rsplit("/", 1)[1]
        asyncio.run(_admin_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _migrate(url: str) -> None:
    await migrate_db(url)
    await Tortoise.close_connections()


# One script, so one implicit transaction: the tables are emptied children first with the
# audit log's append-only trigger set aside, and every id sequence of theirs starts over.
# DELETE, not TRUNCATE: on the few rows a test leaves, TRUNCATE's new file for every table
# and index cost 70-150 ms per test, DELETE 4 ms.
EMPTY_POSTGRES = "; ".join(
    [
        "ALTER TABLE trade_audit_log DISABLE TRIGGER USER",
        *(f"DELETE FROM {table}" for table in TABLES),
        "ALTER TABLE trade_audit_log ENABLE TRIGGER USER",
        "SELECT setval(seq.oid, 1, false) FROM pg_class AS seq"
        " JOIN pg_depend AS owned ON owned.objid = seq.oid AND owned.deptype IN ('a', 'i')"
        " JOIN pg_class AS tbl ON tbl.oid = owned.refobjid"
        f" WHERE seq.relkind = 'S' AND tbl.relname IN ({', '.join(map(repr, TABLES))})",
    ]
)


async def _empty_tables(backend: str) -> None:
    """On both back ends the audit log's append-only triggers are set aside while the
    tables are emptied."""
    connection = get_connection("default")
    if backend == "postgres":
        await connection.execute_script(EMPTY_POSTGRES)
        return
    triggers = await connection.execute_query_dict(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
    )
    for trigger in triggers:
        await connection.execute_script(f"DROP TRIGGER {trigger['name']}")
    for table in TABLES:
        await connection.execute_script(f"DELETE FROM {table}")
    for trigger in triggers:
        await connection.execute_script(trigger["sql"])


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, database_url_for: Callable[[str], str]) -> str:
    """The migrated database of this back end (created outside the test's event loop)."""
    return database_url_for(backend)


@pytest.fixture
async def db(backend: str, database_url: str) -> AsyncIterator[str]:
    """An initialised Tortoise connection to empty tables; yields the database URL."""
    url = database_url
    # Tortoise caches each model's INSERT/DELETE SQL by connection name, not by dialect:
    # switching one process between SQLite and PostgreSQL needs a fresh cache.
    EXECUTOR_CACHE.clear()
    await init_db(url)
    await _empty_tables(backend)
    try:
        yield url
    finally:
        await close_db()


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", REDIS_URL, 6379)
    return REDIS_URL
