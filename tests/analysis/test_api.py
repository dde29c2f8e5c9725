"""Analysis over GraphQL: traders from one sentence (with the fake Gemini and offline),
templates, a signal's analyses and history, decision quality and model usage."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from app.api.app import create_app
from app.core.settings import Settings
from app.db.models import Signal as SignalRow
from app.db.models import Trader
from app.domain.decision import AnalysisEngineKind, Decision, DecisionAction, KeyLevels
from app.domain.decision_quality import Label, Outcome
from app.domain.enums import Side, SignalStatus
from app.domain.signal import Signal
from app.engine.clock import to_ms
from app.services import analysis
from app.services.repositories.decisions import DbDecisionRepository
from app.services.repositories.signals import DbSignalRepository
from app.services.users import create_user
from tests.analysis.test_generation import generated
from tests.api.conftest import Caller
from tests.fakes.gemini import API_KEY, FakeGemini, answer

GENERATE = """
mutation($d: String!) { generateTrader(description: $d) {
  suggestedName description filterCode filterDescription strategyInstructions interval symbols
  indicators { name params { name value } }
  riskParameters { stopLoss takeProfit maxPositions positionSizePercent maxDrawdown minRiskReward }
  engine model template adaptations repairs fallbackReason inputTokens outputTokens
  dryRun { valid dryRun dryRunSkipped }
} }
"""
SAVE = """
mutation($input: GeneratedTraderInput!) { createTraderFromGeneration(input: $input) {
  id name interval symbols filter { code description indicators }
  strategy { instructions riskManagement { stopLoss takeProfit minRiskReward } }
} }
"""


def save_input(preview: dict[str, Any]) -> dict[str, Any]:
    """The preview as the input to save it, unchanged."""
    fields = [
        "suggestedName",
        "description",
        "filterCode",
        "filterDescription",
        "strategyInstructions",
        "interval",
        "symbols",
    ]
    return {
        **{name: preview[name] for name in fields},
        "indicators": preview["indicators"],
        "riskParameters": preview["riskParameters"],
    }


async def caller(app: Starlette, name: str) -> AsyncIterator[Caller]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        user, token = await create_user(name)
        yield Caller(client, token, user.id)


@pytest.fixture
async def offline(db: str) -> AsyncIterator[Caller]:
    async for alice in caller(create_app(Settings(database_url=db)), "alice"):
        yield alice


@pytest.fixture
async def online(db: str, gemini: FakeGemini) -> AsyncIterator[Caller]:
    app = create_app(
        Settings(
            database_url=db, gemini_api_key=SecretStr(API_KEY), gemini_base_url=gemini.base_url
        )
    )
    try:
        async for alice in caller(app, "alice"):
            yield alice
    finally:
        await app.state.runtime.llm.close()


async def test_a_generation_becomes_a_valid_trader(online: Caller, gemini: FakeGemini) -> None:
    gemini.then(answer(generated()))
    preview = (await online.data(GENERATE, {"d": "buy oversold dips"}))["generateTrader"]
    assert (preview["engine"], preview["model"], preview["repairs"]) == (
        "gemini",
        "gemini-2.5-flash",
        0,
    )
    assert preview["inputTokens"] > 0 and preview["outputTokens"] > 0
    assert preview["dryRun"]["valid"] and not preview["dryRun"]["dryRun"]
    assert "TRADERS_ENGINE=off" in preview["dryRun"]["dryRunSkipped"]
    assert await Trader.all().count() == 0

    saved = (await online.data(SAVE, {"input": save_input(preview)}))["createTraderFromGeneration"]
    assert saved["name"] == "Oversold bounce 4h"
    assert saved["filter"]["code"] == preview["filterCode"]
    assert saved["filter"]["indicators"] == [
        {"name": "rsi", "params": [{"name": "period", "value": 14.0}]}
    ]
    assert saved["strategy"]["riskManagement"] == {
        "stopLoss": "3",
        "takeProfit": "6",
        "minRiskReward": "2",
    }
    assert saved["symbols"] == ["BTC/USDT", "ETH/USDT"]

    usage = await online.data("{ llmUsage { engine model calls inputTokens remainingTokens } }")
    assert usage["llmUsage"]["engine"] == "GEMINI" and usage["llmUsage"]["calls"] == 1
    assert usage["llmUsage"]["inputTokens"] == preview["inputTokens"]


async def test_a_generation_that_stays_invalid_is_a_clear_error_and_saves_nothing(
    online: Caller, gemini: FakeGemini
) -> None:
    bad = answer(generated(filter_code="import os\nreturn True"))
    gemini.then(bad, bad)
    body = await online.gql(GENERATE, {"d": "anything"})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GENERATION_FAILED"
    assert error["extensions"]["problems"] == [
        "filter_code: line 1, column 1: imports are not allowed"
    ]
    assert await Trader.all().count() == 0


async def test_offline_a_sentence_gives_an_adapted_template(offline: Caller) -> None:
    preview = (await offline.data(GENERATE, {"d": "RSI under 25 on the 4h"}))["generateTrader"]
    assert (preview["engine"], preview["template"]) == ("template", "rsi_mean_reversion")
    assert preview["interval"] == "4h" and "r[-1] < 25" in preview["filterCode"]
    assert preview["adaptations"] == [
        "template: RSI mean reversion",
        "RSI threshold: 30 -> 25",
        "interval: 1h -> 4h",
    ]
    assert preview["model"] is None and preview["fallbackReason"] is None
    usage = (await offline.data("{ llmUsage { engine model calls } }"))["llmUsage"]
    assert usage == {"engine": "RULES", "model": None, "calls": 0}


async def test_every_template_creates_a_working_trader(offline: Caller) -> None:
    templates = (
        await offline.data(
            "{ strategyTemplates { key name interval symbols filterCode filterDescription "
            "strategyInstructions indicators { name params { name value } } "
            "riskParameters { stopLoss takeProfit maxPositions positionSizePercent maxDrawdown "
            "minRiskReward } parameters { name default minimum maximum } } }"
        )
    )["strategyTemplates"]
    assert len(templates) >= 6
    for template in templates:
        saved = await offline.data(
            SAVE,
            {
                "input": {
                    "suggestedName": template["name"],
                    "filterCode": template["filterCode"],
                    "filterDescription": template["filterDescription"],
                    "strategyInstructions": template["strategyInstructions"],
                    "interval": template["interval"],
                    "symbols": template["symbols"],
                    "indicators": template["indicators"],
                    "riskParameters": template["riskParameters"],
                }
            },
        )
        assert saved["createTraderFromGeneration"]["filter"]["code"] == template["filterCode"]
    assert await Trader.all().count() == len(templates)


async def test_an_edited_preview_with_a_bad_value_names_its_field(offline: Caller) -> None:
    preview = (await offline.data(GENERATE, {"d": "EMA crossover"}))["generateTrader"]
    edited = save_input(preview) | {
        "riskParameters": {**preview["riskParameters"], "stopLoss": "120"},
        "filterCode": "import os\nreturn True",
    }
    body = await offline.gql(SAVE, {"input": edited})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert {f["field"] for f in error["extensions"]["fields"]} == {
        "filterCode",
        "riskParameters.stopLoss",
    }
    assert await Trader.all().count() == 0


SIGNALS = """
query($id: ID!) { signals(traderId: $id) { nodes {
  status statusReason
  analysis { decision engine confidence keyLevels { entry stopLoss takeProfit } riskReward
             inputTokens repairs invalidReason fallbackReason outcome }
  decisions { decision engine }
  transitions { fromStatus toStatus reason at }
} } }
"""


async def stored_signal(owner_id: int) -> tuple[Trader, Signal]:
    trader = await Trader.create(owner_id=owner_id, name="t", interval="1h")
    now = datetime.now(UTC)
    signal = Signal(
        id=uuid.uuid4(),
        trader_id=trader.id,
        owner_id=owner_id,
        symbol="BTC/USDT",
        interval="1h",
        side=Side.LONG,
        price=Decimal(100),
        candle_time=to_ms(now) - 3_600_000,
        created_at=to_ms(now),
    )
    await DbSignalRepository().add(signal)
    return trader, signal


def decision(signal: Signal, action: DecisionAction, confidence: float, at: int) -> Decision:
    return Decision(
        id=uuid.uuid4(),
        signal_id=signal.id,
        trader_id=signal.trader_id,
        action=action,
        direction=Side.LONG,
        confidence=confidence,
        reasoning="because",
        created_at=at,
        levels=KeyLevels(Decimal(100), Decimal(98), (Decimal(104), Decimal(106))),
        risk_reward=Decimal(2),
        engine=AnalysisEngineKind.GEMINI,
        model="gemini-2.5-flash",
        input_tokens=1200,
        as_of=at,
    )


async def test_a_signal_shows_its_analysis_decisions_and_history(offline: Caller) -> None:
    trader, signal = await stored_signal(offline.user_id)
    decisions, signals = DbDecisionRepository(), DbSignalRepository()
    first = decision(signal, DecisionAction.GOOD_SETUP, 0.55, signal.created_at)
    await decisions.add(first)
    watching = await signals.transition(
        signal, SignalStatus.WATCHING, "watch", None, at=first.created_at
    )
    assert watching is not None
    second = decision(signal, DecisionAction.ENTER_TRADE, 0.7, signal.created_at + 3_600_000)
    await decisions.add(second)
    await signals.transition(watching, SignalStatus.READY, "enter", None, at=second.created_at)

    [node] = (await offline.data(SIGNALS, {"id": str(trader.id)}))["signals"]["nodes"]
    assert node["status"] == "READY" and node["statusReason"] == "enter"
    assert node["analysis"] == {
        "decision": "ENTER_TRADE",
        "engine": "GEMINI",
        "confidence": 0.7,
        "keyLevels": {"entry": "100", "stopLoss": "98", "takeProfit": ["104", "106"]},
        "riskReward": "2",
        "inputTokens": 1200,
        "repairs": 0,
        "invalidReason": None,
        "fallbackReason": None,
        "outcome": None,
    }
    assert node["decisions"] == [
        {"decision": "GOOD_SETUP", "engine": "GEMINI"},
        {"decision": "ENTER_TRADE", "engine": "GEMINI"},
    ]
    assert [(t["fromStatus"], t["toStatus"], t["reason"]) for t in node["transitions"]] == [
        ("NEW", "WATCHING", "watch"),
        ("WATCHING", "READY", "enter"),
    ]


async def test_a_move_landing_between_a_signals_reads_is_not_shown_with_the_old_status(
    offline: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signal's row and its transitions are read by two queries of one request; the
    analyzer's move (here made to land between them, through the real repository) must not
    show a NEW signal with a change out of NEW. The next read shows the move whole."""
    trader, signal = await stored_signal(offline.user_id)
    read_transitions = analysis.transitions_by_signal

    async def moved_meanwhile(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
        await DbSignalRepository().transition(
            signal, SignalStatus.READY, "enter", None, at=signal.created_at
        )
        return await read_transitions(ids)

    monkeypatch.setattr(analysis, "transitions_by_signal", moved_meanwhile)
    [node] = (await offline.data(SIGNALS, {"id": str(trader.id)}))["signals"]["nodes"]
    assert (node["status"], node["transitions"]) == ("NEW", [])

    monkeypatch.undo()
    [node] = (await offline.data(SIGNALS, {"id": str(trader.id)}))["signals"]["nodes"]
    assert node["status"] == "READY"
    assert [(t["fromStatus"], t["toStatus"]) for t in node["transitions"]] == [("NEW", "READY")]


QUALITY = """
query($id: ID!, $from: DateTime) { analysisQuality(traderId: $id, from: $from) {
  horizonCandles
  counts { engine decision decisions pending unlabelled target stop neither hitRate }
  calibration { engine low high decisions hits hitRate }
} }
"""


async def test_analysis_quality_counts_and_calibrates_per_engine(offline: Caller) -> None:
    trader, signal = await stored_signal(offline.user_id)
    repository = DbDecisionRepository()
    base = signal.created_at
    outcomes = [
        (DecisionAction.ENTER_TRADE, 0.9, Outcome.TARGET),
        (DecisionAction.ENTER_TRADE, 0.7, Outcome.STOP),
        (DecisionAction.BAD_SETUP, 0.1, Outcome.STOP),
        (DecisionAction.BAD_SETUP, 0.3, Outcome.TARGET),
        (DecisionAction.BAD_SETUP, 0.2, None),
    ]
    for index, (action, confidence, outcome) in enumerate(outcomes):
        made = decision(signal, action, confidence, base + index)
        await repository.add(made)
        if outcome is not None:
            await repository.record_outcome(made.id, Label(outcome, 3, base))
    old = decision(signal, DecisionAction.ENTER_TRADE, 0.9, base - 10 * 86_400_000)
    await repository.add(old)

    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    quality = (await offline.data(QUALITY, {"id": str(trader.id), "from": since}))[
        "analysisQuality"
    ]
    assert quality["horizonCandles"] == 24
    assert quality["counts"] == [
        {
            "engine": "gemini",
            "decision": "ENTER_TRADE",
            "decisions": 2,
            "pending": 0,
            "unlabelled": 0,
            "target": 1,
            "stop": 1,
            "neither": 0,
            "hitRate": 0.5,
        },
        {
            "engine": "gemini",
            "decision": "BAD_SETUP",
            "decisions": 3,
            "pending": 1,
            "unlabelled": 0,
            "target": 1,
            "stop": 1,
            "neither": 0,
            "hitRate": 0.5,
        },
    ]
    assert [(b["decisions"], b["hits"]) for b in quality["calibration"]] == [
        (1, 0),
        (1, 1),
        (0, 0),
        (1, 0),
        (1, 1),
    ]
    everything = (await offline.data(QUALITY, {"id": str(trader.id)}))["analysisQuality"]
    assert everything["counts"][0]["decisions"] == 3


async def test_another_users_trader_is_not_found(offline: Caller) -> None:
    other, _ = await create_user("bob")
    trader, _ = await stored_signal(other.id)
    body = await offline.gql(QUALITY, {"id": str(trader.id)})
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert await SignalRow.filter(trader_id=trader.id).count() == 1
