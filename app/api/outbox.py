"""A websocket connection's outbox: the bounded queue of frames between the shared fan-out
and one client.

The fan-out never waits for a client: it puts each encoded frame in the connection's outbox
and goes on to the next subscriber, and the outbox's writer task sends the frames in order
at the pace the client reads. A client that does not read falls behind alone: once its
outbox holds `capacity` frames the oldest is dropped for each new one (counted on the
broadcaster, `traders_events_dropped`), and after `max_dropped` drops the connection is
closed with `SLOW_CONSUMER` and a reason saying why, so that a stalled client learns it
missed events instead of silently living with a gap.

Only a client that does not read is closed: the drops that count towards the limit are
those made while the writer waits for the connection to take more (its send suspended,
which the server does only when the client's socket is full). When the whole process is
too busy to keep up, outboxes drop what they cannot hold, but nobody is told they are slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from app.core.events import Broadcaster

log = logging.getLogger(__name__)

# An application close code (4000-4999), apart from those the GraphQL websocket
# protocols define (4400, 4401, 4403, 4406, 4408, 4409, 4429, 4499, 4500).
SLOW_CONSUMER = 4420


class Outbox:
    """`send` sends an ASGI message on the connection (Starlette's `WebSocket.send`), which
    the outbox gives `websocket.send` messages of text frames; `close` closes it with a code
    and a reason. `counters` is the process's broadcaster, which keeps the drop counts."""

    def __init__(
        self,
        send: Callable[[dict[str, Any]], Awaitable[None]],
        close: Callable[[int, str], Awaitable[None]],
        counters: Broadcaster,
        capacity: int,
        max_dropped: int,
    ) -> None:
        self._send = send
        self._close = close
        self._counters = counters
        self._capacity = capacity
        self._max_dropped = max_dropped
        self._frames: deque[str] = deque()
        self._ready = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._sending = False
        self.dropped = 0
        self.dropped_unread = 0
        self.closed = False

    def put(self, frame: str) -> None:
        if self.closed:
            return
        if len(self._frames) >= self._capacity:
            self._frames.popleft()
            self.dropped += 1
            self._counters.dropped += 1
            if self._sending:  # put runs between writer steps: the writer is suspended
                self.dropped_unread += 1
                if self.dropped_unread >= self._max_dropped:
                    self._give_up()
                    return
        self._frames.append(frame)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(), name="websocket outbox")
        self._ready.set()

    async def _write(self) -> None:
        frames, ready, send = self._frames, self._ready, self._send
        try:
            while True:
                await ready.wait()
                ready.clear()
                while frames:
                    self._sending = True
                    await send({"type": "websocket.send", "text": frames.popleft()})
                    self._sending = False
        except Exception as exc:  # the client is gone: its handler cleans the rest up
            log.debug("websocket outbox stopped: %r", exc)
            self.closed = True

    def _give_up(self) -> None:
        self.closed = True
        self._frames.clear()
        self._counters.slow_closed += 1
        reason = (
            f"slow consumer: {self.dropped_unread} events dropped while the client did not read"
        )
        log.warning("closing a websocket: %s", reason)
        self._stop_writer()
        self._closer = asyncio.create_task(self._close_quietly(reason), name="close slow")

    async def _close_quietly(self, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self._close(SLOW_CONSUMER, reason)

    def _stop_writer(self) -> None:
        if self._writer is not None:
            self._writer.cancel()

    async def aclose(self) -> None:
        """Stop writing: the connection is over (a slow-consumer close still goes out)."""
        self.closed = True
        self._stop_writer()
        if self._writer is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
