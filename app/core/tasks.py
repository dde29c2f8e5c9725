"""Stopping a part's background tasks: cancel them all, then wait for each to end.

Every long-running part (the live engine, its stage tasks, the market publisher) keeps
tasks of its own and stops them the same way. Waiting through `asyncio.gather` rather than
awaiting each task under `suppress(CancelledError)` matters when the caller is cancelled
itself meanwhile (a server shut down during a stop): its cancellation then reaches it,
instead of being taken for one of the tasks' and swallowed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel `tasks` and return once each has ended; one that had failed is logged."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    ended_as = await asyncio.gather(*tasks, return_exceptions=True)
    for task, ended in zip(tasks, ended_as, strict=True):
        if isinstance(ended, Exception):
            log.warning("task %s had failed", task.get_name(), exc_info=ended)
