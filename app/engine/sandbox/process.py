"""The supervision of one worker process, from the engine: start, call, kill, blame.

A worker is `python -m <module> CONFIG` (the real one is `app.engine.sandbox.worker`; tests
start hostile stand-ins the same way), so no caller needs a main-module guard. It inherits
only its end of a socket pair and the progress memfd, and an environment without the
engine's `TRADERS_*` settings (the secret key, API keys and database credentials).

A call sends one batch and waits for its answer, watching the worker meanwhile:
- a worker whose heartbeat stops for `eval_seconds + grace_seconds` (stuck in C) is killed
  and the job it was evaluating is blamed, and charged the time since that evaluation began;
- a worker that dies (SIGXCPU, out of memory, a crash) is blamed the same way;
- a worker that answers something the protocol does not allow is a `Violation`: killed,
  nobody blamed;
- a worker that takes more than twice its batch CPU limit in wall time (a live heartbeat
  and no answer can only be a worker that escaped its filter loop) is killed unblamed.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from app.engine.sandbox import wire
from app.engine.sandbox.jobs import SandboxLimits
from app.engine.sandbox.messages import (
    Abort,
    Answer,
    Batch,
    Forget,
    ProtocolViolation,
    Ready,
    WorkerConfig,
    batch_message,
    decode_answer,
    decode_ready,
    forget_message,
)
from app.engine.sandbox.progress import BEAT, JOB, create_progress, progress_view

WORKER_MODULE = "app.engine.sandbox.worker"
PROJECT_ROOT = str(Path(__file__).resolve().parents[3])
POLL_SECONDS = 0.02
STARTUP_SECONDS = 60.0
# app.core.settings.ENV_PREFIX (a test keeps them equal), not imported: every worker imports
# this package, and the settings would load pydantic into each of them for one string
ENV_PREFIX = "TRADERS_"
MAX_ANSWER_BYTES = 64 * 1024 * 1024
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass(frozen=True, slots=True)
class Crash:
    """A worker that died or was killed mid-batch; `job_index` is the job it was running
    (-1: none, nobody to blame) and `spent` the time that evaluation had taken."""

    job_index: int
    reason: str
    spent: float = 0.0


@dataclass(frozen=True, slots=True)
class Violation:
    """A worker that broke the protocol; it has been killed, nobody is blamed."""

    reason: str


class _Lost(Exception):
    def __init__(self, killed: bool, reason: str | None = None) -> None:
        super().__init__(reason)
        self.killed = killed
        self.reason = reason


def crash_reason(exitcode: int | None, killed: bool) -> str:
    if killed:
        return "time limit exceeded (worker killed)"
    if exitcode == -signal.SIGXCPU:
        return "CPU limit exceeded (worker killed)"
    if exitcode == -signal.SIGKILL:
        return "worker killed, probably out of memory"
    return f"worker crashed (exit code {exitcode})"


def worker_environment() -> dict[str, str]:
    """The engine's environment without its settings, and numeric libraries single-threaded
    (one worker per core already uses every core)."""
    kept = {name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIX)}
    return {**kept, **ONE_THREAD}


class _Watchdog:
    """What `wire` calls while it waits on a worker: raises when the worker died, stalled or
    ran out of wall time. `moved` is when its heartbeat was last seen to move (within a poll
    interval of when the evaluation in flight began), which is what a killed job is charged."""

    def __init__(self, worker: WorkerProcess, stall_seconds: float, deadline: float) -> None:
        self.worker = worker
        self.stall_seconds = stall_seconds
        self.deadline = deadline
        self.beat, self.moved = worker.progress[BEAT], time.monotonic()

    def __call__(self) -> None:
        if self.worker.process.poll() is not None:
            raise _Lost(killed=False)
        now = time.monotonic()
        if now > self.deadline:
            raise _Lost(killed=True, reason="batch wall time exceeded (worker killed)")
        beat = self.worker.progress[BEAT]
        if beat != self.beat:
            self.beat, self.moved = beat, now
        elif now - self.moved > self.stall_seconds:
            raise _Lost(killed=True)


class WorkerProcess:
    """One worker process and the engine's bookkeeping of what its replicas hold."""

    def __init__(
        self,
        limits: SandboxLimits,
        module: str = WORKER_MODULE,
        empty_root: str | None = None,
        user: str | None = None,
    ) -> None:
        self.limits = limits
        ours, theirs = socket.socketpair()
        progress_fd = create_progress()
        try:
            config = WorkerConfig(theirs.fileno(), progress_fd, limits, empty_root, user)
            self.process = subprocess.Popen(
                [sys.executable, "-m", module, config.to_argument()],
                pass_fds=(theirs.fileno(), progress_fd),
                stdin=subprocess.DEVNULL,
                cwd=PROJECT_ROOT,
                env=worker_environment(),
            )
            self.progress = progress_view(progress_fd)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
            os.close(progress_fd)
        ours.setblocking(False)
        self.sock = ours
        self.sent: dict[tuple[str, str, str], int] = {}
        self.held = 0
        self.ready: Ready | None = None

    async def start(self) -> Ready | Crash | Violation:
        """Wait for the worker's first message (its imports take a while)."""
        if self.ready is not None:
            return self.ready
        wait = _Watchdog(self, STARTUP_SECONDS, time.monotonic() + STARTUP_SECONDS)
        try:
            answer = await wire.receive(self.sock, MAX_ANSWER_BYTES, wait, POLL_SECONDS)
            self.ready = decode_ready(answer)
        except (_Lost, EOFError, OSError):
            return self._crash(None, wait, killed=False, reason="worker did not start")
        except (wire.FrameError, ProtocolViolation) as exc:
            return self._violation(exc)
        return self.ready

    async def call(self, batch: Batch) -> Answer | Crash | Violation:
        """Send one batch and wait for its answer while the worker keeps making progress."""
        started = await self.start()
        if not isinstance(started, Ready):
            return started
        self.progress[JOB] = -1
        stall = self.limits.eval_seconds + self.limits.grace_seconds
        deadline = time.monotonic() + 2 * self.limits.batch_cpu_seconds
        wait = _Watchdog(self, stall, deadline)
        message, arrays = batch_message(batch)
        try:
            await wire.send(self.sock, wire.frame(message, arrays), wait, POLL_SECONDS)
            received = await wire.receive(self.sock, MAX_ANSWER_BYTES, wait, POLL_SECONDS)
            answer = decode_answer(received, batch)
        except _Lost as lost:
            return self._crash(batch, wait, lost.killed, lost.reason)
        except (EOFError, OSError):
            return self._crash(batch, wait, killed=False)
        except (wire.FrameError, ProtocolViolation) as exc:
            return self._violation(exc)
        if isinstance(answer, Abort):
            return self._crash(batch, wait, killed=False, reason=answer.reason)
        self.held = answer.held
        return answer

    async def forget(self, source: str) -> None:
        """Drop the bookkeeping of `source` and tell the worker to drop its replicas."""
        self.sent = {key: time for key, time in self.sent.items() if key[0] != source}
        if self.ready is None or self.process.poll() is not None:
            return
        wait = _Watchdog(self, self.limits.eval_seconds + self.limits.grace_seconds, math.inf)
        with contextlib.suppress(_Lost, OSError):
            frame = wire.frame(forget_message(Forget(source)))
            await wire.send(self.sock, frame, wait, POLL_SECONDS)

    def _violation(self, exc: Exception) -> Violation:
        self.stop(kill=True)
        return Violation(str(exc)[:200])

    def _crash(
        self, batch: Batch | None, wait: _Watchdog, killed: bool, reason: str | None = None
    ) -> Crash:
        """Kill the worker; blame the job it was evaluating, if it is one of the batch's, and
        charge it the time since the heartbeat last moved."""
        job_index = int(self.progress[JOB])
        self.stop(kill=True)
        reason = reason or crash_reason(self.process.returncode, killed)
        if batch is None or job_index not in batch.tasks.job_indexes():
            return Crash(-1, reason)
        return Crash(job_index, reason, time.monotonic() - wait.moved)

    def hang_up(self) -> None:
        """Close the engine's end of the socket: the worker exits when it reads EOF."""
        with contextlib.suppress(OSError):
            self.sock.close()

    def stop(self, kill: bool = False) -> None:
        """Hang up, then make sure the worker is gone (at once with `kill`)."""
        self.hang_up()
        if not kill:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(1)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
