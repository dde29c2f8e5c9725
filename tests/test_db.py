import asyncio
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from tortoise.connection import get_connection

from app.db.checkpoints import CHECKPOINT_S, Checkpointer
from app.db.config import close_db, init_db
from app.db.models import AppendOnlyError, TradeAuditLog, Trader, User
from app.services.users import UserExistsError, create_user


async def test_models_round_trip_decimals(db: str) -> None:
    user = await User.create(name="alice")
    trader = await Trader.create(owner=user, name="t", stop_loss=Decimal("2.5"))
    fetched = await Trader.get(id=trader.id)
    assert fetched.stop_loss == Decimal("2.5")


async def test_audit_log_is_append_only(db: str) -> None:
    user = await User.create(name="alice")
    trader = await Trader.create(owner=user, name="t")
    row = await TradeAuditLog.create(owner_id=user.id, trader_id=trader.id, action="order_sent")
    row.action = "changed"
    with pytest.raises(AppendOnlyError):
        await row.save()
    with pytest.raises(AppendOnlyError):
        await row.delete()
    assert (await TradeAuditLog.get(id=row.id)).action == "order_sent"


async def test_the_database_refuses_to_change_or_delete_audit_rows(db: str) -> None:
    """Not only the model: plain SQL, and queryset updates and deletes, are refused too."""
    user = await User.create(name="alice")
    trader = await Trader.create(owner=user, name="t")
    row = await TradeAuditLog.create(owner_id=user.id, trader_id=trader.id, action="order_fill")
    connection = get_connection("default")
    for sql in (
        f"UPDATE trade_audit_log SET action = 'forged' WHERE id = {row.id}",
        f"DELETE FROM trade_audit_log WHERE id = {row.id}",
        "DELETE FROM trade_audit_log",
    ):
        with pytest.raises(Exception, match="append-only"):
            await connection.execute_script(sql)
    with pytest.raises(Exception, match="append-only"):
        await TradeAuditLog.filter(id=row.id).update(action="forged")
    with pytest.raises(Exception, match="append-only"):
        await TradeAuditLog.filter(id=row.id).delete()
    await trader.delete()
    assert [(r.id, r.action) for r in await TradeAuditLog.all()] == [(row.id, "order_fill")]
    await TradeAuditLog.create(owner_id=user.id, trader_id=trader.id, action="order_intent")
    assert await TradeAuditLog.all().count() == 2


async def test_a_user_name_is_taken_once_even_by_concurrent_creations(db: str) -> None:
    results = await asyncio.gather(
        create_user("alice"), create_user("alice"), return_exceptions=True
    )

    assert sorted(type(result).__name__ for result in results) == ["UserExistsError", "tuple"]
    assert await User.filter(name="alice").count() == 1
    with pytest.raises(UserExistsError):
        await create_user(" alice ")
    with pytest.raises(ValueError, match="at most 100 characters"):
        await create_user("a" * 101)


@pytest.mark.parametrize(("query", "synchronous"), [("", 1), ("?synchronous=FULL", 2)])
async def test_sqlite_commits_without_waiting_for_fsync_unless_the_url_asks(
    tmp_path: Path, query: str, synchronous: int
) -> None:
    await init_db(f"sqlite://{tmp_path / 'pragmas.sqlite3'}{query}")
    try:
        connection = get_connection("default")
        [(mode,)] = (await connection.execute_query("PRAGMA journal_mode"))[1]
        [(level,)] = (await connection.execute_query("PRAGMA synchronous"))[1]
        assert (mode, level) == ("wal", synchronous)  # 1 is NORMAL, 2 is FULL
    finally:
        await close_db()


async def test_sqlite_commits_leave_checkpoints_to_the_checkpointer(tmp_path: Path) -> None:
    """The process's connection never copies the log back on a commit; the checkpointer
    started with it does, in the background, and the log is gone once the process closes."""
    path = tmp_path / "checkpoints.sqlite3"
    await init_db(f"sqlite://{path}")
    try:
        connection = get_connection("default")
        [(automatic,)] = (await connection.execute_query("PRAGMA wal_autocheckpoint"))[1]
        assert automatic == 0
        await connection.execute_script("CREATE TABLE filler (payload BLOB)")
        await connection.execute_many(
            "INSERT INTO filler VALUES (?)", [[bytes(4096)] for _ in range(300)]
        )
        for _ in range(round((CHECKPOINT_S + 3) / 0.05)):  # a period, and some
            if path.stat().st_size > 300 * 4096:
                break
            await asyncio.sleep(0.05)
        assert path.stat().st_size > 300 * 4096  # copied back by the checkpointer
    finally:
        await close_db()
    assert not (tmp_path / "checkpoints.sqlite3-wal").exists()
    with sqlite3.connect(path) as reopened:
        assert reopened.execute("SELECT count(*) FROM filler").fetchone() == (300,)


async def test_a_checkpointer_stops_after_the_checkpoint_under_way(tmp_path: Path) -> None:
    path = tmp_path / "stop.sqlite3"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE filler (payload BLOB)")
    checkpointer = Checkpointer(str(path), every_s=0.01)
    checkpointer.start()
    try:
        for _ in range(20):
            writer.execute("INSERT INTO filler VALUES (?)", [bytes(65536)])
            await asyncio.sleep(0.005)
        await checkpointer.stop()  # however far the loop was
        busy, pages, copied = await checkpointer.checkpoint()  # a new connection, then
        assert (busy, copied) == (0, pages)
        await checkpointer.stop()
    finally:
        writer.close()
