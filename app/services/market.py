"""The market as the API sees it, through one port whether or not the engine runs here.

With the engine embedded, `EmbeddedMarket` reads the engine's feed and kline store. With
`TRADERS_ENGINE=off` the API process has neither: `RemoteMarket` answers `market` from the
heartbeats that engine processes keep in the database, and anything that needs candles says
clearly that they are served where the engine runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from app.db.models import EngineInstance
from app.domain.market_info import MarketInfo
from app.engine.market import MarketData

STALE_AFTER = timedelta(seconds=60)


class EngineUnavailableError(RuntimeError):
    """What was asked needs the engine, and no engine runs in this process."""


ENGINE_ELSEWHERE = (
    "this API process runs without the engine (TRADERS_ENGINE=off): candles and dry runs "
    "are served by a process that runs it"
)


class MarketReader(Protocol):
    async def info(self) -> MarketInfo: ...

    def data(self) -> MarketData:
        """The running market; `EngineUnavailableError` when the engine runs elsewhere."""
        ...


class EmbeddedMarket:
    def __init__(self, market: MarketData) -> None:
        self.market = market

    async def info(self) -> MarketInfo:
        return self.market.info()

    def data(self) -> MarketData:
        return self.market


class RemoteMarket:
    async def info(self) -> MarketInfo:
        """What the engine seen most recently reports (within `STALE_AFTER`)."""
        fresh = datetime.now(UTC) - STALE_AFTER
        instance = await EngineInstance.filter(seen_at__gte=fresh).order_by("-seen_at").first()
        if instance is None:
            raise EngineUnavailableError(
                "no engine process has reported its market in the last "
                f"{int(STALE_AFTER.total_seconds())} s; {ENGINE_ELSEWHERE}"
            )
        return MarketInfo(
            source=instance.market_source,
            is_live_market=instance.is_live_market,
            symbols=tuple(instance.symbols),
            intervals=tuple(instance.intervals),
            last_candle_at=instance.last_candle_at,
        )

    def data(self) -> MarketData:
        raise EngineUnavailableError(ENGINE_ELSEWHERE)


async def record_heartbeat(engine_id: str, info: MarketInfo) -> None:
    """An engine's heartbeat: the market it sees, and that it is alive."""
    now = datetime.now(UTC)
    seen: dict[str, Any] = {
        "seen_at": now,
        "market_source": info.source,
        "is_live_market": info.is_live_market,
        "symbols": list(info.symbols),
        "intervals": list(info.intervals),
        "last_candle_at": info.last_candle_at,
    }
    if not await EngineInstance.filter(id=engine_id).update(**seen):
        await EngineInstance.create(id=engine_id, started_at=now, **seen)
