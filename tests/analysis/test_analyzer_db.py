"""The analyzer on the database with the real Gemini client and the fake server: decisions
stored on their signals with their tokens, and every kind of model garbage a recorded
rejection that trades nothing, while the stage goes on with the next signal."""

from __future__ import annotations

import dataclasses
import uuid
from collections import deque
from collections.abc import Callable
from decimal import Decimal

import pytest

from app.core.events import InProcessEventBus
from app.db.models import Decision as DecisionRow
from app.db.models import LlmCall, Signal, SignalTransition, Trader, User
from app.domain.decision import AnalysisEngineKind, Decision, DecisionAction, KeyLevels
from app.domain.decision_quality import Outcome
from app.domain.enums import Side, SignalStatus
from app.domain.llm import CallOutcome
from app.domain.signal_lifecycle import InvalidTransitionError
from app.domain.trader_spec import TraderSpec
from app.engine.analysis.context import ContextBuilder
from app.engine.analysis.gemini import GeminiAnalysisEngine
from app.engine.analysis.rules import RuleAnalysisEngine
from app.engine.analyzer import Analyst, AnalyzerStage
from app.engine.clock import RealtimeClock, ReplayClock, to_datetime
from app.engine.handoff import Handed
from app.engine.klines import KlineStore
from app.engine.llm.client import LlmLimits
from app.engine.memory import CollectingNotifier, MemoryTradeStore
from app.engine.outcomes import OutcomeStage
from app.services.analysis import analysis_quality
from app.services.repositories.decisions import DbDecisionRepository
from app.services.repositories.llm import DbCallLog, DbResponseCache
from app.services.repositories.signals import DbSignalRepository
from app.services.repositories.traders import DbTraderRepository, spec_of
from app.services.traders import TraderManager
from tests.analysis.conftest import (
    HOUR,
    START,
    Clients,
    scripted_rows,
    signal_on,
    simulated_store,
    view_of,
)
from tests.fakes.gemini import (
    FakeGemini,
    Received,
    Reply,
    analysis_answer,
    answer,
    blocked_prompt,
    rate_limited,
    server_error,
    slow,
    stopped,
    trade,
    wrong_side,
)

LIMITS = LlmLimits(timeout_seconds=0.5, initial_backoff=0.01, max_backoff=0.02)


def missing_fields(request: Received) -> Reply:
    body = trade(request)
    del body["decision"]
    return answer(body)


def wrong_types(request: Received) -> Reply:
    body = trade(request)
    body["key_levels"]["entry"] = "around the current price"
    return answer(body)


GARBAGE: dict[str, list[Reply | Callable[[Received], Reply]]] = {
    "invalid json": [answer("{not json"), answer("BUY NOW")],
    "missing fields": [missing_fields, missing_fields],
    "wrong types": [wrong_types, wrong_types],
    "levels on the wrong side": [wrong_side, wrong_side],
    "refusal": [blocked_prompt("SAFETY")],
    "safety stop": [stopped("SAFETY")],
    "repeated 500s": [server_error(500)] * 4,
    "timeout": [slow(answer("{}"), 5.0)],
    "429 then success": [rate_limited("0.05s"), analysis_answer],
}


class Wiring:
    def __init__(self, clients: Clients) -> None:
        self.signals = DbSignalRepository()
        self.decisions = DbDecisionRepository()
        self.traders = DbTraderRepository(TraderManager(InProcessEventBus()))
        self.notifier = CollectingNotifier()
        clock = RealtimeClock()
        client = clients.client(LIMITS, calls=DbCallLog(), cache=DbResponseCache())
        engine = GeminiAnalysisEngine(client, "gemini-2.5-flash", RuleAnalysisEngine())
        contexts = ContextBuilder(self.decisions, MemoryTradeStore(), clock)
        analyst = Analyst(
            engine, contexts, self.decisions, self.signals, self.traders, self.notifier, clock
        )
        self.stage = AnalyzerStage(analyst, owner="engine-1")


