"""Choose the event bus a process runs with, from its settings."""

from __future__ import annotations

from app.core.events import EventBus, InProcessEventBus
from app.core.settings import Settings


def create_event_bus(settings: Settings) -> EventBus:
    """Redis pub/sub when `TRADERS_REDIS_URL` is set, so that every API process sees every
    event; the in-process bus otherwise, which is all a single embedded process needs."""
    if settings.redis_url:
        from app.core.redis_bus import RedisEventBus

        return RedisEventBus(settings.redis_url)
    return InProcessEventBus()
