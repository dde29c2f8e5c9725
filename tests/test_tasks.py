"""cancel_and_wait: a part's tasks stopped, the caller's own cancellation kept."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.core.tasks import cancel_and_wait


async def test_every_task_ends_and_a_failed_one_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def failing() -> None:
        raise RuntimeError("boom")

    forever = asyncio.create_task(asyncio.Event().wait(), name="forever")
    failed = asyncio.create_task(failing(), name="failing")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING):
        await cancel_and_wait([forever, failed])
    assert forever.cancelled() and failed.done()
    assert "task failing had failed" in caplog.text


async def test_the_callers_cancellation_reaches_it() -> None:
    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.2)  # its clean-up takes a while

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    stopping = asyncio.create_task(cancel_and_wait([task]))
    await asyncio.sleep(0.05)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert stopping.cancelled()
