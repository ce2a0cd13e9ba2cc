"""`kubectl exec`: run a command inside a running container.

The kubelet asks the container runtime to start a process in the
container's namespaces with the container's environment. Here a container is
a process tree that entered a private mount and UTS namespace (sandbox.py),
so exec joins the namespaces of the container's main process with setns(2)
(its user namespace first when the agent is not root, then mount and UTS)
between fork and exec, takes that process's initial environment from
/proc/PID/environ (exactly what the container was started with, minus the
agent's private variables) and its working directory, and then runs the
command with a pipe per stream or, for ``-t``, one pty, through the same
``Process`` machinery the containers use (event-loop reads, pidfd exit).

The exec'd command is its own process group; when the client goes away
before it ends, ``ExecSession.detach`` kills that group (runc kills an
exec'd process with its session too).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import signal
import termios
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from svcnet.agent.identity import Identity
from svcnet.agent.process import LaunchError, LaunchSpec, Process
from svcnet.agent.sandbox import Libc, become, join_cgroup
from svcnet.agent.stdio import ProcessStdio
from svcnet.images import READY_FD_ENV
from svcnet.nodeapi import NodeApiError

PR_SET_PDEATHSIG = 1
OK = b"ok"
LOG_LIMIT = 8 << 20
"""Output buffered between the command and a slow client (bytes)."""
DEFAULT_SIZE = (80, 24)
"""The pty size until the client sends one (kubectl sends 0x0 when its own
stdout is not a terminal; a 0x0 terminal breaks line editing)."""

_NAMESPACES = ("user", "mnt", "uts")
_PRIVATE_ENV = (READY_FD_ENV,)


@dataclass(frozen=True)
class Target:
    """What exec needs to know about the container's main process."""

    pid: int
    env: dict[str, str]
    cwd: str
    namespaces: tuple[tuple[str, int], ...]
    """(name, fd) of each namespace that differs from the agent's, in join order."""

    def close(self) -> None:
        for _, fd in self.namespaces:
            with contextlib.suppress(OSError):
                os.close(fd)


def read_environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        raw = f.read()
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        if not item or b"=" not in item:
            continue
        k, _, v = item.partition(b"=")
        key = os.fsdecode(k)
        if key not in _PRIVATE_ENV:
            env[key] = os.fsdecode(v)
    return env


def inspect(pid: int) -> Target:
    """Open the namespaces of the container process `pid` (in the agent) and read
    its environment and working directory. Raises NodeApiError."""
    try:
        env = read_environ(pid)
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError as e:
        raise NodeApiError(f"cannot inspect the container process {pid}: {e.strerror}", 500) from e
    fds: list[tuple[str, int]] = []
    try:
        for ns in _NAMESPACES:
            theirs = f"/proc/{pid}/ns/{ns}"
            try:
                if os.stat(theirs).st_ino == os.stat(f"/proc/self/ns/{ns}").st_ino:
                    continue
                fds.append((ns, os.open(theirs, os.O_RDONLY | os.O_CLOEXEC)))
            except FileNotFoundError:
                continue  # a kernel without this namespace type
    except OSError as e:
        for _, fd in fds:
            os.close(fd)
        raise NodeApiError(f"cannot open the container's {ns} namespace: {e.strerror}", 500) from e
    # The deleted-file marker readlink adds when the directory is gone.
    cwd = cwd.removesuffix(" (deleted)")
    return Target(pid, env, cwd or "/", tuple(fds))


@dataclass(frozen=True)
class _Enter:
    """The preexec_fn: parent-death signal, the container's namespaces, cwd, ctty."""

    libc: Libc
    parent_pid: int
    namespaces: tuple[tuple[str, int], ...]
    cwd: bytes
    report_fd: int
    tty: bool
    identity: Identity | None
    cgroup_procs: tuple[bytes, ...]

    def __call__(self) -> None:
        # First, while still the agent: the session belongs to the pod and dies with it.
        join_cgroup(self.cgroup_procs)
        self.libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != self.parent_pid:
            os._exit(137)
        for name, fd in self.namespaces:
            if self.libc.setns(fd, 0) != 0:
                err = ctypes.get_errno()
                os.write(self.report_fd, f"setns {name}: {os.strerror(err)}".encode())
                # Popen then sees no exec error; the launcher reads the report.
                os._exit(126)
        try:
            os.chdir(self.cwd)
        except OSError:
            os.chdir(b"/")
        if self.tty:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        # Last, as runc does: the command runs as the container's user, with its
        # capabilities, never with the agent's.
        become(self.identity, self.libc, self.report_fd, self.parent_pid)
        os.write(self.report_fd, OK)


class ExecSession(ProcessStdio):
    """A command running in a container, as the node API hands it to the API server."""

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _on_detach(self) -> None:
        # The client is gone: end the command (its whole process group).
        self._proc.kill_group(signal.SIGHUP if self._proc.tty else signal.SIGKILL)
        if self._proc.tty:
            loop = asyncio.get_running_loop()
            loop.call_later(1.0, self._proc.kill_group, signal.SIGKILL)


def start(
    pid: int,
    command: list[str],
    *,
    stdin: bool,
    tty: bool,
    container: str,
    libc: Libc,
    identity: Identity | None,
    cgroup_procs: tuple[bytes, ...] = (),
    preexec_hook: Callable[[], None] | None = None,
    env: Mapping[str, str] | None = None,
) -> ExecSession:
    """Run `command` inside the container whose main process is `pid`. `env`: the
    container's environment when /proc/PID/environ is not it (a forked container's
    shows the fork server's)."""
    if not command:
        raise NodeApiError("you must specify at least one command for the container")
    target = inspect(pid)
    if env is not None:
        target.env.clear()
        target.env.update((k, v) for k, v in env.items() if k not in _PRIVATE_ENV)
    if tty:
        target.env.setdefault("TERM", "xterm")
    parent = os.getpid()

    def factory(report_fd: int, spec: LaunchSpec) -> Callable[[], None]:
        enter = _Enter(
            libc,
            parent,
            target.namespaces,
            os.fsencode(target.cwd),
            report_fd,
            spec.tty,
            identity,
            cgroup_procs,
        )
        if preexec_hook is None:
            return enter

        def both() -> None:
            enter()
            preexec_hook()

        return both

    spec = LaunchSpec(
        argv=command,
        env=target.env,
        cwd="/",
        stdin=stdin,
        tty=tty,
        signals_ready=False,
        identity=identity,
    )
    try:
        proc = Process.launch(spec, factory, LOG_LIMIT)
    except LaunchError as e:
        # runc's words, which kubectl prints as they come.
        raise NodeApiError(
            f"failed to exec in container: failed to start exec: OCI runtime exec failed: "
            f"exec failed: unable to start container process: {e}",
            500,
        ) from None
    finally:
        target.close()
    if proc.sandbox_report != OK:
        proc.kill_group(signal.SIGKILL)
        why = proc.sandbox_report.decode(errors="replace") or "the exec process died at start"
        raise NodeApiError(
            f"failed to exec in container {container}: cannot enter its namespaces: {why}", 500
        )
    if tty:
        proc.resize(*DEFAULT_SIZE)
    return ExecSession(proc)
