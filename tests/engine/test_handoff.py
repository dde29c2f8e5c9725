"""Handoff: signals passed to the next stage without a claim (the leases they are written
with are tested with the signal stores, in test_signal_queue)."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

from app.domain.enums import Side, SignalStatus
from app.domain.signal import Signal
from app.engine.handoff import Handed, Handoff
from app.engine.memory import MemorySignalRepository


def signal(created_at: int, status: SignalStatus = SignalStatus.NEW) -> Signal:
    return Signal(
        uuid.uuid4(), uuid.uuid4(), 1, "BTC/USDT", "1h", Side.LONG, Decimal(100), created_at,
        created_at, status=status,
    )  # fmt: skip


async def test_signals_are_taken_oldest_first_while_their_lease_holds() -> None:
    handoff = Handoff("trade-1", lease_ms=1_000)
    late, early, stale = signal(20), signal(10), signal(5)
    handoff.put([Handed(stale)], until=100)
    handoff.put([Handed(late), Handed(early)], until=2_000)
    arrived = asyncio.create_task(handoff.arrived())
    await asyncio.sleep(0)
    assert arrived.done()
    assert handoff.take(now=500, limit=1) == [Handed(early)]
    assert handoff.take(now=500, limit=10) == [Handed(late)]
    assert handoff.take(now=500, limit=10) == []  # the stale one is the store's to queue


async def test_the_store_is_looked_at_once_a_second_and_not_right_after_a_hand_off() -> None:
    store = MemorySignalRepository()
    handoff = Handoff("analyzer-1", lease_ms=60_000)
    first, second, third = signal(1), signal(2), signal(3)
    assert await store.add(first)
    assert await handoff.take_or_claim(store, SignalStatus.NEW, 1_000, 10) == [Handed(first)]
    assert await store.add(second)
    assert await handoff.take_or_claim(store, SignalStatus.NEW, 1_999, 10) == []
    handoff.put([Handed(third)], until=70_000)
    assert await handoff.take_or_claim(store, SignalStatus.NEW, 2_500, 10) == [Handed(third)]
    assert await handoff.take_or_claim(store, SignalStatus.NEW, 3_499, 10) == []
    [claimed] = await handoff.take_or_claim(store, SignalStatus.NEW, 3_500, 10)
    assert claimed.signal.id == second.id and claimed.spec is None


async def test_the_taker_is_waited_for_only_while_it_listens_and_until_it_is_done() -> None:
    handoff = Handoff("trade-1", lease_ms=1_000)
    first, second = Handed(signal(1)), Handed(signal(2))
    handoff.put([first], until=2_000)
    await asyncio.wait_for(handoff.until_worked(), 0.1)  # nobody listens: a backtest
    listening = asyncio.create_task(handoff.arrived())
    await asyncio.sleep(0)
    assert listening.done()
    handoff.put([second], until=2_000)
    done = asyncio.create_task(handoff.until_worked())
    assert handoff.take(now=500, limit=1) == [first]
    await asyncio.sleep(0)
    assert not done.done()  # one still handed, one in work
    handoff.worked([first])
    assert handoff.take(now=500, limit=10) == [second]
    await asyncio.sleep(0)
    assert not done.done()
    handoff.worked([second])
    await asyncio.wait_for(done, 0.1)
