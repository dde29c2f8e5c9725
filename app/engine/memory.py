"""In-memory stand-ins for the engine's ports, for backtests (freqtrade's `LocalTrade` beside
`Trade`): the stages run unchanged on them, and nothing reaches the database or the bus.

`MemorySignalRepository` keeps the database's rules: at most one active signal per trader
and symbol (the second `add` is refused), and leases that only a free or expired claim takes.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace

from app.domain.enums import SignalStatus
from app.domain.signal import Signal
from app.domain.trader_spec import TraderSpec


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


@dataclass(slots=True)
class _Lease:
    owner: str
    until: int


class MemorySignalRepository:
    def __init__(self) -> None:
        self.signals: dict[uuid.UUID, Signal] = {}
        self._leases: dict[uuid.UUID, _Lease] = {}

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
        self, signal: Signal, status: SignalStatus, reason: str | None, owner: str | None
    ) -> Signal | None:
        current = self.signals.get(signal.id)
        lease = self._leases.get(signal.id)
        if current is None or current.status != signal.status:
            return None
        if owner is not None and (lease is None or lease.owner != owner):
            return None
        self._leases.pop(signal.id, None)
        moved = self.signals[signal.id] = replace(current, status=status, status_reason=reason)
        return moved


@dataclass(slots=True)
class CollectingNotifier:
    """Keeps what the stages announced, in order, instead of publishing it."""

    created: list[Signal] = field(default_factory=list)
    changed: list[Signal] = field(default_factory=list)

    async def signals_created(self, spec: TraderSpec, signals: Sequence[Signal]) -> None:
        self.created.extend(signals)

    async def signal_changed(self, signal: Signal) -> None:
        self.changed.append(signal)
