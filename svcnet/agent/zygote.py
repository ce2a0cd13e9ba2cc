"""The fork server's own process (the zygote): forks a container per request.

Started once per agent by ``forkserver.ForkServer`` as ``python -I -S -c BOOT``,
it compiles every built-in image's script and runs each once under another
``__name__`` (which imports what the script imports and defines nothing that
runs), freezes the garbage collector's view of all of that, and then only
waits. A container of a built-in image is a ``fork()`` of it that runs the
script's code object as ``__main__``: the interpreter, the standard library
modules and the scripts' code are pages every container shares
copy-on-write, and a start is a fork of a ~10 MB process instead of a fork
of the daemon plus an interpreter start-up.

The child does what ``subprocess.Popen`` and ``sandbox.ChildSetup`` do for any
container, in the same order: the streams on fds 0-2, the working directory,
a session of its own (its process group, which the agent signals), then
ChildSetup itself (the pod cgroup first, the parent-death signal, the
controlling tty, the mount and UTS namespaces and volume mounts, the
identity last), then what a fresh ``python -I -S script`` has: the
container's environment, ``sys.argv``, std streams, and the interpreter's exit
rules (``SystemExit``, tracebacks, non-daemon threads joined, atexit).

Protocol, over a SOCK_SEQPACKET socketpair with the agent (one message each):

- agent -> zygote ``spawn ID`` with SCM_RIGHTS fds [payload, stdin, stdout,
  stderr, report, ready?]; the payload is a memfd holding the pickled launch
  (read by the child after fork, so its size never limits the message);
- zygote -> agent ``pid ID PID`` with a pidfd of the child, or ``err ID MESSAGE``;
- zygote -> agent ``exit PID STATUS`` (a wait status) once it is reaped;
- agent -> zygote ``kill PID SIG``: signal the container's process group.

The zygote is the parent, so it is the one that can tell a live pid from a
reused one: it signals a group only while its leader is unreaped, and when
the leader exits it kills the rest of the group first (the zombie still pins
the group id), as ``process.Process`` does for the containers it starts
itself. EOF on the socket (the agent stopped, or died) kills every
container's group and ends the zygote; the parent-death signal covers the
rest: the zygote dies with the daemon, a container with the zygote.

Only the agent holds the other end of the socketpair (inherited at spawn, no
path to connect to), which is why the payload may be a pickle: it is the
agent's own ``ChildSetup`` and strings, never anything a client sent as bytes.

This module runs without site-packages: it imports the standard library and
the sandbox modules alone (``BOOT`` keeps ``svcnet.agent``'s package import,
the whole kubelet, out of the zygote).
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import dataclasses
import fcntl
import gc
import os
import pickle
import selectors
import signal
import socket
import sys
import types
from _collections_abc import dict_items, dict_keys, dict_values
from collections.abc import Iterator, Mapping
from typing import Any

from svcnet.agent.sandbox import ChildSetup, Libc

READY_FD = 3
"""Where a forked container finds its ready pipe (SVCNET_READY_FD)."""
REPORT_FD = 4
"""Where ChildSetup writes its report; closed before the script runs."""
FAILED = b"\0"
"""Ends the report when the set-up refused to run the program (the report
itself is text, so it never holds a NUL)."""
CHDIR_FAILED = b"\1" + FAILED
"""Ends it when the working directory could not be entered (the report is then
the whole error, as Popen's is)."""
MAX_FDS = 6
MAX_MESSAGE = 512


def main(argv: list[str], path: list[str]) -> None:
    """argv: the control socket's fd, then the scripts to load; path: sys.path as
    ``python -I -S`` had it, before BOOT made svcnet importable."""
    ctl = socket.socket(fileno=int(argv[0]))
    codes: dict[str, types.CodeType] = {}
    for script in argv[1:]:
        with open(script, "rb") as f:
            code = compile(f.read(), script, "exec")
        codes[script] = code
        # Imports what the script imports; `if __name__ == "__main__"` keeps it idle.
        exec(code, {"__name__": "__svcnet_preload__", "__file__": script})
    libc = Libc()
    gc.collect()
    # Objects made so far are never looked at again by the collector, so a
    # container's collections do not dirty (and unshare) the pages they live on.
    gc.freeze()
    Zygote(ctl, codes, libc, path).serve()


class Zygote:
    def __init__(
        self, ctl: socket.socket, codes: dict[str, types.CodeType], libc: Libc, path: list[str]
    ) -> None:
        self.ctl = ctl
        self.path = path
        self.codes = codes
        self.libc = libc
        self.sel = selectors.DefaultSelector()
        self.children: dict[int, int] = {}  # pid -> pidfd

    def serve(self) -> None:
        self.ctl.sendall(b"ready")
        self.sel.register(self.ctl, selectors.EVENT_READ, None)
        while True:
            for key, _ in self.sel.select():
                if key.data is None:
                    if not self._on_request():
                        self._shutdown()
                        return
                else:
                    self._reap(key.data)

    def _on_request(self) -> bool:
        fds = array.array("i")
        try:
            msg, anc, _flags, _ = self.ctl.recvmsg(
                MAX_MESSAGE, socket.CMSG_SPACE(MAX_FDS * fds.itemsize)
            )
        except InterruptedError:
            return True
        except OSError:
            return False
        for level, type_, data in anc:
            if level == socket.SOL_SOCKET and type_ == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
        if not msg:
            return False
        words = msg.decode(errors="replace").split()
        try:
            if words[0] == "spawn" and len(words) == 2:
                self._spawn(words[1], list(fds))
            elif words[0] == "kill" and len(words) == 3:
                self._kill(int(words[1]), int(words[2]))
        finally:
            for fd in fds:
                os.close(fd)
        return True

    def _spawn(self, ident: str, fds: list[int]) -> None:
        if len(fds) < 5:
            self._send(f"err {ident} expected at least 5 fds, got {len(fds)}")
            return
        try:
            pid = os.fork()
        except OSError as e:
            self._send(f"err {ident} fork: {e.strerror}")
            return
        if pid == 0:
            code = 127
            try:
                code = _child(self, fds)
            finally:
                os._exit(code)
        pidfd = os.pidfd_open(pid)
        self.children[pid] = pidfd
        self.sel.register(pidfd, selectors.EVENT_READ, pid)
        # The agent gets a pidfd too: opened while the child is surely ours and
        # unreaped, it is how the agent sees the container die if we die first.
        self._send(f"pid {ident} {pid}", [pidfd])

    def _kill(self, pid: int, sig: int) -> None:
        if pid in self.children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)

    def _reap(self, pid: int) -> None:
        pidfd = self.children.pop(pid)
        self.sel.unregister(pidfd)
        os.close(pidfd)
        # The leader is a zombie until waitpid: its group id cannot be reused yet.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        self._send(f"exit {pid} {status}")

    def _send(self, text: str, fds: list[int] | None = None) -> None:
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        with contextlib.suppress(OSError):
            self.ctl.sendmsg([text.encode()], anc)

    def _shutdown(self) -> None:
        """The agent is gone: so is every container it had us start."""
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        for pid, pidfd in list(self.children.items()):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            os.close(pidfd)
        self.children.clear()


