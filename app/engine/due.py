"""Stages whose work falls due at candle closes (equity snapshots, exit filters, reviews).

`on_close` must be fast, so it only notes the close and the traders that ran at it; `run`
then works through the closes noted, oldest first, one `at_close` each. Live, a burst of
closes (every interval closing at the hour) is worked in order by the stage's own task; a
backtest drains it after each.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.domain.trader_spec import TraderSpec
from app.engine.screening import CandleClose, MarketView


class CloseDriven:
    def __init__(self) -> None:
        self._due: list[tuple[CandleClose, Sequence[TraderSpec]]] = []

    async def on_close(
        self, close: CandleClose, view: MarketView, traders: Sequence[TraderSpec]
    ) -> None:
        self._due.append((close, traders))

    async def run(self, view: MarketView) -> int:
        handled = 0
        while self._due:
            close, traders = self._due.pop(0)
            handled += await self.at_close(close, view, traders)
        return handled

    async def at_close(
        self, close: CandleClose, view: MarketView, traders: Sequence[TraderSpec]
    ) -> int:
        """Work the close is due for `traders`, those that ran at it; how many items were
        handled."""
        raise NotImplementedError
