"""The embedded engine's trading desk on the test database, on a backfilled simulated
market, and traders holding positions and resting orders made through it."""

from __future__ import annotations

import uuid
from decimal import Decimal

from app.db.models import Trader
from app.domain.enums import Side, SignalStatus
from app.domain.risk import EntryPlan
from app.domain.signal import Signal
from app.engine.desk import TradingDesk
from app.services.repositories.signals import DbSignalRepository
from app.services.repositories.traders import spec_of
from tests.api.conftest import Caller, create_trader

SYMBOLS = [f"C{n:02d}/USDT" for n in range(30)]


async def enter(
    desk: TradingDesk, trader_id: str, symbol: str, limit_share: Decimal | None = None
) -> uuid.UUID:
    """A position of about 500 USDT at market, or a limit entry at `limit_share` of the
    price, for a ready signal recorded through the signal repository; the trade's id."""
    spec = spec_of(await Trader.get(id=trader_id))
    signal = Signal(
        uuid.uuid4(), spec.id, spec.owner_id, symbol, spec.interval, Side.LONG, Decimal(1), 0, 0,
        status=SignalStatus.READY,
    )  # fmt: skip
    assert await DbSignalRepository().add(signal)
    quote = desk.quotes.quote(symbol)
    assert quote is not None
    plan = EntryPlan((Decimal(500) / quote.last).quantize(Decimal("0.001")), quote.last, Decimal(0))
    limit = None if limit_share is None else (quote.last * limit_share).quantize(Decimal("0.0001"))
    booked = await desk.orders.open(spec, signal, plan, None, limit)
    assert booked is not None
    await DbSignalRepository().transition(signal, SignalStatus.ENTERED, None, None, at=0)
    return booked.trade.id


async def positions_and_orders(caller: Caller, desk: TradingDesk, traders: int = 3) -> list[str]:
    """Traders each with two positions at market and one resting limit entry."""
    ids = []
    for n in range(traders):
        created = await create_trader(
            caller, name=f"t{n}", enabled=True, interval="1m", filter={"code": "return False"}
        )
        for k, symbol in enumerate(SYMBOLS[3 * n : 3 * n + 3]):
            await enter(desk, created["id"], symbol, Decimal("0.5") if k == 2 else None)
        ids.append(created["id"])
    return ids
