"""Pods' files and cgroups, made in a helper process of the agent's own.

Before a pod's containers start, the agent makes its directory with its
resolv.conf and hosts, its cgroup with the limits, and each container's cgroup
and directories: a few dozen system calls, mkdir on the disk and in cgroupfs
costing up to a few hundred microseconds each. On a thread of the daemon, each
call gave up the interpreter lock and had to win it back from the busy loop:
a thousand pods applied together waited for that one thread, which took 9-14 s
for them, as long as the whole ramp (issue 16). More threads took the lock from
the loop instead and slowed the API.

So ``Preparer`` runs ``prepare`` in a helper: a fresh ``python -I -S`` that
imports this module and what it needs (the cgroup tree, identities), nothing of
the daemon. Each pod's ``Plan`` goes to it pickled over a socketpair and its
``Made`` comes back, in order. If the helper cannot start or dies, the plans it
had not answered and all later ones run on the agent's thread, as before
(``prepare`` is idempotent: what exists already is kept). The helper dies with
the daemon (its parent-death signal) and exits when the socket closes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import os
import pickle
import socket
import subprocess
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from svcnet.agent import forkserver
from svcnet.agent.identity import Identity
from svcnet.kernel.cgroups import CgroupTree, PodCgroup

logger = logging.getLogger(__name__)

MAX_FRAME = 1 << 20
"""Bytes of one pickled plan or result (a pod's hosts file is the bulk of a plan)."""
HEADER = 4
READY = b"ready"


@dataclass(frozen=True)
class Plan:
    """What ``prepare`` makes for one pod: plain values, nothing of its worker's."""

    dir: Path
    resolv: str | None
    hosts: str
    owner: Identity | None
    """Whom the pod's files are chowned to (as root), else None."""
    cgroups: CgroupTree | None
    uid: str
    limits: tuple[int | None, int | None]
    containers: list[tuple[str, Identity, bool]]
    """(name, who it runs as, whether it mounts volumes) of each container."""


@dataclass
class Made:
    resolv: Path | None = None
    hosts: Path | None = None
    cgroup: PodCgroup | None = None
    cgroup_error: OSError | None = None
    oom_kills: int | None = None
    container_cgroups: dict[str, PodCgroup] = field(default_factory=dict)
    dirs: set[tuple[str, int, int]] = field(default_factory=set)
    files_error: OSError | None = None


def prepare(plan: Plan) -> Made:
    """The pod's directory with its resolv.conf and hosts, its cgroup with the
    limits, and each container's cgroup and directories. Failures come back as
    values, for the worker to report on the loop."""
    made = Made()
    try:
        os.makedirs(plan.dir, exist_ok=True)
        if plan.resolv is not None:
            made.resolv = plan.dir / "resolv.conf"
            write_new(made.resolv, plan.resolv)
        made.hosts = plan.dir / "hosts"
        write_new(made.hosts, plan.hosts)
    except OSError as e:
        made.files_error = e
        return made
    if plan.owner is not None:
        for path in (plan.dir, made.resolv, made.hosts):
            if path is not None:
                with contextlib.suppress(OSError):
                    os.chown(path, plan.owner.uid, plan.owner.gid)
    if plan.cgroups is not None:
        try:
            made.cgroup = plan.cgroups.pod(plan.uid)
            made.cgroup.set_limits(*plan.limits)
            made.oom_kills = made.cgroup.oom_kills()
        except OSError as e:
            made.cgroup_error = e
    for name, who, mounts in plan.containers:
        if made.cgroup is not None:
            with contextlib.suppress(OSError):  # container_cgroup tries again, and says why
                made.container_cgroups[name] = made.cgroup.child(f"c-{name}")
        with contextlib.suppress(OSError):  # as is the worker's container_dirs
            make_container_dirs(plan.dir, name, who, scratch=mounts)
            made.dirs.add((name, who.uid, who.gid))
    return made


def write_new(path: Path, text: str) -> None:
    """Write a small file whole, as write_text would, without a text stream's cost."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        data = text.encode()
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def container_paths(pod_dir: Path, name: str) -> tuple[Path, Path, Path]:
    base = pod_dir / "containers" / name
    return base / "home", base / "tmp", base / "work"


def make_container_dirs(
    pod_dir: Path, name: str, who: Identity, scratch: bool = True
) -> tuple[Path, Path, Path]:
    """(HOME, /tmp, working directory) of one container: its own, under the pod's
    state directory and gone with the pod, like an emptyDir, so replicas and
    their containers never share files they did not ask to share. `scratch`:
    also the empty directory mount_volumes works in, which only a container
    with volumeMounts needs."""
    dirs = container_paths(pod_dir, name)
    # Plain os calls on strings: a thousand pods made together spend their time here.
    base = os.fspath(dirs[0].parent)
    paths = [os.path.dirname(base), base, *map(os.fspath, dirs)]
    if scratch:
        paths.append(os.path.join(base, "mnt"))
    for d in paths:
        with contextlib.suppress(FileExistsError):
            os.mkdir(d)
        with contextlib.suppress(OSError):
            os.chown(d, who.uid, who.gid)
    os.chmod(dirs[1], 0o1777)  # /tmp
    return dirs


# --- the daemon's side -------------------------------------------------------------


def _frame(payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME:
        raise ValueError(f"a message of {len(payload)} bytes (at most {MAX_FRAME})")
    return len(payload).to_bytes(HEADER, "big") + payload


class Preparer:
    """Runs ``prepare`` for the agent's pods in the helper process, or on
    `thread` where there is none (see the module's docstring)."""

    def __init__(self, thread: Executor, prctl: Callable[..., int]) -> None:
        self.thread = thread
        self._prctl = prctl
        self.problem = ""
        """Why plans run on the thread (empty while the helper serves)."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._waiting: collections.deque[tuple[Plan, asyncio.Future[Made]]] = collections.deque()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        """Start the helper and wait for its hello; on failure, ``problem`` says why
        and nothing is left running."""
        try:
            self._proc, ours = forkserver.start_helper(self._prctl, "prepare", socket.SOCK_STREAM)
        except OSError as e:
            self.problem = f"cannot start the helper: {e}"
            return
        reader, writer = await asyncio.open_unix_connection(sock=ours, limit=MAX_FRAME)
        try:
            hello = await asyncio.wait_for(_read_frame(reader), forkserver.START_TIMEOUT)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as e:
            hello = f"{type(e).__name__} {e}".encode()
        if hello != READY:
            writer.close()
            await forkserver.reap(self._proc, kill=True)
            self._proc = None
            self.problem = f"the helper did not start ({hello.decode(errors='replace')})"
            return
        self._writer = writer
        self._reading = asyncio.get_running_loop().create_task(
            self._read(reader), name="prepare-replies"
        )

    def submit(self, plan: Plan) -> asyncio.Future[Made]:
        """What `plan` made, once it is made. The future is not tied to the caller's
        task: a pod stopped meanwhile still learns what to remove."""
        loop = asyncio.get_running_loop()
        payload = pickle.dumps(plan, protocol=pickle.HIGHEST_PROTOCOL)
        if self._writer is None or len(payload) > MAX_FRAME:  # a giant hosts file, say
            return loop.run_in_executor(self.thread, prepare, plan)
        fut: asyncio.Future[Made] = loop.create_future()
        self._waiting.append((plan, fut))
        self._writer.write(_frame(payload))
        return fut

    async def _read(self, reader: asyncio.StreamReader) -> None:
        why = "it exited"
        try:
            while True:
                ok, value = pickle.loads(await _read_frame(reader))
                _, fut = self._waiting.popleft()
                if fut.done():
                    continue
                if ok:
                    fut.set_result(value)
                else:  # prepare raised in the helper: a bug, raised where it is awaited
                    fut.set_exception(value)
        except asyncio.IncompleteReadError:
            pass  # it exited
        except (OSError, pickle.UnpicklingError, ValueError, IndexError) as e:
            why = f"answered out of turn: {e}" if isinstance(e, IndexError) else str(e)
        except asyncio.CancelledError:
            why = "the agent stopped"
        self._fall_back(why)

    def _fall_back(self, why: str) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        if why != "the agent stopped":
            logger.warning("pods' files and cgroups are made on a thread: the helper %s", why)
            self.problem = f"the helper stopped ({why})"
        loop = asyncio.get_running_loop()
        while self._waiting:
            plan, fut = self._waiting.popleft()
            if not fut.done():
                loop.run_in_executor(self.thread, prepare, plan).add_done_callback(
                    functools.partial(_pass_on, fut)
                )

    async def stop(self) -> None:
        """Close the socket (the helper exits on it) and wait for the helper."""
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
            self._reading = None
        self._fall_back("the agent stopped")
        if self._proc is not None:
            await forkserver.reap(self._proc, kill=False)
            self._proc = None


def _pass_on(to: asyncio.Future[Made], done: asyncio.Future[Made]) -> None:
    if to.done():
        return
    if done.exception() is not None:
        to.set_exception(done.exception())  # type: ignore[arg-type]
    else:
        to.set_result(done.result())


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    size = int.from_bytes(await reader.readexactly(HEADER), "big")
    if size > MAX_FRAME:
        raise ValueError(f"a message of {size} bytes (at most {MAX_FRAME})")
    return await reader.readexactly(size)


# --- the helper's side -------------------------------------------------------------


def main(argv: list[str], path: list[str]) -> None:
    """argv: the socket's fd. Answers each plan in order until the socket closes."""
    del path  # the helper imports nothing the daemon's sys.path would add
    sock = socket.socket(fileno=int(argv[0]))
    sock.sendall(_frame(READY))
    with sock, sock.makefile("rb") as f:
        while header := f.read(HEADER):
            size = int.from_bytes(header, "big")
            data = f.read(size) if len(header) == HEADER and size <= MAX_FRAME else b""
            if len(data) != size or not data:
                return
            try:
                reply: tuple[bool, object] = (True, prepare(pickle.loads(data)))
            except Exception as e:  # a bug: the daemon raises it to the pod's worker
                reply = (False, e if _picklable(e) else RuntimeError(repr(e)))
            sock.sendall(_frame(pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)))


def _picklable(e: BaseException) -> bool:
    try:
        pickle.dumps(e)
    except Exception:
        return False
    return True
