"""The trading rules of each market, as the engine's risk manager and executors read them.

An exchange feed will publish the exchange's own rules (ccxt's markets); until then, and for
the simulated and replayed markets, each symbol gets Binance-like rules derived from the
first price it was seen at, kept for the life of the process so a price crossing a power of
ten does not change the tick under an open order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from app.domain.instrument import Instrument, derived_instrument


class Instruments(Protocol):
    def instrument(self, symbol: str, price: Decimal) -> Instrument: ...


class DerivedInstruments:
    def __init__(self) -> None:
        self._known: dict[str, Instrument] = {}

    def instrument(self, symbol: str, price: Decimal) -> Instrument:
        found = self._known.get(symbol)
        if found is None:
            found = self._known[symbol] = derived_instrument(symbol, price)
        return found
