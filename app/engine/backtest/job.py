"""One backtest as a job: what it asks (`BacktestRequest`), checked, replayed, answered.

The API's runner, its worker process and the `traders backtest` command all run a backtest
through `run_backtest`: the request is checked before anything is replayed (the window, the
trader's filter, the symbols against the data), the market is loaded from a replay
directory (CSV as `traders data download` writes it, or Parquet) or taken as given (the
stored history of the running market), and `replay_history` runs the live stages over it.
`write_market` turns the stored history of a running market into such a directory. The
answer is the result document of `app.domain.backtest`. A request travels between
processes as JSON (`to_json`, `from_json`), money as strings.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from app.domain.backtest import BacktestInputError, check_data, check_window, result_document
from app.domain.enums import BacktestAnalysis, TradingMode
from app.domain.fill_model import FillModel
from app.domain.filter_validation import FilterValidationError
from app.domain.intervals import INTERVAL_SECONDS
from app.domain.ledger import DEFAULT_BALANCE
from app.domain.trader_spec import RiskSettings, TraderSpec
from app.engine.analysis.base import AnalysisEngine
from app.engine.analysis.filter_only import FilterOnlyEngine
from app.engine.analysis.rules import RuleAnalysisEngine
from app.engine.backtest.replay import ReplayMarket
from app.engine.backtest.run import Progress, replay_history
from app.engine.feeds.replay import candle_filename, candle_files, read_candles, write_parquet
from app.engine.klines import KlineStore
from app.engine.sandbox import FilterSandbox

DEFAULT_WORKERS = 1


@dataclass(frozen=True, slots=True)
class BacktestRequest:
    """A trader (saved or not) over [start, end] (epoch ms) of the candles in `data`, a
    replay directory; `symbols` and `interval` replace the trader's own when given;
    `analysis` is what decides on its signals."""

    trader: TraderSpec
    start: int
    end: int
    data: str
    symbols: tuple[str, ...] = ()
    interval: str | None = None
    balance: Decimal = DEFAULT_BALANCE
    fill_model: FillModel = dataclasses.field(default_factory=FillModel)
    analysis: BacktestAnalysis = BacktestAnalysis.RULES

    @property
    def spec(self) -> TraderSpec:
        """The trader as the run replays it: demo mode, with the asked symbols and interval."""
        return dataclasses.replace(
            self.trader,
            mode=TradingMode.DEMO,
            symbols=self.symbols or self.trader.symbols,
            interval=self.interval or self.trader.interval,
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), default=_plain)

    @classmethod
    def from_json(cls, raw: str) -> BacktestRequest:
        data = json.loads(raw)
        trader = data["trader"]
        spec = TraderSpec(
            **{
                **trader,
                "id": uuid.UUID(trader["id"]),
                "symbols": tuple(trader["symbols"]),
                "mode": TradingMode(trader["mode"]),
                "filter_description": tuple(trader["filter_description"]),
                "risk": RiskSettings(**_decimals(trader["risk"], RiskSettings)),
            }
        )
        return cls(
            trader=spec,
            start=int(data["start"]),
            end=int(data["end"]),
            data=str(data["data"]),
            symbols=tuple(data["symbols"]),
            interval=data["interval"],
            balance=Decimal(data["balance"]),
            fill_model=FillModel(**_decimals(data["fill_model"], FillModel)),
            analysis=BacktestAnalysis(data.get("analysis", BacktestAnalysis.RULES)),
        )


def _plain(value: object) -> str:
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _decimals(values: Mapping[str, Any], kind: type) -> dict[str, Any]:
    """Decimal fields of `kind` back from strings; counts stay as they are."""
    hints = {f.name: f.type for f in dataclasses.fields(kind)}
    return {
        name: Decimal(value) if isinstance(value, str) and "Decimal" in str(hints[name]) else value
        for name, value in values.items()
    }


def check_request(request: BacktestRequest) -> TraderSpec:
    """The spec to replay, or `BacktestInputError` naming what is wrong with the request."""
    check_window(request.start, request.end)
    spec = request.spec
    if spec.interval not in INTERVAL_SECONDS:
        raise BacktestInputError("interval", f"unknown interval {spec.interval!r}")
    try:
        spec.filter  # noqa: B018 - parsing is the check
        spec.exit_filter  # noqa: B018
    except FilterValidationError as exc:
        raise BacktestInputError("filter", f"the filter does not pass: {exc}") from None
    if request.balance <= 0:
        raise BacktestInputError("balance", "the starting balance must be positive")
    return spec


def check_symbols(directory: str | Path, symbols: Collection[str], interval: str) -> None:
    """Before anything is read: the directory exists and has a file for each asked symbol at
    `interval` (any symbol when none is asked)."""
    path = Path(directory)
    if not path.is_dir():
        raise BacktestInputError("data", f"no data directory {str(path)!r}")
    held = {symbol for symbol, each in candle_files(path) if each == interval}
    if not held:
        raise BacktestInputError("interval", f"{str(path)!r} holds no {interval} candles")
    unknown = sorted(set(symbols) - held)
    if unknown:
        raise BacktestInputError(
            "symbols", f"no {interval} candles for {', '.join(unknown)} in the data"
        )


def write_market(store: KlineStore, directory: Path, interval: str) -> Path:
    """The stored history of a running market (its series at `interval` and smaller ones,
    which quotes and fills read) as a replay directory of Parquet files."""
    wanted = INTERVAL_SECONDS[interval]
    for each in store.intervals():
        if INTERVAL_SECONDS[each] > wanted:
            continue
        for symbol in store.symbols(each):
            c = store.candles(symbol, each)
            rows = np.column_stack([c.time, c.open, c.high, c.low, c.close, c.volume])
            write_parquet(directory / candle_filename(symbol, each, ".parquet"), rows)
    return directory


def load_series(directory: str | Path, interval: str) -> dict[tuple[str, str], np.ndarray]:
    """The candle files of a replay directory at `interval` (and smaller ones, which quotes
    and fills read when present); a directory that is missing or holds none is an error."""
    path = Path(directory)
    if not path.is_dir():
        raise BacktestInputError("data", f"no data directory {str(path)!r}")
    files = candle_files(path)
    if not files:
        raise BacktestInputError("data", f"{str(path)!r} holds no candle files")
    wanted = INTERVAL_SECONDS[interval]
    series = {}
    for key, file in files.items():
        if INTERVAL_SECONDS[key[1]] > wanted:
            continue
        try:
            series[key] = read_candles(file)
        except (ValueError, OSError) as exc:
            raise BacktestInputError("data", f"{file.name}: {exc}") from None
    return series


def analysis_engine(analysis: BacktestAnalysis) -> AnalysisEngine:
    """The engine that decides on a backtest's signals."""
    if analysis == BacktestAnalysis.FILTER:
        return FilterOnlyEngine()
    return RuleAnalysisEngine()


