"""Market feeds: where candles and tickers come from (a live exchange, a simulation, a file)."""

from app.engine.feeds.base import MarketFeed, Ticker

__all__ = ["MarketFeed", "Ticker"]
