"""Replicas per candle source: a backtest never screens live candles, nor live a backtest's."""

from __future__ import annotations

import numpy as np
import pytest

from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.sandbox import FilterJob, FilterOutcome, FilterSandbox
from tests.screening.conftest import START_MS, SYMBOLS

# the sum of every close (a replica merged wrongly, or another source's, shows at once),
# plus the last close of the 4h series
SUM = "return True, 'long', candles.close.sum() + timeframes['4h'].close[-1]"
JOB = FilterJob("sum", SUM, "1h", tuple(SYMBOLS), frozenset({"1h", "4h"}))


def _market(seed: int, source_id: str) -> tuple[SimulatedFeed, KlineStore]:
    feed = SimulatedFeed(SYMBOLS, intervals=("1h", "4h"), seed=seed, speed=None, start_ms=START_MS)
    store = KlineStore(depth=300, source_id=source_id)
    feed.backfill(store)
    return feed, store


def _assert_sees_only(store: KlineStore, outcome: FilterOutcome) -> None:
    assert outcome.failure is None, outcome.failure
    assert sorted(match.symbol for match in outcome.matches) == sorted(SYMBOLS)
    for match in outcome.matches:
        hourly, four = store.candles(match.symbol, "1h"), store.candles(match.symbol, "4h")
        assert match.score == pytest.approx(float(np.sum(hourly.close)) + float(four.close[-1]))
        assert (match.price, match.candle_time) == (hourly.close[-1], hourly.time[-1])


def _rows(store: KlineStore) -> int:
    series = store.keys()
    return sum(len(store.candles(symbol, interval)) for symbol, interval in series)


async def test_interleaved_runs_of_two_sources_each_see_only_their_own_candles(
    sandbox: FilterSandbox,
) -> None:
    live_feed, live = _market(7, "live")
    test_feed, backtest = _market(8, "backtest-1")
    btc = "BTC/USDT"
    assert live.candles(btc, "1h").time[-1] == backtest.candles(btc, "1h").time[-1]
    assert live.candles(btc, "1h").close[-1] != backtest.candles(btc, "1h").close[-1]

    for step in range(6):
        _assert_sees_only(live, (await sandbox.run([JOB], live, {}))["sum"])
        _assert_sees_only(backtest, (await sandbox.run([JOB], backtest, {}))["sum"])
        live_feed.step(live)
        if step % 2:
            test_feed.step(backtest)

    assert sandbox.rows_sent < _rows(live) + _rows(backtest) + 6 * 2 * len(SYMBOLS)


async def test_only_rows_newer_than_a_replica_travel(sandbox: FilterSandbox) -> None:
    feed, live = _market(7, "live")
    _, backtest = _market(8, "backtest-1")
    await sandbox.run([JOB], live, {})
    await sandbox.run([JOB], backtest, {})
    assert sandbox.rows_sent == _rows(live) + _rows(backtest)

    feed.step(live)
    sent = sandbox.rows_sent
    await sandbox.run([JOB], live, {})
    await sandbox.run([JOB], backtest, {})

    assert sandbox.rows_sent - sent == len(SYMBOLS)  # one new 1h candle per symbol, no 4h


async def test_forgetting_a_source_drops_its_replicas_in_the_engine_and_the_workers(
    sandbox: FilterSandbox,
) -> None:
    _, live = _market(7, "live")
    _, backtest = _market(8, "backtest-1")
    await sandbox.run([JOB], live, {})
    await sandbox.run([JOB], backtest, {})
    assert sandbox.held_series == 2 * 2 * len(SYMBOLS)

    await sandbox.forget_source("backtest-1")
    await sandbox.run([JOB], live, {})
    assert sandbox.held_series == 2 * len(SYMBOLS)

    sent = sandbox.rows_sent
    outcome = (await sandbox.run([JOB], backtest, {}))["sum"]
    assert sandbox.rows_sent - sent == _rows(backtest)
    _assert_sees_only(backtest, outcome)


async def test_forgetting_an_unknown_source_or_before_any_run_is_harmless(
    sandbox: FilterSandbox,
) -> None:
    await sandbox.forget_source("never-seen")
    _, live = _market(7, "live")

    _assert_sees_only(live, (await sandbox.run([JOB], live, {}))["sum"])


def test_the_live_store_is_the_live_source() -> None:
    assert KlineStore().source_id == "live"
    assert KlineStore(source_id="backtest-2").source_id == "backtest-2"
