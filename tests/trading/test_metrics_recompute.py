"""Every metric, recomputed independently from the recorded fills, fees and equity snapshots
of 120 trades, equals what the engine's aggregates give, exactly (Decimal, both back ends).

The trades are made the way the engine makes them: the order manager and the demo executor
(spread, impact, fees) on a random walk, with positions on two symbols overlapping, and an
equity snapshot at every close. The recomputation reads only the `fills` and
`equity_snapshots` tables and uses exact fractions, two-pass variance and its own grouping.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from fractions import Fraction
from itertools import pairwise
from typing import Any

from app.core.events import InProcessEventBus
from app.db import models
from app.db.models import Trader, User
from app.domain.enums import ExitReason, OrderPurpose, Side, SignalStatus, TradingMode
from app.domain.fill_model import FillModel
from app.domain.metrics import QUANTUM, RETURN_QUANTUM, YEAR_MS, metrics_of
from app.domain.orders import Order
from app.domain.risk import EntryPlan
from app.domain.signal import Signal
from app.engine.clock import ReplayClock, to_ms
from app.engine.executors.demo import DemoTradeExecutor
from app.engine.klines import KlineStore
from app.engine.memory import CollectingNotifier
from app.engine.orders import OrderManager
from app.engine.prices import MarketQuotes
from app.services.reads import metrics_by_trader
from app.services.repositories.signals import DbSignalRepository
from app.services.repositories.traders import spec_of
from app.services.repositories.trading import DbTradeStore, performance_of
from app.services.traders import TraderManager
from tests.trading.replay import INTERVAL, START, STEP, FixedInstruments

TRADES = 120
D = Decimal


def q(value: Fraction, quantum: Decimal = QUANTUM) -> Decimal:
    with localcontext() as context:
        context.prec = 60
        return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(quantum)


def ratio(mean: Fraction, per_year: Fraction, square: Fraction) -> Decimal:
    """mean x sqrt(per_year) / sqrt(square), annualised like a Sharpe ratio."""
    with localcontext() as context:
        context.prec = 60

        def exact(value: Fraction) -> Decimal:
            return Decimal(value.numerator) / Decimal(value.denominator)

        return (exact(mean) * exact(per_year).sqrt() / exact(square).sqrt()).quantize(QUANTUM)


async def make_trades() -> tuple[uuid.UUID, ReplayClock]:
    user = await User.create(name="quant")
    row = await TraderManager(InProcessEventBus()).create(
        user, {"name": "q", "enabled": True, "interval": INTERVAL}
    )
    spec = spec_of(await Trader.get(id=row.id))
    clock = ReplayClock(START)
    store = KlineStore(depth=5000)
    quotes = MarketQuotes(store, INTERVAL, clock)
    trades = DbTradeStore()

    async def ledger():
        return await trades.ledger(spec.id, spec.mode)

    executor = DemoTradeExecutor(quotes, FixedInstruments(), clock, ledger, FillModel())

    def route(order: Order) -> DemoTradeExecutor:
        return executor

    orders = OrderManager(trades, route, CollectingNotifier(), clock, FixedInstruments())
    rng = random.Random(18)
    prices = {"BTC/USDT": 100.0, "ETH/USDT": 50.0}
    opened: dict[str, Any] = {}
    time, made = START, 0
    while made < TRADES or opened:
        for symbol in prices:
            prices[symbol] *= 1 + rng.gauss(0.0003, 0.01)
            close = round(prices[symbol], 2)
            row_ = [time, close, close * 1.004, close * 0.996, close, rng.uniform(500, 5000)]
            store.append(symbol, INTERVAL, [row_])
        time += STEP
        clock.advance(time)
        for symbol, trade in list(opened.items()):
            if rng.random() < 0.35 or made >= TRADES:
                reason = rng.choice([ExitReason.STOP_LOSS, ExitReason.TAKE_PROFIT])
                booked = await orders.close(trade, reason)
                assert booked is not None and booked.closed
                del opened[symbol]
        for symbol in prices:
            if symbol not in opened and made < TRADES and rng.random() < 0.6:
                signal = Signal(
                    uuid.uuid4(), spec.id, spec.owner_id, symbol, INTERVAL, Side.LONG,
                    D(100), time, time, status=SignalStatus.READY,
                )  # fmt: skip
                assert await DbSignalRepository().add(signal)
                amount = D(rng.randint(1, 40))
                plan = EntryPlan(amount, D(str(round(prices[symbol], 2))), D(0))
                booked = await orders.open(spec, signal, plan, None)
                assert booked is not None and booked.opened
                await DbSignalRepository().transition(
                    signal, SignalStatus.ENTERED, None, None, at=time
                )
                opened[symbol] = booked.trade
                made += 1
        ledger_now = await trades.ledger(spec.id, spec.mode)
        marks = quotes.marks(ledger_now.positions)
        await trades.snapshot(spec.id, spec.mode, time, ledger_now.equity(marks), marks)
    return spec.id, clock


async def test_every_metric_recomputes_exactly_from_fills_and_snapshots(db: str) -> None:
    trader_id, clock = await make_trades()
    purposes = dict(await models.Order.filter(trader_id=trader_id).values_list("id", "purpose"))
    by_trade: dict[object, dict[str, Fraction]] = defaultdict(lambda: defaultdict(Fraction))
    spans: dict[object, list[int]] = defaultdict(list)
    fees = Fraction(0)
    for fill in await models.Fill.filter(trader_id=trader_id):
        side = "in" if purposes[fill.order_id] == OrderPurpose.ENTRY else "out"
        sums = by_trade[fill.trade_id]
        sums[side] += Fraction(fill.amount) * Fraction(fill.price)
        sums[f"{side}_amount"] += Fraction(fill.amount)
        sums["fees"] += Fraction(fill.fee)
        fees += Fraction(fill.fee)
        spans[fill.trade_id].append(to_ms(fill.time))
    assert len(by_trade) == TRADES
    assert all(s["in_amount"] == s["out_amount"] > 0 for s in by_trade.values())
    pnls = [s["out"] - s["in"] - s["fees"] for s in by_trade.values()]
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p <= 0]
    cost = sum((s["in"] for s in by_trade.values()), Fraction(0))

    snapshots = await models.EquitySnapshot.filter(trader_id=trader_id).order_by("time")
    equities = [Fraction(s.equity) for s in snapshots]
    times = [to_ms(s.time) for s in snapshots]
    returns = [Fraction(q(b / a - 1, RETURN_QUANTUM)) for a, b in pairwise(equities)]
    n = len(returns)
    mean = sum(returns, Fraction(0)) / n
    variance = sum(((r - mean) ** 2 for r in returns), Fraction(0)) / (n - 1)
    downside = sum((min(r, Fraction(0)) ** 2 for r in returns), Fraction(0)) / n
    per_year = Fraction(n * YEAR_MS, times[-1] - times[0])
    peak, worst = equities[0], Decimal(0)
    for equity in equities:
        peak = max(peak, equity)
        worst = max(worst, q((peak - equity) / peak * 100))
    intervals = sorted((min(t), max(t)) for t in spans.values())
    exposure, start, end = 0, *intervals[0]
    for low, high in intervals[1:]:
        if low > end:
            exposure, start, end = exposure + end - start, low, high
        else:
            end = max(end, high)
    exposure += end - start
    started = min(times[0], min(t for t, _ in intervals))

    expected = {
        "closed_positions": TRADES,
        "active_positions": 0,
        "total_pnl": q(sum(pnls, Fraction(0))),
        "total_pnl_percent": q(sum(pnls, Fraction(0)) * 100 / cost),
        "win_rate": q(Fraction(len(wins) * 100, TRADES)),
        "avg_win": q(sum(wins, Fraction(0)) / len(wins)),
        "avg_loss": q(sum(losses, Fraction(0)) / len(losses)),
        "expectancy": q(sum(pnls, Fraction(0)) / TRADES),
        "profit_factor": q(sum(wins, Fraction(0)) / -sum(losses, Fraction(0))),
        "fees_paid": q(fees),
        "max_drawdown": worst,
        "sharpe_ratio": ratio(mean, per_year, variance),
        "sortino_ratio": ratio(mean, per_year, downside),
        "time_in_market": q(Fraction(exposure * 100, clock.now() - started)),
        "equity": q(equities[-1]),
    }
    row = await models.Performance.get(trader_id=trader_id, mode=TradingMode.DEMO)
    ledger = await DbTradeStore().ledger(trader_id, TradingMode.DEMO)
    engine = metrics_of(performance_of(row), now=clock.now(), ledger=ledger)
    served = (await metrics_by_trader([trader_id]))[trader_id].by_mode[TradingMode.DEMO]
    for name, value in expected.items():
        assert getattr(engine, name) == value, name
        if name != "time_in_market":  # the API measures it up to the wall clock's now
            assert getattr(served, name) == value, name
    assert datetime.now(UTC) > datetime.fromtimestamp(clock.now() / 1000, UTC)
