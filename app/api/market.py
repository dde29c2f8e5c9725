"""Market data over GraphQL: which market the process sees, and candles with indicators.

Candle numbers are Float: they are market data for charts, not money. Indicator values are
computed over the whole stored series (so they are warmed up) through the shared indicator
cache, then cut to the `limit` candles returned; a value not yet defined is null.

Indicators are CPU work a client chooses, so a request may ask for at most
`TRADERS_MAX_INDICATOR_CANDLES` of it (indicators times the stored candles each is computed
over), and what is not cached is computed in a worker thread, off the event loop: the cache
is looked up on the loop, the snapshot of the series computed in the thread, and the results
inserted back on the loop (the cache is not thread-safe; the snapshot never changes).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import strawberry

from app.api.types import Info
from app.domain.indicators import INDICATORS, IndicatorSpec, Outputs
from app.domain.intervals import INTERVAL_SECONDS
from app.domain.trader_rules import FieldError
from app.engine.indicators import UnknownIndicator, compute, lookup
from app.engine.klines import Candles
from app.engine.market import MarketData
from app.services.errors import InvalidInputError

MAX_INDICATORS = 20


@strawberry.type
class Market:
    source: str = strawberry.field(description='"ccxt:<exchange>", "simulated" or "replay:<dir>"')
    is_live_market: bool = strawberry.field(
        description="False for simulated and replayed prices: live trading refuses them"
    )
    symbols: list[str]
    intervals: list[str]
    last_candle_at: datetime | None = strawberry.field(
        description="Open time of the newest stored candle (UTC)"
    )


@strawberry.type
class Kline:
    time: datetime = strawberry.field(description="Open time (UTC)")
    open: float
    high: float
    low: float
    close: float
    volume: float


@strawberry.type
class IndicatorParam:
    name: str
    value: float


@strawberry.type
class IndicatorOutput:
    name: str
    values: list[float | None]


@strawberry.type
class IndicatorSeries:
    name: str
    params: list[IndicatorParam]
    per_candle: bool = strawberry.field(
        description="True: one value per returned candle; false: levels (volume nodes)"
    )
    outputs: list[IndicatorOutput]


@strawberry.type
class Klines:
    symbol: str
    interval: str
    candles: list[Kline]
    indicators: list[IndicatorSeries]


@strawberry.type
class IndicatorInfo:
    name: str
    description: str
    params: list[IndicatorParam] = strawberry.field(description="Parameters with their defaults")
    outputs: list[str]


@strawberry.input
class IndicatorParamInput:
    name: str
    value: float


@strawberry.input
class IndicatorInput:
    name: str
    params: list[IndicatorParamInput] = strawberry.field(default_factory=list)


def _market(info: Info) -> MarketData:
    info.context.require_user()
    return info.context.runtime.market.data()


def _utc(time_ms: int) -> datetime:
    return datetime.fromtimestamp(time_ms / 1000, UTC)


def _floats(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(value) else value for value in values.tolist()]


@dataclass(frozen=True, slots=True)
class _Requested:
    """One indicator a request asks for, its parameters bound, and its result if cached."""

    spec: IndicatorSpec
    bound: dict[str, int | float]
    cached: Outputs | None


def _requested(
    market: MarketData, symbol: str, interval: str, requests: list[IndicatorInput]
) -> list[_Requested]:
    requested, errors = [], []
    for index, request in enumerate(requests):
        field = f"indicators[{index}]"
        try:
            spec = lookup(request.name, market.indicators.registry)
        except UnknownIndicator as exc:
            errors.append(FieldError(f"{field}.name", str(exc)))
            continue
        try:
            bound = spec.bind({param.name: param.value for param in request.params})
        except ValueError as exc:
            errors.append(FieldError(f"{field}.params", str(exc)))
            continue
        cached = market.indicators.cached(symbol, interval, spec.name, bound)
        requested.append(_Requested(spec, bound, cached))
    if errors:
        raise InvalidInputError(errors)
    return requested


def _series(
    spec: IndicatorSpec, bound: Mapping[str, int | float], outputs: Outputs, limit: int
) -> IndicatorSeries:
    return IndicatorSeries(
        name=spec.name,
        params=[IndicatorParam(name=name, value=float(value)) for name, value in bound.items()],
        per_candle=spec.per_candle,
        outputs=[
            IndicatorOutput(
                name=name, values=_floats(values[-limit:] if spec.per_candle else values)
            )
            for name, values in outputs.items()
        ],
    )


def _build(
    candles: Candles, requested: list[_Requested], limit: int
) -> tuple[list[Kline], list[IndicatorSeries], list[tuple[_Requested, Outputs]]]:
    """The answer's candles and series, and the results computed for the cache. Runs in a
    worker thread: it reads only the snapshot and the results looked up on the loop."""
    window = slice(-limit, None)
    klines = [
        Kline(time=_utc(time), open=open_, high=high, low=low, close=close, volume=volume)
        for time, open_, high, low, close, volume in zip(
            candles.time[window].tolist(),
            candles.open[window].tolist(),
            candles.high[window].tolist(),
            candles.low[window].tolist(),
            candles.close[window].tolist(),
            candles.volume[window].tolist(),
            strict=True,
        )
    ]
    series, computed = [], []
    for item in requested:
        outputs = item.cached
        if outputs is None:
            outputs = compute(item.spec, candles, item.bound)
            computed.append((item, outputs))
        series.append(_series(item.spec, item.bound, outputs, limit))
    return klines, series, computed


@strawberry.type
class MarketQuery:
    @strawberry.field(
        description="The market the engine sees (from its heartbeat when it runs elsewhere)"
    )
    async def market(self, info: Info) -> Market:
        info.context.require_user()
        market = await info.context.runtime.market.info()
        return Market(
            source=market.source,
            is_live_market=market.is_live_market,
            symbols=list(market.symbols),
            intervals=list(market.intervals),
            last_candle_at=market.last_candle_at,
        )

    @strawberry.field(description="The last `limit` closed candles, oldest first, with indicators")
    async def klines(
        self,
        info: Info,
        symbol: str,
        interval: str,
        limit: int = 200,
        indicators: list[IndicatorInput] | None = None,
    ) -> Klines:
        market = _market(info)
        requests = indicators or []
        errors = []
        if interval not in INTERVAL_SECONDS:
            errors.append(FieldError("interval", f"must be one of {', '.join(INTERVAL_SECONDS)}"))
        elif (symbol, interval) not in market.store:
            errors.append(FieldError("symbol", f"no {interval} candles for {symbol}"))
        if not 1 <= limit <= market.store.depth:
            errors.append(FieldError("limit", f"must be between 1 and {market.store.depth}"))
        if len(requests) > MAX_INDICATORS:
            errors.append(FieldError("indicators", f"at most {MAX_INDICATORS}"))
        if errors:
            raise InvalidInputError(errors)
        candles = market.store.candles(symbol, interval)
        budget = info.context.runtime.settings.max_indicator_candles
        if len(requests) * len(candles) > budget:
            message = (
                f"{len(requests)} indicators over the {len(candles)} stored candles are "
                f"{len(requests) * len(candles):,} candle computations, over the limit of "
                f"{budget:,} per request: ask for at most {budget // len(candles)}"
            )
            raise InvalidInputError([FieldError("indicators", message)])
        requested = _requested(market, symbol, interval, requests)
        klines, series, computed = await asyncio.to_thread(_build, candles, requested, limit)
        for item, outputs in computed:
            market.indicators.insert(
                symbol, interval, candles.last_time, item.spec.name, item.bound, outputs
            )
        return Klines(symbol=symbol, interval=interval, candles=klines, indicators=series)

    @strawberry.field(description="Every indicator `klines` and trader filters can use")
    def indicator_catalog(self, info: Info) -> list[IndicatorInfo]:
        info.context.require_user()
        return [
            IndicatorInfo(
                name=spec.name,
                description=spec.description,
                params=[IndicatorParam(name=p.name, value=float(p.default)) for p in spec.params],
                outputs=list(spec.outputs),
            )
            for spec in INDICATORS.values()
        ]
