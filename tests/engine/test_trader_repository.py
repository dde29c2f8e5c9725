"""The running traders as the engine reads them at each close: a spec kept from an earlier
close is used only while its row is unchanged; an edit, a stop, a deletion and a new trader
all show at the next read."""

from __future__ import annotations

from decimal import Decimal

from app.core.events import InProcessEventBus
from app.db import models
from app.services.repositories.traders import DbTraderRepository
from app.services.traders import TraderManager
from app.services.users import create_user

FIELDS = {
    "name": "rsi",
    "enabled": True,
    "interval": "1h",
    "symbols": ["BTC/USDT", "ETH/USDT"],
    "filter_code": "return rsi(candles, 14)[-1] < 30",
}


async def test_running_traders_follow_every_change_of_their_rows(db: str) -> None:
    manager = TraderManager(InProcessEventBus())
    traders = DbTraderRepository(manager)
    owner, _ = await create_user("owner")
    first = await manager.create(owner, FIELDS)
    second = await manager.create(owner, {**FIELDS, "name": "second"})
    hourly = await traders.running("1h")
    assert [spec.id for spec in hourly] == [first.id, second.id]
    assert await traders.running("1h") == hourly

    await manager.update(
        owner,
        str(first.id),
        {"filter_code": "return rsi(candles, 7)[-1] < 25", "stop_loss": Decimal(3)},
    )
    edited = (await traders.running("1h"))[0]
    assert edited.filter_code == "return rsi(candles, 7)[-1] < 25"
    assert edited.risk.stop_loss == Decimal(3)

    await manager.update(owner, str(first.id), {"interval": "4h"})
    assert [spec.id for spec in await traders.running("1h")] == [second.id]
    assert [spec.interval for spec in await traders.running("4h")] == ["4h"]

    await manager.pause(second.id, "max drawdown")
    assert await traders.running("1h") == []
    await manager.set_enabled(owner, str(second.id), True)
    assert [spec.name for spec in await traders.running("1h")] == ["second"]

    await models.Trader.filter(id=second.id).delete()
    assert await traders.running("1h") == []
    third = await manager.create(owner, {**FIELDS, "name": "third"})
    assert [spec.id for spec in await traders.running("1h")] == [third.id]