# --- in the child ----------------------------------------------------------------


def _child(z: Zygote, fds: list[int]) -> int:
    """Become the container; returns its exit code (the caller _exits with it)."""
    parent = os.getppid()
    payload, stdio, report, ready = fds[0], fds[1:4], fds[4], fds[5] if len(fds) > 5 else None
    with os.fdopen(payload, "rb", closefd=False) as f:
        launch: dict[str, Any] = pickle.load(f)
    # Everything kept goes above every fd we have first, then into place: a source
    # may sit on a target's number.
    floor = max(fds) + 1
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor) for fd in (*stdio, report)]
    for target, fd in enumerate(moved[:3]):
        os.dup2(fd, target)
    os.dup2(moved[3], REPORT_FD, inheritable=False)
    if ready is not None:
        os.dup2(fcntl.fcntl(ready, fcntl.F_DUPFD_CLOEXEC, floor), READY_FD)
    else:
        with contextlib.suppress(OSError):
            os.close(READY_FD)
    # The control socket, other containers' pidfds, the selector: none is the container's.
    os.closerange(REPORT_FD + 1, os.sysconf("SC_OPEN_MAX"))
    cwd = launch["cwd"]
    try:
        os.chdir(cwd)
    except OSError as e:
        _fail(f'chdir to cwd ("{cwd}") failed: {e.strerror}'.encode(), CHDIR_FAILED)
        return 127
    os.setsid()
    setup: ChildSetup = dataclasses.replace(
        launch["setup"], libc=z.libc, report_fd=REPORT_FD, parent_pid=parent
    )
    try:
        setup()
    except BaseException:
        # ChildSetup wrote why (or nothing, as under Popen, where the agent then
        # says the set-up raised).
        _fail(b"", FAILED)
        return 127
    os.close(REPORT_FD)
    environ = _set_environ(launch.pop("environ"))  # held for as long as the script runs
    return _run_script(z.codes[launch["script"]], launch["argv"], z.path, environ)


def _fail(why: bytes, marker: bytes) -> None:
    with contextlib.suppress(OSError):
        os.write(REPORT_FD, why + marker)


def environ_block(env: Mapping[str, str]) -> bytes:
    """A container's environment as the C library keeps it, `KEY=value` each ended
    by a NUL, for _set_environ: in the agent, so the child never holds it as str."""
    if not env:
        return b""
    # One join in C over "=".join of each item: a genexpr of f-strings was half
    # again as slow with 1,400 link variables per container.
    block = os.fsencode("\0".join(map("=".join, env.items())) + "\0")
    if block.count(b"\0") != len(env):
        bad = next(k for k, v in env.items() if "\0" in k or "\0" in v)
        raise ValueError(f"environment variable {bad!r}: embedded null byte")
    return block


