"""attach and exec over SPDY/3.1: the kubelet's remotecommand server (httpstream.go).

What kubectl before 1.30 speaks, kubectl with KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false
(and after a refused WebSocket upgrade), and client-go's NewSPDYExecutor (operators'
tests, helm, k9s). api/streams.py has checked the request (pod, container, flags)
before it gets here, as kube-apiserver checks it before proxying to the kubelet.

1. `X-Stream-Protocol-Version` is negotiated (apimachinery's Handshake: the first
   the client offers of v4.channel.k8s.io, v3, v2 and channel.k8s.io; a 1.32
   kubelet has no v5 over SPDY, so kubectl's v5 offer ends at v4) and the
   connection switches to SPDY/3.1.
2. The client opens one stream per `streamType` header: error, and stdin, stdout,
   stderr as the request's flags say, resize with a tty from v3 on. Like the
   kubelet, the session starts once that many streams are there, or the
   connection ends after STREAM_TIMEOUT.
3. The session is relayed: the stdin stream to the process (the client's FIN, at
   the end of its input, closes the process' stdin), the resize stream's JSON
   TerminalSize objects (`{"Width":80,"Height":24}` and a newline each) to the
   terminal, output to the stdout and stderr streams.
4. At the end the output streams get FIN and the error stream the outcome: v4 a
   metav1.Status (Success, or NonZeroExitCode with an ExitCode cause, which is
   how kubectl prints `command terminated with exit code 3` and exits 3), v2 and
   v3 a failure's message as text and nothing for success, v1 nothing (the
   kubelet resets v1's error stream once the streams are there). Then GOAWAY,
   and the client hangs up.

The outcome Statuses are shared with the WebSocket protocol (api/streams.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from svcnet._aio import TaskSet
from svcnet.api import spdy
from svcnet.k8s.objects import Obj
from svcnet.nodeapi import Attachment
from svcnet.registry import ApiError

logger = logging.getLogger(__name__)

V4, V3, V2, V1 = "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"
SPDY_PROTOCOLS: Final = (V4, V3, V2, V1)
"""What a v1.32 kubelet serves over SPDY, most preferred first."""
STREAM_TYPE: Final = "streamtype"
"""The SYN_STREAM header naming a stream's role (header names arrive lowercase)."""
ERROR, STDIN, STDOUT, STDERR, RESIZE = "error", "stdin", "stdout", "stderr", "resize"
STREAM_TIMEOUT: Final = 30.0
"""apimachinery's DefaultStreamCreationTimeout."""
HANGUP_WAIT: Final = 5.0
"""How long the outcome is left with the client to hang up before the connection
is closed from here (closing first could reset what the client has not read)."""
MAX_RESIZE_MESSAGE: Final = 4096
"""A TerminalSize is some 30 bytes; a longer unfinished one ends resizing."""

SUCCESS: Obj = {"metadata": {}, "status": "Success"}


def exit_status(code: int) -> Obj:
    """The Status for a command's exit code (what kubectl exec reads)."""
    if code == 0:
        return SUCCESS
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def failure_status(err: ApiError) -> Obj:
    """The Status for a session that could not start (kubectl prints its message)."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": err.message if err.code != 500 else f"Internal error occurred: {err.message}",
        "reason": err.reason,
        "code": err.code,
    }


def status_json(status: Obj) -> bytes:
    """A Status as Go's encoding/json writes it (no spaces)."""
    return json.dumps(status, separators=(",", ":")).encode()


def terminal_size(payload: bytes) -> tuple[int, int] | None:
    """(width, height) of a remotecommand.TerminalSize in JSON, or None if it is not
    one. Go's decoder matches field names case-insensitively and wants uint16s."""
    try:
        raw = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    fields = {str(k).lower(): v for k, v in raw.items()}
    width, height = fields.get("width", 0), fields.get("height", 0)
    for v in (width, height):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 0xFFFF:
            return None
    return width, height


@dataclass(frozen=True)
class Stdio:
    """Which of the process' streams the request asked for (tty drops stderr)."""

    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


async def serve_spdy(
    request: web.Request,
    protocol: str,
    stdio: Stdio,
    start: Callable[[], Awaitable[Attachment]],
    *,
    exits: bool,
    what: str,
) -> web.StreamResponse:
    """Upgrade to SPDY/3.1 with `protocol` (from `negotiate`) and serve the session
    `start` opens once the client's streams are there. An ApiError from `start` is
    the outcome on the error stream. With `exits` the outcome is the process' exit
    code (exec); without, Success (attach: kubectl reads the exit from the pod)."""
    resp, inbox = await spdy.upgrade(request, protocol)
    await _Connection(protocol, stdio, resp.write, what).run(inbox, start, exits)
    return resp


def negotiate(request: web.Request) -> str:
    """The protocol of a SPDY upgrade request, or the kubelet's refusal (raised)."""
    return spdy.negotiate(request, SPDY_PROTOCOLS)


