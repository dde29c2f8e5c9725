"""The signal queue in the database: one active signal per trader and symbol, enforced by
the database itself, and leases that never hand one signal to two stage instances.

Run on both back ends; the race tests matter most on PostgreSQL, where several engine
processes share one database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal

import pytest

from app.core.events import InProcessEventBus
from app.db import models
from app.domain.enums import ACTIVE_SIGNAL_STATUSES, Side, SignalStatus, TraderStatus
from app.domain.signal import Signal
from app.domain.trader_spec import TraderSpec
from app.engine.clock import ReplayClock
from app.engine.memory import CollectingNotifier, MemorySignalRepository
from app.engine.ports import Move, SignalRepository
from app.engine.sandbox import FilterMatch, FilterOutcome
from app.engine.signals import SignalManager
from app.services.repositories.signals import DbSignalRepository
from app.services.repositories.traders import DbTraderRepository, spec_of
from app.services.traders import TraderManager

SYMBOLS = [f"S{n:02d}/USDT" for n in range(40)]
CANDLE = 1_767_225_600_000


@pytest.fixture(params=["database", "memory"])
def store(request: pytest.FixtureRequest, db: str) -> SignalRepository:
    """Each rule that both signal stores keep is tested on each."""
    return DbSignalRepository() if request.param == "database" else MemorySignalRepository()


async def _spec() -> TraderSpec:
    owner = await models.User.create(name=f"u{uuid.uuid4().hex[:8]}")
    trader = await models.Trader.create(
        owner=owner, name="t", enabled=True, status=TraderStatus.RUNNING, interval="1h"
    )
    return spec_of(trader)


def _signal(spec: TraderSpec, symbol: str, status: SignalStatus = SignalStatus.NEW) -> Signal:
    return Signal(
        id=uuid.uuid4(),
        trader_id=spec.id,
        owner_id=spec.owner_id,
        symbol=symbol,
        interval="1h",
        side=Side.LONG,
        price=Decimal("1.5"),
        candle_time=CANDLE,
        created_at=CANDLE + 3_600_000,
        status=status,
    )


async def test_a_second_active_signal_on_a_symbol_is_refused_by_the_store(
    store: SignalRepository,
) -> None:
    spec = await _spec()
    for status in SignalStatus:
        symbol = f"{status.value.upper()}/USDT"
        assert await store.add(_signal(spec, symbol, status))
        second = await store.add(_signal(spec, symbol, SignalStatus.NEW))
        # Only an active signal blocks another: the index's statuses are the domain's.
        assert second == (status not in ACTIVE_SIGNAL_STATUSES), status


class RacingSignals(DbSignalRepository):
    """The database repository, with both racers made to read "no active signal" before
    either inserts: the race the partial unique index must settle."""

    def __init__(self, barrier: asyncio.Barrier) -> None:
        self.barrier = barrier
        self.refused = 0

    async def active_symbols(
        self, wanted: Mapping[uuid.UUID, Collection[str]]
    ) -> dict[uuid.UUID, set[str]]:
        found = await super().active_symbols(wanted)
        await self.barrier.wait()
        return found

    async def add_many(
        self, signals: Sequence[Signal], lease: tuple[str, int] | None = None
    ) -> set[uuid.UUID]:
        added = await super().add_many(signals, lease)
        self.refused += len(signals) - len(added)
        return added


async def test_two_signal_stages_racing_on_one_trader_leave_no_duplicate(db: str) -> None:
    spec = await _spec()
    traders = DbTraderRepository(TraderManager(InProcessEventBus()))
    barrier = asyncio.Barrier(2)
    stores = [RacingSignals(barrier), RacingSignals(barrier)]
    racers = [
        SignalManager(store, traders, CollectingNotifier(), ReplayClock(CANDLE)) for store in stores
    ]
    matches = tuple(FilterMatch(s, Side.LONG, None, 1.5, CANDLE, {}) for s in SYMBOLS)
    outcome = FilterOutcome(str(spec.id), matches)

    first, second = await asyncio.gather(*(r.record_run(spec, outcome) for r in racers))

    rows = await models.Signal.filter(trader_id=spec.id).values_list("symbol", "status")
    assert sorted(symbol for symbol, _ in rows) == sorted(SYMBOLS), "each symbol exactly once"
    assert {status for _, status in rows} == {SignalStatus.NEW}
    assert sorted(s.symbol for s in [*first, *second]) == sorted(SYMBOLS)
    # Both read "none active" and tried every symbol: the database refused the second of each.
    assert sum(store.refused for store in stores) == len(SYMBOLS)


async def test_concurrent_claims_take_different_signals_and_expired_leases_return(db: str) -> None:
    spec = await _spec()
    store = DbSignalRepository()
    for symbol in SYMBOLS:
        assert await store.add(_signal(spec, symbol))
    now = CANDLE + 3_600_000

    claims = await asyncio.gather(
        *(store.claim(SignalStatus.NEW, f"worker-{n}", now, now + 30_000, 15) for n in range(4))
    )

    taken = [signal.id for claim in claims for signal in claim]
    assert len(taken) == len(set(taken)) == len(SYMBOLS), "every signal once, none twice"
    assert await store.claim(SignalStatus.NEW, "late", now + 1_000, now + 31_000, 50) == []
    reclaimed = await store.claim(SignalStatus.NEW, "late", now + 30_000, now + 60_000, 50)
    assert len(reclaimed) == len(SYMBOLS), "leases that ran out are free again"

    signal = reclaimed[0]
    later = now + 31_000
    assert (
        await store.transition(signal, SignalStatus.WATCHING, None, "someone else", at=later)
        is None
    )
    moved = await store.transition(signal, SignalStatus.WATCHING, "watch it", "late", at=later)
    assert moved is not None and moved.status == SignalStatus.WATCHING
    stale = await store.transition(signal, SignalStatus.READY, None, None, at=later)
    assert stale is None, "moved already"
    row = await models.Signal.get(id=signal.id)
    assert (row.status, row.status_reason, row.lease_owner) == (
        SignalStatus.WATCHING,
        "watch it",
        None,
    )


async def test_a_move_handed_to_the_next_owner_is_leased_to_it_until_its_lease_runs_out(
    store: SignalRepository,
) -> None:
    spec = await _spec()
    await store.add(_signal(spec, SYMBOLS[0]))
    [claimed] = await store.claim(SignalStatus.NEW, "analyzer", CANDLE, CANDLE + 600_000, 5)
    handed = Move(claimed, SignalStatus.READY, "enter", "analyzer", CANDLE + 60_000, "trade-1")
    [ready] = await store.transition_many([handed], at=CANDLE)
    assert ready is not None and ready.status == SignalStatus.READY
    assert await store.claim(SignalStatus.READY, "trade-2", CANDLE + 59_999, CANDLE + 1, 5) == []
    entered = Move(ready, SignalStatus.ENTERED, None, "trade-1")
    [done] = await store.transition_many([entered], at=CANDLE + 1)
    assert done is not None and done.status == SignalStatus.ENTERED


async def test_signals_recorded_with_a_lease_wait_for_it_to_run_out(
    store: SignalRepository,
) -> None:
    spec = await _spec()
    fresh = _signal(spec, SYMBOLS[0])
    assert await store.add_many([fresh], ("analyzer", CANDLE + 600_000)) == {fresh.id}
    assert await store.claim(SignalStatus.NEW, "other", CANDLE + 599_999, CANDLE, 5) == []
    [claimed] = await store.claim(SignalStatus.NEW, "other", CANDLE + 600_000, CANDLE, 5)
    assert claimed.id == fresh.id


async def test_signals_known_to_the_caller_are_claimed_only_while_free_and_where_they_were(
    store: SignalRepository,
) -> None:
    """`claim_known`: the signal monitor claims the signals its process parked, as it holds
    them, with the store's compare-and-set on their status and lease."""
    spec = await _spec()
    parked, taken, moved = (  # queued in this order
        replace(_signal(spec, symbol), created_at=CANDLE + n)
        for n, symbol in enumerate(SYMBOLS[:3])
    )
    for signal in (parked, taken, moved):
        assert await store.add(signal)
    [held] = await store.claim(SignalStatus.NEW, "monitor", CANDLE, CANDLE + 1_000, 1)
    assert held.id == parked.id
    [watching] = await store.transition_many(
        [Move(held, SignalStatus.WATCHING, "watch", "monitor", CANDLE + 5_000)], at=CANDLE
    )
    assert watching is not None
    [other] = await store.claim(SignalStatus.NEW, "another process", CANDLE, CANDLE + 9_000, 1)
    assert other.id == taken.id
    assert await store.transition(moved, SignalStatus.REJECTED, "no", None, at=CANDLE)

    async def claim(at: int) -> list[Signal]:
        known = [watching, other, moved]
        return await store.claim_known(known, SignalStatus.WATCHING, "monitor", at, at + 60_000)

    assert await claim(CANDLE + 4_999) == []  # still parked
    assert await claim(CANDLE + 5_000) == [watching]  # the others: leased elsewhere, moved
    assert await claim(CANDLE + 5_001) == []  # leased to the monitor now
    assert await store.claim(SignalStatus.WATCHING, "x", CANDLE + 5_001, CANDLE + 6_000, 5) == []
