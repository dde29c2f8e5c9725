"""GroupCommit: writes that concurrent tasks ask for, done together in one batch.

A stage works on many signals at once, one task each (a model answers each in its own
time), and every task ends with a write: its decision and its signal's move. One
transaction per task would make the database, not the analysis, the limit: a close that
raises six hundred signals would wait for twelve hundred commits. So each task submits its
write and waits; the writes submitted while none is running go at once, and those that come
in while a batch is being written wait for it and go together in the next (a database's
group commit). With the rule engine, which answers at once, a whole claim is one batch;
with a model whose answers trickle in, each batch holds the answers of the last write's
time.

The batch's writer returns one result per item, in order. When it raises, each item of the
batch is written again alone, so one bad item fails only its own task, with the error.
When the writer is cancelled (the engine stops), so are the tasks waiting on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(self, write: Callable[[list[T]], Awaitable[Sequence[R]]]) -> None:
        self._write = write
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Write `item` with whatever else is submitted meanwhile; its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            self._writer = asyncio.create_task(self._drain(), name="group commit")
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let the tasks that finish in this turn submit theirs too
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._commit(batch)
        except BaseException:
            for _, future in [*batch, *self._pending]:
                future.cancel()
            self._pending = []
            raise

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except Exception as exc:
            if len(batch) > 1:
                for one in batch:  # written alone, a bad item fails alone
                    await self._commit([one])
                return
            _, future = batch[0]
            if not future.done():
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
