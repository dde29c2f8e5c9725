"""GroupCommit: the writes submitted together go in one batch, a bad one fails alone, and
urgent writes go first while the others wait for the work they lead to."""

from __future__ import annotations

import asyncio

from app.engine.group_commit import GroupCommit, Urgent


class Writer:
    """Records each batch; a batch holding a bad item fails."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def __call__(self, items: list[str]) -> list[str]:
        self.batches.append(items)
        if any(item.startswith("bad") for item in items):
            raise ValueError("a bad item")
        await asyncio.sleep(0.01)
        return [item.upper() for item in items]


async def test_writes_submitted_together_are_one_batch_and_a_bad_one_fails_alone() -> None:
    writer = Writer()
    commit: GroupCommit[str, str] = GroupCommit(writer)
    results = await asyncio.gather(
        commit.submit("a"), commit.submit("bad"), commit.submit("c"), return_exceptions=True
    )
    assert results[0] == "A" and results[2] == "C"
    assert isinstance(results[1], ValueError)
    assert writer.batches == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]


async def test_urgent_writes_go_first_and_the_others_wait_for_their_work() -> None:
    writer = Writer()
    entered = asyncio.Event()
    commit: GroupCommit[str, str] = GroupCommit(
        writer, Urgent(lambda item: item.startswith("ready"), entered.wait, max_seconds=5)
    )
    rest = [asyncio.create_task(commit.submit(item)) for item in ("rejected", "watched")]
    first = asyncio.create_task(commit.submit("ready"))
    assert await asyncio.wait_for(first, 1) == "READY"
    await asyncio.sleep(0.05)
    assert writer.batches == [["ready"]] and not any(task.done() for task in rest)
    late = asyncio.create_task(commit.submit("ready late"))  # goes next, at once
    assert await asyncio.wait_for(late, 1) == "READY LATE"
    assert writer.batches == [["ready"], ["ready late"]]
    entered.set()
    assert await asyncio.gather(*rest) == ["REJECTED", "WATCHED"]
    assert writer.batches[2] == ["rejected", "watched"]


async def test_the_others_wait_no_longer_than_the_longest_wait() -> None:
    writer = Writer()
    never = asyncio.Event()
    commit: GroupCommit[str, str] = GroupCommit(
        writer, Urgent(lambda item: item == "ready", never.wait, max_seconds=0.1)
    )
    rejected = asyncio.create_task(commit.submit("rejected"))
    assert await commit.submit("ready") == "READY"
    async with asyncio.timeout(1):
        assert await rejected == "REJECTED"
    assert writer.batches == [["ready"], ["rejected"]]


async def test_urgent_writes_wait_for_the_work_under_way_and_go_in_one_batch() -> None:
    writer = Writer()
    settled = asyncio.Event()
    commit: GroupCommit[str, str] = GroupCommit(
        writer,
        Urgent(
            lambda item: item.startswith("ready"),
            asyncio.Event().wait,
            max_seconds=5,
            gather=settled.wait,
            gather_seconds=5,
        ),
    )
    first = asyncio.create_task(commit.submit("ready 1"))
    await asyncio.sleep(0.05)
    assert writer.batches == []  # an analysis is still under way
    second = asyncio.create_task(commit.submit("ready 2"))
    await asyncio.sleep(0)
    settled.set()
    assert await asyncio.gather(first, second) == ["READY 1", "READY 2"]
    assert writer.batches == [["ready 1", "ready 2"]]


async def test_urgent_writes_wait_for_the_work_under_way_no_longer_than_the_gather() -> None:
    writer = Writer()
    commit: GroupCommit[str, str] = GroupCommit(
        writer,
        Urgent(
            lambda item: item == "ready",
            asyncio.Event().wait,
            max_seconds=5,
            gather=asyncio.Event().wait,
            gather_seconds=0.05,
        ),
    )
    async with asyncio.timeout(1):
        assert await commit.submit("ready") == "READY"
    assert writer.batches == [["ready"]]
