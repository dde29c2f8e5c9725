"""`emergencyStop` while the engine is busy screening: three traders with open positions and
open orders are all disabled, every order cancelled and every position closed at market,
each action in the audit log, within one second (both back ends).

The screen is real and heavy (sandboxed filters that burn CPU on both cores for seconds);
the emergency stop runs through the GraphQL API on the embedded engine's trading desk.
"""

from __future__ import annotations

import asyncio
import time

from starlette.applications import Starlette

from app.bootstrap import build_workflow
from app.core.settings import Settings
from app.db import models
from app.db.models import Trader, User
from app.domain.enums import (
    ExitReason,
    OrderStatus,
    TraderStatus,
    TradeStatus,
)
from app.engine.clock import RealtimeClock
from app.engine.desk import TradingDesk
from app.engine.market import MarketData
from app.engine.sandbox import FilterSandbox, SandboxLimits
from app.engine.screening import CandleClose
from tests.api.conftest import Caller, create_trader
from tests.trading.desk import SYMBOLS, positions_and_orders

BURN = "s = 0\nfor i in range(200000):\n    s += i\nreturn False"
STOP = """mutation { emergencyStop {
    traders { id enabled status statusReason } ordersCancelled positionsClosed closesRequested
} }"""


async def test_emergency_stop_closes_and_cancels_everything_while_screening_runs(
    alice: Caller, bob: Caller, desk: TradingDesk, market: MarketData, app: Starlette
) -> None:
    ids = await positions_and_orders(alice, desk)
    assert await models.Trade.filter(status=TradeStatus.OPEN).count() == 6
    assert await models.Order.filter(status=OrderStatus.OPEN).count() == 3
    for n in range(10):
        await create_trader(
            bob,
            name=f"busy{n}",
            enabled=True,
            interval="1m",
            symbols=SYMBOLS,
            filter={"code": BURN},
        )
    limits = SandboxLimits(eval_seconds=2, run_seconds=30, grace_seconds=2, batch_cpu_seconds=120)
    async with FilterSandbox(workers=2, limits=limits) as sandbox:
        # A budget the burning traders stay within: the screen is heavy, not failing.
        settings = Settings(screen_seconds_per_user=60)
        workflow = build_workflow(
            app.state.runtime.bus, RealtimeClock(), sandbox, market, settings, desk=desk
        )
        newest = market.store.last_time(SYMBOLS[0], "1m")
        assert newest is not None
        close = CandleClose("1m", newest)
        screening = asyncio.create_task(workflow.on_close(close, market.view(close.at)))
        await asyncio.sleep(0.5)
        assert not screening.done()
        started = time.perf_counter()
        data = await alice.data(STOP)
        elapsed = time.perf_counter() - started
        still_screening = not screening.done()
        report = await screening
    assert report is not None and report.traders == 13 and report.failures == 0
    assert still_screening
    assert elapsed < 1.0, f"the emergency stop took {elapsed:.2f} s ({report.seconds:.1f} s screen)"

    result = data["emergencyStop"]
    assert sorted(t["id"] for t in result["traders"]) == sorted(ids)
    assert all(
        (t["enabled"], t["status"], t["statusReason"]) == (False, "PAUSED", "emergency stop")
        for t in result["traders"]
    )
    assert (result["ordersCancelled"], result["positionsClosed"]) == (3, 6)
    assert result["closesRequested"] == 0
    trades = await models.Trade.filter(trader_id__in=ids)
    assert sorted((t.status, t.exit_reason) for t in trades) == sorted(
        [(TradeStatus.CLOSED, ExitReason.EMERGENCY)] * 6 + [(TradeStatus.CANCELLED, None)] * 3
    )
    assert await models.Order.filter(status__in=[OrderStatus.INTENT, OrderStatus.OPEN]).count() == 0
    assert all(
        t.status == TraderStatus.PAUSED and not t.enabled for t in await Trader.filter(id__in=ids)
    )
    actions = [row.action for row in await models.TradeAuditLog.filter(trader_id__in=ids)]
    assert actions.count("trader_disabled") == 3
    assert actions.count("order_canceled") == 3
    assert actions.count("order_intent") == 9 + 6  # the entries, then the emergency exits
    assert actions.count("order_fill") == 6 + 6
    assert actions.count("order_closed") == 6 + 6
    assert await User.all().count() == 2