class _Connection:
    """One upgraded connection: its streams by type, and the session's relay."""

    def __init__(
        self, protocol: str, stdio: Stdio, write: Callable[[bytes], Awaitable[None]], what: str
    ) -> None:
        self.protocol = protocol
        self.stdio = stdio
        self.what = what
        self.session = spdy.SpdySession(write, self._on_stream)
        self.tasks = TaskSet()
        self.streams: dict[str, spdy.Stream] = {}
        resize = stdio.tty and protocol in (V4, V3)
        self.expected = 1 + stdio.stdin + stdio.stdout + stdio.stderr + resize
        """The kubelet counts streams of any known type, as many as the flags ask for."""
        self.received = 0
        self.ready = asyncio.Event()

    def _on_stream(self, stream: spdy.Stream) -> None:
        kind = stream.headers.get(STREAM_TYPE, "")
        if self.ready.is_set() or kind not in (ERROR, STDIN, STDOUT, STDERR, RESIZE):
            # The kubelet ignores these; reset, they cannot hold the connection's reading.
            logger.debug("%s: unexpected stream type %r", self.what, kind)
            self.tasks.spawn(self.session.reset(stream), name=f"{self.what} reset")
            return
        old = self.streams.get(kind)
        if old is not None:
            self.tasks.spawn(self.session.reset(old), name=f"{self.what} reset")
        self.streams[kind] = stream
        if kind not in (STDIN, RESIZE):
            # Written here, never read: what a client sends on them is dropped.
            self.tasks.spawn(_discard(stream), name=f"{self.what} {kind} discard")
        self.received += 1
        if self.received >= self.expected:
            self.ready.set()

    async def _read(self, inbox: spdy.Inbox) -> None:
        try:
            while data := await inbox.read():
                await self.session.feed(data)
        except (EOFError, ConnectionError):
            pass
        except spdy.ProtocolError as e:
            logger.debug("%s: %s", self.what, e)
            with contextlib.suppress(Exception):
                await self.session.goaway(spdy.GOAWAY_PROTOCOL_ERROR)
        finally:
            self.session.end()

    async def run(
        self, inbox: spdy.Inbox, start: Callable[[], Awaitable[Attachment]], exits: bool
    ) -> None:
        reading = self.tasks.spawn(self._read(inbox), name=f"{self.what} read")
        try:
            if not await self._streams_created(reading):
                return
            if self.protocol == V1:
                # What v1 kubelets did (and v1 clients expect): the error stream is
                # reset and stdin's server side closed as soon as the streams are there.
                if ERROR in self.streams:
                    await self.session.reset(self.streams.pop(ERROR))
                if STDIN in self.streams:
                    await self.streams[STDIN].close()
            try:
                session = await start()
            except ApiError as e:
                await self._finish(failure_status(e))
                await asyncio.wait({reading}, timeout=HANGUP_WAIT)
                return
            try:
                outcome = await self._relay(session, exits, reading)
                if outcome is not None:
                    await self._finish(outcome)
                    await asyncio.wait({reading}, timeout=HANGUP_WAIT)
            finally:
                session.detach()
        finally:
            self.session.end()
            await self.tasks.stop()

    async def _streams_created(self, reading: asyncio.Task[None]) -> bool:
        waiting = self.tasks.spawn(self.ready.wait(), name=f"{self.what} streams")
        await asyncio.wait(
            {waiting, reading}, timeout=STREAM_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        if self.ready.is_set():
            return True
        if not reading.done():
            logger.info("%s: timed out waiting for client to create streams", self.what)
            with contextlib.suppress(Exception):
                await self.session.goaway()
        return False

    async def _relay(
        self, session: Attachment, exits: bool, reading: asyncio.Task[None]
    ) -> Obj | None:
        """The outcome once the output has ended, or None if the client went away."""
        stdin, resize = self.streams.get(STDIN), self.streams.get(RESIZE)
        if stdin is not None:
            copy = _copy_stdin(stdin, session) if self.stdio.stdin else _discard(stdin)
            self.tasks.spawn(copy, name=f"{self.what} stdin")
        if resize is not None:
            self.tasks.spawn(_resizes(resize, session), name=f"{self.what} resize")
        pump = self.tasks.spawn(self._pump(session, exits), name=f"{self.what} output")
        await asyncio.wait({pump, reading}, return_when=asyncio.FIRST_COMPLETED)
        if not pump.done():
            return None
        return pump.result()

    async def _pump(self, session: Attachment, exits: bool) -> Obj:
        out = {
            1: self.streams.get(STDOUT) if self.stdio.stdout else None,
            2: self.streams.get(STDERR) if self.stdio.stderr else None,
        }
        async for channel, data in session.output():
            stream = out.get(channel)
            if stream is not None:
                await stream.write(data)
        return exit_status(await session.wait()) if exits else SUCCESS

    async def _finish(self, outcome: Obj) -> None:
        for kind in (STDOUT, STDERR):
            if kind in self.streams:
                await self.streams[kind].close()
        error = self.streams.get(ERROR)
        if error is not None:
            if self.protocol == V4:
                await error.write(status_json(outcome))
            elif outcome.get("status") == "Failure":
                await error.write(str(outcome.get("message", "")).encode())
            await error.close()
        for kind in (STDIN, RESIZE):
            # The client's stdin copy waits for this side's FIN to finish.
            if kind in self.streams:
                await self.streams[kind].close()
        await self.session.goaway()


async def _discard(stream: spdy.Stream) -> None:
    while await stream.read():
        pass


async def _copy_stdin(stream: spdy.Stream, session: Attachment) -> None:
    while data := await stream.read():
        session.write_stdin(data)
    if not stream.reset:
        # FIN: the client's input ended (`echo hi | kubectl exec -i`, kubectl cp).
        session.close_stdin()


async def _resizes(stream: spdy.Stream, session: Attachment) -> None:
    """The kubelet's handleResizeEvents: JSON TerminalSizes until one does not decode."""
    buf = b""
    resizing = True
    while data := await stream.read():
        if not resizing:
            continue  # still read, so the connection's reading never waits on this
        buf += data
        *lines, buf = buf.split(b"\n")
        if buf.strip() and terminal_size(buf) is not None:
            lines.append(buf)  # a client that sends no newline
            buf = b""
        for line in lines:
            if not line.strip():
                continue
            size = terminal_size(line)
            if size is None:
                logger.debug("ignoring resizes after a malformed one: %r", line[:100])
                resizing = False
                break
            session.resize(*size)
        if len(buf) > MAX_RESIZE_MESSAGE:
            resizing = False
