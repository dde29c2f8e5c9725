"""A websocket's outbox: frames in order at the client's pace, and a client that does not
read falls behind alone, then is closed with a reason."""

from __future__ import annotations

import asyncio
from typing import Any

from app.api.outbox import SLOW_CONSUMER, Outbox
from app.core.events import Broadcaster
from tests.events.live import until


class Client:
    """A websocket end that reads only while `reading` is set."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.reading.set()
        self.received: list[str] = []
        self.closed: tuple[int, str] | None = None

    async def send(self, message: dict[str, Any]) -> None:
        assert message["type"] == "websocket.send"
        await self.reading.wait()
        self.received.append(message["text"])

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


async def test_frames_go_out_in_order() -> None:
    client, counters = Client(), Broadcaster()
    outbox = Outbox(client.send, client.close, counters, capacity=25, max_dropped=5)

    for n in range(25):
        outbox.put(f"f{n}")
    await until(lambda: len(client.received) == 25)

    assert client.received == [f"f{n}" for n in range(25)]
    assert (outbox.dropped, counters.dropped, client.closed) == (0, 0, None)
    await outbox.aclose()


async def test_a_client_that_does_not_read_loses_the_oldest_then_is_closed() -> None:
    client, counters = Client(), Broadcaster()
    outbox = Outbox(client.send, client.close, counters, capacity=3, max_dropped=4)
    client.reading.clear()

    outbox.put("f0")  # taken by the writer, which waits for the client
    await asyncio.sleep(0)
    for n in range(1, 7):
        outbox.put(f"f{n}")
    assert (outbox.dropped, counters.dropped, client.closed) == (3, 3, None)

    client.reading.set()
    await until(lambda: client.received == ["f0", "f4", "f5", "f6"])
    client.reading.clear()
    outbox.put("f7")
    await asyncio.sleep(0)
    for n in range(8, 13):
        outbox.put(f"f{n}")
    await until(lambda: client.closed is not None)

    assert client.closed == (
        SLOW_CONSUMER,
        "slow consumer: 4 events dropped while the client did not read",
    )
    assert counters.slow_closed == 1
    outbox.put("after")
    client.reading.set()
    await outbox.aclose()
    assert "after" not in client.received


async def test_a_busy_process_drops_what_it_cannot_hold_but_closes_nobody() -> None:
    client, counters = Client(), Broadcaster()
    outbox = Outbox(client.send, client.close, counters, capacity=3, max_dropped=2)

    for n in range(10):  # faster than the writer gets to run: it never waited for the client
        outbox.put(f"f{n}")
    await until(lambda: client.received == ["f7", "f8", "f9"])

    assert (outbox.dropped, counters.dropped, counters.slow_closed) == (7, 7, 0)
    assert client.closed is None
    await outbox.aclose()
