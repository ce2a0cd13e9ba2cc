"""A private view of a few files: a mount namespace with them bind-mounted.

How a pod's processes get their own /etc/resolv.conf and /etc/hosts (and a
UTS namespace for the hostname) while sharing everything else with the
machine, and how `svcnet exec` gives a host command a pod's resolv.conf.
Root unshares directly; anyone else gets an unprivileged user namespace that
maps only their own uid and gid, so files and permissions look the same,
where the kernel allows it. `/` is made MS_PRIVATE before any bind, so
nothing leaks back to the machine.

A pod's volumes are bind-mounted the same way, at their mountPath, in the
container's own view (``mount_volumes``). The machine's filesystem is shared,
so a mountPath that does not exist on the machine gets a mount point without
writing to the machine: the nearest directory that exists is shadowed by a
tmpfs holding a bind of each of its entries (a shadow of `/` becomes the
view's root with pivot_root, as runc makes a container's), and the missing
path is made on that tmpfs.

``enter_view`` may run in a child between fork and exec of a multi-threaded
parent, so it only makes ctypes calls resolved in advance (``NsLibc``) on
bytes encoded in advance, and raw os calls.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWUSER = 0x10000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MNT_DETACH = 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
# statvfs f_flag bits that a read-only remount must repeat: in a user namespace
# the kernel refuses to clear what the machine's mount set (locked flags).
_LOCKED_FLAGS = (
    (os.ST_NOSUID, MS_NOSUID),
    (os.ST_NODEV, MS_NODEV),
    (os.ST_NOEXEC, MS_NOEXEC),
    (os.ST_NOATIME, MS_NOATIME),
    (os.ST_NODIRATIME, MS_NODIRATIME),
    (os.ST_RELATIME, MS_RELATIME),
)

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
        self.umount2 = lib.umount2
        self.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self.syscall = lib.syscall
        self.pivot_root_nr = SYS_PIVOT_ROOT.get(platform.machine(), -1)


@dataclass(frozen=True)
class Bind:
    """One volume mount of a container, encoded for the child."""

    source: bytes
    target: bytes
    readonly: bool = False
    directory: bool = True
    """What the mount point must be when it has to be made: a directory or a file."""


def enter_view(
    libc: NsLibc,
    binds: Sequence[tuple[bytes | None, bytes]],
    hostname: bytes | None = None,
    mounts: Sequence[Bind] = (),
    scratch: bytes = b"",
) -> bytes:
    """Unshare and bind each (source, target); a source of None is skipped; then the
    volume mounts (``mount_volumes``). Returns OK, or what failed in words (the
    caller decides whether to go on without the view)."""
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
    if mounts:
        return mount_volumes(libc, mounts, scratch)
    return OK


def mount_volumes(libc: NsLibc, mounts: Sequence[Bind], scratch: bytes) -> bytes:
    """In the child, in its own mount namespace: bind each volume at its mountPath,
    parents before children (as runtimes sort them). `scratch` is an empty
    directory of the container's own for the tmpfs shadows."""
    shadowed: list[bytes] = []
    made: list[bytes] = []
    for m in sorted(mounts, key=lambda b: b.target.rstrip(b"/").count(b"/")):
        err = _mount_point(libc, m, scratch, shadowed, made)
        if err:
            return err
        if libc.mount(m.source, m.target, None, MS_BIND | MS_REC, None) != 0:
            return _fail(f"mount volume at {m.target.decode(errors='replace')}")
        if m.readonly:
            flags = MS_BIND | MS_REMOUNT | MS_RDONLY
            try:
                vfs = os.statvfs(m.target)
            except OSError:
                return _fail(f"statvfs {m.target.decode(errors='replace')}")
            for st_flag, ms_flag in _LOCKED_FLAGS:
                if vfs.f_flag & st_flag:
                    flags |= ms_flag
            if libc.mount(None, m.target, None, flags, None) != 0:
                return _fail(f"make {m.target.decode(errors='replace')} read-only")
    return OK


