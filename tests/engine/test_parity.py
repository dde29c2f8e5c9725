"""One engine, two clocks: the live engine and a backtest see the same signals and decide
the same.

The live engine runs as `traders serve` builds it (database repositories, the bus, the replay
feed stepped by the engine, the workflow on the feed's clock); the backtest runs the same
assembled stages on the replay clock with in-memory repositories. Both screen every 5m close
of five recorded BTC pairs with the same traders, analyze the signals with the rule engine
and watch them, and must agree signal by signal, decision by decision and, close by close,
on what each screen found. A backtest run twice agrees with itself, and candles changed
after a moment change no signal, decision or trade at or before it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.connection import get_connection

from app.bootstrap import build_engine
from app.core.events import InProcessEventBus
from app.core.settings import Settings
from app.db import models
from app.db.config import close_db, init_db
from app.domain.decision import Decision, DecisionAction
from app.domain.enums import TraderStatus, TradeStatus, TradingMode
from app.domain.intervals import interval_ms
from app.domain.metrics import Performance
from app.domain.signal import Signal
from app.domain.trade import Trade
from app.domain.trader_spec import TraderSpec
from app.engine.backtest.replay import ReplayMarket
from app.engine.backtest.run import ReplayResult, replay_history
from app.engine.feeds.replay import read_candles
from app.engine.sandbox import FilterSandbox
from app.engine.screening import ScreenReport
from app.services.repositories.decisions import DbDecisionRepository
from app.services.repositories.signals import signal_of
from app.services.repositories.traders import spec_of
from app.services.repositories.trading import DbTradeStore, trade_of
from tests.engine.conftest import SYMBOL_FILES, WARMUP, cut

CLOSES = 90  # the live screener keeps its last 100 reports: all of them are compared
FILTERS = {
    "rsi dip": "return rsi(candles, 14)[-1] < 45",
    "ema cross": (
        "fast = ema(candles, 9)\nslow = ema(candles, 21)\n"
        "crossed = crossed_above(fast, slow) or crossed_below(fast, slow)\n"
        "return crossed, 'long' if fast[-1] > slow[-1] else 'short', fast[-1] / slow[-1]"
    ),
    "day mover": "return abs(ticker.change_pct) > 1.5",
    "band touch": "b = bbands(candles, 20, 2.0)\nreturn candles.close[-1] <= b.lower[-1]",
}
BALANCE = Decimal(1)  # the pairs are quoted in BTC
SPEED = 1_000_000.0  # as fast as the engine goes: the replay is stepped by the engine


@pytest.fixture
def replay_dir(tmp_path: Path, candles_dir: Path) -> Path:
    return cut(candles_dir, tmp_path / "replay", WARMUP + CLOSES - 1)


@pytest.fixture
def sqlite_url(database_url_for: Any) -> str:
    return str(database_url_for("sqlite"))


@pytest.fixture
async def sqlite_db(sqlite_url: str) -> AsyncIterator[str]:
    """The live engine's database: the embedded default, SQLite (the repositories are
    tested on both back ends elsewhere)."""
    url = sqlite_url
    EXECUTOR_CACHE.clear()
    await init_db(url)
    for table in ("signals", "traders", "users", "engine_instances"):
        await get_connection("default").execute_script(f"DELETE FROM {table}")
    try:
        yield url
    finally:
        await close_db()


async def _traders() -> list[TraderSpec]:
    owner = await models.User.create(name="parity")
    rows = [
        await models.Trader.create(
            owner=owner,
            name=name,
            interval="5m",
            filter_code=code,
            enabled=True,
            status=TraderStatus.RUNNING,
        )
        for name, code in FILTERS.items()
    ]
    return [spec_of(row) for row in rows]


def _comparable(signals: list[Signal]) -> list[tuple[Any, ...]]:
    """What a signal says, without when it was recorded (wall clock live, replay clock in a
    backtest) or its id."""
    return sorted(
        (
            str(s.trader_id),
            s.symbol,
            s.candle_time,
            s.side,
            s.price,
            s.score,
            tuple(sorted(s.indicators.items())),
            s.status,
            s.status_reason,
        )
        for s in signals
    )


def _decided(decisions: list[Decision], signals: list[Signal]) -> list[tuple[Any, ...]]:
    """What each decision said of which signal, and when (both clocks are market time)."""
    of = {s.id: (str(s.trader_id), s.symbol, s.candle_time) for s in signals}
    return sorted(
        (
            *of[d.signal_id],
            d.created_at,
            d.action,
            d.direction,
            d.confidence,
            d.levels,
            d.risk_reward,
            d.engine,
        )
        for d in decisions
    )


def _traded(trades: Sequence[Trade]) -> list[tuple[Any, ...]]:
    """What each trade did: its entry and exit, prices, fees and P&L, to the last digit."""
    return sorted(
        (
            str(t.trader_id),
            t.symbol,
            t.opened_at,
            t.closed_at,
            t.status,
            t.amount.normalize(),
            t.entry_price and t.entry_price.normalize(),
            t.exit_price and t.exit_price.normalize(),
            t.entry_fee.normalize(),
            t.exit_fee.normalize(),
            t.pnl and t.pnl.normalize(),
            t.exit_reason,
        )
        for t in trades
    )


def _screens(reports: tuple[ScreenReport, ...] | list[ScreenReport]) -> list[tuple[Any, ...]]:
    return [
        (r.interval, r.candle_time, r.traders, r.evaluations, r.matches, r.failures)
        for r in reports
    ]


async def _live(
    replay_dir: Path, database_url: str
) -> tuple[list[Signal], list[Decision], list[Trade], list[Performance], list[ScreenReport]]:
    settings = Settings(
        database_url=database_url,
        feed=f"replay:{replay_dir}",
        feed_speed=SPEED,
        demo_balance=BALANCE,
    )
    engine, desk = await build_engine(settings, InProcessEventBus(), settle_ms=10)
    await engine.start()
    try:
        for _ in range(600):
            stats = engine.trigger.stats.get("5m")
            if not engine.market.running and stats is not None and stats.handled == CLOSES:
                break
            await asyncio.sleep(0.1)
        stats = engine.trigger.stats["5m"]
        assert stats.dropped == 0, "the live engine fell behind the replay: slow the feed"
        assert stats.handled == CLOSES
    finally:
        await engine.stop()
    rows = await models.Signal.all()
    owners = dict(await models.Trader.all().values_list("id", "owner_id"))
    signals = [signal_of(row, owners[row.trader_id]) for row in rows]
    repository = DbDecisionRepository()
    decisions = [d for s in signals for d in await repository.for_signal(s.id)]
    trades = [trade_of(row) for row in await DbTradeStore._trades(models.Trade.all())]
    traders = await models.Trader.all().order_by("name")
    performance = [await desk.store.performance(t.id, TradingMode.DEMO) for t in traders]
    return signals, decisions, trades, performance, list(engine.screener.reports)


async def _backtest(specs: list[TraderSpec], market: ReplayMarket) -> ReplayResult:
    first_close = min(
        int(market.candles(symbol, "5m", 2**62).time[WARMUP - 1]) + interval_ms("5m")
        for symbol, _ in market.keys
    )
    async with FilterSandbox(workers=2) as sandbox:
        return await replay_history(
            specs, market, sandbox, start=first_close, end=2**62, balance=BALANCE
        )


async def test_the_live_engine_and_the_backtest_raise_the_same_signals(
    replay_dir: Path, sqlite_db: str
) -> None:
    specs = await _traders()

    live_signals, live_decisions, live_trades, live_performance, live_reports = await _live(
        replay_dir, sqlite_db
    )
    first = await _backtest(specs, ReplayMarket.from_directory(replay_dir))
    second = await _backtest(specs, ReplayMarket.from_directory(replay_dir))

    assert len(live_signals) >= 10, "the traders should raise signals to compare"
    assert _comparable(list(first.signals)) == _comparable(live_signals)
    assert _screens(first.reports) == _screens(live_reports)
    assert len(first.reports) == CLOSES
    assert len(live_decisions) >= len(live_signals), "every signal analyzed, some re-checked"
    assert {d.action for d in live_decisions} >= {DecisionAction.GOOD_SETUP}
    assert _decided(list(first.decisions), list(first.signals)) == _decided(
        live_decisions, live_signals
    )
    assert len(live_trades) >= 3, Counter(
        (s.status, (s.status_reason or "")[:40]) for s in live_signals
    )
    assert {t.status for t in live_trades} >= {TradeStatus.CLOSED}
    assert _traded(first.trades) == _traded(live_trades)
    by_name = sorted(specs, key=lambda spec: spec.name)
    assert [first.performance[spec.id] for spec in by_name] == live_performance
    assert _comparable(list(second.signals)) == _comparable(list(first.signals))
    assert [dataclasses.replace(s, id=first.signals[0].id) for s in second.signals] == [
        dataclasses.replace(s, id=first.signals[0].id) for s in first.signals
    ]
    assert _screens(second.reports) == _screens(first.reports)
    assert _decided(list(second.decisions), list(second.signals)) == _decided(
        list(first.decisions), list(first.signals)
    )


async def test_candles_changed_after_a_moment_change_nothing_at_or_before_it(
    replay_dir: Path,
) -> None:
    specs = [
        TraderSpec(id=uuid.uuid4(), owner_id=1, name=name, interval="5m", filter_code=code)
        for name, code in FILTERS.items()
    ]
    series = {
        (name.split("-")[0].replace("_", "/"), "5m"): read_candles(replay_dir / name)
        for name in SYMBOL_FILES
    }
    original = await _backtest(specs, ReplayMarket(series))
    cutoff_index = WARMUP + CLOSES // 2
    cutoff = int(next(iter(series.values()))[cutoff_index, 0]) + interval_ms("5m")
    rng = np.random.default_rng(11)
    changed = {}
    for key, rows in series.items():
        rows = rows.copy()
        later = rows[:, 0] + interval_ms("5m") > cutoff
        factor = rng.uniform(0.8, 1.25, size=(int(later.sum()), 1))
        rows[later, 1:5] *= factor
        rows[later, 2] = rows[later, 1:5].max(axis=1)
        rows[later, 3] = rows[later, 1:5].min(axis=1)
        rows[later, 5] *= rng.uniform(0.1, 10.0, size=int(later.sum()))
        changed[key] = rows
    altered = await _backtest(specs, ReplayMarket(changed))
    assert _traded(altered.trades) != _traded(original.trades), "the change must matter"

    def until_cutoff(result: ReplayResult) -> list[tuple[Any, ...]]:
        return _comparable(
            [s for s in result.signals if s.candle_time + interval_ms("5m") <= cutoff]
        )

    def decided_until_cutoff(result: ReplayResult) -> list[tuple[Any, ...]]:
        return _decided(
            [d for d in result.decisions if d.created_at <= cutoff], list(result.signals)
        )

    def traded_until_cutoff(result: ReplayResult) -> list[tuple[Any, ...]]:
        """Each trade as it stood at the cut-off: entries made by then, exits made by then."""
        return _traded(
            [
                t
                if t.closed_at is not None and t.closed_at <= cutoff
                else dataclasses.replace(
                    t,
                    status=TradeStatus.OPEN,
                    closed_at=None,
                    exit_price=None,
                    exit_fee=Decimal(0),
                    pnl=None,
                    exit_reason=None,
                )
                for t in result.trades
                if t.opened_at <= cutoff
            ]
        )

    assert until_cutoff(original), "signals before the cut-off are needed to compare"
    assert until_cutoff(altered) == until_cutoff(original)
    assert decided_until_cutoff(original), "decisions before the cut-off are needed"
    assert decided_until_cutoff(altered) == decided_until_cutoff(original)
    assert traded_until_cutoff(original), "trades before the cut-off are needed"
    assert traded_until_cutoff(altered) == traded_until_cutoff(original)
    before = [r for r in original.reports if r.candle_time + interval_ms("5m") <= cutoff]
    assert _screens(altered.reports)[: len(before)] == _screens(before)
    assert _screens(altered.reports) != _screens(original.reports), "the change must matter"
