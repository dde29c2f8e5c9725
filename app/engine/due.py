"""Stages whose work falls due at candle closes (equity snapshots, exit filters, reviews).

`on_close` must be fast, so it only notes the close; `run` then works through the closes
noted, oldest first, one `at_close` each. Live, a burst of closes (every interval closing
at the hour) is worked in order by the stage's own task; a backtest drains it after each.
"""

from __future__ import annotations

from app.engine.screening import CandleClose, MarketView


class CloseDriven:
    def __init__(self) -> None:
        self._due: list[CandleClose] = []

    async def on_close(self, close: CandleClose, view: MarketView) -> None:
        self._due.append(close)

    async def run(self, view: MarketView) -> int:
        handled = 0
        while self._due:
            handled += await self.at_close(self._due.pop(0), view)
        return handled

    async def at_close(self, close: CandleClose, view: MarketView) -> int:
        """Work the close is due; how many items were handled."""
        raise NotImplementedError
