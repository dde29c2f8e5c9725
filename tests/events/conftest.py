"""Fixtures for event tests: a private, killable Redis server and a unique channel.

The machine's Redis on 6379 is shared with other tests and must never be stopped; outage
tests run their own `redis-server` on a free port and kill and restart it on that port.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait, bounded, for a condition on state this process can see."""
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("condition not reached")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0, *, open_: bool = True) -> None:
    """Wait until a TCP port on loopback accepts connections (or, with open_=False, refuses)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if open_:
                    return
        except OSError:
            if not open_:
                return
        time.sleep(0.02)
    raise TimeoutError(f"port {port} still {'closed' if open_ else 'open'} after {timeout}s")


class RedisServer:
    """A throwaway `redis-server` without persistence, restartable on the same port."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self._directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.kill()
        self._process.wait(timeout=10)
        self._process = None
        wait_for_port(self.port, open_=False)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def channel() -> str:
    """A channel of this test alone, so that tests sharing the machine's Redis never mix."""
    return f"traders:test:{uuid.uuid4().hex}"
