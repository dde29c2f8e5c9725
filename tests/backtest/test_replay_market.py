"""The replay market shows filters what the live replay feed shows them: its ticker figures
are the feed's tickers, to the last bit, at every close (summed for every candle at once, as
the feed sums them one candle at a time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.engine.backtest.replay import ReplayMarket
from app.engine.feeds.base import RollingTickers, figure, figures_of, rolled_sums
from app.engine.feeds.replay import read_candles
from app.engine.sandbox import TickerValues
from app.engine.screening import ticker_values

DATA = Path(__file__).resolve().parents[1] / "data" / "candles"


def test_ticker_figures_are_the_tickers_as_filters_read_them() -> None:
    rows = read_candles(DATA / "XMR_BTC-5m.csv")
    tickers = RollingTickers()
    for time, open_, _, _, close, volume in rows[:1500]:
        tickers.update("XMR/BTC", int(time), float(open_), float(close), float(volume))
        figures = tickers.figures()["XMR/BTC"]
        assert TickerValues(*figures) == ticker_values(tickers.snapshot()["XMR/BTC"])


def test_a_view_shows_the_tickers_of_the_candles_closed_by_its_moment() -> None:
    rows = read_candles(DATA / "ETH_BTC-5m.csv")
    market = ReplayMarket({("ETH/BTC", "5m"): rows})
    expected = RollingTickers()
    for index, (time, open_, _, _, close, volume) in enumerate(rows[:400]):
        expected.update("ETH/BTC", int(time), float(open_), float(close), float(volume))
        if index >= 300 or index % 50 == 49:
            market.reveal(int(time) + 300_000)
            view = market.view()
            assert view.tickers()["ETH/BTC"] == ticker_values(expected.snapshot()["ETH/BTC"])
            assert int(view.candles("ETH/BTC", "5m").time[-1]) == int(time)


def test_rolled_sums_are_the_rolling_tickers_figures_after_every_candle_gaps_and_all() -> None:
    rows = read_candles(DATA / "XMR_BTC-5m.csv")[:2500]
    rows = np.delete(rows, [*range(400, 700), 1000, 1001, 1500], axis=0)  # a day's gap, holes
    rolling = RollingTickers()
    sums = rolled_sums(rows[:, 0].astype(np.int64), rows[:, 1], rows[:, 4], rows[:, 5])
    rounded = figures_of(*sums)
    for index, (time, open_, _, _, close, volume) in enumerate(rows):
        rolling.update("XMR/BTC", int(time), float(open_), float(close), float(volume))
        rolled = figure(*(float(column[index]) for column in sums))
        assert rolled == rolling.figures()["XMR/BTC"], f"candle {index}"
        assert tuple(float(column[index]) for column in rounded) == rolled


def test_the_closes_of_several_intervals_are_each_moment_with_the_intervals_closing_then() -> None:
    hour, quarter = 3_600_000, 900_000
    start = 1_672_531_200_000

    def flat(times: np.ndarray) -> np.ndarray:
        return np.column_stack([times, *[np.ones(len(times))] * 5])

    market = ReplayMarket(
        {
            ("A/USDT", "1h"): flat(start + hour * np.arange(12)),
            ("A/USDT", "15m"): flat(start + quarter * np.arange(48)),
            ("B/USDT", "4h"): flat(start + 4 * hour * np.arange(3)),
        }
    )

    closes = list(market.closes(["1h", "4h", "15m"], start + hour, start + 8 * hour))

    assert closes[:5] == [
        (start + hour, ["15m", "1h"]),
        (start + hour + quarter, ["15m"]),
        (start + hour + 2 * quarter, ["15m"]),
        (start + hour + 3 * quarter, ["15m"]),
        (start + 2 * hour, ["15m", "1h"]),
    ]
    assert (start + 4 * hour, ["15m", "1h", "4h"]) in closes
    assert (start + 8 * hour, ["15m", "1h", "4h"]) == closes[-1]
    assert [moment for moment, _ in closes] == sorted({moment for moment, _ in closes})