def _set_environ(block: bytes) -> object:
    """Make `block` (environ_block's) the process's environment, the C library's
    and os.environ alike, without another copy of its text.

    With Service links a container has about seven variables per Service of its
    namespace: at 200 Services, os.environ.update's setenv per variable scanned
    the whole array each time (a million strcmp per container), and copies of
    the text as a dict, as os.environ's bytes and as C strings cost a fork of
    a built-in image a tenth of its memory (issue 16). Here the C `environ`
    is an array of pointers into the block, as the kernel hands a process its
    environment (glibc leaves an array it did not allocate alone, copying it on
    the script's first setenv), and os.environ reads a variable out of the block
    when it is first asked for (_EnvironData). The caller keeps the returned
    array alive for as long as the process runs."""
    count = block.count(b"\0")
    base = ctypes.cast(ctypes.c_char_p(block), ctypes.c_void_p).value or 0
    pointers = (ctypes.c_void_p * (count + 1))()
    start = 0
    for i in range(count):
        pointers[i] = base + start
        start = block.index(b"\0", start) + 1
    ctypes.c_void_p.in_dll(ctypes.CDLL(None), "environ").value = ctypes.addressof(pointers)
    data = _EnvironData(block)
    # os.environ and os.environb share the mapping of encoded names to values.
    for mapping in (os.environ, getattr(os, "environb", None)):
        if mapping is not None:
            vars(mapping)["_data"] = data
    return pointers


class _EnvironData(dict[bytes, bytes]):
    """os.environ's mapping of encoded names to values (os._Environ._data), read out
    of the environment block a name at a time: a script that reads three of 1,400
    variables holds three. Walking it, sizing it or deleting from it reads them all
    first; a value set meanwhile stays."""

    def __init__(self, block: bytes) -> None:
        super().__init__()
        self._block = block
        self._whole = False

    def __missing__(self, key: bytes) -> bytes:
        if self._whole or b"=" in key or b"\0" in key:
            raise KeyError(key)
        # The first entry of that name, as getenv(3) finds it.
        entry = key + b"="
        block = self._block
        if block.startswith(entry):
            start = len(entry)
        else:
            at = block.find(b"\0" + entry)
            if at < 0:
                raise KeyError(key)
            start = at + 1 + len(entry)
        value = block[start : block.index(b"\0", start)]
        dict.__setitem__(self, key, value)
        return value

    def _read_all(self) -> None:
        if self._whole:
            return
        self._whole = True
        for entry in self._block.split(b"\0"):
            if entry:
                key, _, value = entry.partition(b"=")
                dict.setdefault(self, key, value)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, bytes):
            return False
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[bytes]:
        self._read_all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._read_all()
        return dict.__len__(self)

    def __delitem__(self, key: bytes) -> None:
        self._read_all()
        dict.__delitem__(self, key)

    def keys(self) -> dict_keys[bytes, bytes]:
        self._read_all()
        return dict.keys(self)

    def values(self) -> dict_values[bytes, bytes]:
        self._read_all()
        return dict.values(self)

    def items(self) -> dict_items[bytes, bytes]:
        self._read_all()
        return dict.items(self)

    def get(self, key: bytes, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def pop(self, key: bytes, *default: Any) -> Any:
        self._read_all()
        return dict.pop(self, key, *default)

    def copy(self) -> dict[bytes, bytes]:
        self._read_all()
        return dict(dict.items(self))


def _run_script(code: types.CodeType, argv: list[str], path: list[str], environ: object) -> int:
    """What `python -I -S script args...` does with a script, in this process
    (`environ`: _set_environ's, kept alive here)."""
    sys.argv = list(argv)
    sys.path[:] = path
    # As the interpreter makes them: line-buffered stdout on a terminal only,
    # stderr always.
    sys.stdin = open(0, encoding="utf-8", errors="surrogateescape", closefd=False)
    out_buffering = 1 if os.isatty(1) else -1
    sys.stdout = open(
        1, "w", out_buffering, encoding="utf-8", errors="surrogateescape", closefd=False
    )
    sys.stderr = open(2, "w", 1, encoding="utf-8", errors="backslashreplace", closefd=False)
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=argv[0], __builtins__=__builtins__)
    sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)
        status = 0
    except SystemExit as e:
        status = _exit_status(e)
    except KeyboardInterrupt:
        # Python's own exit for an unhandled SIGINT: die of the signal.
        _finish()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        return 130
    except BaseException:
        sys.excepthook(*sys.exc_info())
        status = 1
    return _finish(status)


def _exit_status(e: SystemExit) -> int:
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code & 0xFF
    print(e.code, file=sys.stderr)
    return 1


def _finish(status: int = 0) -> int:
    """Join non-daemon threads, run atexit, flush: the interpreter's way out."""
    import atexit
    import threading

    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        with contextlib.suppress(BaseException):
            shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 120
    return status
