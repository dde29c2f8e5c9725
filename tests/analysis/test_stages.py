"""The analyzer, the signal monitor and the outcome stage on scripted candles, wired as a
backtest wires them (memory repositories, a replay clock), drained after each close."""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Collection
from decimal import Decimal

import pytest

from app.domain.decision import AnalysisEngineKind, Decision, DecisionAction, KeyLevels
from app.domain.decision_quality import Label, Outcome
from app.domain.enums import SignalStatus
from app.domain.signal import Signal
from app.domain.signal_lifecycle import InvalidTransitionError
from app.engine.analysis.base import AnalysisContext
from app.engine.handoff import Parked
from app.engine.market import StoreView
from app.engine.signal_monitor import SignalMonitorStage
from tests.analysis.conftest import HOUR, START, Backtest, scripted_rows, signal_on, spec

FLAT = [100.0] * 80


class ScriptedEngine:
    """Answers from a script of actions; levels at the context's price, a 2% stop and a 4%
    first target."""

    kind = AnalysisEngineKind.RULES

    def __init__(self, *actions: DecisionAction, confidence: float = 0.6) -> None:
        self.actions = deque(actions)
        self.confidence = confidence
        self.seen: list[AnalysisContext] = []

    async def analyze(self, context: AnalysisContext) -> Decision:
        self.seen.append(context)
        price = context.price
        return Decision(
            id=uuid.uuid4(),
            signal_id=context.signal.id,
            trader_id=context.trader.id,
            action=self.actions.popleft() if self.actions else DecisionAction.GOOD_SETUP,
            direction=context.signal.side,
            confidence=self.confidence,
            reasoning="scripted",
            created_at=context.now,
            levels=KeyLevels(price, price * Decimal("0.98"), (price * Decimal("1.04"),)),
            as_of=context.as_of,
        )


async def one_new_signal(
    engine: ScriptedEngine, rechecks: int = 5
) -> tuple[Backtest, Signal, StoreView]:
    """A new signal at 100 on the close of 80 flat candles, not yet analyzed."""
    trader = spec()
    backtest = Backtest(engine, [trader], rechecks=rechecks)
    view = backtest.reveal("BTC/USDT", scripted_rows(FLAT))
    signal = signal_on(trader, view)
    await backtest.signals.add(signal)
    return backtest, signal, view


async def started(engine: ScriptedEngine, rechecks: int = 5) -> tuple[Backtest, Signal, StoreView]:
    """A signal at 100 on the close of 80 flat candles, analyzed."""
    backtest, signal, view = await one_new_signal(engine, rechecks)
    await backtest.drain(view)
    return backtest, signal, view


def next_close(backtest: Backtest, price: float) -> StoreView:
    """The next hourly candle closes at `price`."""
    last = backtest.store.last_time("BTC/USDT", "1h")
    assert last is not None
    return backtest.reveal("BTC/USDT", scripted_rows([price], start=last + HOUR))


def status(backtest: Backtest, signal: Signal) -> SignalStatus:
    return backtest.signals.signals[signal.id].status


async def test_a_watched_signal_is_rechecked_at_the_next_candle_and_not_before() -> None:
    engine = ScriptedEngine(DecisionAction.GOOD_SETUP, DecisionAction.ENTER_TRADE)
    backtest, signal, view = await started(engine)
    assert status(backtest, signal) == SignalStatus.WATCHING
    assert await backtest.drain(view) == 0
    assert len(engine.seen) == 1

    await backtest.drain(next_close(backtest, 100.5))
    assert len(engine.seen) == 2
    recheck = engine.seen[1]
    assert recheck.recheck
    assert [d.action for d in recheck.earlier] == [DecisionAction.GOOD_SETUP]
    assert recheck.as_of == START + (len(FLAT) + 1) * HOUR
    assert status(backtest, signal) == SignalStatus.ENTERED  # ready, and traded at once
    analysed = backtest.signals.transitions[:2]
    assert [(t.source, t.target) for t in backtest.signals.transitions] == [
        (SignalStatus.NEW, SignalStatus.WATCHING),
        (SignalStatus.WATCHING, SignalStatus.READY),
        (SignalStatus.READY, SignalStatus.ENTERED),
    ]
    assert [t.at for t in backtest.signals.transitions] == [
        START + len(FLAT) * HOUR,
        START + (len(FLAT) + 1) * HOUR,
        START + (len(FLAT) + 1) * HOUR,
    ]
    assert all("by rules" in (t.reason or "") for t in analysed)
    assert [s.status for s in backtest.notifier.changed] == [
        SignalStatus.WATCHING,
        SignalStatus.READY,
        SignalStatus.ENTERED,
    ]


