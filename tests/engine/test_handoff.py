"""Handoff: ready signals passed from the analysis to the trade stage without a claim."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

from app.domain.enums import Side, SignalStatus
from app.domain.signal import Signal
from app.engine.handoff import Handoff
from app.engine.memory import MemorySignalRepository
from app.engine.ports import Move


def signal(created_at: int, status: SignalStatus = SignalStatus.NEW) -> Signal:
    return Signal(
        uuid.uuid4(), uuid.uuid4(), 1, "BTC/USDT", "1h", Side.LONG, Decimal(100), created_at,
        created_at, status=status,
    )  # fmt: skip


async def test_signals_are_taken_oldest_first_while_their_lease_holds() -> None:
    handoff = Handoff("trade-1", lease_ms=1_000)
    late, early, stale = signal(20), signal(10), signal(5)
    handoff.put([stale], until=100)
    handoff.put([late, early], until=2_000)
    arrived = asyncio.create_task(handoff.arrived())
    await asyncio.sleep(0)
    assert arrived.done()
    assert handoff.take(now=500, limit=1) == [early]
    assert handoff.take(now=500, limit=10) == [late]
    assert handoff.take(now=500, limit=10) == []  # the stale one is the store's to queue


async def test_a_handed_signal_is_leased_to_the_next_owner_until_its_lease_runs_out() -> None:
    store = MemorySignalRepository()
    new = signal(0)
    await store.add(new)
    [claimed] = await store.claim(SignalStatus.NEW, "analyzer", 0, 600_000, 10)
    handed = Move(claimed, SignalStatus.READY, None, "analyzer", 60_000, next_owner="trade-1")
    [ready] = await store.transition_many([handed], at=1)
    assert ready is not None and ready.status == SignalStatus.READY
    assert await store.claim(SignalStatus.READY, "trade-2", 59_999, 120_000, 10) == []
    assert await store.claim(SignalStatus.READY, "trade-2", 60_000, 120_000, 10) == [ready]
    stolen = Move(ready, SignalStatus.ENTERED, None, "trade-1")  # its lease was taken
    assert (await store.transition_many([stolen], at=2)) == [None]


async def test_the_screens_new_signals_are_recorded_leased_to_the_analyzer() -> None:
    store = MemorySignalRepository()
    fresh = signal(0)
    assert await store.add_many([fresh], ("analyzer", 600_000)) == {fresh.id}
    assert await store.claim(SignalStatus.NEW, "other", 599_999, 700_000, 10) == []
    assert await store.claim(SignalStatus.NEW, "other", 600_000, 700_000, 10) == [fresh]
