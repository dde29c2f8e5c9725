"""The live market of a real exchange, through ccxt.

Start: load the markets, choose the symbol universe (an explicit list, or the top spot pairs
of one quote currency by 24-hour quote volume above a floor, leveraged tokens excluded),
then back-fill `store.depth` closed candles of every symbol and interval. Only spot markets
are loaded where ccxt lets us choose.

Then, for each interval, new candles as they close: through ccxt.pro's websocket when the
client has it (one `watch_ohlcv_for_symbols` subscription per interval, else `watch_ohlcv`
per symbol), otherwise by polling `fetch_ohlcv` just after each candle's close (or every
`poll_seconds` when given). Both paths catch up through REST from the last stored candle,
so a disconnect leaves no hole: the gap is fetched on the next success. Closedness is
judged on the exchange's clock (`fetch_time`), never on ours.

Rate limits: ccxt's own throttle (`enableRateLimit`) spaces requests; a 429/418 or a network
failure is retried with exponential back-off and jitter, logged with the delay. An exchange
error about one symbol (say, delisted) skips that symbol for the round and never stops the
feed.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable, Container, Iterable, Mapping
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import ccxt
import ccxt.async_support as ccxt_async

from app.domain.intervals import interval_ms
from app.engine.clock import RealtimeClock
from app.engine.feeds.base import Backoff, Ticker, to_decimal
from app.engine.klines import KlineStore

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_INTERVALS = ("1m", "5m", "15m", "1h", "4h")
LEVERAGED_SUFFIXES = ("UP", "DOWN", "BULL", "BEAR")
PAGE_LIMIT = 1000
LATE_RETRIES = 3


def make_exchange(exchange_id: str, websocket: bool = True, **config: Any) -> Any:
    """A ccxt client with rate limiting on; ccxt.pro's when asked for and installed."""
    module: Any = ccxt_async
    if websocket:
        try:
            module = importlib.import_module("ccxt.pro")
        except ImportError:
            module = ccxt_async
    if not hasattr(module, exchange_id):
        raise ValueError(f"ccxt has no exchange {exchange_id!r}")
    return getattr(module, exchange_id)({"enableRateLimit": True, **config})


async def retry(
    call: Callable[[], Awaitable[T]], what: str, backoff: Backoff, attempts: int | None = None
) -> T:
    """Await `call` until it succeeds, backing off on rate limits and network failures;
    after `attempts` failures (None: never give up) the last error is raised."""
    attempt = 0
    while True:
        try:
            return await call()
        except ccxt.NetworkError as exc:
            if attempts is not None and attempt + 1 >= attempts:
                raise
            delay = backoff.delay(attempt)
            log.warning(
                "%s failed (%s: %s); retry %d in %.2fs",
                what,
                type(exc).__name__,
                exc,
                attempt + 1,
                delay,
            )
            await asyncio.sleep(delay)
            attempt += 1


def is_leveraged_token(base: str, known_bases: Container[str]) -> bool:
    """BTCUP, ETHBEAR...: a known base with a leveraged suffix (JUP or SYRUP are not)."""
    return any(
        base.endswith(suffix)
        and len(base) - len(suffix) >= 2
        and base[: -len(suffix)] in known_bases
        for suffix in LEVERAGED_SUFFIXES
    )


def select_universe(
    markets: Mapping[str, Mapping[str, Any]],
    tickers: Mapping[str, Mapping[str, Any]],
    quote: str,
    top: int,
    min_quote_volume: float,
) -> list[str]:
    """The `top` active spot pairs in `quote` by 24-hour quote volume above the floor."""
    bases = {market["base"] for market in markets.values()}
    volumes: dict[str, float] = {}
    for symbol, market in markets.items():
        if not market.get("spot") or market.get("active") is False or market["quote"] != quote:
            continue
        if is_leveraged_token(market["base"], bases):
            continue
        volume = float((tickers.get(symbol) or {}).get("quoteVolume") or 0.0)
        if volume >= min_quote_volume:
            volumes[symbol] = volume
    return sorted(volumes, key=lambda symbol: (-volumes[symbol], symbol))[:top]