async def test_a_watched_signal_this_process_did_not_park_is_found_in_the_store() -> None:
    """The analysis parks a watched signal in memory for the monitor (`Parked`); one parked
    before a restart, or by another process, is claimed from the store at its next close."""
    engine = ScriptedEngine(DecisionAction.GOOD_SETUP, DecisionAction.BAD_SETUP)
    backtest, signal, _ = await started(engine)
    monitor = next(s for s in backtest.workflow.stages if isinstance(s, SignalMonitorStage))
    monitor.analyst.parked = Parked()  # as after a restart
    await backtest.drain(next_close(backtest, 100.5))
    assert len(engine.seen) == 2 and engine.seen[1].recheck
    assert status(backtest, signal) == SignalStatus.REJECTED


async def test_a_parked_signal_is_rechecked_with_the_decisions_it_was_parked_with() -> None:
    """The analysis parks a watched signal with its decisions, so its re-check does not
    read them back (nor does the analysis of a signal the screen just handed over)."""
    engine = ScriptedEngine(DecisionAction.GOOD_SETUP, DecisionAction.ENTER_TRADE)
    backtest, signal, _ = await started(engine)
    read: list[uuid.UUID] = []
    for_signals = backtest.decisions.for_signals

    async def spied(signal_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, list[Decision]]:
        read.extend(signal_ids)
        return await for_signals(signal_ids)

    backtest.decisions.for_signals = spied  # type: ignore[method-assign]
    await backtest.drain(next_close(backtest, 100.5))
    assert [d.action for d in engine.seen[1].earlier] == [DecisionAction.GOOD_SETUP]
    assert status(backtest, signal) == SignalStatus.ENTERED
    assert signal.id not in read


async def test_a_parked_signal_moved_meanwhile_is_not_rechecked() -> None:
    engine = ScriptedEngine(DecisionAction.GOOD_SETUP)
    backtest, signal, _ = await started(engine)
    watched = backtest.signals.signals[signal.id]
    cancelled = await backtest.signals.transition(
        watched, SignalStatus.CANCELLED, "by its owner", None, at=backtest.clock.now()
    )
    assert cancelled is not None
    await backtest.drain(next_close(backtest, 100.5))
    assert len(engine.seen) == 1
    assert status(backtest, signal) == SignalStatus.CANCELLED


@pytest.mark.parametrize(("price", "move"), [(94.5, "-5.50%"), (105.6, "+5.60%")])
async def test_a_move_of_more_than_5_percent_cancels_without_a_model_call(
    price: float, move: str
) -> None:
    engine = ScriptedEngine(DecisionAction.GOOD_SETUP)
    backtest, signal, _ = await started(engine)
    await backtest.drain(next_close(backtest, price))
    assert status(backtest, signal) == SignalStatus.CANCELLED
    assert len(engine.seen) == 1
    reason = backtest.signals.signals[signal.id].status_reason or ""
    assert f"moved {move} from the signal's 100.0 (more than 5%)" in reason


async def test_a_smaller_move_is_rechecked() -> None:
    engine = ScriptedEngine(DecisionAction.GOOD_SETUP, DecisionAction.BAD_SETUP)
    backtest, signal, _ = await started(engine)
    await backtest.drain(next_close(backtest, 95.5))
    assert len(engine.seen) == 2
    assert status(backtest, signal) == SignalStatus.REJECTED
    await backtest.drain(next_close(backtest, 95.0))
    assert len(engine.seen) == 2


