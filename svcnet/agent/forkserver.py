"""The agent's side of the fork server: one zygote per agent (zygote.py).

Built-in images are Python scripts; run one per container as a fresh
``python -I -S script`` and every pod pays an interpreter (about 4 MB of
private memory and 70 ms of CPU) and the daemon pays a fork of itself, in the
event loop, per start. The zygote has loaded the scripts once; a start is a
message on a socket, and the container shares the zygote's pages.

``ForkServer`` starts the zygote, sends it spawn and kill requests, and turns
its replies into futures: ``spawn`` resolves with the pid once the fork has
happened, and a second future with the exit (a Popen-style returncode:
negative for a signal) once the zygote reaped it. If the zygote cannot start
or dies, ``available`` is False and the agent starts built-in images as
before (a dead zygote's containers died with it: the parent-death signal).
"""

from __future__ import annotations

import array
import asyncio
import collections
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import svcnet

logger = logging.getLogger(__name__)

START_TIMEOUT = 20.0
"""How long the zygote may take to load the scripts (a loaded machine, CI)."""
STOP_TIMEOUT = 3.0
MAX_MESSAGE = 512

PR_SET_PDEATHSIG = 1

# The agent's helpers (the zygote, the preparer) import their module of the
# package without svcnet.agent's __init__ (the whole kubelet): only that module,
# what it imports and the standard library are in their pages.
BOOT = """\
import importlib, sys, types
path = list(sys.path)
root = sys.argv[1]
sys.path.insert(0, root)
pkg = types.ModuleType("svcnet.agent")
pkg.__path__ = [root + "/svcnet/agent"]
sys.modules["svcnet.agent"] = pkg
importlib.import_module("svcnet.agent." + sys.argv[2]).main(sys.argv[3:], path)
"""
ROOT = str(Path(svcnet.__file__).resolve().parent.parent)
"""Where the helpers import svcnet from: where this daemon does."""


class ForkError(Exception):
    """The zygote could not fork the container (or is gone)."""


