"""A stand-in worker that tries, before and after isolating itself, what an escaped filter
would try: read files, connect to a TCP port, signal the engine, start a process.

The pool starts it like the real worker; it boots and isolates itself with the real
worker's own functions, then answers every job of its first batch with its report as the
job's failure, e.g. `before: environ=read database=read; after: environ=PermissionError`.
`SANDBOX_PROBE` (JSON) names the files, the TCP port and the engine's pid.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Any

from app.engine.sandbox import wire
from app.engine.sandbox.isolation import isolate
from app.engine.sandbox.messages import (
    Answer,
    Batch,
    JobResult,
    Ready,
    WorkerConfig,
    answer_message,
    decode_engine_message,
    ready_message,
)
from app.engine.sandbox.worker import boot


def _attempt(action: Any) -> str:
    try:
        action()
    except Exception as exc:
        return type(exc).__name__
    return "ok"


def _read(path: str) -> None:
    with open(path, "rb") as file:
        file.read(1)


def _connect(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def _fork() -> None:
    if os.fork() == 0:
        os._exit(0)


def _probe(probe: dict[str, Any], fork: bool) -> str:
    results = {name: _attempt(lambda p=path: _read(p)) for name, path in probe["files"].items()}
    results["tcp"] = _attempt(lambda: _connect(probe["port"]))
    results["signal"] = _attempt(lambda: os.kill(probe["engine_pid"], 0))
    if fork:
        results["fork"] = _attempt(_fork)
    return " ".join(f"{name}={result}" for name, result in results.items())


def main(argument: str) -> None:
    config = WorkerConfig.from_argument(argument)
    probe = json.loads(os.environ["SANDBOX_PROBE"])
    runtime = boot(config)
    before = _probe(probe, fork=False)
    isolation = isolate(config.empty_root, config.user)
    after = _probe(probe, fork=True)
    report = f"before: {before}; after: {after}"
    runtime.sock.sendall(wire.frame(ready_message(Ready(isolation))))
    batch = decode_engine_message(*wire.read_frame(runtime.sock))
    assert isinstance(batch, Batch)
    results = tuple(JobResult(report, 0, 0.0, ()) for _ in batch.jobs)
    runtime.sock.sendall(wire.frame(answer_message(Answer(results, 0))))
    runtime.sock.recv(1)


if __name__ == "__main__":
    main(sys.argv[1])
