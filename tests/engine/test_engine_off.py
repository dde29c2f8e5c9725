"""An API process without the engine (TRADERS_ENGINE=off) still answers, and says clearly
what it cannot answer itself.

Two real `traders serve` processes share one PostgreSQL database: one runs the engine on
the simulated market, the other serves the API only. The API-only process answers `market`
from the heartbeat the engine keeps in the database, refuses `klines` with
ENGINE_UNAVAILABLE and a message naming where candles are served, and still checks filters
(located errors), saying why it did not dry-run them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.services.users import create_user
from tests.events.live import TIMEOUT, ApiServer

VALIDATE = """
query($code: String!) {
  validateFilter(code: $code, interval: "1h") {
    valid dryRun dryRunSkipped errors { line column message }
  }
}"""


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
def api_only(db: str, tmp_path: Path) -> Iterator[ApiServer]:
    server = ApiServer(db, None, tmp_path / "api.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _post(server: ApiServer, token: str, query: str, **variables: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        response = await client.post(
            server.http_url,
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_without_the_engine_the_api_answers_from_the_database_or_says_where(
    db: str, tmp_path: Path, api_only: ApiServer
) -> None:
    _, token = await create_user("alice")

    nobody = await _post(api_only, token, "{ market { source } }")
    assert nobody["errors"][0]["extensions"]["code"] == "ENGINE_UNAVAILABLE"
    assert "no engine process has reported" in nobody["errors"][0]["message"]

    engine = ApiServer(
        db,
        None,
        tmp_path / "engine.log",
        {"TRADERS_ENGINE": "embedded", "TRADERS_FEED": "simulated"},
    )
    engine.start()
    try:
        for _ in range(100):
            answer = await _post(api_only, token, "{ market { source isLiveMarket symbols } }")
            if "errors" not in answer:
                break
            await asyncio.sleep(0.2)
        market = answer["data"]["market"]
        assert market["source"] == "simulated" and market["isLiveMarket"] is False
        assert "BTC/USDT" in market["symbols"]
        served = await _post(
            engine, token, '{ klines(symbol: "BTC/USDT", interval: "1h", limit: 3) { symbol } }'
        )
        assert served["data"]["klines"]["symbol"] == "BTC/USDT", "the engine's process serves"
    finally:
        engine.stop()

    klines = await _post(
        api_only, token, '{ klines(symbol: "BTC/USDT", interval: "1h", limit: 3) { symbol } }'
    )
    assert klines["data"] is None
    assert klines["errors"][0]["extensions"]["code"] == "ENGINE_UNAVAILABLE"
    assert "TRADERS_ENGINE=off" in klines["errors"][0]["message"]

    broken = await _post(api_only, token, VALIDATE, code="x = 1\nimport os\nreturn x")
    check = broken["data"]["validateFilter"]
    assert check["valid"] is False and check["dryRun"] is False
    assert check["errors"][0]["line"] == 2 and "import" in check["errors"][0]["message"]

    valid = (await _post(api_only, token, VALIDATE, code="return rsi(candles)[-1] < 30"))["data"]
    assert valid["validateFilter"]["valid"] is True
    assert valid["validateFilter"]["dryRun"] is False
    assert "TRADERS_ENGINE=off" in valid["validateFilter"]["dryRunSkipped"]
