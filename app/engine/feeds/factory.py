"""Choose the market feed from `TRADERS_FEED`.

`auto` prefers the real market: it asks Binance for its time with a short timeout and, when
no answer comes, falls back to the simulated market with a loud warning, so an offline
machine still runs end to end and nobody mistakes simulated prices for real ones (the feed's
`source` says "simulated" and `is_live_market` is False).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from app.core.settings import Settings
from app.engine.feeds.base import MarketFeed
from app.engine.feeds.replay import ReplayFeed
from app.engine.feeds.simulated import SimulatedFeed

log = logging.getLogger(__name__)

AUTO_EXCHANGE = "binance"
PROBE_SECONDS = 3.0
ExchangeFactory = Callable[[str], Any]


async def exchange_answers(client: Any, seconds: float = PROBE_SECONDS) -> bool:
    """Whether the exchange answers a public request within `seconds`."""
    client.timeout = int(seconds * 1000)
    try:
        async with asyncio.timeout(seconds):
            await client.fetch_time()
    except Exception as exc:
        log.info("%s did not answer: %s: %s", client.id, type(exc).__name__, exc)
        return False
    return True


async def create_feed(
    settings: Settings,
    exchange_factory: ExchangeFactory | None = None,
    probe_seconds: float = PROBE_SECONDS,
) -> MarketFeed:
    """`exchange_factory` makes the ccxt client of an exchange (default: `make_exchange`)."""
    kind, _, argument = settings.feed.partition(":")
    speed = settings.feed_speed
    if kind == "simulated":
        return _simulated(speed)
    if kind == "replay":
        return ReplayFeed(argument) if speed is None else ReplayFeed(argument, speed=speed)
    # ccxt takes a quarter to half a second to import: only a process on the real market
    # (or trying it) pays for it.
    from app.engine.feeds.ccxt_feed import CcxtFeed, make_exchange

    exchange_factory = exchange_factory or make_exchange
    if kind == "ccxt":
        return CcxtFeed(exchange_factory(argument), owns_client=True)
    client = exchange_factory(AUTO_EXCHANGE)
    try:
        answered = await exchange_answers(client, probe_seconds)
    except BaseException:  # cancelled while probing: nobody else will close the client
        await client.close()
        raise
    if answered:
        client.timeout = 10_000
        return CcxtFeed(client, owns_client=True)
    await client.close()
    log.warning(
        "=== %s is unreachable: using the SIMULATED market. Prices are not real; "
        "live trading is refused on this feed. Set TRADERS_FEED to choose explicitly. ===",
        AUTO_EXCHANGE,
    )
    return _simulated(speed)


def _simulated(speed: float | None) -> SimulatedFeed:
    """The simulated market at `speed`, or at its own default pace."""
    return SimulatedFeed() if speed is None else SimulatedFeed(speed=speed)
