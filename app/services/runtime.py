"""The running parts of one process, built once at start (`app.bootstrap`) and handed to
every request.

The API reaches the engine only through this object: the market port answers with the
engine embedded or without it (`TRADERS_ENGINE=off`), and `engine`, `desk` (its trading
desk) and `filter_checker` (dry runs of filter code) are None when it runs elsewhere. `llm`
is the process's model client (None without a Gemini key); `backtests` runs the backtests
this process started (None until the app starts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.core.events import EventBus
from app.core.settings import Settings
from app.services.market import MarketReader, RemoteMarket

if TYPE_CHECKING:
    from app.engine.desk import TradingDesk
    from app.engine.live import LiveEngine
    from app.engine.llm.client import LlmClient
    from app.services.backtests import BacktestRunner
    from app.services.filter_check import FilterChecker


@dataclass
class Runtime:
    settings: Settings
    bus: EventBus
    market: MarketReader = field(default_factory=RemoteMarket)
    engine: LiveEngine | None = None
    filter_checker: FilterChecker | None = None
    llm: LlmClient | None = None
    desk: TradingDesk | None = None
    backtests: BacktestRunner | None = None
