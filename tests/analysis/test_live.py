"""The whole platform in one `traders serve`, with the model and without: a trader's match
becomes a signal, the analyzer decides on it, and the API shows which engine answered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from app.services.users import create_user
from tests.events.live import ApiServer
from tests.fakes.gemini import API_KEY, FakeGemini, analysis_answer

CREATE = """mutation { createTrader(input: {
    name: "btc watcher", interval: "1m", symbols: ["BTC/USDT"], enabled: true,
    filter: {code: "return candles.close[-1] > 0"},
    strategy: {riskManagement: {stopLoss: "5"}}
}) { id } }"""
SIGNALS = """query($id: ID!) { signals(traderId: $id) { nodes {
    status analysis { engine model inputTokens outputTokens decision } decisions { decision }
    transitions { fromStatus toStatus }
} } }"""


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
async def gemini() -> AsyncIterator[FakeGemini]:
    fake = FakeGemini(respond=analysis_answer)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@contextmanager
def serving(db: str, tmp_path: Path, **settings: str) -> Iterator[ApiServer]:
    api = ApiServer(
        db,
        None,
        tmp_path / "serve.log",
        {
            "TRADERS_ENGINE": "embedded",
            "TRADERS_FEED": "simulated",
            "TRADERS_FEED_SPEED": "120",
            **settings,
        },
    )
    api.start()
    try:
        yield api
    finally:
        api.stop()


async def analyzed(server: ApiServer, token: str, trader_id: str) -> dict[str, Any]:
    """The first signal analyzed and moved on: the analyzer records its decision, then
    moves the signal (two commits), so an analyzed signal may still be NEW for a moment."""
    for _ in range(600):
        nodes = (await server.graphql(token, SIGNALS, id=trader_id))["signals"]["nodes"]
        done = [node for node in nodes if node["analysis"] and node["status"] != "NEW"]
        if done:
            return done[0]
        await asyncio.sleep(0.1)
    raise AssertionError("no signal was analyzed and moved within 60 s")


async def test_with_a_key_gemini_analyzes_live(db: str, tmp_path: Path, gemini: FakeGemini) -> None:
    with serving(
        db, tmp_path, TRADERS_GEMINI_API_KEY=API_KEY, TRADERS_GEMINI_BASE_URL=gemini.base_url
    ) as server:
        _, token = await create_user("alice")
        trader_id = (await server.graphql(token, CREATE))["createTrader"]["id"]
        signal = await analyzed(server, token, trader_id)
        assert signal["analysis"]["engine"] == "GEMINI"
        assert signal["analysis"]["model"] == "gemini-2.5-flash"
        assert signal["analysis"]["inputTokens"] > 0
        # Ready, then traded by the trade stage (or refused by risk) as soon as it runs.
        assert signal["transitions"][0] == {"fromStatus": "NEW", "toStatus": "READY"}
        assert signal["status"] in {"READY", "ENTERED", "CANCELLED"}
        assert gemini.requests and "BTC/USDT" in gemini.requests[0].prompt
        usage = await server.graphql(token, "{ llmUsage { engine calls } }")
        assert usage["llmUsage"] == {"engine": "GEMINI", "calls": len(gemini.requests)}


async def test_without_a_key_the_rule_engine_analyzes_live(db: str, tmp_path: Path) -> None:
    with serving(db, tmp_path) as server:
        _, token = await create_user("alice")
        trader_id = (await server.graphql(token, CREATE))["createTrader"]["id"]
        signal = await analyzed(server, token, trader_id)
        assert signal["analysis"]["engine"] == "RULES"
        assert signal["analysis"]["model"] is None and signal["analysis"]["inputTokens"] == 0
        moved_to = {"ENTER_TRADE": "READY", "GOOD_SETUP": "WATCHING", "BAD_SETUP": "REJECTED"}
        assert signal["transitions"][0] == {
            "fromStatus": "NEW",
            "toStatus": moved_to[signal["decisions"][0]["decision"]],
        }