class ForkServer:
    def __init__(self, scripts: Sequence[str], prctl: Callable[..., int]) -> None:
        self.scripts = list(scripts)
        self._prctl = prctl
        """libc's prctl, resolved in the daemon: the zygote's preexec_fn only calls it."""
        self.problem = ""
        """Why built-in images are not forked (empty while the zygote serves)."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next = 0
        self._pending: dict[str, asyncio.Future[tuple[int, asyncio.Future[int]]]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._pidfds: dict[int, int] = {}
        """A pidfd of each container the zygote runs, for when the zygote is gone."""
        self._out: collections.deque[tuple[bytes, list[int]]] = collections.deque()
        """Requests the socket had no room for yet, with the fds they carry."""
        self._writing = False

    @property
    def available(self) -> bool:
        return self._sock is not None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        """Start the zygote and wait until it has loaded the scripts; on failure,
        ``problem`` says why and nothing is left running."""
        loop = asyncio.get_running_loop()
        try:
            self._proc, ours = start_helper(
                self._prctl, "zygote", socket.SOCK_SEQPACKET, self.scripts
            )
        except OSError as e:
            self.problem = f"cannot start the fork server: {e}"
            return
        ours.setblocking(False)
        try:
            hello = await asyncio.wait_for(loop.sock_recv(ours, MAX_MESSAGE), START_TIMEOUT)
        except (TimeoutError, OSError) as e:
            hello = f"{type(e).__name__} {e}".encode()
        if hello != b"ready":
            ours.close()
            await reap(self._proc, kill=True)
            self._proc = None
            why = hello.decode(errors="replace") or "it exited"
            self.problem = f"the fork server did not start ({why})"
            return
        self._sock, self._loop = ours, loop
        loop.add_reader(ours.fileno(), self._on_readable)

    async def stop(self) -> None:
        """Close the socket: the zygote kills what it still runs and exits."""
        self._close("the agent stopped")
        await reap(self._proc, kill=False)
        self._proc = None

    # --- requests ----------------------------------------------------------------

    async def spawn(self, fds: list[int]) -> tuple[int, asyncio.Future[int]]:
        """Fork a container with these fds (zygote.py: payload, stdin, stdout, stderr,
        report[, ready]); the caller may close its copies once this returns."""
        if self._loop is None or self._sock is None:
            raise ForkError(self.problem or "the fork server is not running")
        self._next += 1
        ident = str(self._next)
        fut: asyncio.Future[tuple[int, asyncio.Future[int]]] = self._loop.create_future()
        self._pending[ident] = fut
        self._send(f"spawn {ident}".encode(), fds)
        return await fut

    def kill(self, pid: int, sig: int) -> None:
        """Signal the process group of a container the zygote started (a no-op once
        it has been reaped: the zygote knows, the agent could race it)."""
        if self._sock is not None and pid in self._exits:
            self._send(f"kill {pid} {int(sig)}".encode(), [])

    def _send(self, msg: bytes, fds: list[int]) -> None:
        if self._out:
            self._out.append((msg, [os.dup(fd) for fd in fds]))
            return
        if not self._sendmsg(msg, fds):
            self._out.append((msg, [os.dup(fd) for fd in fds]))
            self._want_write()

    def _sendmsg(self, msg: bytes, fds: list[int]) -> bool:
        assert self._sock is not None
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        try:
            self._sock.sendmsg([msg], anc)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as e:
            self._close(f"send: {e}")
        return True

    def _want_write(self) -> None:
        if not self._writing and self._loop is not None and self._sock is not None:
            self._loop.add_writer(self._sock.fileno(), self._on_writable)
            self._writing = True

    def _on_writable(self) -> None:
        while self._out and self._sock is not None:
            msg, fds = self._out[0]
            if not self._sendmsg(msg, fds):
                return
            self._out.popleft()
            for fd in fds:
                os.close(fd)
        if self._writing and self._loop is not None and self._sock is not None:
            self._loop.remove_writer(self._sock.fileno())
        self._writing = False

    # --- replies -----------------------------------------------------------------

    def _on_readable(self) -> None:
        while self._sock is not None:
            try:
                msg, anc, _flags, _ = self._sock.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(4))
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self._close(f"receive: {e}")
                return
            fds = array.array("i")
            for level, type_, data in anc:
                if level == socket.SOL_SOCKET and type_ == socket.SCM_RIGHTS:
                    fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            if not msg:
                self._close("the fork server exited")
                return
            self._on_message(msg.decode(errors="replace").split(" ", 2), list(fds))

    def _on_message(self, words: list[str], fds: list[int]) -> None:
        assert self._loop is not None
        if words[0] == "pid" and len(words) == 3 and len(fds) == 1:
            fut = self._pending.pop(words[1], None)
            pid = int(words[2])
            exited: asyncio.Future[int] = self._loop.create_future()
            self._exits[pid] = exited
            self._pidfds[pid] = fds.pop()
            if fut is not None and not fut.done():
                fut.set_result((pid, exited))
            else:
                # The launch was given up (its pod stopped) while the fork happened.
                self.kill(pid, signal.SIGKILL)
        elif words[0] == "err" and len(words) >= 2:
            fut = self._pending.pop(words[1], None)
            if fut is not None and not fut.done():
                fut.set_exception(ForkError(words[2] if len(words) > 2 else "fork failed"))
        elif words[0] == "exit" and len(words) == 3:
            pid = int(words[1])
            pidfd = self._pidfds.pop(pid, None)
            if pidfd is not None:
                os.close(pidfd)
            done = self._exits.pop(pid, None)
            if done is not None and not done.done():
                done.set_result(os.waitstatus_to_exitcode(int(words[2])))
        else:
            logger.warning("fork server: unexpected message %r", " ".join(words)[:80])
        for fd in fds:
            os.close(fd)

    def _close(self, why: str) -> None:
        if self._sock is None:
            return
        if why != "the agent stopped":
            logger.warning("fork server: %s; built-in images start as their own processes", why)
            self.problem = f"the fork server stopped ({why})"
        if self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
            if self._writing:
                self._loop.remove_writer(self._sock.fileno())
                self._writing = False
        self._sock.close()
        self._sock = None
        for _, fds in self._out:
            for fd in fds:
                os.close(fd)
        self._out.clear()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ForkError(self.problem or why))
        self._pending.clear()
        # Its containers die with it (their parent-death signal is SIGKILL): each
        # counts as exited once its pidfd says so, so a restart never meets the
        # old process still holding the pod's port.
        for pid, done in self._exits.items():
            pidfd = self._pidfds.pop(pid, None)
            if pidfd is None:
                done.set_result(-signal.SIGKILL)
            else:
                self._loop_or_now(pidfd, done)
        self._exits.clear()

    def _loop_or_now(self, pidfd: int, done: asyncio.Future[int]) -> None:
        loop = self._loop
        if loop is None:
            os.close(pidfd)
            done.set_result(-signal.SIGKILL)
            return

        def on_exit() -> None:
            loop.remove_reader(pidfd)
            # Orphaned, it went to the nearest subreaper: the daemon's agent is one.
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
            os.close(pidfd)
            if not done.done():
                done.set_result(-signal.SIGKILL)

        loop.add_reader(pidfd, on_exit)


def start_helper(
    prctl: Callable[..., int], module: str, kind: int, args: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """Start svcnet.agent.`module`'s main() as a helper of the agent (BOOT), with
    the fd of its end of a socketpair of `kind`, then `args`, as its arguments;
    returns it and the daemon's end. Raises OSError with nothing left open. Call
    it on the loop's thread: the parent-death signal follows the thread that
    forked, which must outlive the helper."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, kind)
    parent = os.getpid()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", BOOT, ROOT, module, str(theirs.fileno()), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
            # Its own session: a Ctrl-C at svcnet's terminal is the daemon's to handle
            # (pods get their grace period), not a sudden death of every container.
            start_new_session=True,
            preexec_fn=lambda: _die_with(prctl, parent),
        )
    except OSError:
        ours.close()
        raise
    finally:
        theirs.close()
    return proc, ours


async def reap(proc: subprocess.Popen[bytes] | None, *, kill: bool) -> None:
    """Wait for a helper to exit (STOP_TIMEOUT at most, then kill it)."""
    if proc is None:
        return
    if kill:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    loop = asyncio.get_running_loop()
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:
        pidfd = None
    if pidfd is not None:
        exited: asyncio.Future[None] = loop.create_future()

        def on_exit() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(pidfd, on_exit)
        try:
            await asyncio.wait_for(exited, STOP_TIMEOUT)
        except TimeoutError:
            proc.kill()
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
    proc.wait()


def _die_with(prctl: Callable[..., int], parent: int) -> None:
    """In a helper before exec: die with the daemon (the zygote's containers with it)."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(137)
