"""Cached indicators equal the direct TA-Lib call (or an independent loop for the ones TA-Lib
lacks) on real candles, and are computed once per symbol, interval and candle."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import talib

from app.domain.indicators import INDICATORS, near_node
from app.engine.indicators import IndicatorCache, IndicatorValue, UnknownIndicator
from app.engine.klines import Candles, KlineStore
from tests.market.conftest import read_csv

SYMBOL, INTERVAL = "DASH/BTC", "5m"


@pytest.fixture(scope="module")
def cache(candles_dir: Path) -> IndicatorCache:
    store = KlineStore(depth=500)
    store.append(SYMBOL, INTERVAL, read_csv(candles_dir / "DASH_BTC-5m.csv")[:2000])
    return IndicatorCache(store)


@pytest.fixture(scope="module")
def c(cache: IndicatorCache) -> Candles:
    return cache.store.candles(SYMBOL, INTERVAL)


def talib_reference(c: Candles) -> dict[tuple[str, tuple], object]:
    h, lo, cl, v, o = c.high, c.low, c.close, c.volume, c.open
    return {
        ("sma", ()): talib.SMA(cl, 20),
        ("sma", (("period", 7),)): talib.SMA(cl, 7),
        ("ema", (("period", 50),)): talib.EMA(cl, 50),
        ("wma", ()): talib.WMA(cl, 20),
        ("rsi", ()): talib.RSI(cl, 14),
        ("macd", ()): dict(zip(("macd", "signal", "hist"), talib.MACD(cl, 12, 26, 9), strict=True)),
        ("bbands", (("stddev", 2.5),)): dict(
            zip(("upper", "middle", "lower"), talib.BBANDS(cl, 20, 2.5, 2.5), strict=True)
        ),
        ("atr", ()): talib.ATR(h, lo, cl, 14),
        ("stoch", ()): dict(
            zip(
                ("k", "d"),
                talib.STOCH(h, lo, cl, 14, 3, talib.MA_Type.SMA, 3, talib.MA_Type.SMA),
                strict=True,
            )
        ),
        ("stochrsi", ()): dict(zip(("k", "d"), talib.STOCHRSI(cl, 14, 5, 3), strict=True)),
        ("adx", ()): talib.ADX(h, lo, cl, 14),
        ("cci", (("period", 20),)): talib.CCI(h, lo, cl, 20),
        ("mfi", ()): talib.MFI(h, lo, cl, v, 14),
        ("obv", ()): talib.OBV(cl, v),
        ("volume_sma", ()): talib.SMA(v, 20),
        ("highest", ()): talib.MAX(h, 20),
        ("lowest", (("period", 50),)): talib.MIN(lo, 50),
        ("pct_change", (("period", 3),)): talib.ROC(cl, 3),
        ("engulfing", ()): talib.CDLENGULFING(o, h, lo, cl).astype(float),
    }


def loop_vwap(c: Candles, period: int, stddev: float) -> dict[str, np.ndarray]:
    """Textbook VWAP, one candle at a time."""
    typical = (c.high + c.low + c.close) / 3
    center, upper, lower = (np.full(len(c), np.nan) for _ in range(3))
    for i in range(len(c)):
        if period:
            if i < period - 1:
                continue
            window: Sequence[int] = range(i - period + 1, i + 1)
        else:
            window = [j for j in range(i + 1) if c.time[j] // 86_400_000 == c.time[i] // 86_400_000]
        weights = np.array([c.volume[j] for j in window])
        prices = np.array([typical[j] for j in window])
        if weights.sum() == 0:
            continue
        mean = np.average(prices, weights=weights)
        deviation = np.sqrt(np.average((prices - mean) ** 2, weights=weights))
        center[i], upper[i], lower[i] = mean, mean + stddev * deviation, mean - stddev * deviation
    return {"vwap": center, "upper": upper, "lower": lower}


def loop_pvi(c: Candles) -> np.ndarray:
    out = [1000.0]
    for i in range(1, len(c)):
        change = c.close[i] / c.close[i - 1] if c.volume[i] > c.volume[i - 1] else 1.0
        out.append(out[-1] * change)
    return np.array(out)


def loop_divergence(c: Candles, period: int, lookback: int) -> np.ndarray:
    strength = talib.RSI(c.close, period)
    out = np.zeros(len(c))
    for i in range(lookback, len(c)):
        closes, rsis = c.close[i - lookback : i], strength[i - lookback : i]
        if np.isnan(rsis).any() or np.isnan(strength[i]):
            continue
        if c.close[i] > closes.max() and strength[i] < rsis.max():
            out[i] = -1
        elif c.close[i] < closes.min() and strength[i] > rsis.min():
            out[i] = 1
    return out


def loop_profile(c: Candles, bins: int) -> tuple[np.ndarray, np.ndarray]:
    edges = np.linspace(c.low.min(), c.high.max(), bins + 1)
    volume = np.zeros(bins)
    for lo, hi, close, vol in zip(c.low, c.high, c.close, c.volume, strict=True):
        if hi == lo:
            volume[min(np.searchsorted(edges, close, side="right") - 1, bins - 1)] += vol
            continue
        for b in range(bins):
            overlap = min(hi, edges[b + 1]) - max(lo, edges[b])
            if overlap > 0:
                volume[b] += vol * overlap / (hi - lo)
    return (edges[:-1] + edges[1:]) / 2, volume


def assert_same(actual: object, expected: object) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected)
        for key in expected:
            np.testing.assert_allclose(actual[key], expected[key], rtol=1e-9, equal_nan=True)
    else:
        assert isinstance(actual, np.ndarray) and isinstance(expected, np.ndarray)
        np.testing.assert_allclose(actual, expected, rtol=1e-9, equal_nan=True)


def array(value: IndicatorValue) -> np.ndarray:
    """An indicator's value that is one array (not a set of named outputs)."""
    assert isinstance(value, np.ndarray)
    return value


