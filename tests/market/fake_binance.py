"""A loopback HTTP server that speaks Binance's public spot market API, for the real ccxt client.

Klines come from recorded CSV files where given, otherwise from a deterministic synthetic
series. The server has its own clock (`now`), so a test decides which candles have closed.
Faults are scripted: `fail_next(n, status)` answers the next n kline requests with that
status (429 is Binance's rate limit), `down` answers everything with 503, and
`withhold_newest = n` leaves the newest closed candle out of the next n kline answers (an
exchange that publishes a close a little late).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

from app.domain.intervals import interval_ms

PRICE_FILTER = {
    "filterType": "PRICE_FILTER",
    "minPrice": "0.00000100",
    "maxPrice": "922327.00000000",
    "tickSize": "0.00000100",
}
LOT_SIZE = {
    "filterType": "LOT_SIZE",
    "minQty": "0.00010000",
    "maxQty": "100000.00000000",
    "stepSize": "0.00010000",
}
NOTIONAL = {
    "filterType": "NOTIONAL",
    "minNotional": "0.00010000",
    "applyMinToMarket": True,
    "maxNotional": "9000000.00000000",
    "applyMaxToMarket": False,
    "avgPriceMins": 5,
}


@dataclass
class Pair:
    base: str
    quote: str
    quote_volume: float
    rows: np.ndarray | None = None
    status: str = "TRADING"

    @property
    def id(self) -> str:
        return self.base + self.quote


@dataclass
class FakeBinance:
    pairs: list[Pair]
    now: int
    down: bool = False
    withhold_newest: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    kline_queries: list[dict[str, str]] = field(default_factory=list)
    request_times: list[tuple[str, float]] = field(default_factory=list)
    _failures: list[int] = field(default_factory=list)
    sockets: dict[web.WebSocketResponse, set[str]] = field(default_factory=dict)
    subscriptions: list[list[str]] = field(default_factory=list)
    runner: web.AppRunner | None = None
    base_url: str = ""

    def fail_next(self, count: int, status: int = 429) -> None:
        self._failures.extend([status] * count)

    async def start(self) -> str:
        app = web.Application(middlewares=[self._faults])
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/fapi/v1/exchangeInfo", self._no_derivatives)
        app.router.add_get("/dapi/v1/exchangeInfo", self._no_derivatives)
        app.router.add_get("/api/v3/klines", self._klines)
        app.router.add_get("/api/v3/ticker/24hr", self._tickers)
        app.router.add_get("/api/v3/time", self._time)
        app.router.add_get("/api/v3/ping", self._ping)
        app.router.add_get("/stream/ws/{index}", self._stream)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    def point(self, client: Any) -> Any:
        """Rewrite every API url of a ccxt binance client to this server; a ccxt.pro client's
        spot websocket too (its path keeps "/stream", which ccxt reads as spot)."""
        for name, url in client.urls["api"].items():
            if isinstance(url, str):
                path = url.split("://", 1)[1].split("/", 1)[1]
                client.urls["api"][name] = f"{self.base_url}/{path}"
        if isinstance(client.urls["api"].get("ws"), dict):
            client.urls["api"]["ws"]["spot"] = self.base_url.replace("http", "ws") + "/stream/ws"
        return client

    async def _stream(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        streams: set[str] = set()
        self.sockets[socket] = streams
        try:
            async for message in socket:
                payload = json.loads(message.data)
                if payload.get("method") == "SUBSCRIBE":
                    self.subscriptions.append(list(payload["params"]))
                    streams.update(payload["params"])
                    await socket.send_json({"result": None, "id": payload["id"]})
        finally:
            self.sockets.pop(socket, None)
        return socket

    async def push_candles(self, final_before: bool = True) -> None:
        """Send each subscribed stream the final update of the candle before the current one
        (when asked) and the first update of the current one, as Binance does at a close."""
        for socket, streams in list(self.sockets.items()):
            for stream in streams:
                market_id, _, interval = stream.partition("@kline_")
                pair = self._pair(market_id.upper())
                if pair is None:
                    continue
                step = interval_ms(interval)
                rows = self._series(pair, step)
                current = int(np.searchsorted(rows[:, 0], self.now, side="right")) - 1
                sent = [(rows[current - 1], True)] if final_before else []
                for row, closed in [*sent, (rows[current], False)]:
                    await socket.send_json(self._kline_event(pair, interval, row, closed))

    async def drop_streams(self) -> None:
        for socket in list(self.sockets):
            await socket.close()

    def _kline_event(
        self, pair: Pair, interval: str, row: np.ndarray, closed: bool
    ) -> dict[str, Any]:
        time, open_, high, low, close, volume = row
        return {
            "e": "kline",
            "E": self.now,
            "s": pair.id,
            "k": {
                "t": int(time),
                "T": int(time) + interval_ms(interval) - 1,
                "s": pair.id,
                "i": interval,
                "f": 1,
                "L": 2,
                "o": f"{open_:.8f}",
                "c": f"{close:.8f}",
                "h": f"{high:.8f}",
                "l": f"{low:.8f}",
                "v": f"{volume:.8f}",
                "n": 2,
                "x": closed,
                "q": f"{volume * close:.8f}",
                "V": "0",
                "Q": "0",
                "B": "0",
            },
        }

    @web.middleware
    async def _faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests[request.path] += 1
        self.request_times.append((request.path, time.perf_counter()))
        if self.down:
            response: web.StreamResponse = web.Response(status=503, text="Service Unavailable")
        elif request.path.endswith("/klines") and self._failures:
            status = self._failures.pop(0)
            body = {
                "code": -1003,
                "msg": "Too many requests; current limit is 6000 request weight per 1 MINUTE.",
            }
            response = web.json_response(body, status=status, headers={"Retry-After": "1"})
        else:
            response = await handler(request)
        self.statuses[response.status] += 1
        return response

    async def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": self.now})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": self.now,
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": 6000,
                    },
                    {
                        "rateLimitType": "ORDERS",
                        "interval": "SECOND",
                        "intervalNum": 10,
                        "limit": 100,
                    },
                    {
                        "rateLimitType": "RAW_REQUESTS",
                        "interval": "MINUTE",
                        "intervalNum": 5,
                        "limit": 61000,
                    },
                ],
                "exchangeFilters": [],
                "symbols": [self._symbol_info(pair) for pair in self.pairs],
            }
        )

    async def _no_derivatives(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": self.now,
                "rateLimits": [],
                "exchangeFilters": [],
                "assets": [],
                "symbols": [],
            }
        )

    def _symbol_info(self, pair: Pair) -> dict[str, Any]:
        return {
            "symbol": pair.id,
            "status": pair.status,
            "baseAsset": pair.base,
            "baseAssetPrecision": 8,
            "quoteAsset": pair.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT_LIMIT",
            ],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [PRICE_FILTER, LOT_SIZE, NOTIONAL],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }

    def _pair(self, pair_id: str) -> Pair | None:
        return next((pair for pair in self.pairs if pair.id == pair_id), None)

    def _series(self, pair: Pair, step: int) -> np.ndarray:
        if pair.rows is not None:
            return pair.rows
        end = self.now - self.now % step
        times = np.arange(end - 2000 * step, end + step, step)
        closes = 100 + np.sin(times / step / 10) * 5
        return np.column_stack(
            (times, closes, closes + 1, closes - 1, closes, np.full(len(times), 7.0))
        )

    async def _klines(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.kline_queries.append(query)
        pair = self._pair(query.get("symbol", ""))
        if pair is None:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        step = interval_ms(query["interval"])
        rows = self._series(pair, step)
        limit = min(int(query.get("limit", 500)), 1000)
        start = int(query.get("startTime", 0))
        end = min(int(query.get("endTime", self.now)), self.now)
        if self.withhold_newest:
            self.withhold_newest -= 1
            end = min(end, self.now - self.now % step - step - 1)
        selected = rows[(rows[:, 0] >= start) & (rows[:, 0] <= end)]
        if "startTime" not in query:
            selected = selected[-limit:]
        return web.json_response([self._kline(row, step) for row in selected[:limit]])

    @staticmethod
    def _kline(row: np.ndarray, step: int) -> list[Any]:
        time, open_, high, low, close, volume = row
        return [
            int(time),
            f"{open_:.8f}",
            f"{high:.8f}",
            f"{low:.8f}",
            f"{close:.8f}",
            f"{volume:.8f}",
            int(time) + step - 1,
            f"{volume * close:.8f}",
            100,
            f"{volume / 2:.8f}",
            f"{volume * close / 2:.8f}",
            "0",
        ]

    async def _tickers(self, request: web.Request) -> web.Response:
        wanted = json.loads(request.query["symbols"]) if "symbols" in request.query else None
        return web.json_response(
            [self._ticker(pair) for pair in self.pairs if wanted is None or pair.id in wanted]
        )

    def _ticker(self, pair: Pair) -> dict[str, Any]:
        rows = self._series(pair, 300_000)
        current = rows[rows[:, 0] <= self.now]
        last = current[-1, 4]
        open_ = current[max(0, len(current) - 288), 1]
        return {
            "symbol": pair.id,
            "priceChange": f"{last - open_:.8f}",
            "priceChangePercent": f"{(last / open_ - 1) * 100:.3f}",
            "weightedAvgPrice": f"{last:.8f}",
            "prevClosePrice": f"{open_:.8f}",
            "lastPrice": f"{last:.8f}",
            "lastQty": "0.10000000",
            "bidPrice": f"{last * 0.9999:.8f}",
            "bidQty": "1.00000000",
            "askPrice": f"{last * 1.0001:.8f}",
            "askQty": "1.00000000",
            "openPrice": f"{open_:.8f}",
            "highPrice": f"{current[-288:, 2].max():.8f}",
            "lowPrice": f"{current[-288:, 3].min():.8f}",
            "volume": f"{pair.quote_volume / last:.8f}",
            "quoteVolume": f"{pair.quote_volume:.8f}",
            "openTime": self.now - 86_400_000,
            "closeTime": self.now,
            "firstId": 1,
            "lastId": 1000,
            "count": 1000,
        }
