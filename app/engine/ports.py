"""The ports the stages are wired to: where traders and signals are kept, who hears of them.

A stage knows these protocols only. Live, they are the database repositories and the event
bus (`app.services.repositories`, `app.services.notifier`); in a backtest, the in-memory
repositories and collector of `app.engine.memory`. Everything crosses a port as a value from
`app.domain`, never as an ORM row, and every time is the engine clock's (epoch ms).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Protocol

from app.domain.enums import SignalStatus
from app.domain.signal import Signal
from app.domain.trader_spec import TraderSpec


class TraderRepository(Protocol):
    async def running(self, interval: str) -> list[TraderSpec]:
        """The traders that screen at `interval` now: enabled and running."""
        ...

    async def set_error(self, spec: TraderSpec, reason: str) -> None:
        """Stop one failing trader (status `error` with the reason); the others go on."""
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
        self, signal: Signal, status: SignalStatus, reason: str | None, owner: str | None
    ) -> Signal | None:
        """Move `signal` from the status it has to `status` and free its lease, only if it
        still has that status (and, with `owner`, that lease); None when it moved meanwhile."""
        ...


class Notifier(Protocol):
    """Tells the outside what the stages changed, after the change is durable."""

    async def signals_created(self, spec: TraderSpec, signals: Sequence[Signal]) -> None: ...

    async def signal_changed(self, signal: Signal) -> None: ...
