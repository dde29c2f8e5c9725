"""validateFilter: check a filter before it is saved, and show what it matches right now.

Validation is the static whitelist first (errors with line and column); code that passes is
dry-run in the sandbox on the current candles, where a run-time failure is an error too,
located at the line the filter raised on when there is one.

Dry runs cannot hog the engine: they run in a lane of their own (`FilterChecker`, a small
sandbox pool at a lower CPU priority), so a screen never waits for a dry run and a dry run
never waits for a screen; each has a small time budget (`dry_run_seconds` in all,
`dry_run_eval_seconds` per symbol); a user has at most one dry run in flight, and a dry run
waits at most `dry_run_wait_seconds` for the lane before it is refused as busy.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.core.settings import Settings
from app.domain.filter_validation import FilterError, FilterValidationError, parse_filter
from app.domain.intervals import INTERVALS
from app.engine.market import MarketData
from app.engine.sandbox import FilterJob, FilterOutcome, FilterSandbox, SandboxLimits
from app.services.errors import BusyError
from app.services.market import ENGINE_ELSEWHERE

MAX_SYMBOLS = 1000
DRY_RUN = "dry-run"
DRY_RUN_NICENESS = 15
_LOCATION = re.compile(r"^line (\d+)(?:, column (\d+))?: ")


@dataclass(frozen=True, slots=True)
class FilterCheck:
    """`errors` is empty when the filter is valid. `matches` are the symbols it matches now,
    `ran` says whether the dry run happened (it needs the engine; `skipped` says why not),
    `missing` the requested symbols that have no candles at the interval."""

    errors: tuple[FilterError, ...]
    matches: tuple[str, ...] = ()
    evaluated: int = 0
    elapsed_ms: float = 0.0
    ran: bool = False
    missing: tuple[str, ...] = field(default_factory=tuple)
    skipped: str | None = None

    @property
    def valid(self) -> bool:
        return not self.errors


def runtime_error(failure: str) -> FilterError:
    """A sandbox failure as a located error: `line 3, column 9: ZeroDivisionError: ...`."""
    found = _LOCATION.match(failure)
    if found is None:
        return FilterError(1, 1, failure)
    line, column = found.groups()
    return FilterError(int(line), int(column or 1), failure[found.end() :])


class FilterChecker:
    """Dry runs of filter code on the market's current candles, in their own sandbox."""

    def __init__(
        self, market: MarketData, sandbox: FilterSandbox, wait_seconds: float = 5.0
    ) -> None:
        self.market = market
        self.sandbox = sandbox
        self.wait_seconds = wait_seconds
        self._lane = asyncio.Lock()
        self._in_flight: set[int | None] = set()

    @classmethod
    def from_settings(cls, market: MarketData, settings: Settings) -> FilterChecker:
        limits = SandboxLimits(
            eval_seconds=settings.dry_run_eval_seconds,
            run_seconds=settings.dry_run_seconds,
            niceness=DRY_RUN_NICENESS,
        )
        sandbox = FilterSandbox(workers=settings.dry_run_workers, limits=limits)
        return cls(market, sandbox, settings.dry_run_wait_seconds)

    async def start(self) -> None:
        await self.sandbox.start()

    async def close(self) -> None:
        await self.sandbox.close()

    def universe(self, interval: str) -> tuple[str, ...]:
        return self.market.store.symbols(interval)

    async def dry_run(
        self, user_id: int | None, code: str, interval: str, symbols: Sequence[str]
    ) -> FilterOutcome:
        """Run a filter that belongs to no trader on the current candles; nothing is recorded.

        Raises `BusyError` while another dry run of `user_id` is in flight, or when the lane
        stays taken for longer than `wait_seconds`; `FilterValidationError` for invalid code.
        """
        program = parse_filter(code, interval)
        if user_id in self._in_flight:
            raise BusyError("a filter check of yours is still running; wait for its answer")
        self._in_flight.add(user_id)
        try:
            try:
                async with asyncio.timeout(self.wait_seconds):
                    await self._lane.acquire()
            except TimeoutError:
                raise BusyError("too many filter checks at once; try again shortly") from None
            try:
                job = FilterJob(
                    DRY_RUN,
                    code,
                    interval,
                    tuple(symbols),
                    program.timeframes,
                    {"interval": interval},
                    self.sandbox.limits.run_seconds / self.sandbox.size,
                )
                view = self.market.view()
                outcomes = await self.sandbox.run([job], view, view.tickers())
            finally:
                self._lane.release()
        finally:
            self._in_flight.discard(user_id)
        return outcomes[DRY_RUN]


async def validate_filter(
    code: str,
    symbols: Sequence[str] | None = None,
    *,
    interval: str = "1h",
    checker: FilterChecker | None = None,
    user_id: int | None = None,
) -> FilterCheck:
    """Validate `code`, then dry-run it on `symbols` (default: every symbol at `interval`) as
    `user_id`; `BusyError` when that user already has a check in flight."""
    started = time.perf_counter()
    if interval not in INTERVALS:
        return FilterCheck((FilterError(1, 1, f"unknown interval {interval!r}"),))
    if symbols is not None and len(symbols) > MAX_SYMBOLS:
        return FilterCheck((FilterError(1, 1, f"at most {MAX_SYMBOLS} symbols per check"),))
    try:
        parse_filter(code, interval)
    except FilterValidationError as exc:
        return FilterCheck(tuple(exc.errors), elapsed_ms=_ms_since(started))
    if checker is None:
        return FilterCheck((), elapsed_ms=_ms_since(started), skipped=ENGINE_ELSEWHERE)
    known = set(checker.universe(interval))
    wanted = list(dict.fromkeys(symbols)) if symbols is not None else sorted(known)
    missing = tuple(symbol for symbol in wanted if symbol not in known)
    outcome = await checker.dry_run(user_id, code, interval, [s for s in wanted if s in known])
    if outcome.lost is not None:
        return FilterCheck((), elapsed_ms=_ms_since(started), missing=missing)
    errors = (runtime_error(outcome.failure),) if outcome.failure is not None else ()
    return FilterCheck(
        errors,
        tuple(sorted(match.symbol for match in outcome.matches)),
        outcome.evaluated,
        _ms_since(started),
        ran=True,
        missing=missing,
    )


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