def to_ticker(symbol: str, raw: Mapping[str, Any]) -> Ticker | None:
    last = raw.get("last") if raw.get("last") is not None else raw.get("close")
    if last is None:
        return None
    return Ticker(
        symbol=symbol,
        time=int(raw.get("timestamp") or 0),
        last=Decimal(str(last)),
        bid=to_decimal(raw.get("bid")),
        ask=to_decimal(raw.get("ask")),
        base_volume=to_decimal(raw.get("baseVolume")),
        quote_volume=to_decimal(raw.get("quoteVolume")),
        change_pct=to_decimal(raw.get("percentage")),
    )


class CcxtFeed:
    is_live_market = True

    def __init__(
        self,
        exchange: str | Any = "binance",
        symbols: list[str] | None = None,
        intervals: Iterable[str] = DEFAULT_INTERVALS,
        quote: str = "USDT",
        top: int = 100,
        min_quote_volume: float = 1_000_000.0,
        backoff: Backoff | None = None,
        poll_seconds: float | None = None,
        poll_delay: float = 2.0,
        ticker_seconds: float = 10.0,
        concurrency: int = 8,
        owns_client: bool | None = None,
    ) -> None:
        """`exchange` is an id or a ccxt async client; a client made here, or handed over
        with `owns_client=True`, is closed when `run` ends."""
        self._owns_client = isinstance(exchange, str) if owns_client is None else owns_client
        self.client = make_exchange(exchange) if isinstance(exchange, str) else exchange
        market_types = self.client.options.get("fetchMarkets")
        if isinstance(market_types, dict) and "types" in market_types:
            market_types["types"] = ["spot"]
        self.source = f"ccxt:{self.client.id}"
        self.clock = RealtimeClock()
        self._explicit = list(symbols or [])
        self.symbols: list[str] = list(self._explicit)
        self.intervals = sorted(intervals, key=interval_ms)
        self.quote, self.top, self.min_quote_volume = quote, top, min_quote_volume
        self.backoff = backoff or Backoff()
        self.poll_seconds, self.poll_delay = poll_seconds, poll_delay
        self.ticker_seconds = ticker_seconds
        self._limit = asyncio.Semaphore(concurrency)
        self._tickers: dict[str, Ticker] = {}

    def tickers(self) -> dict[str, Ticker]:
        return dict(self._tickers)

    def ticker(self, symbol: str) -> Ticker | None:
        return self._tickers.get(symbol)

    async def run(self, store: KlineStore) -> None:
        try:
            await retry(self.client.load_markets, "load markets", self.backoff)
            self.symbols = await self._universe()
            log.info("%s: %d symbols, intervals %s", self.source, len(self.symbols), self.intervals)
            await self.catch_up_all(store)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._ticker_loop())
                for interval in self.intervals:
                    if self.client.has.get("watchOHLCVForSymbols"):
                        group.create_task(self._watch(store, interval, self.symbols))
                    elif self.client.has.get("watchOHLCV"):
                        for symbol in self.symbols:
                            group.create_task(self._watch(store, interval, [symbol]))
                    else:
                        group.create_task(self._poll(store, interval))
        finally:
            if self._owns_client:
                await self.client.close()

    async def _universe(self) -> list[str]:
        markets = self.client.markets
        if self._explicit:
            if unknown := [symbol for symbol in self._explicit if symbol not in markets]:
                log.warning("%s has no market %s: skipped", self.source, ", ".join(unknown))
            return [symbol for symbol in self._explicit if symbol in markets]
        tickers = await retry(self.client.fetch_tickers, "fetch tickers", self.backoff)
        chosen = select_universe(markets, tickers, self.quote, self.top, self.min_quote_volume)
        self._store_tickers({symbol: tickers[symbol] for symbol in chosen})
        return chosen

    async def server_time(self) -> int:
        if self.client.has.get("fetchTime"):
            return int(await retry(self.client.fetch_time, "fetch time", self.backoff))
        return int(self.client.milliseconds())

    async def catch_up_all(
        self,
        store: KlineStore,
        intervals: Iterable[str] | None = None,
        symbols: Iterable[str] | None = None,
    ) -> int:
        """Catch every series up to the exchange's clock, which it returns."""
        now = await self.server_time()
        await asyncio.gather(
            *(
                self.catch_up(store, symbol, interval, now)
                for interval in intervals or self.intervals
                for symbol in symbols or self.symbols
            )
        )
        return now

    async def catch_up(self, store: KlineStore, symbol: str, interval: str, now: int) -> None:
        """Fetch every closed candle after the last stored one (at most `store.depth`).

        Pages ask for no more rows than can exist: exchanges weigh a request by its limit,
        so a poll for the one candle just closed costs the least."""
        step = interval_ms(interval)
        first = now - now % step - store.depth * step
        last = store.last_time(symbol, interval)
        since = first if last is None else max(last + step, first)
        async with self._limit:
            while since + step <= now:
                try:
                    limit = min(PAGE_LIMIT, (now - since) // step + 1)
                    rows = await retry(
                        partial(
                            self.client.fetch_ohlcv, symbol, interval, since=since, limit=limit
                        ),
                        f"{self.source} {symbol} {interval} klines",
                        self.backoff,
                    )
                except ccxt.ExchangeError as exc:
                    log.warning("%s %s %s klines skipped: %s", self.source, symbol, interval, exc)
                    return
                closed = [row for row in rows if since <= row[0] and row[0] + step <= now]
                if not closed:
                    return
                store.append(symbol, interval, closed)
                since = int(closed[-1][0]) + step

    async def _poll(self, store: KlineStore, interval: str) -> None:
        """Poll after each close; symbols whose closed candle the exchange has not published
        yet are asked again a few times, `poll_delay` apart, rather than a whole interval
        later."""
        step = interval_ms(interval)
        while True:
            if self.poll_seconds is not None:
                await asyncio.sleep(self.poll_seconds)
            else:
                now = int(self.client.milliseconds())
                await asyncio.sleep((step - now % step) / 1000 + self.poll_delay)
            symbols = self.symbols
            for _ in range(LATE_RETRIES):
                now = await self.catch_up_all(store, [interval], symbols)
                closed = now - now % step - step
                symbols = [s for s in symbols if (store.last_time(s, interval) or 0) < closed]
                if not symbols:
                    break
                await asyncio.sleep(self.poll_delay)

    def _updates(
        self, interval: str, symbols: list[str]
    ) -> Callable[[], Awaitable[dict[str, list[list[float]]]]]:
        """The next websocket updates as {symbol: rows}: one subscription for all symbols
        where the client can (Binance limits subscribe messages per second), else one."""
        if len(symbols) > 1:
            pairs = [[symbol, interval] for symbol in symbols]

            async def batch() -> dict[str, list[list[float]]]:
                result = await self.client.watch_ohlcv_for_symbols(pairs)
                return {symbol: frames.get(interval, []) for symbol, frames in result.items()}

            return batch

        async def single() -> dict[str, list[list[float]]]:
            return {symbols[0]: await self.client.watch_ohlcv(symbols[0], interval)}

        return single

    async def _watch(self, store: KlineStore, interval: str, symbols: list[str]) -> None:
        """Websocket path. A candle is closed once an update for a later candle arrives; its
        last update seen is its final state. Anything not seen (a reconnect, a missed close)
        is fetched through REST, as far as the exchange's newest open time."""
        step = interval_ms(interval)
        updates = self._updates(interval, symbols)
        attempt = 0
        while True:
            try:
                await self.catch_up_all(store, [interval], symbols)
                current: dict[str, list[float]] = {}
                while True:
                    for symbol, rows in (await updates()).items():
                        attempt = 0
                        for row in rows:
                            before = current.get(symbol)
                            current[symbol] = row
                            if before is None or row[0] <= before[0]:
                                continue
                            last = store.last_time(symbol, interval)
                            if last is None or before[0] > last + step:
                                await self.catch_up(store, symbol, interval, int(row[0]))
                            elif before[0] == last + step:
                                store.append(symbol, interval, [before])
            except ccxt.NetworkError as exc:
                delay = self.backoff.delay(attempt)
                log.warning(
                    "%s %s stream lost (%s); reconnect in %.1fs", self.source, interval, exc, delay
                )
                await asyncio.sleep(delay)
                attempt += 1

    async def _ticker_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ticker_seconds)
            try:
                tickers = await retry(
                    lambda: self.client.fetch_tickers(self.symbols), "fetch tickers", self.backoff
                )
            except ccxt.ExchangeError as exc:
                log.warning("%s tickers skipped: %s", self.source, exc)
                continue
            self._store_tickers(tickers)

    def _store_tickers(self, raw: Mapping[str, Mapping[str, Any]]) -> None:
        for symbol, values in raw.items():
            if ticker := to_ticker(symbol, values):
                self._tickers[symbol] = ticker
