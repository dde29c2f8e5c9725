"""Live market data for charts: closed candles and tickers, as the engine's market sees them.

Market events belong to no user (their audience is everyone's, `MARKET`), but a
subscription needs a token like any other. With the engine embedded they come from this
process's market; with the engine elsewhere (`TRADERS_ENGINE=off`) through the event bus
from the engine's market publisher (`app.engine.market_publisher`), which throttles tickers
to one per symbol every `TRADERS_TICKER_INTERVAL_SECONDS`.

Several engine processes each publish the market they see; a subscription passes on each
candle and ticker once, newer than the last it passed on, so a second engine's repeat of
the same close is not a second event.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Mapping
from contextlib import aclosing
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import strawberry

from app.api.broadcast import Convert, subscribe
from app.api.types import Info
from app.core.events import Audience, Event, EventType
from app.domain.intervals import INTERVAL_SECONDS
from app.domain.trader_rules import FieldError, check_symbol
from app.services.errors import InvalidInputError
from app.services.market import EngineUnavailableError

MARKET = Audience(None)
MAX_TICKER_SYMBOLS = 200

T = TypeVar("T")


def _time(payload: Mapping[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(payload["time"]) / 1000, UTC)


def _decimal(payload: Mapping[str, Any], key: str) -> Decimal | None:
    value = payload.get(key)
    return None if value is None else Decimal(str(value))


@strawberry.type(description="A candle of one symbol and interval, as it closed")
class CandleEvent:
    symbol: str
    interval: str
    time: datetime = strawberry.field(description="Open time (UTC)")
    open: float
    high: float
    low: float
    close: float
    volume: float


@strawberry.type(description="A symbol's last price and 24-hour figures")
class TickerEvent:
    symbol: str
    time: datetime = strawberry.field(description="When the market reported it (UTC)")
    last: Decimal
    change_percent: Decimal | None = strawberry.field(description="price change over 24 h")
    bid: Decimal | None
    ask: Decimal | None
    base_volume: Decimal | None = strawberry.field(description="traded over 24 h, in base")
    quote_volume: Decimal | None = strawberry.field(description="traded over 24 h, in quote")


class CandlesOf:
    """The candle events of one symbol and interval, each open time once, in order."""

    def __init__(self, symbol: str, interval: str) -> None:
        self.symbol, self.interval = symbol, interval
        self._last = -1

    def __call__(self, event: Event) -> CandleEvent | None:
        p = event.payload
        if p.get("symbol") != self.symbol or p.get("interval") != self.interval:
            return None
        time = int(p["time"])
        if time <= self._last:
            return None
        candle = CandleEvent(
            symbol=self.symbol,
            interval=self.interval,
            time=_time(p),
            open=float(p["open"]),
            high=float(p["high"]),
            low=float(p["low"]),
            close=float(p["close"]),
            volume=float(p["volume"]),
        )
        self._last = time
        return candle


class TickersOf:
    """The ticker events of some symbols; a symbol's is passed on unless it is older than,
    or the same as, the last passed on (a ticker's time may stay while its price moves)."""

    def __init__(self, symbols: Iterable[str]) -> None:
        self._last: dict[str, tuple[int, Decimal | None]] = dict.fromkeys(symbols, (-1, None))

    def __call__(self, event: Event) -> TickerEvent | None:
        p = event.payload
        symbol = p.get("symbol")
        if symbol not in self._last:
            return None
        time, last = int(p["time"]), _decimal(p, "last")
        if last is None:
            raise ValueError("a ticker without a last price")
        seen = self._last[symbol]
        if time < seen[0] or (time, last) == seen:
            return None
        ticker = TickerEvent(
            symbol=str(symbol),
            time=_time(p),
            last=last,
            change_percent=_decimal(p, "change_pct"),
            bid=_decimal(p, "bid"),
            ask=_decimal(p, "ask"),
            base_volume=_decimal(p, "base_volume"),
            quote_volume=_decimal(p, "quote_volume"),
        )
        self._last[symbol] = (time, last)
        return ticker


async def _check(info: Info, symbols: list[str], interval: str | None) -> None:
    """Well-formed symbols and interval, and known to the market when it is known here."""
    info.context.require_user()
    field = "symbols" if interval is None else "symbol"
    errors = []
    if not 1 <= len(symbols) <= MAX_TICKER_SYMBOLS:
        errors.append(FieldError(field, f"must name between 1 and {MAX_TICKER_SYMBOLS} symbols"))
    if interval is not None and interval not in INTERVAL_SECONDS:
        errors.append(FieldError("interval", f"must be one of {', '.join(INTERVAL_SECONDS)}"))
    if bad := next((problem for s in symbols if (problem := check_symbol(s))), None):
        errors.append(FieldError(field, bad))
    if not errors:
        try:
            market = await info.context.runtime.market.info()
        except EngineUnavailableError:
            market = None
        if market is not None:
            if interval is not None and interval not in market.intervals:
                errors.append(FieldError("interval", f"the market has no {interval} candles"))
            if unknown := [s for s in symbols if s not in market.symbols]:
                errors.append(FieldError(field, f"not in the market: {', '.join(unknown)}"))
    if errors:
        raise InvalidInputError(errors)


async def _market_events(
    info: Info, event_type: str, symbols: list[str], interval: str | None, convert: Convert[T]
) -> AsyncGenerator[T, None]:
    await _check(info, symbols, interval)
    async with aclosing(subscribe(info, [event_type], MARKET, convert)) as results:
        async for result in results:
            yield result


@strawberry.type
class MarketSubscription:
    @strawberry.subscription(description="Each candle of one symbol and interval as it closes")
    def candles(self, info: Info, symbol: str, interval: str) -> AsyncGenerator[CandleEvent, None]:
        convert = CandlesOf(symbol, interval)
        return _market_events(info, EventType.CANDLE, [symbol], interval, convert)

    @strawberry.subscription(
        description="Last price and 24 h change of the symbols, at most one per symbol every "
        "TRADERS_TICKER_INTERVAL_SECONDS"
    )
    def tickers(self, info: Info, symbols: list[str]) -> AsyncGenerator[TickerEvent, None]:
        wanted = list(dict.fromkeys(symbols))
        return _market_events(info, EventType.TICKER, wanted, None, TickersOf(wanted))
