"""The rule engine reads each candle window once for all the traders that judge it, and
gives each the verdict of its own risk settings, judged once for all the traders that share
them; a window whose candles differ is read and judged again."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from app.domain.indicators import CandleArrays
from app.domain.rule_analysis import Readings, RuleVerdict, judge_setup
from app.domain.trader_spec import RiskSettings
from app.engine.analysis import rules
from app.engine.analysis.base import AnalysisContext
from app.engine.analysis.context import ContextBuilder
from app.engine.analysis.rules import RuleAnalysisEngine
from app.engine.clock import RealtimeClock
from app.engine.klines import Candles
from app.engine.memory import MemoryDecisionRepository, MemorySignalRepository, MemoryTradeStore
from tests.analysis.conftest import signal_on, simulated_store, spec, view_of


async def test_traders_judging_one_window_share_its_readings_not_their_verdicts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read: list[CandleArrays] = []

    def counted(candles: CandleArrays) -> Readings | None:
        read.append(candles)
        return rules_read_setup(candles)

    rules_read_setup = rules.read_setup
    monkeypatch.setattr(rules, "read_setup", counted)
    view = view_of(simulated_store())
    builder = ContextBuilder(
        MemoryDecisionRepository(MemorySignalRepository()), MemoryTradeStore(), RealtimeClock()
    )
    engine = RuleAnalysisEngine()
    contexts: list[AnalysisContext] = []
    for stop in (Decimal("0.5"), Decimal(10)):
        trader = spec(risk=RiskSettings(stop_loss=stop))
        context = await builder.build(signal_on(trader, view), trader, view)
        decision = await engine.analyze(context)
        verdict = judge_setup(context.signal.side, context.series, trader.risk, "BTC/USDT")
        assert (decision.action, decision.confidence, decision.reasoning) == (
            verdict.action,
            verdict.confidence,
            verdict.reasoning,
        )
        assert decision.levels == verdict.levels
        contexts.append(context)
    assert len(read) == 1
    assert contexts[0].series is not contexts[1].series  # two windows, the same candles
    assert (await engine.analyze(contexts[0])).levels != (await engine.analyze(contexts[1])).levels

    series = contexts[0].series
    assert isinstance(series, Candles)
    revised = dataclasses.replace(series, close=series.close * 1.05)
    context = dataclasses.replace(contexts[0], candles={"1h": revised})
    decision = await engine.analyze(context)
    assert len(read) == 2
    verdict = judge_setup(context.signal.side, revised, context.trader.risk, "BTC/USDT")
    assert decision.reasoning == verdict.reasoning


async def test_traders_with_one_risk_setting_share_the_verdict_each_with_its_own_decision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    judged: list[RiskSettings] = []

    def counted(*args: Any, **kwargs: Any) -> RuleVerdict:
        judged.append(args[2])
        return rules_judge_setup(*args, **kwargs)

    rules_judge_setup = rules.judge_setup
    monkeypatch.setattr(rules, "judge_setup", counted)
    view = view_of(simulated_store())
    builder = ContextBuilder(
        MemoryDecisionRepository(MemorySignalRepository()), MemoryTradeStore(), RealtimeClock()
    )
    risk = RiskSettings(stop_loss=Decimal(5))
    traders = [spec(risk=risk) for _ in range(3)] + [spec(risk=RiskSettings(stop_loss=Decimal(2)))]
    contexts = await builder.build_many(
        [(signal_on(trader, view), trader) for trader in traders], view
    )
    assert len({id(context.series) for context in contexts}) == 1  # one window for the symbol
    engine = RuleAnalysisEngine()
    decisions = [await engine.analyze(context) for context in contexts]
    assert judged == [risk, RiskSettings(stop_loss=Decimal(2))]
    for context, decision in zip(contexts, decisions, strict=True):
        assert (decision.signal_id, decision.trader_id) == (context.signal.id, context.trader.id)
        verdict = judge_setup(context.signal.side, context.series, context.trader.risk, "BTC/USDT")
        assert (decision.action, decision.reasoning, decision.levels) == (
            verdict.action,
            verdict.reasoning,
            verdict.levels,
        )
    assert len({decision.id for decision in decisions}) == 4

    series = contexts[0].series
    assert isinstance(series, Candles)
    revised = dataclasses.replace(series, close=series.close * 0.97)
    await engine.analyze(dataclasses.replace(contexts[0], candles={"1h": revised}))
    assert len(judged) == 3
