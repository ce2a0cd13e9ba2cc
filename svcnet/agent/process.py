"""One run of a container: a child process, its output, its exit.

The process is started with ``subprocess.Popen`` (start_new_session, so the
container is a process group the agent can signal as a whole; a preexec_fn
for the pod's view and the parent-death signal) and then driven entirely by
the event loop through raw file descriptors:

- stdout/stderr pipes, or one pty master for ``tty: true``, are read with
  ``loop.add_reader`` into the instance's ``LogBuffer``;
- the exit is seen through a pidfd, which also lets the agent kill what is
  left of the group *before* reaping the leader (while the zombie still pins
  the pid, so the group id cannot have been reused);
- built-in images write a line to the ready pipe once they serve.

Not using asyncio's subprocess transport is deliberate: it needs a child
watcher (a thread per child on 3.11's default loop, its own under uvloop), a
pty needs raw fds anyway, and this way the code behaves the same under both
loops.

``done`` resolves with the Kubernetes exit code (128+signal for a signal)
once the process has exited and its output is drained, so a status that says
"terminated" always comes with the complete log.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import errno
import fcntl
import logging
import os
import pickle
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import cast

from svcnet.agent import envvars, zygote
from svcnet.agent.forkserver import ForkError, ForkServer
from svcnet.agent.identity import Identity
from svcnet.agent.logs import STDERR, STDOUT, LogBuffer
from svcnet.agent.sandbox import ChildSetup, Libc
from svcnet.images import INTERPRETER, READY_FD_ENV
from svcnet.kernel.namespaces import Bind

logger = logging.getLogger(__name__)

DRAIN_TIMEOUT = 1.0
"""How long output may keep flowing after the main process died (a grandchild
that escaped the group can hold the pipe open; we stop listening then)."""


@dataclass
class LaunchSpec:
    argv: list[str]
    env: Mapping[str, str]
    cwd: str
    stdin: bool
    tty: bool
    signals_ready: bool
    identity: Identity | None = None
    """Who the process runs as (identity.py); None: as the agent."""
    container: str = ""
    """The container it belongs to (its cgroup, under the pod's)."""
    mounts: tuple[Bind, ...] = ()
    """The container's volume mounts, made in its own mount namespace (volumes.py)."""
    view_cwd: str = ""
    """The working directory to enter once the mounts are made, when it exists only
    there (a workingDir inside a volume); `cwd` is then a stand-in that exists."""
    script: str = ""
    """The built-in image script argv runs with INTERPRETER, when it does: the fork
    server may then run it in-process (forkserver.py)."""


PreexecFactory = Callable[[int, LaunchSpec], Callable[[], None]]
"""(report_fd, spec) -> the preexec_fn, which writes its sandbox report to report_fd
(and, when it refuses to go on, the reason before it raises)."""


class LaunchError(Exception):
    """The process could not be started (kubelet: StartError / RunContainerError)."""


class _FdWriter:
    """Non-blocking writes to a container's stdin, buffered while the pipe is full."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, owns_fd: bool) -> None:
        self._loop = loop
        self._fd = fd
        self._owns = owns_fd
        self._buf = bytearray()
        self._closing = False
        self._closed = False
        self._watching = False

    def write(self, data: bytes) -> None:
        if self._closing or self._closed or not data:
            return
        self._buf += data
        self._flush()

    def _flush(self) -> None:
        while self._buf and not self._closed:
            try:
                n = os.write(self._fd, self._buf)
            except BlockingIOError:
                if not self._watching:
                    self._loop.add_writer(self._fd, self._flush)
                    self._watching = True
                return
            except OSError:
                # The reader is gone (EPIPE/EIO): what is left can never be read.
                self._buf.clear()
                self._shutdown()
                return
            del self._buf[:n]
        if self._watching:
            self._loop.remove_writer(self._fd)
            self._watching = False
        if self._closing:
            self._shutdown()

    def close(self) -> None:
        self._closing = True
        if not self._buf:
            self._shutdown()

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._watching:
            self._loop.remove_writer(self._fd)
            self._watching = False
        if self._owns:
            os.close(self._fd)


@dataclass
class _Ends:
    """The agent's ends of a new process' streams (and its sandbox report)."""

    stdout: int | None = None
    stderr: int | None = None
    stdin: int | None = None
    pty: int | None = None
    ready: int | None = None
    report: bytes = b""

    def close(self) -> None:
        for fd in (self.stdout, self.stderr, self.stdin, self.pty, self.ready):
            if fd is not None:
                os.close(fd)


def _streams(
    spec: LaunchSpec, keep: list[int], to_close: list[int]
) -> tuple[_Ends, list[int], int]:
    """Pipes (or a pty) for the process: the agent's ends, the child's [stdin,
    stdout, stderr, report, ready?] and the report's read end. Every fd made goes
    to `keep` (the agent's) or `to_close` (the child's) as it is made."""
    ends = _Ends()
    report_r, report_w = os.pipe()
    keep.append(report_r)
    to_close.append(report_w)
    ready_w = None
    if spec.signals_ready:
        ends.ready, ready_w = os.pipe()
        keep.append(ends.ready)
        to_close.append(ready_w)
    if spec.tty:
        ends.pty, slave = os.openpty()
        keep.append(ends.pty)
        to_close.append(slave)
        stdin = stdout = stderr = slave
    else:
        ends.stdout, stdout = os.pipe()
        ends.stderr, stderr = os.pipe()
        keep += [ends.stdout, ends.stderr]
        to_close += [stdout, stderr]
        if spec.stdin:
            stdin, ends.stdin = os.pipe()
            keep.append(ends.stdin)
            to_close.append(stdin)
        else:
            stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            to_close.append(stdin)
    child = [stdin, stdout, stderr, report_w]
    return ends, child + ([ready_w] if ready_w is not None else []), report_r


@contextlib.contextmanager
def _launch_fds() -> Iterator[tuple[list[int], list[int]]]:
    """(keep, to_close) for one launch: the parent's ends, closed if the launch
    fails, and the child's ends, closed in the parent once the child has them."""
    keep: list[int] = []
    to_close: list[int] = []
    try:
        yield keep, to_close
    except BaseException:
        for fd in keep:
            os.close(fd)
        raise
    finally:
        for fd in to_close:
            os.close(fd)


def _popen(spec: LaunchSpec, preexec: PreexecFactory) -> tuple[subprocess.Popen[bytes], _Ends]:
    """Start the process with Popen; returns once it has exec'd, with the sandbox
    report read. Touches no event loop, so it may run on a thread."""
    env = spec.env.as_dict() if isinstance(spec.env, envvars.ContainerEnv) else dict(spec.env)
    with _launch_fds() as (keep, to_close):
        ends, child, report_r = _streams(spec, keep, to_close)
        stdin, stdout, stderr, report_w = child[:4]
        pass_fds: tuple[int, ...] = ()
        if len(child) > 4:
            env[READY_FD_ENV] = str(child[4])
            pass_fds = (child[4],)
        try:
            popen = subprocess.Popen(
                spec.argv,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                env=env,
                cwd=spec.cwd,
                start_new_session=True,
                preexec_fn=preexec(report_w, spec),
                pass_fds=pass_fds,
            )
        except FileNotFoundError as e:
            target = e.filename if e.filename is not None else spec.argv[0]
            if target == spec.cwd:
                raise LaunchError(f'chdir to cwd ("{spec.cwd}") failed: {e.strerror}') from None
            raise LaunchError(
                f'exec: "{spec.argv[0]}": executable file not found in $PATH'
            ) from None
        except subprocess.SubprocessError as e:
            # The preexec_fn refused (it never runs a program as the wrong user);
            # it wrote why before raising.
            to_close.remove(report_w)
            os.close(report_w)
            why = _read_all(report_r).decode(errors="replace")
            raise LaunchError(f'exec: "{spec.argv[0]}": {why or e}') from None
        except OSError as e:
            raise LaunchError(f'exec: "{spec.argv[0]}": {e}') from None
    # exec has happened (Popen waits for it), so the report is complete.
    ends.report = _read_all(report_r)
    os.close(report_r)
    return popen, ends


class Process:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        popen: subprocess.Popen[bytes] | None,
        log: LogBuffer,
        tty: bool,
        *,
        pid: int = 0,
        forkserver: ForkServer | None = None,
    ) -> None:
        self._loop = loop
        self._popen = popen
        """None for a process the fork server started (its parent is the zygote)."""
        self._forkserver = forkserver
        self.pid = popen.pid if popen is not None else pid
        self.log = log
        self.tty = tty
        self.started_at = time.time()
        self.sandbox_report = b""
        self.environ_hidden = False
        """/proc/PID/environ does not show the environment it was started with (a
        forked process' shows the zygote's): exec takes it from the container."""
        self.ready: asyncio.Future[None] = loop.create_future()
        """Resolves when the image says it serves (at once for other commands)."""
        self.done: asyncio.Future[int] = loop.create_future()
        self.exit_code: int | None = None
        self.signal: int | None = None
        self.finished_at: float | None = None
        self._readers: dict[int, int] = {}  # fd -> stream
        self._pty: int | None = None
        self._stdin: _FdWriter | None = None
        self._pidfd: int | None = None
        self._drain_timer: asyncio.TimerHandle | None = None
        self._ready_fd: int | None = None

    @property
    def forked(self) -> bool:
        return self._forkserver is not None

    # --- start ------------------------------------------------------------

    @classmethod
    def launch(cls, spec: LaunchSpec, preexec: PreexecFactory, log_limit: int) -> Process:
        """Start it now, in the loop (exec sessions and probes; containers use
        ``Launcher.start``, which does not block the loop)."""
        popen, ends = _popen(spec, preexec)
        return cls._attach(asyncio.get_running_loop(), popen, ends, spec, log_limit)

    @classmethod
    def _attach(
        cls,
        loop: asyncio.AbstractEventLoop,
        popen: subprocess.Popen[bytes] | None,
        ends: _Ends,
        spec: LaunchSpec,
        log_limit: int,
        *,
        pid: int = 0,
        forkserver: ForkServer | None = None,
        exited: asyncio.Future[int] | None = None,
    ) -> Process:
        proc = cls(loop, popen, LogBuffer(log_limit), spec.tty, pid=pid, forkserver=forkserver)
        proc.sandbox_report = ends.report
        if ends.pty is not None:
            master = ends.pty
            proc._pty = master
            os.set_blocking(master, False)
            proc._watch(master, STDOUT)
            proc._stdin = _FdWriter(loop, master, owns_fd=False) if spec.stdin else None
        else:
            assert ends.stdout is not None and ends.stderr is not None
            proc._watch(ends.stdout, STDOUT)
            proc._watch(ends.stderr, STDERR)
            if ends.stdin is not None:
                os.set_blocking(ends.stdin, False)
                proc._stdin = _FdWriter(loop, ends.stdin, owns_fd=True)
        if ends.ready is not None:
            os.set_blocking(ends.ready, False)
            proc._ready_fd = ends.ready
            loop.add_reader(ends.ready, proc._on_ready_pipe, ends.ready)
        else:
            proc.ready.set_result(None)
        if exited is not None:
            # The zygote reaps it and says how it ended.
            exited.add_done_callback(lambda f: proc._exited(f.result()))
            return proc
        assert popen is not None
        try:
            proc._pidfd = os.pidfd_open(proc.pid)
        except OSError:
            proc._pidfd = None
        if proc._pidfd is not None:
            loop.add_reader(proc._pidfd, proc._on_exit)
        else:
            # Kernels before 5.3: a thread blocks in waitpid instead.
            fut = loop.run_in_executor(None, popen.wait)
            fut.add_done_callback(lambda _f: proc._on_exit())
        return proc

    def _watch(self, fd: int, stream: int) -> None:
        os.set_blocking(fd, False)
        self._readers[fd] = stream
        self._loop.add_reader(fd, self._on_output, fd)

    # --- event-loop callbacks ----------------------------------------------

    def _on_output(self, fd: int) -> None:
        stream = self._readers[fd]
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError as e:
                # EIO: a pty whose slave side is closed by everyone: the output has ended.
                if e.errno != errno.EIO:
                    logger.debug("read from container %d: %s", self.pid, e)
                data = b""
            if not data:
                self._close_reader(fd)
                return
            self.log.append(stream, data)

    def _close_reader(self, fd: int) -> None:
        if fd not in self._readers:
            return
        del self._readers[fd]
        self._loop.remove_reader(fd)
        if fd == self._pty:
            if self._stdin is not None:
                self._stdin.close()
            self._pty = None
        os.close(fd)
        self._maybe_done()

    def _on_ready_pipe(self, fd: int) -> None:
        try:
            data = os.read(fd, 256)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            if not self.ready.done():
                self.ready.set_result(None)
        else:
            self._close_ready_pipe()

    def _close_ready_pipe(self) -> None:
        if self._ready_fd is not None:
            self._loop.remove_reader(self._ready_fd)
            os.close(self._ready_fd)
            self._ready_fd = None

    def _on_exit(self) -> None:
        assert self._popen is not None
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            # The leader is a zombie: its pid (= the group id) cannot be reused yet.
            # Like a container's cgroup, the group dies with its main process.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        rc = self._popen.wait()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        self._exited(rc)

    def _exited(self, rc: int) -> None:
        """rc as Popen has it: the exit status, or minus the signal that killed it."""
        self.finished_at = time.time()
        if rc < 0:
            self.signal = -rc
            self.exit_code = 128 - rc
        else:
            self.exit_code = rc
        if self._readers:
            self._drain_timer = self._loop.call_later(DRAIN_TIMEOUT, self._stop_reading)
        self._maybe_done()

    def _stop_reading(self) -> None:
        for fd in list(self._readers):
            self._close_reader(fd)

    def _maybe_done(self) -> None:
        if self.exit_code is None or self._readers or self.done.done():
            return
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        if self._stdin is not None:
            self._stdin.close()
        self._close_ready_pipe()
        self.log.close()
        self.done.set_result(self.exit_code)

    # --- control ---------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.exit_code is None

    def kill_group(self, sig: int) -> None:
        if self.exit_code is not None:
            return
        if self._forkserver is not None:
            # Its parent is the zygote, the one that knows the pid is still its child's.
            self._forkserver.kill(self.pid, sig)
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def write_stdin(self, data: bytes) -> None:
        if self._stdin is not None:
            self._stdin.write(data)

    def close_stdin(self) -> None:
        if self._stdin is None:
            return
        if self.tty:
            # A terminal has no half-close; EOF is the VEOF character (^D).
            self._stdin.write(b"\x04")
        else:
            self._stdin.close()

    def resize(self, width: int, height: int) -> None:
        if self._pty is None:
            return
        if width <= 0 or height <= 0:
            # kubectl attached from a terminal without a size sends 1x1 then 0x0;
            # a 1x1 pty makes shells hide their prompt, so fall back to 80x24.
            width, height = 80, 24
        with contextlib.suppress(OSError):
            fcntl.ioctl(self._pty, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def _environ(env: Mapping[str, str], extra: dict[str, str]) -> bytes:
    """`env` and then `extra` as the zygote's environment block. A container's
    Service links are encoded once per version of its namespace's Services."""
    if isinstance(env, envvars.ContainerEnv):
        own, links = env.own(extra)
        if links is not None:
            if links.encoded is None:
                links.encoded = zygote.environ_block(links)
            return zygote.environ_block(own) + links.encoded
        return zygote.environ_block(own)
    return zygote.environ_block({**env, **extra})


async def _fork(
    spec: LaunchSpec, setup: ChildSetup, forkserver: ForkServer, log_limit: int
) -> Process:
    """Have the zygote fork the container (forkserver.py); the set-up is `setup`'s,
    run there, and the streams are the same pipes Popen would get."""
    loop = asyncio.get_running_loop()
    try:
        # The ready pipe's variable is in the block, as Popen's env has it.
        extra = {READY_FD_ENV: str(zygote.READY_FD)} if spec.signals_ready else {}
        environ = _environ(spec.env, extra)
    except ValueError as e:
        raise LaunchError(f'exec: "{spec.argv[0]}": {e}') from None
    with _launch_fds() as (keep, to_close):
        ends, child, report_r = _streams(spec, keep, to_close)
        payload = os.memfd_create("svcnet-launch", os.MFD_CLOEXEC)
        to_close.append(payload)
        launch = {
            # The zygote puts in its own libc handles and report fd.
            "setup": dataclasses.replace(setup, libc=cast(Libc, None), report_fd=-1),
            "script": spec.script,
            # What `python -I -S script args` has as sys.argv.
            "argv": spec.argv[len(INTERPRETER) :],
            "environ": environ,
            "cwd": spec.cwd,
        }
        data = pickle.dumps(launch, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(data)
        while view:
            view = view[os.write(payload, view) :]
        os.lseek(payload, 0, os.SEEK_SET)
        try:
            pid, exited = await forkserver.spawn([payload, *child])
        except ForkError as e:
            raise LaunchError(f'exec: "{spec.argv[0]}": {e}') from None
    try:
        report = await _read_to_eof(loop, report_r)
    except BaseException:
        ends.close()
        forkserver.kill(pid, signal.SIGKILL)
        raise
    if report.endswith(zygote.FAILED):
        ends.close()
        if report.endswith(zygote.CHDIR_FAILED):
            raise LaunchError(report[: -len(zygote.CHDIR_FAILED)].decode(errors="replace"))
        why = report[: -len(zygote.FAILED)].decode(errors="replace")
        raise LaunchError(f'exec: "{spec.argv[0]}": {why or "Exception occurred in preexec_fn."}')
    ends.report = report
    proc = Process._attach(
        loop, None, ends, spec, log_limit, pid=pid, forkserver=forkserver, exited=exited
    )
    proc.environ_hidden = True
    return proc


async def _read_to_eof(loop: asyncio.AbstractEventLoop, fd: int) -> bytes:
    """Read a pipe until every writer has closed it, without blocking the loop; closes it."""
    chunks: list[bytes] = []
    eof: asyncio.Future[None] = loop.create_future()

    def on_readable() -> None:
        while True:
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                if not eof.done():
                    eof.set_result(None)
                return
            chunks.append(data)

    os.set_blocking(fd, False)
    loop.add_reader(fd, on_readable)
    try:
        await eof
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return b"".join(chunks)


class Launcher:
    """Starts containers without blocking the event loop.

    A built-in image's script is forked by the fork server (forkserver.py) when
    it runs; anything else is Popen'd on a thread of the launcher's own, which
    lives as long as the agent: the parent-death signal a container arms fires
    when the *thread* that forked it ends, so a pool that retired idle threads
    would kill containers."""

    def __init__(self, forkserver: ForkServer | None) -> None:
        self.forkserver = forkserver
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="svcnet-launch")

    async def start(self, spec: LaunchSpec, preexec: PreexecFactory, log_limit: int) -> Process:
        fs = self.forkserver
        if spec.script and fs is not None and fs.available:
            setup = preexec(-1, spec)
            if isinstance(setup, ChildSetup):
                return await _fork(spec, setup, fs, log_limit)
        loop = asyncio.get_running_loop()
        popen, ends = await loop.run_in_executor(self._thread, _popen, spec, preexec)
        return Process._attach(loop, popen, ends, spec, log_limit)

    def close(self) -> None:
        self._thread.shutdown(wait=True)


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        data = os.read(fd, 4096)
        if not data:
            return b"".join(chunks)
        chunks.append(data)