def test_talib_indicators_equal_direct_calls(cache: IndicatorCache, c: Candles) -> None:
    for (name, params), expected in talib_reference(c).items():
        assert_same(cache.get(SYMBOL, INTERVAL, name, **dict(params)), expected)


@pytest.mark.parametrize(("period", "stddev"), [(0, 2.0), (30, 1.5)])
def test_vwap_and_bands_equal_the_textbook_loop(
    cache: IndicatorCache, c: Candles, period: int, stddev: float
) -> None:
    expected = loop_vwap(c, period, stddev)
    bands = cache.get(SYMBOL, INTERVAL, "vwap_bands", period=period, stddev=stddev)
    assert_same(bands, expected)
    assert_same(cache.get(SYMBOL, INTERVAL, "vwap", period=period), expected["vwap"])
    assert np.isfinite(expected["vwap"][-1])


def test_pvi_and_divergence_equal_loops(cache: IndicatorCache, c: Candles) -> None:
    assert_same(cache.get(SYMBOL, INTERVAL, "pvi"), loop_pvi(c))
    divergence = array(cache.get(SYMBOL, INTERVAL, "rsi_divergence", lookback=10))
    assert_same(divergence, loop_divergence(c, 14, 10))
    assert set(np.unique(divergence)) == {-1.0, 0.0, 1.0}


def test_volume_nodes_and_near_node(cache: IndicatorCache, c: Candles) -> None:
    centres, volume = loop_profile(c, 24)
    np.testing.assert_allclose(volume.sum(), c.volume.sum(), rtol=1e-9)
    top = np.argsort(-volume)[:3]
    nodes = cache.get(SYMBOL, INTERVAL, "volume_nodes")
    assert_same(nodes, {"price": centres[top], "volume": volume[top]})
    near = array(cache.get(SYMBOL, INTERVAL, "near_volume_node", tolerance=0.3))
    expected = [near_node(close, centres[top], 0.3) for close in c.close]
    np.testing.assert_array_equal(near.astype(bool), expected)
    assert 0 < near.sum() < len(c)
    assert near_node(100.0, np.array([100.4]), 0.5) and not near_node(100.0, np.array([101.0]), 0.5)