async def run_backtest(
    request: BacktestRequest,
    *,
    series: Mapping[tuple[str, str], np.ndarray] | None = None,
    progress: Progress | None = None,
    workers: int = DEFAULT_WORKERS,
) -> dict[str, Any]:
    """Check, load, replay; the result document. `series` (symbol, interval) -> rows replaces
    the request's directory (the stored history of a running market)."""
    spec = check_request(request)
    rows = series if series is not None else load_series(request.data, spec.interval)
    if spec.symbols:
        rows = {key: value for key, value in rows.items() if key[0] in spec.symbols}
    market = ReplayMarket(rows)
    spans = market.spans()
    check_data(
        spec.symbols or [s for s, i in spans if i == spec.interval],
        spec.interval,
        spans,
        request.start,
        request.end,
    )
    async with FilterSandbox(workers=workers) as sandbox:
        result = await replay_history(
            [spec],
            market,
            sandbox,
            start=request.start,
            end=request.end,
            analysis=analysis_engine(request.analysis),
            model=request.fill_model,
            balance=request.balance,
            progress=progress,
        )
    symbols_of = {s.id: s.symbol for s in result.signals}
    return result_document(
        metrics=result.metrics[spec.id],
        equity_curve=result.equity[spec.id],
        trades=result.trades,
        decisions=result.decisions,
        labels=result.labels,
        symbols_of=symbols_of,
        signals=len(result.signals),
        closes=len(result.reports),
        errors=result.errors,
    )
