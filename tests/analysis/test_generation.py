"""generateTrader's service: a model's trader is checked and dry-run, repaired once, refused
with every problem when still wrong; offline, a template adapted to the sentence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.domain.filter_language import filter_language_reference
from app.domain.llm import CallOutcome, Purpose
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.engine.memory import MemoryCallLog
from app.engine.sandbox import FilterSandbox
from app.services.filter_check import FilterChecker
from app.services.generation import GenerationFailedError, TraderGenerator
from tests.analysis.conftest import START, SYMBOLS, Clients
from tests.fakes.gemini import FakeGemini, Received, Reply, answer, server_error

MODEL = "gemini-2.5-flash"


def generated(**changes: Any) -> dict[str, Any]:
    trader: dict[str, Any] = {
        "suggested_name": "Oversold bounce 4h",
        "description": "Buys oversold dips on the 4h.",
        "filter_code": "r = rsi(candles, 14)\nreturn r[-1] < 101",
        "filter_description": ["RSI(14) under 101"],
        "strategy_instructions": "Enter on oversold readings near support.",
        "indicators": [{"name": "rsi", "params": [{"name": "period", "value": 14}]}],
        "risk": {
            "stop_loss": 3,
            "take_profit": 6,
            "max_positions": 3,
            "position_size_percent": 10,
            "max_drawdown": 20,
            "min_risk_reward": 2,
        },
        "interval": "1h",
        "symbols": ["BTC/USDT", "ETH/USDT"],
    }
    risk = changes.pop("risk", {})
    return {**trader, **changes, "risk": {**trader["risk"], **risk}}


@pytest.fixture
async def engine() -> AsyncIterator[FilterChecker]:
    """The dry-run lane on a simulated market, as the embedded engine runs it."""
    feed = SimulatedFeed(SYMBOLS, intervals=("1h",), seed=3, speed=None, start_ms=START)
    store = KlineStore(depth=200)
    feed.backfill(store)
    async with FilterSandbox(workers=1) as sandbox:
        yield FilterChecker(MarketData(feed, store), sandbox)


def generator(
    clients: Clients,
    engine: FilterChecker | None,
    calls: MemoryCallLog | None = None,
    **kw: Any,
) -> TraderGenerator:
    return TraderGenerator(clients.client(calls=calls, **kw), MODEL, engine)


async def test_a_generated_trader_is_checked_and_dry_run(
    gemini: FakeGemini, clients: Clients, engine: FilterChecker
) -> None:
    calls = MemoryCallLog()
    gemini.then(answer(generated()))
    generation = await generator(clients, engine, calls).generate(1, "buy oversold dips")
    assert generation.engine == "gemini" and generation.repairs == 0
    draft = generation.draft
    assert draft.name == "Oversold bounce 4h" and draft.symbols == ("BTC/USDT", "ETH/USDT")
    assert draft.risk.min_risk_reward == 2
    assert generation.check.ran and set(generation.check.matches) == {"BTC/USDT", "ETH/USDT"}
    assert generation.input_tokens == calls.calls[0].input_tokens > 0
    sent = gemini.requests[0]
    assert filter_language_reference() in sent.system
    assert "stop_loss: in (0, 100)" in sent.system
    assert "buy oversold dips" in sent.prompt
    assert (
        sent.body["generationConfig"]["responseSchema"]["properties"]["interval"]["enum"][0] == "1m"
    )


def filter_error(request: Received) -> Reply:
    return answer(generated(filter_code="import os\nreturn True"))


def runtime_error(request: Received) -> Reply:
    return answer(generated(filter_code="x = 0\nreturn 1 / x > 1"))


async def test_a_filter_that_fails_validation_is_repaired_once(
    gemini: FakeGemini, clients: Clients, engine: FilterChecker
) -> None:
    calls = MemoryCallLog()
    gemini.then(filter_error, answer(generated()))
    generation = await generator(clients, engine, calls).generate(1, "rsi dips")
    assert generation.repairs == 1
    repair = gemini.requests[1].prompt
    assert "It cannot be used: filter_code: line 1, column 1: imports are not allowed" in repair
    assert [c.purpose for c in calls.calls] == [Purpose.GENERATION, Purpose.GENERATION_REPAIR]


async def test_a_filter_that_fails_its_dry_run_is_repaired_once(
    gemini: FakeGemini, clients: Clients, engine: FilterChecker
) -> None:
    gemini.then(runtime_error, answer(generated()))
    generation = await generator(clients, engine).generate(1, "rsi dips")
    assert generation.repairs == 1
    assert "filter dry run: line 2, column 8: ZeroDivisionError" in gemini.requests[1].prompt


async def test_a_filter_failing_twice_is_a_clear_error(
    gemini: FakeGemini, clients: Clients, engine: FilterChecker
) -> None:
    gemini.then(filter_error, filter_error)
    with pytest.raises(GenerationFailedError, match="still invalid after one repair") as failure:
        await generator(clients, engine).generate(1, "rsi dips")
    assert failure.value.problems == ["filter_code: line 1, column 1: imports are not allowed"]


async def test_risk_values_out_of_range_are_refused_not_clamped(
    gemini: FakeGemini, clients: Clients, engine: FilterChecker
) -> None:
    out_of_range = answer(generated(risk={"stop_loss": 150, "position_size_percent": 0}))
    gemini.then(out_of_range, out_of_range)
    with pytest.raises(GenerationFailedError) as failure:
        await generator(clients, engine).generate(1, "risky")
    assert failure.value.problems == [
        "stop_loss: must be in (0, 100), got 150",
        "position_size_percent: must be in (0, 100], got 0",
    ]
    assert "stop_loss: must be in (0, 100), got 150" in gemini.requests[1].prompt


async def test_garbage_twice_is_a_clear_error(gemini: FakeGemini, clients: Clients) -> None:
    gemini.then(answer("Here is your trader!"), answer({"suggested_name": "x"}))
    with pytest.raises(GenerationFailedError, match=r"still invalid|repair failed") as failure:
        await generator(clients, None).generate(1, "anything")
    assert any("Field required" in problem for problem in failure.value.problems)


async def test_without_a_model_answer_a_template_stands_in_and_says_why(
    gemini: FakeGemini, clients: Clients
) -> None:
    calls = MemoryCallLog()
    gemini.then(*[server_error(503)] * 4)
    generation = await generator(clients, None, calls).generate(1, "RSI under 25 on the 4h")
    assert generation.engine == "template" and generation.template == "rsi_mean_reversion"
    assert "the model did not answer: server_error" in (generation.fallback_reason or "")
    assert [c.outcome for c in calls.calls] == [CallOutcome.SERVER_ERROR] * 4
    assert generation.check.skipped is not None and not generation.check.ran


async def test_offline_the_closest_template_is_adapted_and_dry_run(engine: FilterChecker) -> None:
    generation = await TraderGenerator(None, MODEL, engine).generate(1, "RSI under 25 on the 4h")
    assert (generation.engine, generation.template) == ("template", "rsi_mean_reversion")
    assert generation.fallback_reason is None
    assert generation.draft.interval == "4h" and "r[-1] < 25" in generation.draft.filter_code
    assert "RSI threshold: 30 -> 25" in generation.changes
    assert generation.check.ran is True and generation.check.errors == ()


async def test_offline_a_risk_value_out_of_range_is_refused() -> None:
    with pytest.raises(GenerationFailedError, match="stop_loss: must be in"):
        await TraderGenerator(None, MODEL).generate(1, "RSI dips with a 150% stop")


async def test_an_empty_description_is_refused() -> None:
    with pytest.raises(GenerationFailedError, match="the description is empty"):
        await TraderGenerator(None, MODEL).generate(1, "   ")
