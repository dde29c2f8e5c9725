"""The ports the stages are wired to: where traders and signals are kept, who hears of them.

A stage knows these protocols only. Live, they are the database repositories and the event
bus (`app.services.repositories`, `app.services.notifier`); in a backtest, the in-memory
repositories and collector of `app.engine.memory`. Everything crosses a port as a value from
`app.domain`, never as an ORM row, and every time is the engine clock's (epoch ms).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from app.domain.decision import Decision, KeyLevels
from app.domain.decision_quality import Label
from app.domain.enums import Side, SignalStatus
from app.domain.signal import Signal
from app.domain.trader_spec import TraderSpec


class TraderRepository(Protocol):
    async def running(self, interval: str) -> list[TraderSpec]:
        """The traders that screen at `interval` now: enabled and running."""
        ...

    async def set_error(self, spec: TraderSpec, reason: str) -> None:
        """Stop one failing trader (status `error` with the reason); the others go on."""
        ...

    async def spec(self, trader_id: uuid.UUID) -> TraderSpec | None:
        """The trader as it is now, running or not; None once it is deleted."""
        ...


class SignalRepository(Protocol):
    async def active_symbols(self, trader_id: uuid.UUID, symbols: Collection[str]) -> set[str]:
        """Those of `symbols` on which the trader holds an active signal."""
        ...

    async def add(self, signal: Signal) -> bool:
        """Record a new signal; False when the store refuses it because the trader already
        holds an active signal on the symbol (another engine process won the race)."""
        ...

    async def claim(
        self, status: SignalStatus, owner: str, now: int, until: int, limit: int
    ) -> list[Signal]:
        """Lease up to `limit` signals in `status` whose lease is free or ran out, oldest
        first, to `owner` until `until`; no two claimers ever get the same signal."""
        ...

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
        """Move `signal` from the status it has to `status` and free its lease, only if it
        still has that status (and, with `owner`, that lease); None when it moved meanwhile.
        The move is recorded with the clock time `at` and the reason; with `not_before` the
        signal is parked until then (no claim takes it earlier). A move the lifecycle does
        not allow raises `InvalidTransitionError` (app.domain.signal_lifecycle)."""
        ...

    async def defer(self, signal: Signal, owner: str, until: int) -> bool:
        """Give back a leased signal unchanged, parked until `until`; False when `owner` no
        longer holds it."""
        ...


class Notifier(Protocol):
    """Tells the outside what the stages changed, after the change is durable."""

    async def signals_created(self, spec: TraderSpec, signals: Sequence[Signal]) -> None: ...

    async def signal_changed(self, signal: Signal) -> None: ...


class PositionView(Protocol):
    """What the analysis shows of an open position (the trade stage's positions have it)."""

    @property
    def symbol(self) -> str: ...

    @property
    def side(self) -> Side: ...

    @property
    def entry_price(self) -> Decimal: ...

    @property
    def amount(self) -> Decimal: ...


class PositionReader(Protocol):
    async def open_positions(self, trader_id: uuid.UUID) -> Sequence[PositionView]: ...


class NoPositions:
    """Until a trade stage keeps positions, no trader holds any."""

    async def open_positions(self, trader_id: uuid.UUID) -> Sequence[PositionView]:
        return ()


@dataclass(frozen=True, slots=True)
class DueOutcome:
    """A decision whose outcome may be known now, with the market it was made on."""

    decision: Decision
    symbol: str
    interval: str


class DecisionRepository(Protocol):
    async def add(self, decision: Decision) -> None:
        """Record a decision; its outcome is looked at from the next outcome run on."""
        ...

    async def for_signal(self, signal_id: uuid.UUID) -> list[Decision]:
        """The signal's decisions, oldest first."""
        ...

    async def levels_for(self, signal: Signal) -> KeyLevels | None:
        """The levels to trade `signal` at: those of its latest decision when that decision
        is to enter; None otherwise."""
        ...

    async def outcomes_due(self, now: int, limit: int) -> list[DueOutcome]:
        """Unjudged decisions whose next look is due by `now`, oldest first."""
        ...

    async def record_outcome(self, decision_id: uuid.UUID, label: Label) -> None: ...

    async def check_outcome_later(self, decision_id: uuid.UUID, at: int) -> None: ...
