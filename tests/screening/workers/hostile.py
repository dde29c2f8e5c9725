"""A stand-in for the filter worker that breaks the protocol, as a compromised worker would.

The pool starts it like the real worker (`FilterSandbox(worker_module=...)`): it boots and
isolates itself the same way and says ready, then answers each batch as `SANDBOX_HOSTILE`
says. When `SANDBOX_HOSTILE_ONCE` names a file, only the first process is hostile (it
creates the file); its replacements find the file and run the real worker loop.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import sys
import time
from pathlib import Path
from typing import Any

from app.engine.sandbox import wire
from app.engine.sandbox.isolation import isolate
from app.engine.sandbox.messages import Batch, WorkerConfig, decode_engine_message
from app.engine.sandbox.worker import boot, serve


class _CreatesFile:
    """Unpickling this calls `open(path, "w")`: a file appears if anyone unpickles it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def crafted_pickle(path: str) -> bytes:
    return pickle.dumps(_CreatesFile(path))


def _results(batch: Batch, result: list[Any]) -> list[list[Any]]:
    return [list(result) for _ in batch.jobs]


def _answer(mode: str, batch: Batch) -> bytes:
    """The frame a hostile worker sends for `batch` in `mode`."""
    unscreened = next(
        (
            (index, job)
            for index, task in enumerate(batch.tasks)
            for job in range(len(batch.jobs))
            if job not in task.jobs
        ),
        (0, 0),
    )
    answers: dict[str, Any] = {
        "wrong-type": {"type": "answer", "held": 0, "results": _results(batch, [None, "1", 0, []])},
        "bool-count": {
            "type": "answer",
            "held": 0,
            "results": _results(batch, [None, True, 0, []]),
        },
        "unknown-job": {
            "type": "answer",
            "held": 0,
            "results": [*_results(batch, [None, 0, 0, []]), [None, 0, 0, []]],
        },
        "unknown-task": {
            "type": "answer",
            "held": 0,
            "results": _results(batch, [None, 1, 0, [[len(batch.tasks), "long", None, {}]]]),
        },
        "foreign-match": {
            "type": "answer",
            "held": 0,
            "results": [
                [None, 0, 0, [[unscreened[0], "long", None, {}]] if job == unscreened[1] else []]
                for job in range(len(batch.jobs))
            ],
        },
        "bad-reading": {
            "type": "answer",
            "held": 0,
            "results": _results(batch, [None, 1, 0, [[0, "long", None, {"1h.rsi(14)": "x"}]]]),
        },
        "negative-time": {
            "type": "answer",
            "held": 0,
            "results": _results(batch, [None, 0, -1, []]),
        },
        "unknown-abort": {"type": "abort", "reason": "import os"},
        "extra-field": {"type": "answer", "held": 0, "results": [], "code": "x"},
    }
    if mode in answers:
        return wire.frame(answers[mode])
    if mode == "nan":
        document = b'{"type":"answer","held":0,"results":[[null,0,NaN,[]]]}'
        return wire.HEADER.pack(len(document), 0) + document
    if mode == "binary-part":
        return wire.HEADER.pack(2, 4) + b"{}" + b"\0\0\0\0"
    if mode == "oversized":
        return wire.HEADER.pack(1 << 30, 0)
    if mode == "pickle":
        payload = crafted_pickle(os.environ["SANDBOX_HOSTILE_TARGET"])
        return wire.HEADER.pack(len(payload), 0) + payload
    raise ValueError(f"unknown mode {mode}")


def _hostile(sock: socket.socket, progress_fd: int, isolation: tuple[str, ...]) -> None:
    mode = os.environ["SANDBOX_HOSTILE"]
    sock.sendall(wire.frame({"type": "ready", "isolation": list(isolation)}))
    while True:
        message = decode_engine_message(*wire.read_frame(sock))
        if not isinstance(message, Batch):
            continue
        if mode == "half-frame":
            sock.sendall(wire.HEADER.pack(100, 0)[:3])
            time.sleep(3600)
        if mode == "shrink-progress":
            with contextlib.suppress(OSError):
                os.ftruncate(progress_fd, 0)
            mode = "wrong-type"
        sock.sendall(_answer(mode, message))


def main(argument: str) -> None:
    config = WorkerConfig.from_argument(argument)
    once = os.environ.get("SANDBOX_HOSTILE_ONCE")
    replacement = once is not None and Path(once).exists()
    if once is not None and not replacement:
        Path(once).touch()
    progress_fd = os.dup(config.progress_fd)
    runtime = boot(config)
    isolation = isolate(config.empty_root, config.user)
    if replacement:
        serve(runtime, isolation)
    else:
        _hostile(runtime.sock, progress_fd, isolation)


if __name__ == "__main__":
    main(sys.argv[1])
