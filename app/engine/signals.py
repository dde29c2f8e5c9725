"""SignalManager, the signal stage: each trader's screening outcome becomes signals, and a
trader whose filter keeps failing is stopped.

A condition that stays true must not raise a signal at every candle, so a symbol gets a
signal when it matches now, did not match at the trader's previous run, and the trader holds
no active signal on it. The store enforces the last rule itself (in the database, a partial
unique index), so two engine processes racing on one trader leave one signal: the loser's
insert is refused and it carries on with the next symbol.

The previous run's matches are kept in memory, per trader and per screening fingerprint:
after a restart every current match counts as new, and the active-signal rule is what keeps
that from duplicating a signal.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from app.domain.bounds import cap_indicators
from app.domain.signal import Signal, price_of
from app.domain.signal_rules import (
    RunHistory,
    after_failure,
    after_success,
    newly_matched,
    should_stop,
    signals_due,
)
from app.domain.trader_spec import TraderSpec
from app.engine.clock import Clock
from app.engine.handoff import Handed, Handoff
from app.engine.ports import Notifier, SignalRepository, TraderRepository
from app.engine.sandbox import FilterMatch, FilterOutcome

log = logging.getLogger(__name__)

DEFAULT_FAILURE_LIMIT = 3


def new_signal(spec: TraderSpec, match: FilterMatch, now: int) -> Signal:
    return Signal(
        id=uuid.uuid4(),
        trader_id=spec.id,
        owner_id=spec.owner_id,
        symbol=match.symbol,
        interval=spec.interval,
        side=match.side,
        price=price_of(match.price),
        candle_time=match.candle_time,
        created_at=now,
        score=match.score,
        indicators=cap_indicators(match.indicators),
    )


class SignalManager:
    def __init__(
        self,
        signals: SignalRepository,
        traders: TraderRepository,
        notifier: Notifier,
        clock: Clock,
        failure_limit: int = DEFAULT_FAILURE_LIMIT,
        handoff: Handoff | None = None,
    ) -> None:
        self.signals = signals
        self.handoff = handoff
        self.traders = traders
        self.notifier = notifier
        self.clock = clock
        self.failure_limit = failure_limit
        self._history: dict[uuid.UUID, tuple[str, RunHistory]] = {}

    def history(self, spec: TraderSpec) -> RunHistory:
        """The trader's previous runs, forgotten as soon as what it screens changes."""
        fingerprint, history = self._history.get(spec.id, ("", RunHistory()))
        return history if fingerprint == spec.screening_fingerprint() else RunHistory()

    def forget(self, trader_id: uuid.UUID) -> None:
        """Drop a trader's run history, as a restart of the engine would."""
        self._history.pop(trader_id, None)

    async def record_run(self, spec: TraderSpec, outcome: FilterOutcome) -> list[Signal]:
        """`record_runs` of one trader's run."""
        return await self.record_runs([(spec, outcome)])

    async def record_runs(self, runs: Sequence[tuple[TraderSpec, FilterOutcome]]) -> list[Signal]:
        """Apply the screening runs of a close's traders: new signals, or one more failure;
        a run the sandbox lost (no fault of the trader's, no complete result) changes
        nothing. The new signals of all of them are checked and recorded together (one read
        of the active ones, one insert), and handed to the analysis with their traders; the
        signals recorded."""
        matched: list[tuple[TraderSpec, RunHistory, dict[str, FilterMatch]]] = []
        for spec, outcome in runs:
            if outcome.lost is not None:
                log.warning("trader %s run lost: %s", spec.id, outcome.lost)
            elif outcome.failure is not None:
                await self._failed(spec, outcome.failure)
            else:
                by_symbol = {match.symbol: match for match in outcome.matches}
                matched.append((spec, self.history(spec), by_symbol))
        candidates = {
            spec.id: newly_matched(history, by_symbol) for spec, history, by_symbol in matched
        }
        active = await self.signals.active_symbols(
            {trader: symbols for trader, symbols in candidates.items() if symbols}
        )
        now = self.clock.now()
        due = {
            spec.id: [
                new_signal(spec, by_symbol[symbol], now)
                for symbol in signals_due(history, candidates[spec.id], active.get(spec.id, set()))
            ]
            for spec, history, by_symbol in matched
        }
        lease = None if self.handoff is None else self.handoff.lease(now)
        added = await self.signals.add_many(
            [signal for made in due.values() for signal in made], lease
        )
        created: list[Handed] = []
        for spec, _, by_symbol in matched:
            self._history[spec.id] = (spec.screening_fingerprint(), after_success(by_symbol))
            mine = [signal for signal in due[spec.id] if signal.id in added]
            for signal in due[spec.id]:
                if signal.id not in added:
                    log.info(
                        "trader %s already holds an active signal on %s", spec.id, signal.symbol
                    )
            if mine:
                await self.notifier.signals_created(spec, mine)
            created.extend(Handed(signal, spec, earlier=()) for signal in mine)
        if self.handoff is not None and lease is not None:
            self.handoff.put(created, lease[1])
        return [handed.signal for handed in created]

    async def _failed(self, spec: TraderSpec, failure: str) -> None:
        history = after_failure(self.history(spec))
        self._history[spec.id] = (spec.screening_fingerprint(), history)
        log.info("trader %s filter failed (%d): %s", spec.id, history.failures, failure)
        if should_stop(history, self.failure_limit):
            self.forget(spec.id)
            reason = f"filter failed {history.failures} times in a row: {failure}"
            await self.traders.set_error(spec, reason)
