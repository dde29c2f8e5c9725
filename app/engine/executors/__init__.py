"""Executors: how orders reach a market, one per file behind `base.TradeExecutor`, the way
httpx keeps one transport per file behind its base (demo now, ccxt for live trading)."""
