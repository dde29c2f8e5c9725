"""Fixtures for event tests: private Redis servers (a test's own, which it may kill, and a
module's shared one) and a unique channel.

The machine's Redis on 6379 is shared with other tests and must never be stopped; outage
tests run their own `redis-server` on a free port and kill and restart it on that port.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.events.live import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def module_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private Redis server that a module's tests share and never stop."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def channel() -> str:
    """A channel of this test alone, so that tests sharing the machine's Redis never mix."""
    return f"traders:test:{uuid.uuid4().hex}"
