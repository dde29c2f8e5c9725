"""The running parts of one process, built once at start and handed to every request.

The API layer reaches the engine only through this object, so that a process can serve the
API with the engine embedded (the default) or without it (`TRADERS_ENGINE=off`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.core.events import EventBus
from app.core.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    bus: EventBus
    market: Any = None
    screener: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