def test_registry_covers_every_indicator_in_the_tests(c: Candles) -> None:
    tested = {name for name, _ in talib_reference(c)} | {
        "vwap",
        "vwap_bands",
        "pvi",
        "rsi_divergence",
        "volume_nodes",
        "near_volume_node",
    }
    assert tested == set(INDICATORS)


def test_twenty_traders_cause_one_computation(candles_dir: Path) -> None:
    rows = read_csv(candles_dir / "ETH_BTC-5m.csv")
    store = KlineStore(depth=500)
    store.append("ETH/BTC", "5m", rows[:500])
    cache = IndicatorCache(store)
    results = [cache.get("ETH/BTC", "5m", "rsi", period=14) for _ in range(19)]
    results.append(cache.get("ETH/BTC", "5m", "rsi"))
    assert cache.computations == 1
    assert all(result is results[0] for result in results)
    store.append("ETH/BTC", "5m", rows[500:501])
    for _ in range(20):
        cache.get("ETH/BTC", "5m", "rsi", period=14)
    assert cache.computations == 2
    np.testing.assert_allclose(
        array(cache.get("ETH/BTC", "5m", "rsi")), talib.RSI(rows[1:501, 4], 14), equal_nan=True
    )
    cache.get("ETH/BTC", "5m", "rsi", period=7)
    assert cache.computations == 3


def test_stale_entries_are_evicted(eth_btc: np.ndarray) -> None:
    store = KlineStore(depth=100)
    store.append("ETH/BTC", "5m", eth_btc[:100])
    cache = IndicatorCache(store)
    first = array(cache.get("ETH/BTC", "5m", "sma"))
    store.append("ETH/BTC", "5m", eth_btc[100:101])
    second = array(cache.get("ETH/BTC", "5m", "sma"))
    assert first is not second and first[-1] != second[-1]
    assert sum(len(entries) for _, entries in cache._entries.values()) == 1


def test_distinct_parameters_within_one_candle_are_bounded(eth_btc: np.ndarray) -> None:
    store = KlineStore(depth=100)
    store.append("ETH/BTC", "5m", eth_btc[:100])
    store.append("ETH/USDT", "5m", eth_btc[:100])
    cache = IndicatorCache(store, max_entries=3)
    for period in range(2, 12):
        for symbol in ("ETH/BTC", "ETH/USDT"):
            np.testing.assert_allclose(
                array(cache.get(symbol, "5m", "sma", period=period)),
                talib.SMA(store.candles(symbol, "5m").close, period),
                equal_nan=True,
            )
            held = sum(len(entries) for _, entries in cache._entries.values())
            assert held == cache._size <= 3
        if period == 6:
            store.append("ETH/BTC", "5m", eth_btc[100:101])
    assert cache.get("ETH/USDT", "5m", "sma", period=11) is cache.get(
        "ETH/USDT", "5m", "sma", period=11
    )


def test_bad_names_and_parameters_are_refused(cache: IndicatorCache) -> None:
    with pytest.raises(UnknownIndicator):
        cache.get(SYMBOL, INTERVAL, "nope")
    with pytest.raises(ValueError, match="no parameter length"):
        cache.get(SYMBOL, INTERVAL, "rsi", length=3)
    with pytest.raises(ValueError, match="whole number"):
        cache.get(SYMBOL, INTERVAL, "rsi", period=2.5)
    with pytest.raises(ValueError, match="must be in"):
        cache.get(SYMBOL, INTERVAL, "rsi", period=1)
    with pytest.raises(ValueError, match="read-only"):
        array(cache.get(SYMBOL, INTERVAL, "rsi"))[0] = 1.0
