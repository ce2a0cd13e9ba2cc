"""A private view of a few files: a mount namespace with them bind-mounted.

How a pod's processes get their own /etc/resolv.conf and /etc/hosts (and a
UTS namespace for the hostname) while sharing everything else with the
machine, and how `svcnet exec` gives a host command a pod's resolv.conf.
Root unshares directly; anyone else gets an unprivileged user namespace that
maps only their own uid and gid, so files and permissions look the same,
where the kernel allows it. `/` is made MS_PRIVATE before any bind, so
nothing leaks back to the machine.

``enter_view`` may run in a child between fork and exec of a multi-threaded
parent, so it only makes ctypes calls resolved in advance (``NsLibc``) on
bytes encoded in advance, and raw os calls.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Sequence

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWUSER = 0x10000000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

OK = b"ok"


class NsLibc:
    """libc's namespace calls, resolved once (in the parent, for a forked child)."""

    def __init__(self, lib: ctypes.CDLL | None = None) -> None:
        if lib is None:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.unshare = lib.unshare
        self.unshare.argtypes = [ctypes.c_int]
        self.mount = lib.mount
        self.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_void_p,
        ]
        self.sethostname = lib.sethostname
        self.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        self.setns = lib.setns
        self.setns.argtypes = [ctypes.c_int, ctypes.c_int]


def enter_view(
    libc: NsLibc, binds: Sequence[tuple[bytes | None, bytes]], hostname: bytes | None = None
) -> bytes:
    """Unshare and bind each (source, target); a source of None is skipped. Returns OK,
    or what failed in words (the caller decides whether to go on without the view)."""
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWNS | (CLONE_NEWUTS if hostname is not None else 0)
    if uid != 0:
        flags |= CLONE_NEWUSER
    if libc.unshare(flags) != 0:
        return _fail("unshare")
    if uid != 0:
        try:
            _write(b"/proc/self/setgroups", b"deny")
            _write(b"/proc/self/uid_map", f"{uid} {uid} 1".encode())
            _write(b"/proc/self/gid_map", f"{gid} {gid} 1".encode())
        except OSError as e:
            return f"user namespace id map: {e.strerror}".encode()
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return _fail("make / private")
    for source, target in binds:
        if source is None:
            continue
        if libc.mount(source, target, None, MS_BIND, None) != 0:
            return _fail(f"bind-mount {target.decode()}")
    if hostname is not None and libc.sethostname(hostname, len(hostname)) != 0:
        return _fail("sethostname")
    return OK


def _fail(what: str) -> bytes:
    return f"{what}: {os.strerror(ctypes.get_errno())}".encode()


def _write(path: bytes, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
