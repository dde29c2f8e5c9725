"""Technical indicators as pure functions of candle arrays, and the registry that names them.

TA-Lib computes what it knows (it is the reference the tests compare against); the few it
lacks (VWAP and its bands, positive volume index, RSI divergence, volume-profile nodes) are
vectorised numpy here. Every indicator is looked up by name through `INDICATORS`, so the
screening engine, the indicator cache and the GraphQL `klines` field share one vocabulary
and one validation of parameters (they arrive from untrusted filter code and queries).

Each compute function takes any object with `time`, `open`, `high`, `low`, `close` and
`volume` arrays and returns a dict of named output arrays. Outputs of a `per_candle`
indicator align with the candles (NaN where not yet defined); the volume-profile nodes are
price levels instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import talib

DAY_MS = 86_400_000
PVI_START = 1000.0
MAX_PERIOD = 5000

Outputs = dict[str, np.ndarray]


class _TaLib:
    """TA-Lib's functions without the wrapper TA-Lib puts around each one when pandas or
    polars is installed (to convert their series): the inputs here are numpy arrays, so the
    wrapper only costs its type checks, a third of an RSI over 500 candles."""

    def __getattr__(self, name: str) -> Any:
        function = getattr(talib, name)
        unwrapped = getattr(function, "__wrapped__", function)
        setattr(self, name, unwrapped)
        return unwrapped


ta = _TaLib()


class CandleArrays(Protocol):
    """Read-only columns: a frozen snapshot (the kline store's `Candles`) is one too."""

    @property
    def time(self) -> np.ndarray: ...
    @property
    def open(self) -> np.ndarray: ...
    @property
    def high(self) -> np.ndarray: ...
    @property
    def low(self) -> np.ndarray: ...
    @property
    def close(self) -> np.ndarray: ...
    @property
    def volume(self) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    default: int | float
    minimum: int | float
    maximum: int | float

    def coerce(self, value: object) -> int | float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"parameter {self.name} must be a number")
        if isinstance(self.default, int):
            if float(value) != int(value):
                raise ValueError(f"parameter {self.name} must be a whole number")
            value = int(value)
        else:
            value = float(value)
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"parameter {self.name} must be in [{self.minimum}, {self.maximum}]")
        return value


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    name: str
    compute: Callable[..., Outputs]
    params: tuple[Param, ...]
    outputs: tuple[str, ...]
    description: str
    per_candle: bool = True

    def bind(self, params: Mapping[str, object]) -> dict[str, int | float]:
        """Complete `params` with defaults; ValueError naming an unknown or invalid one."""
        known = {param.name: param for param in self.params}
        if unknown := sorted(set(params) - set(known)):
            raise ValueError(f"{self.name} has no parameter {', '.join(unknown)}")
        return {
            name: param.coerce(params[name]) if name in params else param.default
            for name, param in known.items()
        }

    def __call__(self, candles: CandleArrays, **params: object) -> Outputs:
        return self.compute(candles, **self.bind(params))


def _window(default: int, name: str = "period", minimum: int = 2) -> Param:
    return Param(name, default, minimum, MAX_PERIOD)


def sma(c: CandleArrays, period: int) -> Outputs:
    return {"value": ta.SMA(c.close, timeperiod=period)}


def ema(c: CandleArrays, period: int) -> Outputs:
    return {"value": ta.EMA(c.close, timeperiod=period)}


def wma(c: CandleArrays, period: int) -> Outputs:
    return {"value": ta.WMA(c.close, timeperiod=period)}


def rsi(c: CandleArrays, period: int) -> Outputs:
    return {"value": ta.RSI(c.close, timeperiod=period)}


def macd(c: CandleArrays, fast: int, slow: int, signal: int) -> Outputs:
    line, signal_line, hist = ta.MACD(
        c.close, fastperiod=fast, slowperiod=slow, signalperiod=signal
    )
    return {"macd": line, "signal": signal_line, "hist": hist}


def bbands(c: CandleArrays, period: int, stddev: float) -> Outputs:
    upper, middle, lower = ta.BBANDS(c.close, timeperiod=period, nbdevup=stddev, nbdevdn=stddev)
    return {"upper": upper, "middle": middle, "lower": lower}


def atr(c: CandleArrays, period: int) -> Outputs:
    return {"value": ta.ATR(c.high, c.low, c.close, timeperiod=period)}


def stoch(c: CandleArrays, fastk: int, slowk: int, slowd: int) -> Outputs:
    k, d = ta.STOCH(
        c.high, c.low, c.close, fastk_period=fastk, slowk_period=slowk, slowd_period=slowd
    )
    return {"k": k, "d": d}


def stochrsi(c: CandleArrays, period: int, fastk: int, fastd: int) -> Outputs:
    k, d = ta.STOCHRSI(c.close, timeperiod=period, fastk_period=fastk, fastd_period=fastd)
    return {"k": k, "d": d}


