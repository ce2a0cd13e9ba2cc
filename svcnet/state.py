"""A cluster's state directory: what one svcnet keeps between runs, and proves
it is the only one using it.

Like kind, which keeps a cluster until it is deleted, a svcnet keeps its
objects (``objects.jsonl``, store/wal.py), its API credential and kubeconfig,
and its pods' files in one directory per cluster. By default that is
``$XDG_STATE_HOME/svcnet/<api host>-<api port>`` of the user who started it
(``~/.local/state/...``; through sudo, the calling user's), so the CLI finds
the credential of the daemon it talks to from the server address alone, and
two daemons side by side never share one.

``svcnet.pid`` holds the daemon's pid and is flock(2)ed while it runs: the
lock dies with the process however it dies, so a lock that can be taken over
a pid file left behind means the last run ended without cleaning up (kill -9,
a power cut), and what it left (processes, cgroups) is to be removed before
serving; a lock that cannot be taken means another svcnet is running here.

Files are written owner-only (0600) and, through sudo, owned by the calling
user, who is the cluster's owner: its credential must be readable by that
user and nobody else.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class StateError(Exception):
    pass


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int
    home: Path


OWNER_ENV = "SVCNET_OWNER"
"""`uid:gid` of the cluster's owner where sudo is not involved (root in a container
whose state directory is a host user's bind mount)."""
STATE_DIR_ENV = "SVCNET_STATE_DIR"
"""Where the CLI looks for a cluster's credentials when not in the default place."""


def owner(environ: Mapping[str, str]) -> Owner:
    """Who the cluster belongs to: sudo's caller when run through sudo (or the
    SVCNET_OWNER root was given), else the user."""
    explicit = environ.get(OWNER_ENV, "").split(":")
    if os.geteuid() == 0 and len(explicit) == 2 and all(x.isdigit() for x in explicit):
        return Owner(int(explicit[0]), int(explicit[1]), Path("/"))
    sudo_uid, sudo_gid = environ.get("SUDO_UID", ""), environ.get("SUDO_GID", "")
    if os.geteuid() == 0 and sudo_uid.isdigit() and sudo_gid.isdigit():
        uid, gid = int(sudo_uid), int(sudo_gid)
        try:
            home = Path(pwd.getpwuid(uid).pw_dir)
        except KeyError:
            home = Path("/")
        return Owner(uid, gid, home)
    home = Path(environ.get("HOME") or pwd.getpwuid(os.geteuid()).pw_dir)
    return Owner(os.geteuid(), os.getegid(), home)


def default_dir(environ: Mapping[str, str], api_host: str, api_port: int) -> Path:
    """The state directory of the cluster whose API listens on api_host:api_port."""
    who = owner(environ)
    base = environ.get("XDG_STATE_HOME") if who.uid == os.geteuid() else None
    root = Path(base) if base else who.home / ".local" / "state"
    host = api_host.strip("[]").replace(":", "_") or "0.0.0.0"
    return root / "svcnet" / f"{host}-{api_port}"


@dataclass(frozen=True)
class Earlier:
    """A run that ended without cleaning up: its pid, from the pid file it left."""

    pid: int


class StateDir:
    def __init__(self, path: Path, who: Owner) -> None:
        self.path = path
        self.owner = who
        self._lock_fd = -1

    def acquire(self) -> Earlier | None:
        """Create the directory, take the lock; say whether an earlier run crashed.
        Raises StateError when another svcnet holds it."""
        self.make()
        pid_file = self.path / "svcnet.pid"
        fd = os.open(pid_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise StateError(
                f"another svcnet (pid {other or '?'}) is running with the state directory "
                f"{self.path}; stop it, or give this one its own --state-dir and ports"
            ) from None
        previous = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._chown(pid_file)
        self._lock_fd = fd
        return Earlier(int(previous)) if previous.isdigit() else None

    def make(self) -> None:
        """Create the directory (and missing parents), owned by the cluster's owner."""
        self._makedirs(self.path)

    def release(self) -> None:
        """A clean stop: the pid file goes, so the next start finds nothing to clean."""
        if self._lock_fd < 0:
            return
        with contextlib.suppress(OSError):
            (self.path / "svcnet.pid").unlink()
        os.close(self._lock_fd)
        self._lock_fd = -1

    def dir(self, name: str) -> Path:
        d = self.path / name
        self._makedirs(d)
        return d

    def write_private(self, name: str, data: bytes) -> Path:
        """Replace a file atomically, readable and writable by the owner only."""
        target = self.path / name
        tmp = target.with_name(f".{target.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            with contextlib.suppress(PermissionError):
                os.fchown(fd, self.owner.uid, self.owner.gid)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        return target

    def _makedirs(self, d: Path) -> None:
        missing = []
        p = d
        while not p.exists():
            missing.append(p)
            p = p.parent
        for p in reversed(missing):
            p.mkdir(mode=0o700, exist_ok=True)
            self._chown(p)

    def _chown(self, p: Path) -> None:
        with contextlib.suppress(PermissionError):
            os.chown(p, self.owner.uid, self.owner.gid)
