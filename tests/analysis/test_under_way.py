"""UnderWay: an analysis counts as under way from its claim until it submits its write (or
ends without one), so the urgent writes of one close can wait for each other, and never
for a write already waiting on them."""

from __future__ import annotations

import asyncio

import pytest

from app.engine.analyzer import UnderWay


async def test_analyses_are_under_way_until_they_submit_their_writes() -> None:
    under_way = UnderWay()
    answer, written = asyncio.Event(), asyncio.Event()
    batches = [[1, 2, 3]]

    async def claim(limit: int) -> list[int]:
        await asyncio.sleep(0)
        return batches.pop() if batches else []

    async def handle(item: int) -> bool:
        if item == 3:
            return False  # ends without a write
        if item == 2:
            await answer.wait()  # a slow answer
        UnderWay.submitted()
        await written.wait()  # the write, which waits for the others
        return True

    worked = asyncio.create_task(under_way.work_through(claim, handle, 10))
    idle = asyncio.create_task(under_way.idle())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not idle.done()  # item 2 is still being analyzed
    answer.set()
    async with asyncio.timeout(1):
        await idle  # both wait for their write: nothing is under way
    assert not worked.done()
    written.set()
    async with asyncio.timeout(1):
        assert await worked == 2
    await asyncio.wait_for(under_way.idle(), 1)


async def test_an_analysis_that_fails_is_no_longer_under_way() -> None:
    under_way = UnderWay()

    async def claim(limit: int) -> list[int]:
        return [1] if limit == 5 else []

    async def handle(item: int) -> bool:
        raise RuntimeError("the model fell over")

    with pytest.raises(RuntimeError):
        await under_way.work_through(claim, handle, 5)
    await asyncio.wait_for(under_way.idle(), 1)
