import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from tortoise.connection import get_connection

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