def adx(c: CandleArrays, period: int) -> Outputs:
    return {"value": ta.ADX(c.high, c.low, c.close, timeperiod=period)}


def cci(c: CandleArrays, period: int) -> Outputs:
    return {"value": ta.CCI(c.high, c.low, c.close, timeperiod=period)}


def mfi(c: CandleArrays, period: int) -> Outputs:
    return {"value": ta.MFI(c.high, c.low, c.close, c.volume, timeperiod=period)}


def obv(c: CandleArrays) -> Outputs:
    return {"value": ta.OBV(c.close, c.volume)}


def volume_sma(c: CandleArrays, period: int) -> Outputs:
    return {"value": ta.SMA(c.volume, timeperiod=period)}


def highest(c: CandleArrays, period: int) -> Outputs:
    return {"value": ta.MAX(c.high, timeperiod=period)}


def lowest(c: CandleArrays, period: int) -> Outputs:
    return {"value": ta.MIN(c.low, timeperiod=period)}


def pct_change(c: CandleArrays, period: int) -> Outputs:
    return {"value": ta.ROC(c.close, timeperiod=period)}


def engulfing(c: CandleArrays) -> Outputs:
    """+100 bullish engulfing, -100 bearish engulfing, 0 none (TA-Lib's convention)."""
    pattern = ta.CDLENGULFING(c.open, c.high, c.low, c.close)
    return {"value": pattern.astype(np.float64)}


def window_sums(values: np.ndarray, time: np.ndarray, period: int) -> np.ndarray:
    """Sums over the last `period` candles, or since the UTC day began when `period` is 0."""
    total = np.cumsum(values)
    if period > 0:
        sums = total.copy()
        sums[period:] -= total[:-period]
        sums[: period - 1] = np.nan
        return sums
    day = time // DAY_MS
    starts = np.flatnonzero(np.concatenate(([True], day[1:] != day[:-1])))
    session_start = np.repeat(starts, np.diff(np.append(starts, len(values))))
    return total - np.concatenate(([0.0], total))[session_start]


def _vwap_and_deviation(c: CandleArrays, period: int) -> tuple[np.ndarray, np.ndarray]:
    """Moments are summed around the series' mean price: sums of raw prices would cancel
    catastrophically in `E[x^2] - E[x]^2` for a window whose prices barely move."""
    typical = (c.high + c.low + c.close) / 3.0
    reference = float(np.mean(typical)) if len(typical) else 0.0
    shifted = typical - reference
    volume = window_sums(c.volume, c.time, period)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = window_sums(shifted * c.volume, c.time, period) / volume
        second_moment = window_sums(shifted * shifted * c.volume, c.time, period) / volume
        deviation = np.sqrt(np.maximum(second_moment - mean * mean, 0.0))
    return mean + reference, deviation


def vwap(c: CandleArrays, period: int) -> Outputs:
    """Volume-weighted typical price: per UTC session (period 0) or over rolling candles."""
    return {"value": _vwap_and_deviation(c, period)[0]}


def vwap_bands(c: CandleArrays, period: int, stddev: float) -> Outputs:
    """VWAP with bands at `stddev` volume-weighted standard deviations of typical price."""
    center, deviation = _vwap_and_deviation(c, period)
    return {
        "vwap": center,
        "upper": center + stddev * deviation,
        "lower": center - stddev * deviation,
    }


def pvi(c: CandleArrays) -> Outputs:
    """Positive volume index: moves with price only on candles whose volume rose."""
    if not len(c.close):
        return {"value": np.empty(0)}
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(c.volume[1:] > c.volume[:-1], c.close[1:] / c.close[:-1], 1.0)
    return {"value": PVI_START * np.concatenate(([1.0], np.cumprod(ratio)))}


def rsi_divergence(c: CandleArrays, period: int, lookback: int) -> Outputs:
    """-1 bearish (close above the previous `lookback` closes while RSI is not), +1 bullish
    (close below them while RSI is not), 0 otherwise."""
    strength = ta.RSI(c.close, timeperiod=period)
    value = np.zeros(len(c.close))
    if len(c.close) <= lookback:
        return {"value": value}
    prior_close_max = ta.MAX(c.close, timeperiod=lookback)[:-1]
    prior_close_min = ta.MIN(c.close, timeperiod=lookback)[:-1]
    prior_rsi_max = ta.MAX(strength, timeperiod=lookback)[:-1]
    prior_rsi_min = ta.MIN(strength, timeperiod=lookback)[:-1]
    close, now_rsi = c.close[1:], strength[1:]
    with np.errstate(invalid="ignore"):
        bearish = (close > prior_close_max) & (now_rsi < prior_rsi_max)
        bullish = (close < prior_close_min) & (now_rsi > prior_rsi_min)
    value[1:] = bullish.astype(np.float64) - bearish.astype(np.float64)
    return {"value": value}


