"""The running parts of one process, built once at start and handed to every request.

The API layer reaches the engine only through this object, so that a process can serve the
API with the engine embedded (the default) or without it (`TRADERS_ENGINE=off`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.core.events import EventBus
from app.core.settings import Settings

if TYPE_CHECKING:
    from app.engine.market import MarketData
    from app.engine.screening import ScreenerEngine
    from app.services.filter_check import FilterChecker


@dataclass
class Runtime:
    settings: Settings
    bus: EventBus
    market: MarketData | None = None
    screener: ScreenerEngine | None = None
    filter_checker: FilterChecker | None = None
