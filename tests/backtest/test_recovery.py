"""A backtest left queued or running by an API process that stopped without ending it is
failed, with the reason, by the next process to start (or by any that stays up): its lease
ran out. Runs another live process keeps leased are left alone.

The first test stages what a killed process leaves in the database; the second kills a real
`traders serve` in the middle of a run and starts it again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.events import EventType, InProcessEventBus
from app.db import models
from app.domain.enums import BacktestStatus
from app.services.backtests import BacktestRunner
from tests.events.live import ROOT, free_port, wait_for_port

DATA = ROOT / "tests" / "data" / "candles"
AGO = timedelta(minutes=2)
SYMBOLS = ["ETH/BTC", "LTC/BTC", "XMR/BTC", "ADA/BTC", "DASH/BTC"]


async def staged(owner: models.User, status: BacktestStatus, heartbeat: datetime | None) -> str:
    run = await models.Backtest.create(
        id=uuid.uuid4(),
        owner_id=owner.id,
        request={},
        status=status,
        created_at=datetime.now(UTC) - AGO,
        heartbeat_at=heartbeat,
    )
    return str(run.id)


async def test_runs_left_by_a_stopped_process_fail_with_the_reason_when_a_runner_starts(
    db: str,
) -> None:
    owner = await models.User.create(name="alice")
    now = datetime.now(UTC)
    left_running = await staged(owner, BacktestStatus.RUNNING, now - AGO)
    left_queued = await staged(owner, BacktestStatus.QUEUED, None)  # from before the leases
    kept_alive = await staged(owner, BacktestStatus.RUNNING, now)  # another process's
    finished = await staged(owner, BacktestStatus.DONE, now - AGO)
    bus = InProcessEventBus()
    heard = bus.listen(owner.id, [EventType.BACKTEST])
    listening = asyncio.ensure_future(anext(heard))
    await asyncio.sleep(0.1)  # subscribed

    runner = BacktestRunner(bus, lease_seconds=30)
    await runner.start()
    try:
        first = await asyncio.wait_for(listening, 5)
    finally:
        await runner.close()
        await heard.aclose()

    runs = {str(run.id): run for run in await models.Backtest.all()}
    for run_id, did in ((left_running, "ran"), (left_queued, "queued")):
        run = runs[run_id]
        assert run.status == BacktestStatus.FAILED and run.finished_at is not None
        assert run.reason is not None
        assert f"the server process that {did} it stopped without ending it" in run.reason
    assert runs[kept_alive].status == BacktestStatus.RUNNING
    assert runs[finished].status == BacktestStatus.DONE and runs[finished].reason is None
    assert first.payload["status"] == "failed", "subscribers hear the run end"


def _env(directory: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRADERS_")}
    return env | {
        "PYTHONPATH": str(ROOT),
        "TRADERS_DATABASE_URL": f"sqlite://{directory / 'traders.sqlite3'}",
        "TRADERS_ENGINE": "off",
        "TRADERS_BACKTEST_DATA": str(DATA),
        "TRADERS_BACKTEST_LEASE_SECONDS": "1",
    }


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start `traders serve` on the test's database: (its base URL, the process)."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> tuple[str, subprocess.Popen[bytes]]:
        port = free_port()
        log = (tmp_path / f"serve-{len(started)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=_env(tmp_path),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        wait_for_port(port, timeout=60)
        return f"http://127.0.0.1:{port}", process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=20)


def _token(tmp_path: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "user", "create", "alice"],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def _graphql(base: str, token: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{base}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    )
    body = response.json()
    assert "errors" not in body, body
    return dict(body["data"])


READ = "query ($id: ID!) { backtest(id: $id) { status closesDone reason } }"


def test_a_run_of_a_killed_server_is_failed_when_the_server_starts_again(
    tmp_path: Path, serve: Any
) -> None:
    base, process = serve()
    token = _token(tmp_path)
    window = {"from": "2018-01-11T00:00:00Z", "to": "2018-01-20T00:00:00Z"}
    started = _graphql(
        base,
        token,
        "mutation ($input: BacktestInput!) { backtestTrader(input: $input) }",
        {
            "input": {
                "template": "rsi_mean_reversion",
                "interval": "5m",
                "symbols": SYMBOLS,
                **window,
            }
        },
    )
    run_id = started["backtestTrader"]
    deadline = time.monotonic() + 60
    while (run := _graphql(base, token, READ, {"id": run_id})["backtest"])["closesDone"] == 0:
        assert run["status"] in ("QUEUED", "RUNNING"), run
        assert time.monotonic() < deadline, "the run did not start"
        time.sleep(0.05)

    process.send_signal(signal.SIGKILL)  # no lifespan shutdown: the row says RUNNING
    process.wait(timeout=10)
    time.sleep(1.5)  # longer than the lease
    base, _ = serve()

    run = _graphql(base, token, READ, {"id": run_id})["backtest"]
    assert run["status"] == "FAILED", run
    assert "the server process that ran it stopped without ending it" in run["reason"]
