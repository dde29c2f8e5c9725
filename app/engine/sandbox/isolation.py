"""Defense in depth for a worker: what it can reach if filter code ever escapes Python.

The filter language is the first wall (a whitelist: no imports, no dunders, no files). A
worker also starts with an environment stripped of the engine's `TRADERS_*` settings and
with only its socket and progress memfd inherited. Once its imports are done, and before
it runs any filter, it closes its own way out with every layer the system offers, each
applied when available and skipped otherwise (the worker reports which ones it applied):

- stdin, stdout and stderr point to /dev/null: the socket and the memfd stay the only
  descriptors it holds;
- a new network namespace (as root; otherwise inside a new user namespace where the
  kernel allows unprivileged ones): no network at all, so no database or Redis port;
- chroot into an empty directory (as root, or inside that user namespace): no files;
- as root, the worker drops to an unprivileged user (`nobody` by default): it can no
  longer read the engine's /proc entries, its environment or its files, nor signal it;
- no_new_privs and not dumpable: no privilege regained through exec, no ptrace of it;
- RLIMIT_NPROC 0 and RLIMIT_CORE 0: no new processes, no core files;
- Landlock (Linux 5.13+), handling every filesystem right the kernel knows and granting
  none, TCP bind and connect (ABI 4+), and scoping abstract UNIX sockets and signals to
  the worker (ABI 6+): even a worker that keeps the engine's uid opens no file, reaches no
  TCP port and signals no process outside itself.

Everything here is plain syscalls through ctypes: no C extension to build or keep.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import resource

PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000

# Landlock (include/uapi/linux/landlock.h); the syscall numbers are the same on every arch.
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
# ABI 1 has 13 rights, 2 adds REFER, 3 TRUNCATE, 5 IOCTL_DEV (the last one so far)
LANDLOCK_FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
LANDLOCK_FS_RIGHTS_LATEST = (1 << 16) - 1
LANDLOCK_NET_RIGHTS = 0b11  # BIND_TCP, CONNECT_TCP (ABI 4)
LANDLOCK_SCOPES = 0b11  # ABSTRACT_UNIX_SOCKET, SIGNAL (ABI 6)
DEFAULT_USER = "nobody"
NOBODY_ID = 65534


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.argtypes = (ctypes.c_int, *[ctypes.c_ulong] * 4)
_libc.unshare.argtypes = (ctypes.c_int,)


def _syscall(number: int, *args: object) -> int:
    return int(_libc.syscall(ctypes.c_long(number), *args))


def _prctl(option: int, value: int) -> bool:
    return _ok(_libc.prctl(option, value, 0, 0, 0))


def _ok(result: int) -> bool:
    return result >= 0


def _user_ids(user: str) -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return NOBODY_ID, NOBODY_ID
    return entry.pw_uid, entry.pw_gid


def _quiet_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _chroot(directory: str) -> bool:
    try:
        os.chroot(directory)
        os.chdir("/")
    except OSError:
        return False
    return True


def _drop_to(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise PermissionError("could not drop privileges")


def landlock_abi() -> int:
    """The Landlock ABI version the kernel offers, 0 when it offers none."""
    version = _syscall(
        SYS_LANDLOCK_CREATE_RULESET,
        None,
        ctypes.c_size_t(0),
        ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION),
    )
    return max(0, version)


def _landlock(abi: int) -> bool:
    """Restrict this process to no filesystem access, no TCP, no signals or abstract UNIX
    sockets outside itself: a ruleset that handles all of them and allows nothing."""
    attr = _RulesetAttr(
        LANDLOCK_FS_RIGHTS_BY_ABI.get(abi, LANDLOCK_FS_RIGHTS_LATEST),
        LANDLOCK_NET_RIGHTS if abi >= 4 else 0,
        LANDLOCK_SCOPES if abi >= 6 else 0,
    )
    size = 8 if abi < 4 else 16 if abi < 6 else ctypes.sizeof(attr)
    ruleset = _syscall(
        SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)
    )
    if ruleset < 0:
        return False
    try:
        return _ok(_syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)))
    finally:
        os.close(ruleset)


def isolate(empty_root: str | None, user: str | None = DEFAULT_USER) -> tuple[str, ...]:
    """Apply every layer this process can, in an order where each still has what it needs;
    the names of the layers applied. `user` is who a worker started as root becomes."""
    applied = ["stdio to /dev/null"]
    _quiet_stdio()
    as_root = os.geteuid() == 0
    ids = _user_ids(user) if as_root and user is not None else None
    namespaces = CLONE_NEWNET if as_root else CLONE_NEWUSER | CLONE_NEWNET
    in_namespace = _ok(_libc.unshare(namespaces))
    if in_namespace:
        applied.append("network namespace")
    if empty_root is not None and (as_root or in_namespace) and _chroot(empty_root):
        applied.append("chroot")
    if ids is not None:
        _drop_to(*ids)
        applied.append(f"uid {ids[0]}")
    if _prctl(PR_SET_NO_NEW_PRIVS, 1):
        applied.append("no_new_privs")
    if _prctl(PR_SET_DUMPABLE, 0):
        applied.append("not dumpable")
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    applied.append("no processes, no core files")
    abi = landlock_abi()
    if abi and _landlock(abi):
        applied.append(f"landlock abi {abi}")
    return tuple(applied)
