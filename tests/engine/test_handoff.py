"""Handoff: signals passed to the next stage without a claim (the leases they are written
with are tested with the signal stores, in test_signal_queue)."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

from app.domain.enums import Side, SignalStatus
from app.domain.signal import Signal
from app.engine.handoff import Handoff


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