async def test_a_signal_still_only_watched_expires_after_its_rechecks() -> None:
    engine = ScriptedEngine()
    backtest, signal, _ = await started(engine, rechecks=3)
    for price in (100.2, 100.4):
        await backtest.drain(next_close(backtest, price))
        assert status(backtest, signal) == SignalStatus.WATCHING
    await backtest.drain(next_close(backtest, 100.6))
    assert status(backtest, signal) == SignalStatus.EXPIRED
    assert (
        backtest.signals.signals[signal.id].status_reason == "still only watched after 3 re-checks"
    )
    assert len(engine.seen) == 4
    await backtest.drain(next_close(backtest, 100.8))
    assert len(engine.seen) == 4


async def test_a_signal_whose_candles_stop_expires() -> None:
    engine = ScriptedEngine()
    backtest, signal, view = await started(engine)
    backtest.clock.advance(backtest.clock.now() + 2 * HOUR)
    await backtest.drain(view)
    assert status(backtest, signal) == SignalStatus.EXPIRED
    assert len(engine.seen) == 1


async def test_decisions_are_judged_on_the_candles_that_follow() -> None:
    engine = ScriptedEngine(DecisionAction.ENTER_TRADE)
    backtest, signal, _ = await started(engine)
    [decision] = backtest.decisions_of(signal)
    assert decision.id not in backtest.decisions.outcomes
    for price in (101.0, 102.5, 103.0):
        await backtest.drain(next_close(backtest, price))
        assert decision.id not in backtest.decisions.outcomes
    await backtest.drain(next_close(backtest, 104.5))
    label = backtest.decisions.outcomes[decision.id]
    assert label == Label(Outcome.TARGET, 4, START + (len(FLAT) + 3) * HOUR)


async def test_a_rejected_setup_is_judged_too() -> None:
    engine = ScriptedEngine(DecisionAction.BAD_SETUP)
    backtest, signal, _ = await started(engine)
    await backtest.drain(next_close(backtest, 97.0))
    [decision] = backtest.decisions_of(signal)
    assert backtest.decisions.outcomes[decision.id].outcome == Outcome.STOP


async def test_only_the_lifecycles_moves_are_written() -> None:
    engine = ScriptedEngine(DecisionAction.ENTER_TRADE)
    backtest, signal, _ = await started(engine)
    entered = backtest.signals.signals[signal.id]
    with pytest.raises(InvalidTransitionError):
        await backtest.signals.transition(entered, SignalStatus.WATCHING, "x", None, at=0)
    assert status(backtest, signal) == SignalStatus.ENTERED


async def test_the_analyzer_claims_and_records_nothing_while_a_screen_runs() -> None:
    engine = ScriptedEngine(DecisionAction.ENTER_TRADE)
    backtest, signal, view = await one_new_signal(engine)
    with backtest.workflow.gate.closed():  # as Workflow.on_close holds it during a screen
        drained = asyncio.create_task(backtest.drain(view))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not engine.seen, "claimed and analyzed meanwhile"
        assert not drained.done() and not backtest.decisions.decisions
        assert status(backtest, signal) == SignalStatus.NEW
    assert await drained >= 1
    assert len(engine.seen) == 1 and status(backtest, signal) == SignalStatus.ENTERED
    assert len(backtest.decisions.decisions) == 1


class HeldEngine(ScriptedEngine):
    """Answers once `answer` is set, telling `asked` when it has been asked."""

    def __init__(self, *actions: DecisionAction) -> None:
        super().__init__(*actions)
        self.asked, self.answer = asyncio.Event(), asyncio.Event()

    async def analyze(self, context: AnalysisContext) -> Decision:
        self.asked.set()
        await self.answer.wait()
        return await super().analyze(context)


async def test_an_answer_that_comes_during_a_screen_is_recorded_after_it() -> None:
    engine = HeldEngine(DecisionAction.ENTER_TRADE)
    backtest, signal, view = await one_new_signal(engine)
    drained = asyncio.create_task(backtest.drain(view))
    await engine.asked.wait()
    with backtest.workflow.gate.closed():
        engine.answer.set()
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(engine.seen) == 1 and not backtest.decisions.decisions
        assert status(backtest, signal) == SignalStatus.NEW  # claimed, not yet moved
    assert await drained >= 1
    assert status(backtest, signal) == SignalStatus.ENTERED
