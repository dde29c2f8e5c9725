"""Record an exchange's candles into files the replay feed reads (`traders data download`).

Pages through `fetch_ohlcv` from the first candle opening at or after `since` to the last
closed one, retrying rate limits and network failures with back-off (a bounded number of
times: a command should fail, not hang), and writes one CSV per symbol to a temporary name
first, so an interrupted download never leaves a truncated file behind.
"""

from __future__ import annotations

import asyncio
import csv
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from app.domain.intervals import interval_ms
from app.engine.feeds.base import Backoff
from app.engine.feeds.ccxt_feed import PAGE_LIMIT, make_exchange, retry
from app.engine.feeds.replay import COLUMNS, candle_filename

Progress = Callable[[str, float], None]
ATTEMPTS = 8


def stderr_progress(symbol: str, fraction: float, width: int = 30) -> None:
    """A one-line progress bar per symbol on stderr."""
    filled = round(width * fraction)
    end = "\n" if fraction >= 1 else ""
    sys.stderr.write(
        f"\r{symbol:<16} [{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%}{end}"
    )
    sys.stderr.flush()


def to_epoch_ms(since: int | datetime | str) -> int:
    """Epoch ms from an int or digits, a datetime (naive means UTC) or an ISO 8601 date/time;
    ValueError naming the value otherwise."""
    if isinstance(since, int):
        return since
    if isinstance(since, str) and since.isdigit():
        return int(since)
    try:
        moment = since if isinstance(since, datetime) else datetime.fromisoformat(since)
    except ValueError:
        raise ValueError(f"since {since!r} is neither epoch milliseconds nor an ISO date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


async def download_candles(
    exchange: str | Any,
    symbols: Iterable[str],
    interval: str,
    since: int | datetime | str,
    directory: str | Path,
    progress: Progress | bool | None = True,
    backoff: Backoff | None = None,
) -> list[Path]:
    """Write `directory/BASE_QUOTE-<interval>.csv` for each symbol; returns the paths.

    `exchange` is a ccxt exchange id or a ccxt async client (left open for its owner).
    `progress` True draws a bar on stderr, a callable gets (symbol, fraction done).
    """
    report: Progress | None = stderr_progress if progress is True else progress or None
    backoff = backoff or Backoff()
    client = make_exchange(exchange, websocket=False) if isinstance(exchange, str) else exchange
    target = Path(directory)
    await asyncio.to_thread(target.mkdir, parents=True, exist_ok=True)
    try:
        await retry(client.load_markets, "load markets", backoff, ATTEMPTS)
        symbols = list(symbols)
        if unknown := [symbol for symbol in symbols if symbol not in client.markets]:
            raise ValueError(f"{client.id} has no market {', '.join(unknown)}")
        now = int(await retry(client.fetch_time, "fetch time", backoff, ATTEMPTS))
        paths = []
        for symbol in symbols:
            rows = await _fetch_all(
                client, symbol, interval, to_epoch_ms(since), now, report, backoff
            )
            paths.append(_write(target / candle_filename(symbol, interval), rows))
        return paths
    finally:
        if isinstance(exchange, str):
            await client.close()


async def _fetch_all(
    client: Any,
    symbol: str,
    interval: str,
    since: int,
    now: int,
    report: Progress | None,
    backoff: Backoff,
) -> list[list[float]]:
    step = interval_ms(interval)
    start = cursor = since + (-since % step)
    rows: list[list[float]] = []
    fraction = 0.0
    while cursor + step <= now:
        page = await retry(
            partial(client.fetch_ohlcv, symbol, interval, since=cursor, limit=PAGE_LIMIT),
            f"download {symbol} {interval}",
            backoff,
            ATTEMPTS,
        )
        closed = [row for row in page if row[0] >= cursor and row[0] + step <= now]
        if not closed:
            break
        rows.extend(closed)
        cursor = int(closed[-1][0]) + step
        fraction = min(1.0, (cursor - start) / max(now - start, 1))
        if report:
            report(symbol, fraction)
    if report and fraction < 1.0:
        report(symbol, 1.0)
    return rows


def _write(path: Path, rows: list[list[float]]) -> Path:
    partial = path.with_suffix(path.suffix + ".part")
    with partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for time, *values in rows:
            writer.writerow([int(time), *(repr(float(value)) for value in values)])
    partial.replace(path)
    return path
