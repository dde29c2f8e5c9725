"""SQLite's WAL checkpoints, taken off the commits of the process.

In WAL mode a commit appends its pages to the write-ahead log, and by default the commit
that brings the log past 1,000 pages also copies the log back into the database file and
syncs both (a checkpoint). That one commit then took 7 to 8 ms instead of 0.3 ms in
`benchmarks.trading`, every few candle closes, and when it was the commit of an entry's
intent the entry waited for it: the tail of the time from a close to its orders was the
checkpoint. So the process's own connection never checkpoints (`wal_autocheckpoint=0`,
`app.db.config`); a connection of the `Checkpointer` does, in a thread, every
`CHECKPOINT_S` seconds (a busy engine writes a few megabytes of log meanwhile, and a
checkpoint copies while a screen may run, so not more often): `PASSIVE`, which never
waits for a reader or a writer, as the writers never wait for it, and which costs nothing
when no commit came since the last one.
When the last connection to the database closes, SQLite checkpoints what is left and
removes the log. Litestream runs SQLite the same way, with its own checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3

log = logging.getLogger(__name__)

CHECKPOINT_S = 5.0


class Checkpointer:
    def __init__(self, path: str, every_s: float = CHECKPOINT_S) -> None:
        self.path = path
        self.every_s = every_s
        self._connection: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="sqlite-checkpoints")

    async def stop(self) -> None:
        """Stop after the checkpoint under way, if any (its thread is never left running
        on a closed connection), and close the connection."""
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def checkpoint(self) -> tuple[int, int, int]:
        """One passive checkpoint: (1 when it could not finish for a reader or writer,
        the pages in the log, the pages of it now in the database file)."""
        return await asyncio.to_thread(self._checkpoint)

    def _checkpoint(self) -> tuple[int, int, int]:
        if self._connection is None:
            self._connection = sqlite3.connect(self.path, check_same_thread=False)
        busy, pages, copied = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(pages), int(copied)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.every_s)
            if self._stopping.is_set():
                return
            try:
                await self.checkpoint()
            except sqlite3.Error:
                log.exception(
                    "checkpointing %s failed; trying again in %ss", self.path, self.every_s
                )
