"""Offline end to end: every template as a trader, screened close by close on replayed
candles, its signals analyzed by the rule engine, watched, traded on paper and judged; twice,
the same."""

from __future__ import annotations

import uuid
from typing import Any

from app.domain.decision import AnalysisEngineKind
from app.domain.enums import SignalStatus
from app.domain.trader_spec import TraderSpec
from app.domain.trader_templates import TEMPLATES
from app.engine.analysis.rules import RuleAnalysisEngine
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.sandbox import FilterSandbox, SandboxLimits
from app.engine.screening import CandleClose, ScreenerEngine
from tests.analysis.conftest import HOUR, START, Backtest, view_of

SYMBOLS = [f"{base}/USDT" for base in ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "DOT", "LINK")]
REPLAYED = 120
LIMITS = SandboxLimits(eval_seconds=0.5, grace_seconds=1.0, batch_cpu_seconds=30)


def history() -> KlineStore:
    store = KlineStore(depth=400, source_id="history")
    feed = SimulatedFeed(SYMBOLS, intervals=("15m", "1h", "4h"), seed=5, speed=None, start_ms=START)
    feed.backfill(store)
    return store


def template_traders() -> list[TraderSpec]:
    traders = []
    for index, template in enumerate(TEMPLATES.values()):
        draft = template.render()
        traders.append(
            TraderSpec(
                id=uuid.UUID(int=index + 1),
                owner_id=1,
                name=draft.name,
                interval="1h",
                symbols=tuple(SYMBOLS),
                filter_code=draft.filter_code,
                filter_description=draft.filter_description,
                strategy_instructions=draft.strategy_instructions,
                risk=draft.risk,
            )
        )
    return traders


async def replay() -> tuple[Backtest, list[tuple[Any, ...]]]:
    """One replay, in a sandbox of its own: the workers keep replicas of the candles and only
    add rows newer than they hold, so a second replay in the same pool would screen on the
    first one's last candles."""
    store = history()
    backtest = Backtest(RuleAnalysisEngine(), template_traders(), store=store)
    last = store.last_time("BTC/USDT", "1h")
    assert last is not None
    async with FilterSandbox(workers=2, limits=LIMITS) as sandbox:
        backtest.workflow.screener = ScreenerEngine(sandbox)
        for time in range(last - (REPLAYED - 1) * HOUR, last + HOUR, HOUR):
            close = CandleClose("1h", time)
            backtest.clock.advance(close.at)
            view = view_of(store, close.at)
            await backtest.workflow.on_close(close, view)
            await backtest.drain(view)
    trace = [
        (s.trader_id.int, s.symbol, s.candle_time, s.status, s.status_reason)
        for s in backtest.signals.all()
    ]
    return backtest, trace


async def test_every_template_trades_offline_end_to_end() -> None:
    backtest, trace = await replay()
    assert backtest.traders.errors == {}
    signals = backtest.signals.all()
    assert len({s.trader_id for s in signals}) >= 4
    assert not [s for s in signals if s.status == SignalStatus.NEW]
    decisions = list(backtest.decisions.decisions.values())
    assert len(decisions) >= len(signals)
    assert {d.engine for d in decisions} == {AnalysisEngineKind.RULES}
    assert SignalStatus.ENTERED in {s.status for s in signals}, "ready signals are traded"
    assert backtest.decisions.outcomes, "some decisions are judged by the end of the replay"

    _, again = await replay()
    assert again == trace