async def trader(owner: User, name: str) -> TraderSpec:
    row = await Trader.create(
        owner=owner, name=name, interval="1h", filter_code="return True", stop_loss=Decimal(5)
    )
    return spec_of(row)


async def test_an_analysis_is_stored_on_its_signal_with_its_tokens(
    db: str, gemini: FakeGemini, clients: Clients
) -> None:
    owner = await User.create(name="alice")
    wiring = Wiring(clients)
    view = view_of(simulated_store())
    spec = await trader(owner, "dip buyer")
    signal = signal_on(spec, view)
    assert await wiring.signals.add(signal)
    gemini.then(analysis_answer)

    assert await wiring.stage.run(view) == 1
    row = await Signal.get(id=signal.id)
    assert row.status == SignalStatus.READY
    assert row.lease_owner is None and row.lease_until is None
    [decision] = await DecisionRow.filter(signal_id=signal.id)
    [call] = await LlmCall.filter(signal_id=signal.id)
    assert decision.engine == AnalysisEngineKind.GEMINI
    assert decision.action == DecisionAction.ENTER_TRADE
    assert (decision.input_tokens, decision.output_tokens) == (
        call.input_tokens,
        call.output_tokens,
    )
    assert decision.input_tokens > 0 and decision.prompt_hash == call.prompt_hash
    assert call.owner_id == owner.id and call.trader_id == spec.id
    [moved] = await SignalTransition.filter(signal_id=signal.id)
    assert (moved.from_status, moved.to_status) == (SignalStatus.NEW, SignalStatus.READY)
    assert "enter_trade by gemini (gemini-2.5-flash)" in (moved.reason or "")
    levels = await wiring.decisions.levels_for([signal.with_status(SignalStatus.READY)])
    assert levels[signal.id].entry == decision.entry
    assert await wiring.stage.run(view) == 0


async def test_garbage_from_the_model_trades_nothing_and_the_stage_goes_on(
    db: str, gemini: FakeGemini, clients: Clients
) -> None:
    owner = await User.create(name="alice")
    wiring = Wiring(clients)
    view = view_of(simulated_store())
    scripts: dict[str, deque[Reply | Callable[[Received], Reply]]] = {}
    signals = {}
    for kind, replies in GARBAGE.items():
        spec = await trader(owner, kind)
        signals[kind] = signal_on(spec, view)
        assert await wiring.signals.add(signals[kind])
        scripts[kind] = deque(replies)

    def respond(request: Received) -> Reply:
        name = request.prompt.split("of the trader '", 1)[1].split("'", 1)[0]
        reply = scripts[name].popleft()
        return reply(request) if callable(reply) else reply

    gemini.respond = respond
    assert await wiring.stage.run(view) == len(GARBAGE)

    for kind, signal in signals.items():
        row = await Signal.get(id=signal.id)
        [decision] = await DecisionRow.filter(signal_id=signal.id)
        calls = await LlmCall.filter(signal_id=signal.id).order_by("id")
        assert calls, kind
        if kind == "429 then success":
            assert row.status == SignalStatus.READY
            assert [c.outcome for c in calls] == [CallOutcome.RATE_LIMITED, CallOutcome.OK]
            continue
        assert row.status == SignalStatus.REJECTED, kind
        assert decision.action == DecisionAction.BAD_SETUP, kind
        assert decision.invalid_reason, kind
        assert decision.input_tokens == sum(c.input_tokens for c in calls), kind
        assert scripts[kind] == deque(), kind
    assert (
        not await Signal.filter(status=SignalStatus.READY)
        .exclude(id=signals["429 then success"].id)
        .exists()
    )

    # Recorded and handed over as the signal stage does (the store was looked at just now).
    late = signal_on(await trader(owner, "after the storm"), view)
    leased_to, until = wiring.stage.handoff.lease(RealtimeClock().now())
    await wiring.signals.add_many([late], (leased_to, until))
    wiring.stage.handoff.put([Handed(late)], until)
    gemini.respond = analysis_answer
    assert await wiring.stage.run(view) == 1
    assert (await Signal.get(id=late.id)).status == SignalStatus.READY


