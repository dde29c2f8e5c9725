"""What an engine process reports of the market it sees, for the API's `market` query.

The same value answers whether the engine runs in the API process (read from its feed) or
elsewhere (read from the heartbeat it keeps in the database).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class MarketInfo:
    source: str
    is_live_market: bool
    symbols: tuple[str, ...]
    intervals: tuple[str, ...]
    last_candle_at: datetime | None
