"""Every strategy template's filter, run in the sandbox: it matches the market it is written
for on the candle the setup completes, and not a candle earlier (or on a market without
the setup)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import numpy as np
import pytest

from app.domain.filter_validation import parse_filter
from app.domain.intervals import interval_ms
from app.domain.trader_templates import TEMPLATES
from app.engine.klines import KlineStore
from app.engine.market import StoreView
from app.engine.sandbox import FilterJob, FilterSandbox

DAY = 86_400_000
START = 1_700_006_400_000 - 1_700_006_400_000 % DAY


def rows(
    closes: Sequence[float], interval: str, volumes: Sequence[float] | None = None
) -> np.ndarray:
    close = np.asarray(closes, dtype=np.float64)
    open_ = np.concatenate(([close[0]], close[:-1]))
    volume = (
        np.full(len(close), 100.0) if volumes is None else np.asarray(volumes, dtype=np.float64)
    )
    time = START + np.arange(len(close)) * interval_ms(interval)
    high, low = np.maximum(open_, close) * 1.0005, np.minimum(open_, close) * 0.9995
    return np.column_stack((time, open_, high, low, close, volume))


def steps(start: float, *moves: tuple[int, float]) -> list[float]:
    """Closes from `start`, each (count, log return) run after the other."""
    closes = [start]
    for count, change in moves:
        for _ in range(count):
            closes.append(closes[-1] * float(np.exp(change)))
    return closes


def ema_crossing() -> list[float]:
    """A decline then a recovery, cut at the candle where EMA(20) crosses above EMA(50)."""
    import talib

    closes = np.array(steps(100, (120, -0.0017), (80, 0.0025)))
    fast, slow = talib.EMA(closes, 20), talib.EMA(closes, 50)
    cross = next(
        i for i in range(60, len(closes)) if fast[i - 1] <= slow[i - 1] and fast[i] > slow[i]
    )
    return list(closes[: cross + 1])


SQUEEZE = [100 + 0.5 * float(np.exp(-i / 15) * np.sin(i)) for i in range(60)]
DIVERGENCE = steps(100, (59, 0.00085), (6, -0.02), (4, 0.002), (4, 0.01), (5, -0.012), (1, 0.0119))
CASES: dict[str, tuple[list[float], list[float] | None, list[float], list[float] | None]] = {
    # key: (closes that complete the setup, volumes, closes without it, volumes)
    "rsi_mean_reversion": (steps(100, (60, 0.0), (15, -0.01)), None, steps(100, (75, 0.004)), None),
    "ema_crossover_trend": (ema_crossing(), None, ema_crossing()[:-1], None),
    "bollinger_squeeze_breakout": ([*SQUEEZE, 103.0], None, SQUEEZE, None),
    "volume_spike_momentum": (
        [100.0] * 40 + [102.0],
        [100.0] * 40 + [500.0],
        [100.0] * 40 + [102.0],
        [100.0] * 41,
    ),
    "macd_divergence": (DIVERGENCE, None, DIVERGENCE[:-1], None),
    "vwap_reclaim": ([100.0] * 20 + [98.0] * 3 + [101.0], None, [100.0] * 20 + [98.0] * 4, None),
}


@pytest.fixture
async def sandbox() -> AsyncIterator[FilterSandbox]:
    async with FilterSandbox(workers=1) as pool:
        yield pool


async def matches(
    sandbox: FilterSandbox,
    symbol: str,
    code: str,
    interval: str,
    closes: list[float],
    volumes: list[float] | None,
) -> bool:
    """Whether `code` matches `symbol` on these candles (each case a candle source of its
    own: the sandbox's workers keep a replica per source)."""
    store = KlineStore(depth=500, source_id=symbol)
    store.append(symbol, interval, rows(closes, interval, volumes))
    job = FilterJob("t", code, interval, (symbol,), parse_filter(code, interval).timeframes)
    outcome = (await sandbox.run([job], StoreView(store, None, {}), {}))["t"]
    assert outcome.failure is None, outcome.failure
    return [m.symbol for m in outcome.matches] == [symbol]


def test_there_are_six_templates_at_least() -> None:
    assert set(CASES) <= set(TEMPLATES) and len(TEMPLATES) >= 6


async def test_each_template_filter_matches_its_setup_and_only_it(sandbox: FilterSandbox) -> None:
    for key, (setup, setup_volumes, other, other_volumes) in CASES.items():
        draft = TEMPLATES[key].render()
        base = key.replace("_", "")[:10].upper()
        code, interval = draft.filter_code, draft.interval
        assert await matches(sandbox, f"{base}/USDT", code, interval, setup, setup_volumes), key
        assert not await matches(sandbox, f"{base}/BTC", code, interval, other, other_volumes), key
