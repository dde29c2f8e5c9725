"""Real peers for end-to-end event tests and the fan-out benchmark: `redis-server` and
`traders serve` processes on free loopback ports, and websocket clients.

Whether a server has registered a new subscription cannot be seen from outside, so a test
that needs a live subscription repeats a harmless action until its first event arrives
(`first_event`), bounded; what it asserts afterwards is about events, not timings.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.websockets import WebsocketsTransport

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 10.0
PROTOCOLS = (
    WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL,  # graphql-transport-ws
    WebsocketsTransport.APOLLO_SUBPROTOCOL,  # graphql-ws
)


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


class _ChildProcess:
    _process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("not running")
        return self._process.pid


class RedisServer(_ChildProcess):
    """A throwaway `redis-server` without persistence, restartable on the same port."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory

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


class ApiServer(_ChildProcess):
    """One `traders serve` process on a free loopback port; the engine is off unless
    `settings` (more `TRADERS_*` variables) turn it on."""

    def __init__(
        self,
        database_url: str,
        redis_url: str | None,
        log: Path,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.http_url = f"http://127.0.0.1:{self.port}/graphql"
        self.ws_url = f"ws://127.0.0.1:{self.port}/graphql"
        self._env = {
            key: value for key, value in os.environ.items() if not key.startswith("TRADERS_")
        }
        self._env |= {
            "TRADERS_DATABASE_URL": database_url,
            "TRADERS_ENGINE": "off",
            "TRADERS_LOG_LEVEL": "WARNING",
        }
        if redis_url is not None:
            self._env["TRADERS_REDIS_URL"] = redis_url
        self._env |= settings or {}
        self._log = log

    def start(self) -> None:
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port)],
                cwd=ROOT,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(self.port, timeout=30)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"server did not start: {self._log.read_text()}") from None

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    async def graphql(self, token: str, query: str, **variables: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            response = await client.post(
                self.http_url,
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {token}"},
            )
        body: dict[str, Any] = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        return body["data"]

    async def set_enabled(self, token: str, trader_id: str, enabled: bool) -> None:
        await self.graphql(
            token,
            "mutation($id: ID!, $on: Boolean!) { setTraderEnabled(id: $id, enabled: $on) { id } }",
            id=trader_id,
            on=enabled,
        )


@contextmanager
def engine_server(database_url: str, log: Path, speed: str = "120") -> Iterator[ApiServer]:
    """`traders serve` with the engine embedded on the simulated feed at `speed`x."""
    api = ApiServer(
        database_url,
        None,
        log,
        {"TRADERS_ENGINE": "embedded", "TRADERS_FEED": "simulated", "TRADERS_FEED_SPEED": speed},
    )
    api.start()
    try:
        yield api
    finally:
        api.stop()


def transport(url: str, protocol: str, init_payload: dict[str, Any]) -> WebsocketsTransport:
    return WebsocketsTransport(
        url=url,
        init_payload=init_payload,
        subprotocols=[protocol],
        connect_timeout=TIMEOUT,
        ack_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
    )


@asynccontextmanager
async def subscribed(
    session: AsyncClientSession, query: str, **variables: Any
) -> AsyncIterator[AsyncGenerator[dict[str, Any], None]]:
    """The results of one subscription on a client session, stopped at the end of the block.

    The client's close waits, up to its close timeout (10 s), until each subscription it
    started has been stopped; one left open only makes the close wait that long.
    """
    request = GraphQLRequest(query, variable_values=variables or None)
    async with aclosing(session.subscribe(request)) as results:
        yield results


@asynccontextmanager
async def subscription(
    url: str, token: str, query: str, protocol: str = PROTOCOLS[0], **variables: Any
) -> AsyncIterator[AsyncGenerator[dict[str, Any], None]]:
    """The results of one subscription over its own websocket, authenticated by token."""
    client = Client(
        transport=transport(url, protocol, {"Authorization": f"Bearer {token}"}),
        execute_timeout=TIMEOUT,
    )
    async with client as session, subscribed(session, query, **variables) as results:
        yield results


async def next_result(results: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(anext(results), TIMEOUT)


async def first_event(
    results: AsyncIterator[dict[str, Any]],
    action: Callable[[], Awaitable[object]],
    attempts: int = 50,
    interval: float = 0.2,
) -> dict[str, Any]:
    """Repeat `action` until the subscription yields its first result (bounded)."""
    pending = asyncio.ensure_future(anext(results))
    try:
        for _ in range(attempts):
            await action()
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if done:
                return pending.result()
        raise TimeoutError(f"no event after {attempts} attempts")
    finally:
        pending.cancel()