def _mount_point(
    libc: NsLibc, m: Bind, scratch: bytes, shadowed: list[bytes], made: list[bytes]
) -> bytes:
    """Make m.target exist in this view without writing to the machine's files:
    directly in a shadow (or in what this view made there), else in a new shadow."""
    if os.path.lexists(m.target):
        return b""
    missing: list[bytes] = []
    path = m.target.rstrip(b"/")
    while not os.path.isdir(path or b"/"):
        if os.path.lexists(path):
            return f"mount point {m.target.decode(errors='replace')}: not a directory".encode()
        path, name = os.path.split(path)
        missing.append(name)
    base = os.path.realpath(path or b"/")
    if base not in shadowed and not any(base == d or base.startswith(d + b"/") for d in made):
        err = _shadow(libc, base, scratch + b"/" + str(len(shadowed)).encode())
        if err:
            return err
        shadowed.append(base)
    cur = base.rstrip(b"/")
    try:
        for i, name in enumerate(reversed(missing)):
            cur = cur + b"/" + name
            if i == 0:
                made.append(cur)
            if i < len(missing) - 1 or m.directory:
                os.mkdir(cur, 0o755)
            else:
                os.close(os.open(cur, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o644))
    except OSError as e:
        return f"mount point {cur.decode(errors='replace')}: {e.strerror}".encode()
    return b""


def _shadow(libc: NsLibc, base: bytes, tmp: bytes) -> bytes:
    """Cover the directory `base` with a tmpfs that shows the same entries (each a
    bind of the original, so writes inside them reach the machine) and has room
    for new mount points."""
    try:
        if not os.path.isdir(tmp):  # an earlier run of the container made it
            os.mkdir(tmp, 0o700)
        st = os.stat(base)
    except OSError as e:
        return f"shadow {base.decode(errors='replace')}: {e.strerror}".encode()
    opts = f"mode={stat.S_IMODE(st.st_mode):o}".encode()
    if libc.mount(b"tmpfs", tmp, b"tmpfs", MS_NOSUID | MS_NODEV, opts) != 0:
        return _fail("mount a tmpfs for mount points")
    try:
        os.chown(tmp, st.st_uid, st.st_gid)
    except OSError:
        pass  # an id outside a user namespace's map: it shows as nobody
    prefix = base.rstrip(b"/")
    try:
        names = os.listdir(base)
    except OSError as e:
        return f"shadow {base.decode(errors='replace')}: {e.strerror}".encode()
    for name in names:
        src, dst = prefix + b"/" + name, tmp + b"/" + name
        try:
            lst = os.lstat(src)
            if stat.S_ISLNK(lst.st_mode):
                os.symlink(os.readlink(src), dst)
                continue
            if stat.S_ISDIR(lst.st_mode):
                os.mkdir(dst, 0o755)
            else:
                os.close(os.open(dst, os.O_CREAT | os.O_WRONLY, 0o644))
        except OSError as e:
            return f"shadow {src.decode(errors='replace')}: {e.strerror}".encode()
        if libc.mount(src, dst, None, MS_BIND | MS_REC, None) != 0:
            return _fail(f"shadow {src.decode(errors='replace')}")
    if prefix:
        if libc.mount(tmp, base, None, MS_BIND | MS_REC, None) != 0:
            return _fail(f"shadow {base.decode(errors='replace')}")
        return b""
    # The shadow of `/` becomes the root of this mount namespace, so `kubectl exec`
    # (setns into it) sees the same tree: runc's pivot_root(".", ".") and detach.
    try:
        os.chdir(tmp)
    except OSError as e:
        return f"pivot_root: {e.strerror}".encode()
    if libc.pivot_root_nr < 0 or libc.syscall(libc.pivot_root_nr, b".", b".") != 0:
        return _fail("pivot_root")
    if libc.umount2(b".", MNT_DETACH) != 0:
        return _fail("detach the old root")
    os.chdir(b"/")
    return b""


def probe(libc: NsLibc) -> str:
    """Whether a child can have a mount namespace of its own (root, or an
    unprivileged user namespace): "" or what fails, in words. Forks once."""
    r, w = os.pipe()

    def child() -> None:
        os.write(w, enter_view(libc, ()))

    try:
        subprocess.run(
            ["/bin/sh", "-c", ":"], preexec_fn=child, pass_fds=(w,), check=False, timeout=10
        )
    except (OSError, subprocess.SubprocessError) as e:
        return str(e)
    finally:
        os.close(w)
    try:
        report = os.read(r, 4096)
    finally:
        os.close(r)
    return "" if report == OK else report.decode(errors="replace") or "no report"


def _fail(what: str) -> bytes:
    return f"{what}: {os.strerror(ctypes.get_errno())}".encode()


def _write(path: bytes, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