def volume_profile(c: CandleArrays, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres and traded volume per bin, each candle's volume spread evenly over its range."""
    if not len(c.close):
        return np.empty(0), np.empty(0)
    edges = np.linspace(float(np.min(c.low)), float(np.max(c.high)), bins + 1)
    low, high = c.low[:, None], c.high[:, None]
    overlap = np.clip(np.minimum(high, edges[1:]) - np.maximum(low, edges[:-1]), 0.0, None)
    span = (c.high - c.low)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(span > 0, overlap / span, 0.0)
    flat = np.flatnonzero(c.high == c.low)
    share[flat] = 0.0
    share[flat, np.clip(np.searchsorted(edges, c.close[flat], side="right") - 1, 0, bins - 1)] = 1
    return (edges[:-1] + edges[1:]) / 2.0, share.T @ c.volume


def volume_nodes(c: CandleArrays, bins: int, count: int) -> Outputs:
    """The `count` price levels where most volume traded, busiest first."""
    centres, volume = volume_profile(c, bins)
    top = np.argsort(-volume, kind="stable")[:count]
    return {"price": centres[top], "volume": volume[top]}


def near_node(price: float, nodes: np.ndarray, tolerance_pct: float) -> bool:
    """Whether `price` lies within `tolerance_pct` percent of any volume node."""
    if not len(nodes):
        return False
    return bool(np.any(np.abs(price - nodes) <= np.abs(nodes) * tolerance_pct / 100.0))


def near_volume_node(c: CandleArrays, bins: int, count: int, tolerance: float) -> Outputs:
    """1 where the close lies within `tolerance` percent of a node of the whole window."""
    nodes = volume_nodes(c, bins, count)["price"]
    distance = np.abs(c.close[:, None] - nodes[None, :])
    near = np.any(distance <= np.abs(nodes) * tolerance / 100.0, axis=1)
    return {"value": near.astype(np.float64)}


def _spec(
    compute: Callable[..., Outputs],
    description: str,
    *params: Param,
    outputs: tuple[str, ...] = ("value",),
    per_candle: bool = True,
) -> IndicatorSpec:
    return IndicatorSpec(compute.__name__, compute, params, outputs, description, per_candle)


_BINS = Param("bins", 24, 2, 500)
_COUNT = Param("count", 3, 1, 50)
_STDDEV = Param("stddev", 2.0, 0.1, 10.0)
_SESSION = Param("period", 0, 0, MAX_PERIOD)

INDICATORS: dict[str, IndicatorSpec] = {
    spec.name: spec
    for spec in (
        _spec(sma, "simple moving average of close", _window(20)),
        _spec(ema, "exponential moving average of close", _window(20)),
        _spec(wma, "weighted moving average of close", _window(20)),
        _spec(rsi, "relative strength index", _window(14)),
        _spec(
            macd,
            "moving average convergence divergence",
            _window(12, "fast"),
            _window(26, "slow"),
            _window(9, "signal", minimum=1),
            outputs=("macd", "signal", "hist"),
        ),
        _spec(
            bbands, "Bollinger bands", _window(20), _STDDEV, outputs=("upper", "middle", "lower")
        ),
        _spec(atr, "average true range", _window(14, minimum=1)),
        _spec(
            stoch,
            "slow stochastic oscillator",
            _window(14, "fastk", minimum=1),
            _window(3, "slowk", minimum=1),
            _window(3, "slowd", minimum=1),
            outputs=("k", "d"),
        ),
        _spec(
            stochrsi,
            "stochastic RSI",
            _window(14),
            _window(5, "fastk", minimum=1),
            _window(3, "fastd", minimum=1),
            outputs=("k", "d"),
        ),
        _spec(adx, "average directional index", _window(14)),
        _spec(cci, "commodity channel index", _window(14)),
        _spec(mfi, "money flow index", _window(14)),
        _spec(obv, "on-balance volume"),
        _spec(vwap, "VWAP per UTC day (period 0) or over rolling candles", _SESSION),
        _spec(
            vwap_bands,
            "VWAP with deviation bands",
            _SESSION,
            _STDDEV,
            outputs=("vwap", "upper", "lower"),
        ),
        _spec(volume_sma, "simple moving average of volume", _window(20)),
        _spec(highest, "highest high over the period", _window(20)),
        _spec(lowest, "lowest low over the period", _window(20)),
        _spec(pct_change, "percent change of close over the period", _window(1, minimum=1)),
        _spec(pvi, "positive volume index"),
        _spec(
            rsi_divergence,
            "RSI divergence: +1 bullish, -1 bearish",
            _window(14),
            _window(14, "lookback"),
        ),
        _spec(engulfing, "engulfing pattern: +100 bullish, -100 bearish"),
        _spec(
            volume_nodes,
            "high-volume price nodes of the window (volume profile), busiest first",
            _BINS,
            _COUNT,
            outputs=("price", "volume"),
            per_candle=False,
        ),
        _spec(
            near_volume_node,
            "1 where close is within tolerance percent of a high-volume node",
            _BINS,
            _COUNT,
            Param("tolerance", 0.5, 0.0, 100.0),
        ),
    )
}