async def test_a_leased_signal_is_not_claimed_twice_and_a_parked_one_waits(db: str) -> None:
    owner = await User.create(name="alice")
    signals = DbSignalRepository()
    view = view_of(simulated_store())
    spec = await trader(owner, "x")
    signal = signal_on(spec, view)
    await signals.add(signal)
    [claimed] = await signals.claim(SignalStatus.NEW, "a", 1000, 5000, 10)
    assert await signals.claim(SignalStatus.NEW, "b", 2000, 6000, 10) == []
    watching = await signals.transition(
        claimed, SignalStatus.WATCHING, "watch", "a", at=3000, not_before=10_000
    )
    assert watching is not None
    assert await signals.claim(SignalStatus.WATCHING, "b", 9999, 20_000, 10) == []
    [again] = await signals.claim(SignalStatus.WATCHING, "b", 10_000, 20_000, 10)
    assert await signals.defer_many([(again, "a", 30_000)]) == set()
    stale = dataclasses.replace(again, status=SignalStatus.NEW)  # read before it moved
    assert await signals.defer_many([(stale, "b", 30_000)]) == set()
    assert await signals.defer_many([(again, "b", 30_000)]) == {again.id}
    assert await signals.claim(SignalStatus.WATCHING, "c", 29_999, 40_000, 10) == []
    with pytest.raises(InvalidTransitionError):
        await signals.transition(again, SignalStatus.NEW, "back", None, at=0)
    moves = await SignalTransition.filter(signal_id=signal.id).values_list(
        "from_status", "to_status", "at"
    )
    assert [(a, b) for a, b, _ in moves] == [(SignalStatus.NEW, SignalStatus.WATCHING)]


async def test_the_outcome_stage_judges_stored_decisions_on_later_candles(db: str) -> None:
    owner = await User.create(name="alice")
    spec = await trader(owner, "x")
    store = KlineStore(depth=200, source_id="scripted")
    store.append("BTC/USDT", "1h", scripted_rows([100.0] * 80))
    at = START + 80 * HOUR
    view = view_of(store, at)
    signal = signal_on(spec, view)
    await DbSignalRepository().add(signal)
    decisions = DbDecisionRepository()
    made = Decision(
        id=uuid.uuid4(),
        signal_id=signal.id,
        trader_id=spec.id,
        action=DecisionAction.BAD_SETUP,
        direction=Side.LONG,
        confidence=0.3,
        reasoning="weak",
        created_at=at,
        levels=KeyLevels(Decimal(100), Decimal(98), (Decimal(104),)),
        as_of=at,
    )
    await decisions.add(made)
    clock = ReplayClock(at)
    stage = OutcomeStage(decisions, clock, horizon=24)
    assert await stage.run(view) == 1
    assert await stage.run(view) == 0
    row = await DecisionRow.get(id=made.id)
    assert row.outcome is None and row.outcome_check_at == to_datetime(at + HOUR)

    store.append("BTC/USDT", "1h", scripted_rows([101.0, 104.5], start=at))
    clock.advance(at + 2 * HOUR)
    assert await stage.run(view_of(store, at + 2 * HOUR)) == 1
    row = await DecisionRow.get(id=made.id)
    assert (row.outcome, row.outcome_candles, row.outcome_at) == (
        Outcome.TARGET,
        2,
        to_datetime(at + HOUR),
    )
    report = await analysis_quality(spec.id, None, None)
    [counts] = report.counts
    assert (counts.action, counts.target, counts.hit_rate) == (DecisionAction.BAD_SETUP, 1, 1.0)
    assert await stage.run(view_of(store, at + 2 * HOUR)) == 0
