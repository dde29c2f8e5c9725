"""The in-process app on the `db` fixture's database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.api.app import create_app
from app.core.settings import Settings


@pytest.fixture
async def client(db: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(Settings(database_url=db)))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
