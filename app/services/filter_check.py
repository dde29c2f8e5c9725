"""validateFilter: check a filter before it is saved, and show what it matches right now.

Validation is the static whitelist first (errors with line and column); code that passes is
dry-run in the sandbox on the current candles, where a run-time failure is an error too,
located at the line the filter raised on when there is one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from app.domain.filter_validation import FilterError, FilterValidationError, parse_filter
from app.domain.intervals import INTERVALS
from app.engine.market import MarketData
from app.engine.screening import ScreenerEngine
from app.services.market import ENGINE_ELSEWHERE

MAX_SYMBOLS = 1000
_LOCATION = re.compile(r"^line (\d+)(?:, column (\d+))?: ")


class DryRunEngine(Protocol):
    """What a dry run needs of the engine: its market and its screener."""

    market: MarketData

    @property
    def screener(self) -> ScreenerEngine: ...


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


async def validate_filter(
    code: str,
    symbols: Sequence[str] | None = None,
    *,
    interval: str = "1h",
    engine: DryRunEngine | None = None,
) -> FilterCheck:
    """Validate `code`, then dry-run it on `symbols` (default: every symbol at `interval`)."""
    started = time.perf_counter()
    if interval not in INTERVALS:
        return FilterCheck((FilterError(1, 1, f"unknown interval {interval!r}"),))
    if symbols is not None and len(symbols) > MAX_SYMBOLS:
        return FilterCheck((FilterError(1, 1, f"at most {MAX_SYMBOLS} symbols per check"),))
    try:
        parse_filter(code, interval)
    except FilterValidationError as exc:
        return FilterCheck(tuple(exc.errors), elapsed_ms=_ms_since(started))
    if engine is None:
        return FilterCheck((), elapsed_ms=_ms_since(started), skipped=ENGINE_ELSEWHERE)
    view = engine.market.view()
    known = set(view.symbols(interval))
    wanted = list(dict.fromkeys(symbols)) if symbols is not None else sorted(known)
    missing = tuple(symbol for symbol in wanted if symbol not in known)
    outcome = await engine.screener.dry_run(code, interval, [s for s in wanted if s in known], view)
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
