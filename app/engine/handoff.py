"""Handing signals from one stage to the next in memory, leased to the next as they are
written.

A stage that moves signals on (the screen's signal manager recording new signals, the
analyst marking them ready) writes the next stage's lease with them and puts them here;
the next stage (the analyzer, the trade stage) takes them from here before it claims from
the store, so the way from a candle close to an order has no claim's reads in it. A signal
comes with what the stage before knew of it (`Handed`: its trader as that stage read it,
the decision that made it ready), so the next stage reads only what it was not given. The
store stays the queue: a signal whose lease runs out before it is taken here (a crash, a
stalled stage) is claimed from the store as before, so a hand-off only ever saves time,
and no two stages hold one signal. The store holds nothing for the stage but such
stragglers, so a stage looks there at most once every `STORE_PAUSE_MS`, and not within
that of taking signals from here (`take_or_claim`): a claim that finds nothing costs the
connection a transaction just when a close's entries need it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from app.domain.decision import Decision
from app.domain.enums import SignalStatus
from app.domain.signal import Signal
from app.domain.trader_spec import TraderSpec
from app.engine.ports import SignalRepository

STORE_PAUSE_MS = 1_000


@dataclass(frozen=True, slots=True)
class Handed:
    """A signal as a stage gets it, with what the stage before knew of it: its trader as
    that stage read it (moments ago; the store's compare-and-set on the trader still guards
    the entry), the decision it moved on, and all its decisions so far when that stage
    knew them (none for a signal the screen just recorded; a watched one's, as the analysis
    that parked it had them). None: not handed with it, read it; a signal claimed from the
    store comes with none of them."""

    signal: Signal
    spec: TraderSpec | None = None
    decision: Decision | None = None
    earlier: tuple[Decision, ...] | None = None


def handed_specs(handed: Sequence[Handed]) -> dict[uuid.UUID, TraderSpec]:
    """The traders that signals came with, by id."""
    return {h.signal.trader_id: h.spec for h in handed if h.spec is not None}


class Handoff:
    """Signals handed to the stage whose lease (`owner`, for `lease_ms`) they were written
    with."""

    def __init__(self, owner: str, lease_ms: int) -> None:
        self.owner = owner
        self.lease_ms = lease_ms
        self._held: list[tuple[Handed, int]] = []
        self._arrived = asyncio.Event()
        self._store_at: int | None = None
        self._in_work: set[uuid.UUID] = set()
        self._worked = asyncio.Event()
        self._worked.set()
        self._listened = False

    def lease(self, now: int) -> tuple[str, int]:
        """The lease to write with signals handed over at `now`: (owner, until)."""
        return self.owner, now + self.lease_ms

    def put(self, handed: Sequence[Handed], until: int) -> None:
        """Hand over signals, leased to `owner` until `until` (epoch ms)."""
        if handed:
            self._held.extend((item, until) for item in handed)
            self._arrived.set()
            self._worked.clear()

    def take(self, now: int, limit: int) -> list[Handed]:
        """Up to `limit` of the signals handed over, oldest first (the store's queue
        order), whose lease still holds at `now`."""
        held = sorted(
            (item for item in self._held if item[1] > now),
            key=lambda item: item[0].signal.queue_order,
        )
        taken, self._held = held[:limit], held[limit:]
        if taken:
            self._store_at = now + STORE_PAUSE_MS
        self._in_work.update(handed.signal.id for handed, _ in taken)
        self._check_worked()
        return [handed for handed, _ in taken]

    def worked(self, handed: Sequence[Handed]) -> None:
        """The taker is done with `handed` (entered them, or refused them)."""
        self._in_work.difference_update(h.signal.id for h in handed)
        self._check_worked()

    def _check_worked(self) -> None:
        if not self._held and not self._in_work:
            self._worked.set()

    async def until_worked(self) -> None:
        """Return once the taker is done with everything handed over so far; at once when
        no taker listens for hand-offs (a backtest runs its stages one after the other)."""
        if self._listened:
            await self._worked.wait()

    async def take_or_claim(
        self, store: SignalRepository, status: SignalStatus, now: int, limit: int
    ) -> list[Handed]:
        """Up to `limit` signals for the stage: those handed over, else those in `status`
        it claims from the store (leased to `owner` for `lease_ms`) when a look there is
        due: neither a look nor a take from here in the last `STORE_PAUSE_MS`."""
        taken = self.take(now, limit)
        if taken or (self._store_at is not None and now < self._store_at):
            return taken
        self._store_at = now + STORE_PAUSE_MS
        claimed = await store.claim(status, self.owner, now, now + self.lease_ms, limit)
        return [Handed(signal) for signal in claimed]

    async def arrived(self) -> None:
        """Return once signals were handed over since the last return."""
        self._listened = True
        await self._arrived.wait()
        self._arrived.clear()


class Parked:
    """Signals parked for a later look, held here until they are due: the analysis parks
    each watched signal until its next candle closes, and the signal monitor then claims
    exactly those (`SignalRepository.claim_known`, a compare-and-set on their leases)
    instead of searching the store and reading them back, which took a third of the way
    from a close to a re-checked signal's entry. The store stays the queue: a signal
    parked by another process, or before a restart, is claimed from it. A signal is
    parked as `Handed`, with its decisions so far, so that its re-check need not read
    them back either."""

    def __init__(self) -> None:
        self._held: dict[uuid.UUID, tuple[int, Handed]] = {}

    def put(self, handed: Handed, due: int) -> None:
        """Hold `handed` (its signal as last written) until `due` (epoch ms)."""
        self._held[handed.signal.id] = (due, handed)

    def take_due(self, now: int, limit: int) -> list[Handed]:
        """Up to `limit` of the signals due at `now`, oldest first (the store's queue
        order); each is taken once."""
        due = sorted(
            (handed for at, handed in self._held.values() if at <= now),
            key=lambda handed: handed.signal.queue_order,
        )[:limit]
        for handed in due:
            del self._held[handed.signal.id]
        return due
