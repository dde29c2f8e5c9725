"""The real worker on a system that offers neither namespaces nor Landlock.

`unshare` and the Landlock syscalls fail as they do on an older kernel or under a
container's seccomp profile; everything else is the real worker, so it shows that the
isolation skips what is missing and the worker still serves.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from app.engine.sandbox import isolation, worker

LANDLOCK_SYSCALLS = range(444, 447)


class _OldKernel:
    def __init__(self, libc: Any) -> None:
        self._libc = libc

    def unshare(self, flags: int) -> int:
        return -1

    def syscall(self, number: ctypes.c_long, *args: Any) -> int:
        if number.value in LANDLOCK_SYSCALLS:
            return -1
        return int(self._libc.syscall(number, *args))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._libc, name)


if __name__ == "__main__":
    isolation._libc = _OldKernel(isolation._libc)  # type: ignore[assignment]
    worker.main(sys.argv[1])
