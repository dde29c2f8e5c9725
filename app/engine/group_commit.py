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

Some writes lead on to more work that is waiting for them (`Urgent`: the analysis's
signals made ready for an order). Those pending go first, in a batch of their own; then
the others wait while the work they lead to is done (`Urgent.done`: the trade stage
has recorded those entries), so it does not queue for the connection behind the
statements of every rejected or watched signal decided with them. The wait ends early
when more urgent writes come in (they go next), after `max_seconds` at most, and never
holds a write back once it has waited that long. Before urgent writes go, they wait for
the work still under way that may add more (`Urgent.gather`: analyses taken on whose
writes are not in yet), `gather_seconds` at most, so that the urgent writes of one moment
go in one batch: one that missed the first would wait for the whole of the work it leads
to (the trade stage entering the first batch) before its own.

The batch's writer returns one result per item, in order. When it raises, each item of the
batch is written again alone, so one bad item fails only its own task, with the error.
When the writer is cancelled (the engine stops), so are the tasks waiting on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Urgent(Generic[T]):
    """Which writes go first (`first`), and what the others wait for once those are
    written (`done`), `max_seconds` at most; what urgent writes wait for before they go
    (`gather`: returns once no more is coming soon), `gather_seconds` at most."""

    first: Callable[[T], bool]
    done: Callable[[], Awaitable[object]]
    max_seconds: float
    gather: Callable[[], Awaitable[object]] | None = None
    gather_seconds: float = 0.0


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[Sequence[R]]],
        urgent: Urgent[T] | None = None,
    ) -> None:
        self._write = write
        self._urgent = urgent
        self._pending: list[tuple[T, asyncio.Future[R], float]] = []
        self._writer: asyncio.Task[None] | None = None
        self._first_came = asyncio.Event()

    async def submit(self, item: T) -> R:
        """Write `item` with whatever else is submitted meanwhile; its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future, loop.time()))
        if self._urgent is not None and self._urgent.first(item):
            self._first_came.set()
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            self._writer = asyncio.create_task(self._drain(), name="group commit")
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let the tasks that finish in this turn submit theirs too
        batch: list[tuple[T, asyncio.Future[R], float]] = []
        try:
            while self._pending:
                await self._gather()
                batch, self._pending = self._next()
                await self._commit(batch)
                if self._pending and not self._has_first(self._pending) and self._went_ahead(batch):
                    await self._wait_for_done()
        except BaseException:
            for _, future, _ in [*batch, *self._pending]:
                future.cancel()
            self._pending = []
            raise

    def _next(
        self,
    ) -> tuple[list[tuple[T, asyncio.Future[R], float]], list[tuple[T, asyncio.Future[R], float]]]:
        """The next batch and what stays pending: the urgent writes when some are, unless a
        write held back has waited its longest."""
        pending, urgent = self._pending, self._urgent
        if urgent is None or not self._has_first(pending):
            return pending, []
        oldest = min(submitted for _, _, submitted in pending)
        if asyncio.get_running_loop().time() - oldest >= urgent.max_seconds:
            return pending, []
        self._first_came.clear()
        first = [entry for entry in pending if urgent.first(entry[0])]
        return first, [entry for entry in pending if not urgent.first(entry[0])]

    async def _gather(self) -> None:
        """While urgent writes are pending: until the work that may add more is done,
        `gather_seconds` at most."""
        urgent = self._urgent
        if urgent is None or urgent.gather is None or not self._has_first(self._pending):
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(urgent.gather_seconds):
                await urgent.gather()

    def _has_first(self, entries: list[tuple[T, asyncio.Future[R], float]]) -> bool:
        return self._urgent is not None and any(self._urgent.first(e[0]) for e in entries)

    def _went_ahead(self, batch: list[tuple[T, asyncio.Future[R], float]]) -> bool:
        """Whether `batch` went ahead of others (urgent writes only)."""
        return self._urgent is not None and all(self._urgent.first(e[0]) for e in batch)

    async def _wait_for_done(self) -> None:
        """Until the urgent writes' work is done, more urgent writes come, or the longest
        wait is up."""
        assert self._urgent is not None
        waits = [
            asyncio.ensure_future(self._urgent.done()),
            asyncio.ensure_future(self._first_came.wait()),
        ]
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._urgent.max_seconds):
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R], float]]) -> None:
        try:
            results = await self._write([item for item, _, _ in batch])
        except Exception as exc:
            if len(batch) > 1:
                for one in batch:  # written alone, a bad item fails alone
                    await self._commit([one])
                return
            _, future, _ = batch[0]
            if not future.done():
                future.set_exception(exc)
            return
        for (_, future, _), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
