"""Defense in depth: a worker that escaped its filter still reaches nothing of the engine's.

A probe (tests/screening/workers/probe.py) boots and isolates itself with the real worker's
functions and reports what it can do before and after: read the engine's environment, a
0600 file of the engine's user, the real SQLite database (built by the real migrations,
as `traders serve` builds it), connect to a TCP port on loopback, signal the engine, fork.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.engine.klines import KlineStore
from app.engine.sandbox import FilterJob, FilterSandbox
from app.engine.sandbox.isolation import NOBODY_ID, landlock_abi
from tests.screening.conftest import LIMITS

AS_ROOT = os.geteuid() == 0
FULLY_ISOLATED = AS_ROOT or landlock_abi() >= 6
JOB = FilterJob("probe", "return True", "1h", ("BTC/USDT",), frozenset({"1h"}))


@pytest.fixture
def sqlite_database(database_url_for: Callable[[str], str]) -> str:
    """The path of the suite's SQLite database, migrated as `traders serve` migrates it."""
    return database_url_for("sqlite").removeprefix("sqlite://")


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield int(server.getsockname()[1])


def _inspect(pid: int) -> tuple[set[str], str]:
    """What a process holds open, and its /proc status, as its parent sees them."""
    targets = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    return targets, Path(f"/proc/{pid}/status").read_text()


def _report(failure: str | None) -> dict[str, dict[str, str]]:
    assert failure is not None
    phases = dict(part.split(": ", 1) for part in failure.split("; "))
    return {
        phase: dict(item.split("=") for item in results.split())
        for phase, results in phases.items()
    }


@pytest.mark.skipif(not FULLY_ISOLATED, reason="neither root nor Landlock ABI 6: see docs")
async def test_an_isolated_worker_cannot_read_the_engines_secrets_nor_reach_it(
    store: KlineStore,
    tmp_path: Path,
    listener: int,
    sqlite_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADERS_SECRET_KEY", "not-for-filters")
    standin = tmp_path / "engine-only"
    standin.write_text("secret")
    standin.chmod(0o600)
    files = {
        "environ": f"/proc/{os.getpid()}/environ",
        "standin": str(standin),
        "db": sqlite_database,
    }
    probe = {"files": files, "port": listener, "engine_pid": os.getpid()}
    monkeypatch.setenv("SANDBOX_PROBE", json.dumps(probe))

    pool = FilterSandbox(workers=1, limits=LIMITS, worker_module="tests.screening.workers.probe")
    async with pool:
        report = _report((await pool.run([JOB], store, {}))["probe"].failure)

    assert report["before"] == dict.fromkeys([*files, "tcp", "signal"], "ok")
    assert set(report["after"]) == {*files, "tcp", "signal", "fork"}
    assert "ok" not in report["after"].values(), report["after"]


async def test_a_real_worker_keeps_only_its_socket_and_memfd_and_no_privileges(
    sandbox: FilterSandbox, store: KlineStore
) -> None:
    outcome = (await sandbox.run([JOB], store, {}))["probe"]
    assert outcome.failure is None and len(outcome.matches) == 1
    pid = sandbox._workers[0].process.pid

    targets, status = _inspect(pid)

    assert {target.split(":")[0] for target in targets} == {"/dev/null", "socket", "/memfd"}
    assert len([t for t in targets if t.startswith(("socket", "/memfd"))]) == 2
    assert "NoNewPrivs:\t1" in status
    assert {"no_new_privs", "not dumpable", "stdio to /dev/null"} <= set(sandbox.isolation)
    if landlock_abi():
        assert f"landlock abi {landlock_abi()}" in sandbox.isolation
    if AS_ROOT:
        assert f"Uid:\t{NOBODY_ID}\t{NOBODY_ID}\t{NOBODY_ID}\t{NOBODY_ID}" in status
        assert {"network namespace", "chroot", f"uid {NOBODY_ID}"} <= set(sandbox.isolation)
        assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
        assert os.readlink(f"/proc/{pid}/root") != "/"


async def test_a_worker_skips_the_layers_the_system_does_not_offer(store: KlineStore) -> None:
    pool = FilterSandbox(workers=1, limits=LIMITS, worker_module="tests.screening.workers.degraded")
    async with pool:
        outcome = (await pool.run([JOB], store, {}))["probe"]

    assert outcome.failure is None and len(outcome.matches) == 1
    assert not any(layer.startswith(("landlock", "network")) for layer in pool.isolation)
    assert {"no_new_privs", "not dumpable", "stdio to /dev/null"} <= set(pool.isolation)
    if AS_ROOT:
        assert {"chroot", f"uid {NOBODY_ID}"} <= set(pool.isolation)
