"""Backtests: the live stage code on the replay clock, over recorded or stored candles.

Nothing here re-implements a stage (freqtrade's backtester is a second bot beside its bot,
and its users chase the gaps between the two): a backtest wires the same `Workflow` to a
`ReplayClock`, a `ReplayMarket` that reveals one close at a time, and the in-memory
repositories of `app.engine.memory`, then steps through the closes in order.
"""
