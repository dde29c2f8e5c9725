"""The counters a worker shares with its supervisor, in a memfd both map.

Two int64: the index of the job being evaluated (-1 between evaluations), and a counter
bumped at every step (the supervisor kills a worker whose counter stops moving, and charges
the job it blames the time since the counter last moved). The memfd is sealed at its size
before the worker gets it, so a worker cannot shrink it under the engine's mapping (which
would make the engine fault on its next read).
"""

from __future__ import annotations

import fcntl
import mmap
import os

JOB, BEAT = 0, 1
PROGRESS_BYTES = 2 * 8


def create_progress() -> int:
    """A new sealed memfd of the counters' size; the caller owns the descriptor."""
    fd = os.memfd_create("filter-progress", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, PROGRESS_BYTES)
        fcntl.fcntl(
            fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL
        )
    except BaseException:
        os.close(fd)
        raise
    return fd


def progress_view(fd: int) -> memoryview:
    """The counters as a writable view of int64."""
    return memoryview(mmap.mmap(fd, PROGRESS_BYTES)).cast("q")
