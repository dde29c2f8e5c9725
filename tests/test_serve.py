"""The README's first command, as a user runs it: `traders serve` on a fresh SQLite file.

GraphiQL loads, `traders user create` prints a token, a trader created with it is listed with
its metrics, and with no exchange reachable the market runs on the simulated feed.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.typing import Subprotocol

from app.api.app import create_app
from app.core.settings import Settings
from app.db import config as db_config
from tests.events.live import ROOT, free_port, wait_for_port


def _env(directory: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRADERS_")}
    env["TRADERS_DATABASE_URL"] = f"sqlite://{directory / 'traders.sqlite3'}"
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """One fresh server for the module: the oversized-input test changes nothing in it."""
    directory = tmp_path_factory.mktemp("serve")
    env = _env(directory)
    port = free_port()
    log = (directory / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=directory,
        env=env | {"PYTHONPATH": str(ROOT)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=60)
        yield f"http://127.0.0.1:{port}", env
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _create_user(env: dict[str, str], name: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "user", "create", name],
        env=env | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def test_fresh_server_serves_graphiql_traders_and_the_simulated_market(
    server: tuple[str, dict[str, str]],
) -> None:
    base, env = server
    page = httpx.get(f"{base}/graphql", headers={"Accept": "text/html"}, timeout=10)
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()

    token = _create_user(env, "alice")
    headers = {"Authorization": f"Bearer {token}"}

    def graphql(query: str) -> dict:
        response = httpx.post(f"{base}/graphql", json={"query": query}, headers=headers, timeout=20)
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    created = graphql('mutation { createTrader(input: {name: "first"}) { id } }')
    listed = graphql("{ traders { nodes { id name metrics { totalPnL winRate } } } }")
    assert listed["traders"]["nodes"] == [
        {
            "id": created["createTrader"]["id"],
            "name": "first",
            "metrics": {"totalPnL": "0", "winRate": "0"},
        }
    ]
    market = graphql("{ market { source symbols intervals } }")["market"]
    assert market["source"] == "simulated"
    assert market["symbols"]


def test_the_running_server_refuses_oversized_bodies_and_messages(
    server: tuple[str, dict[str, str]],
) -> None:
    """TRADERS_MAX_BODY_BYTES (1 MiB by default) bounds HTTP bodies and websocket messages."""
    base, _ = server
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 209715200\r\n\r\n"
        )
        answer = connection.recv(65536)  # answered without a byte of the 200 MiB sent
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"request body over the limit of 1,048,576 bytes" in answer

    async def oversized_message() -> int | None:
        url = base.replace("http://", "ws://") + "/graphql"
        async with websockets.connect(
            url, subprotocols=[Subprotocol("graphql-transport-ws")]
        ) as ws:
            # The server may close while the message is still being written: then the send
            # raises, otherwise the next receive does; either way with the server's 1009.
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.send("x" * (2 * 1024 * 1024))
                await ws.recv()
        return closed.value.rcvd.code if closed.value.rcvd else None

    assert asyncio.run(oversized_message()) == 1009


async def test_a_failed_start_stops_what_had_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped: list[str] = []

    async def failing_engine(*args: object) -> None:
        raise RuntimeError("no market")

    async def close_db() -> None:
        stopped.append("database")
        await db_config.close_db()

    monkeypatch.setattr("app.bootstrap.build_engine", failing_engine)
    monkeypatch.setattr("app.api.app.close_db", close_db)
    app = create_app(Settings(database_url=f"sqlite://{tmp_path / 'db.sqlite3'}"), migrate=False)
    bus = app.state.runtime.bus

    async def stop_bus() -> None:
        stopped.append("bus")

    monkeypatch.setattr(bus, "stop", stop_bus)

    with pytest.raises(RuntimeError, match="no market"):
        async with app.router.lifespan_context(app):
            pass

    assert stopped == ["bus", "database"]
