"""A burst of analyses must not stall screening: 300 signals at one close, a 2 s model.

The live wiring of `traders serve` (database repositories on SQLite, the in-process bus, the
wall clock, the real google-genai client) with the fake Gemini server in a process of its
own answering every request after `--delay` seconds, at the default concurrency of 10 model
calls. The screening load is the screening benchmark's 50 filters over 300 symbols, each
computing its verdict in full and then returning False (the same screening work, but no
signals of their own queued ahead of the burst); ten more traders (one per user) match
their 30 symbols each at one chosen candle only: 300 signals at that close. The later
stages run as `LiveEngine` runs them (`StageTasks`: each in a task of its own, woken after
every close).

Measured in the same run: the screening time of candle closes while the analyzer is idle
(before the burst, and after it is decided, so that a change of the machine's load over
the run weighs on both sides), of the closes that follow the burst while its 300 analyses
are in flight, and the time until all 300 are decided (at 10 calls of 2 s at once, 60 s is
the floor).

    python -m benchmarks.analysis [--signals 300] [--delay 2] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr

from app.bootstrap import build_llm, build_workflow
from app.core.events import InProcessEventBus
from app.core.heap import freeze_long_lived
from app.core.settings import Settings
from app.db.config import close_db, init_db, migrate_db
from app.db.models import Decision, LlmCall, Signal, Trader, User
from app.domain.enums import SignalStatus, TraderStatus
from app.engine.clock import RealtimeClock
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.engine.sandbox import FilterSandbox
from app.engine.screening import CandleClose
from app.engine.stage_tasks import StageTasks
from app.engine.workflow import Workflow
from benchmarks.screening import START_MS, strategies
from tests.fakes.gemini import API_KEY

HOUR = 3_600_000
ROOT = Path(__file__).resolve().parents[1]
BURST_USERS = 10


def start_fake(delay: float) -> tuple[subprocess.Popen[bytes], str]:
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.gemini", "--delay", str(delay)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert fake.stdout is not None
    return fake, fake.stdout.readline().decode().strip()


def evaluated_but_silent(code: str) -> str:
    """The filter with its verdict computed in full and then dropped: the same screening
    work, and no signals of its own to queue ahead of the burst."""
    *body, verdict = code.splitlines()
    assert verdict.startswith("return ")
    return "\n".join([*body, "verdict = " + verdict.removeprefix("return "), "return False"])


async def create_traders(symbols: list[str], burst_open: int, signals: int) -> None:
    load_owner = await User.create(name="screening load")
    for strategy in strategies():
        await Trader.create(
            owner=load_owner,
            name=strategy.name,
            interval="1h",
            symbols=symbols,
            filter_code=evaluated_but_silent(strategy.code),
            enabled=True,
            status=TraderStatus.RUNNING,
        )
    per_user = signals // BURST_USERS
    for index in range(BURST_USERS):
        owner = await User.create(name=f"burst {index}")
        await Trader.create(
            owner=owner,
            name=f"burst {index}",
            interval="1h",
            symbols=symbols[index * per_user : (index + 1) * per_user],
            filter_code=f"return int(candles.time[-1]) == {burst_open}",
            enabled=True,
            status=TraderStatus.RUNNING,
            stop_loss=Decimal(5),
        )


async def close(
    feed: SimulatedFeed, store: KlineStore, market: MarketData, workflow: Workflow
) -> tuple[float, float]:
    """The next candle closes: (seconds the screen took, seconds the whole close took)."""
    feed.step(store)
    newest = store.last_time(feed.symbols[0], "1h")
    assert newest is not None
    candle = CandleClose("1h", newest)
    started = time.perf_counter()
    report = await workflow.on_close(candle, market.view(candle.at))
    assert report is not None
    return report.seconds, time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Phase:
    """Wall time and the CPU this process and the fake used over one phase of the run."""

    def __init__(self, fake_pid: int) -> None:
        self.fake_pid = fake_pid
        self.wall = time.perf_counter()
        self.engine = time.process_time()
        self.fake = cpu_seconds(fake_pid)

    def end(self) -> str:
        wall = time.perf_counter() - self.wall
        engine = (time.process_time() - self.engine) / wall * 100
        fake = (cpu_seconds(self.fake_pid) - self.fake) / wall * 100
        return f"engine process {engine:.1f}% of a core, fake Gemini {fake:.1f}%"


def describe(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    return (
        f"{name}: median {statistics.median(ms):7.1f} ms, p90 {p90:7.1f} ms, "
        f"max {ms[-1]:7.1f} ms over {len(ms)} closes"
    )


async def main(args: argparse.Namespace) -> None:
    fake, base_url = start_fake(args.delay)
    directory = tempfile.mkdtemp(prefix="analysis-benchmark-")
    url = f"sqlite://{directory}/traders.sqlite3"
    settings = Settings(
        database_url=url,
        gemini_api_key=SecretStr(API_KEY),
        gemini_base_url=base_url,
        llm_concurrency=args.concurrency,
    )
    symbols = [f"C{index:03d}/USDT" for index in range(args.symbols)]
    feed = SimulatedFeed(symbols, intervals=("1h", "4h"), seed=3, speed=None, start_ms=START_MS)
    store = KlineStore(depth=500)
    feed.backfill(store)
    market = MarketData(feed, store)
    burst_open = feed.now_ms + (1 + args.closes) * HOUR
    await migrate_db(url)
    await close_db()
    await init_db(url)
    sandbox = FilterSandbox(workers=args.workers)
    clock = RealtimeClock()
    llm = build_llm(settings, clock)
    assert llm is not None
    stages = None
    try:
        await create_traders(symbols, burst_open, args.signals)
        workflow = build_workflow(InProcessEventBus(), clock, sandbox, market, settings, llm)
        await sandbox.start()
        print(
            f"{len(strategies())} screening traders x {len(symbols)} symbols, "
            f"{args.signals} burst signals from {BURST_USERS} users; fake Gemini answering "
            f"in {args.delay:g} s, {args.concurrency} model calls at once; "
            f"{args.workers} sandbox workers, {os.cpu_count()} CPUs"
        )
        await close(feed, store, market, workflow)  # warm-up: workers get every series
        stages = StageTasks(workflow, market, clock)
        stages.start()
        freeze_long_lived()  # as `traders serve` does once started
        quiet = []
        before = Phase(fake.pid)
        for _ in range(args.closes):
            quiet.append(await close(feed, store, market, workflow))
            stages.wake()
            await asyncio.sleep(args.pace)
        burst_traders = Trader.filter(name__startswith="burst ")
        burst_ids = await burst_traders.values_list("id", flat=True)
        quiet_cpu = before.end()
        during = Phase(fake.pid)
        started = time.perf_counter()
        burst_close = await close(feed, store, market, workflow)
        stages.wake()
        created = await Signal.filter(trader_id__in=burst_ids).count()
        busy = []
        while await Signal.filter(trader_id__in=burst_ids, status=SignalStatus.NEW).exists():
            await asyncio.sleep(args.pace)
            if not await Signal.filter(trader_id__in=burst_ids, status=SignalStatus.NEW).exists():
                break
            busy.append(await close(feed, store, market, workflow))
            stages.wake()
        decided = time.perf_counter() - started
        burst_cpu = during.end()
        for _ in range(args.closes):
            quiet.append(await close(feed, store, market, workflow))
            await asyncio.sleep(args.pace)
        engines = await Decision.filter(signal__trader_id__in=burst_ids).values_list(
            "engine", flat=True
        )
        calls = await LlmCall.filter(trader_id__in=burst_ids).count()
    finally:
        if stages is not None:
            await stages.stop()
        await sandbox.close()
        await llm.close()
        await close_db()
        fake.terminate()
        fake.wait(timeout=10)

    floor = created / args.concurrency * args.delay
    print(
        f"burst: {created} signals at one close; all decided {decided:.1f} s after the close "
        f"(floor {floor:.0f} s at {args.concurrency} x {args.delay:g} s), "
        f"{created / decided:.1f} decisions/s; {calls} model calls; "
        f"engines {', '.join(sorted({str(e) for e in engines}))}"
    )
    print(
        f"the burst close itself: screen {burst_close[0] * 1000:.1f} ms, whole close "
        f"{burst_close[1] * 1000:.1f} ms (records the {created} signals)"
    )
    print(f"CPU before the burst: {quiet_cpu}; during it: {burst_cpu}")
    print(describe("screening, no burst (baseline)", [s for s, _ in quiet]))
    print(describe("screening during the burst    ", [s for s, _ in busy]))
    print(describe("whole close, no burst         ", [w for _, w in quiet]))
    print(describe("whole close, during the burst ", [w for _, w in busy]))
    slower = statistics.median(s for s, _ in busy) / statistics.median(s for s, _ in quiet) - 1
    print(f"screening during the burst vs baseline: {slower * 100:+.1f}% (target: at most +10%)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=300)
    parser.add_argument("--symbols", type=int, default=300)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds the model takes")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument(
        "--closes", type=int, default=8, help="baseline closes before and after the burst"
    )
    parser.add_argument("--pace", type=float, default=2.0, help="seconds between closes")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    asyncio.run(main(parser.parse_args()))
