"""In-memory stand-ins for the engine's ports, for backtests (freqtrade's `LocalTrade` beside
`Trade`): the stages run unchanged on them, and nothing reaches the database or the bus.

`MemorySignalRepository` keeps the database's rules: at most one active signal per trader
and symbol (the second `add` is refused), leases that only a free or expired claim takes,
and only the transitions the lifecycle allows, each recorded. The decision repository, the
model call log and the response cache keep theirs (`app.engine.llm` for the last two).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace

from app.domain.decision import Decision, DecisionAction, KeyLevels
from app.domain.decision_quality import Label
from app.domain.enums import SignalStatus
from app.domain.llm import LlmCall
from app.domain.signal import Signal
from app.domain.signal_lifecycle import check_transition
from app.domain.trader_spec import TraderSpec
from app.engine.llm.ports import CachedAnswer
from app.engine.ports import DueOutcome


class MemoryTraderRepository:
    def __init__(self, specs: Iterable[TraderSpec]) -> None:
        self.specs = {spec.id: spec for spec in specs}
        self.errors: dict[uuid.UUID, str] = {}

    async def running(self, interval: str) -> list[TraderSpec]:
        return [
            spec
            for spec in self.specs.values()
            if spec.interval == interval and spec.id not in self.errors
        ]

    async def set_error(self, spec: TraderSpec, reason: str) -> None:
        self.errors[spec.id] = reason

    async def spec(self, trader_id: uuid.UUID) -> TraderSpec | None:
        return self.specs.get(trader_id)


@dataclass(slots=True)
class _Lease:
    """Held by `owner` until `until`; without an owner the signal is parked until then."""

    owner: str | None
    until: int


@dataclass(frozen=True, slots=True)
class Transition:
    signal_id: uuid.UUID
    source: SignalStatus
    target: SignalStatus
    reason: str | None
    at: int


class MemorySignalRepository:
    def __init__(self) -> None:
        self.signals: dict[uuid.UUID, Signal] = {}
        self._leases: dict[uuid.UUID, _Lease] = {}
        self.transitions: list[Transition] = []

    def all(self) -> list[Signal]:
        """Every signal in the order it was added."""
        return list(self.signals.values())

    async def active_symbols(self, trader_id: uuid.UUID, symbols: Collection[str]) -> set[str]:
        wanted = set(symbols)
        return {
            s.symbol
            for s in self.signals.values()
            if s.trader_id == trader_id and s.active and s.symbol in wanted
        }

    async def add(self, signal: Signal) -> bool:
        if signal.active and await self.active_symbols(signal.trader_id, [signal.symbol]):
            return False
        self.signals[signal.id] = signal
        return True

    async def claim(
        self, status: SignalStatus, owner: str, now: int, until: int, limit: int
    ) -> list[Signal]:
        claimed = []
        for signal in sorted(self.signals.values(), key=lambda s: (s.created_at, s.id.hex)):
            if len(claimed) >= limit:
                break
            lease = self._leases.get(signal.id)
            if signal.status == status and (lease is None or lease.until <= now):
                self._leases[signal.id] = _Lease(owner, until)
                claimed.append(signal)
        return claimed

    async def transition(
        self,
        signal: Signal,
        status: SignalStatus,
        reason: str | None,
        owner: str | None,
        *,
        at: int,
        not_before: int | None = None,
    ) -> Signal | None:
        check_transition(signal.status, status)
        current = self.signals.get(signal.id)
        if current is None or current.status != signal.status or not self._holds(signal, owner):
            return None
        if not_before is None:
            self._leases.pop(signal.id, None)
        else:
            self._leases[signal.id] = _Lease(None, not_before)
        moved = self.signals[signal.id] = replace(current, status=status, status_reason=reason)
        self.transitions.append(Transition(signal.id, current.status, status, reason, at))
        return moved

    async def defer(self, signal: Signal, owner: str, until: int) -> bool:
        current = self.signals.get(signal.id)
        if current is None or current.status != signal.status or not self._holds(signal, owner):
            return False
        self._leases[signal.id] = _Lease(None, until)
        return True

    def _holds(self, signal: Signal, owner: str | None) -> bool:
        lease = self._leases.get(signal.id)
        return owner is None or (lease is not None and lease.owner == owner)


class MemoryDecisionRepository:
    """Decisions of a backtest, judged on the replayed candles like live ones."""

    def __init__(self, signals: MemorySignalRepository) -> None:
        self._signals = signals
        self.decisions: dict[uuid.UUID, Decision] = {}
        self.outcomes: dict[uuid.UUID, Label] = {}
        self._check_at: dict[uuid.UUID, int] = {}

    async def add(self, decision: Decision) -> None:
        self.decisions[decision.id] = decision

    async def for_signal(self, signal_id: uuid.UUID) -> list[Decision]:
        return sorted(
            (d for d in self.decisions.values() if d.signal_id == signal_id),
            key=lambda d: d.created_at,
        )

    async def levels_for(self, signal: Signal) -> KeyLevels | None:
        decisions = await self.for_signal(signal.id)
        if decisions and decisions[-1].action == DecisionAction.ENTER_TRADE:
            return decisions[-1].levels
        return None

    async def outcomes_due(self, now: int, limit: int) -> list[DueOutcome]:
        due = [
            d
            for d in sorted(self.decisions.values(), key=lambda d: (d.created_at, d.id.hex))
            if d.id not in self.outcomes and self._check_at.get(d.id, d.created_at) <= now
        ]
        found = []
        for decision in due[:limit]:
            signal = self._signals.signals[decision.signal_id]
            found.append(DueOutcome(decision, signal.symbol, signal.interval))
        return found

    async def record_outcome(self, decision_id: uuid.UUID, label: Label) -> None:
        self.outcomes[decision_id] = label

    async def check_outcome_later(self, decision_id: uuid.UUID, at: int) -> None:
        self._check_at[decision_id] = at


class MemoryCallLog:
    """Model calls of a process that keeps no database (a backtest with a live model)."""

    def __init__(self) -> None:
        self.calls: list[LlmCall] = []

    async def record(self, call: LlmCall) -> None:
        self.calls.append(call)

    async def tokens_spent(self, owner_id: int, since: int) -> int:
        return sum(c.tokens for c in self.calls if c.owner_id == owner_id and c.created_at >= since)


class MemoryResponseCache:
    def __init__(self, answers: dict[str, CachedAnswer] | None = None) -> None:
        self.answers: dict[str, CachedAnswer] = dict(answers or {})

    async def get(self, key: str) -> CachedAnswer | None:
        return self.answers.get(key)

    async def put(self, key: str, answer: CachedAnswer) -> None:
        self.answers.setdefault(key, answer)


@dataclass(slots=True)
class CollectingNotifier:
    """Keeps what the stages announced, in order, instead of publishing it."""

    created: list[Signal] = field(default_factory=list)
    changed: list[Signal] = field(default_factory=list)

    async def signals_created(self, spec: TraderSpec, signals: Sequence[Signal]) -> None:
        self.created.extend(signals)

    async def signal_changed(self, signal: Signal) -> None:
        self.changed.append(signal)
