"""The backtest worker: one run in a process of its own, below the live engine's priority.

`python -m app.engine.backtest.process` reads a `BacktestRequest` as JSON on stdin, lowers
its own CPU priority (so a backtest beside a live engine never slows its screening: the
engine's event loop is in another process, and the scheduler serves it first), runs the
request with `run_backtest` and its own sandbox, and answers on stdout, one JSON object a
line:

- `{"progress": [done, total]}`: closes replayed, at most every `PROGRESS_SECONDS`, and at
  the last close;
- `{"result": {...}}`: the result document, once, at the end;
- `{"error": {"field": ..., "message": ...}}`: the request cannot run as asked.

Anything else that goes wrong is logged to stderr and the process exits with status 1; a
run is cancelled by ending the process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from typing import Any, TextIO

from app.domain.backtest import BacktestInputError
from app.engine.backtest.job import BacktestRequest, run_backtest

NICENESS = 10
PROGRESS_SECONDS = 0.1


def _say(out: TextIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message, separators=(",", ":")) + "\n")
    out.flush()


async def serve(request: BacktestRequest, out: TextIO) -> None:
    last = 0.0

    async def progress(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done == total or now - last >= PROGRESS_SECONDS:
            last = now
            _say(out, {"progress": [done, total]})

    try:
        document = await run_backtest(request, progress=progress)
    except BacktestInputError as exc:
        _say(out, {"error": {"field": exc.field, "message": str(exc)}})
        return
    _say(out, {"result": document})


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    os.nice(NICENESS)
    request = BacktestRequest.from_json(sys.stdin.read())
    asyncio.run(serve(request, sys.stdout))


if __name__ == "__main__":
    main()
