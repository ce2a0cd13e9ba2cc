"""The HTTP/1.1 reverse proxy: asyncio Protocols on both sides, bodies streamed.

One ``ClientConn`` per accepted connection (plain or TLS: asyncio's TLS
transport sits under the same Protocol), and at most one ``BackendConn`` at a
time under it, kept across requests to the same upstream endpoint (nginx's
upstream keep-alive) and replaced when the next request routes elsewhere.

Only message heads are parsed (http1.py); bodies pass through as they arrive,
framed to find where they end, with flow control both ways: a side whose
transport buffer is full pauses reading on the other side (``pause_writing``
/ ``resume_writing``), so memory per connection stays at a few reads. After
a 101 Switching Protocols (WebSocket) both directions are a plain tunnel.

Headers to the backend are ingress-nginx's defaults (use-forwarded-headers
false): Host as the client sent it, X-Request-ID (the client's or a new one),
X-Real-IP and X-Forwarded-For (the client's address, replacing any sent),
X-Forwarded-Host, -Port, -Proto, -Scheme and X-Scheme; hop-by-hop headers are
dropped, Connection is "upgrade" for an upgrade and absent otherwise.

Answers the proxy gives itself: 404 (no location, or the default backend),
503 (no ready endpoint), 308 (to HTTPS, for hosts with TLS), 400/414/505 for
malformed requests, 502 when no endpoint could be dialled (three tries, as
proxy_next_upstream_tries) or the response was malformed, 504 when the
response head did not come within 60 s, 408 when a request head did not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, cast

from svcnet.ingress import http1, pages
from svcnet.ingress.http1 import BodyReader, HttpError, Request

logger = logging.getLogger(__name__)

Endpoint = tuple[str, int]
Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]

HEADER_TIMEOUT = 60.0
"""nginx's client_header_timeout: a request head must arrive within this."""
KEEPALIVE_TIMEOUT = 75.0
"""nginx's keepalive_timeout: an idle client connection is closed after this."""
CONNECT_TIMEOUT = 5.0
"""ingress-nginx's proxy-connect-timeout."""
READ_TIMEOUT = 60.0
"""ingress-nginx's proxy-read-timeout, for the response head."""
TRIES = 3
"""proxy_next_upstream_tries: endpoints dialled before a 502."""
MAX_CONNECTIONS = 16384
"""ingress-nginx's max-worker-connections: client connections beyond it are closed."""
HIGH_WATER = 256 * 1024
"""Bytes a transport may buffer before the other side stops being read."""


@dataclass(frozen=True)
class Target:
    """Where a request goes, as the controller's routing table decides."""

    status: int = 0
    """Answer this status (404, 503, 308) instead of proxying."""
    endpoints: tuple[Endpoint, ...] = ()
    """Ready endpoints, already rotated for round-robin."""
    upstream: object = None
    """Identifies the backend, so a kept connection is reused only for the same one."""
    location: str = ""
    """For a 308: where to."""


class Router(Protocol):
    def route(self, host: str, target: bytes, https: bool, port: int) -> Target: ...


class Stats:
    """Counters the controller reports."""

    def __init__(self) -> None:
        self.connections = 0
        self.active = 0
        self.requests = 0
        self.refused = 0
        self.answered: dict[int, int] = {}


class ClientConn(asyncio.Protocol):
    """One client connection; see the module docstring."""

    def __init__(
        self,
        router: Router,
        stats: Stats,
        conns: set[ClientConn],
        spawn: Spawn,
        https: bool,
        port: int,
    ) -> None:
        self.router = router
        self.spawn = spawn
        """Starts a dial (the server's TaskSet); the task is cancelled with the connection."""
        self.stats = stats
        self.conns = conns
        self.https = https
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.buf = bytearray()
        self.req: Request | None = None
        self.req_head = b""
        """The request head as sent to the backend (for a retry on a stale connection)."""
        self.body: BodyReader | None = None
        """The request body being forwarded."""
        self.backend: BackendConn | None = None
        self.tunnel = False
        self.closing = False
        self.busy = False
        """A request is being served (from its head to its response's end)."""
        self.timer: asyncio.TimerHandle | None = None
        self.paused_by: set[str] = set()
        self.write_paused = False
        self.dialing: asyncio.Task[None] | None = None
        self.client_eof = False

    # --- transport events ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(HIGH_WATER)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else ""
        self.stats.connections += 1
        if len(self.conns) >= MAX_CONNECTIONS:
            self.stats.refused += 1
            transport.abort()
            return
        self.conns.add(self)
        self.stats.active += 1
        self._arm(HEADER_TIMEOUT, self._head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.conns:
            self.conns.discard(self)
            self.stats.active -= 1
        self.closing = True
        self._disarm()
        if self.dialing is not None:
            self.dialing.cancel()
        if self.backend is not None:
            self.backend.close()
            self.backend = None

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if self.tunnel:
            if self.backend is not None:
                self.backend.write(data)
            return
        if self.body is not None and not self.body.done and self.backend is not None:
            self._forward_body(data)
            return
        self.buf += data
        if len(self.buf) > http1.MAX_HEAD + 65536:
            self._pause("buffer")
        if not self.busy:
            self._next_request()

    def eof_received(self) -> bool | None:
        self.client_eof = True
        if self.tunnel and self.backend is not None:
            self.backend.write_eof()
            return True
        if not self.busy or (self.body is not None and not self.body.done):
            self.close()
        return True  # keep the write side for a response in flight

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.backend is not None:
            self.backend.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.backend is not None:
            self.backend.resume_reading()

    # --- requests --------------------------------------------------------------

    def _next_request(self) -> None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            line_end = self.buf.find(b"\r\n")
            if (line_end < 0 and len(self.buf) > http1.MAX_REQUEST_LINE) or (
                line_end > http1.MAX_REQUEST_LINE
            ):
                self._answer(414, keep=False)
            elif len(self.buf) > http1.MAX_HEAD:
                self._answer(494, keep=False)
            return
        if end > http1.MAX_HEAD:
            self._answer(494, keep=False)
            return
        raw = bytes(self.buf[:end])
        del self.buf[: end + 4]
        self._resume("buffer")
        if not raw.strip():
            # Empty lines between requests are tolerated (RFC 9112, 2.2).
            self.buf[:0] = raw.lstrip(b"\r\n")
            return
        try:
            req = http1.parse_request(raw.lstrip(b"\r\n"))
        except HttpError as e:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("ingress: bad request from %s: %s", self.peer, e)
            self._answer(e.status, keep=False)
            return
        self._disarm()
        self.busy = True
        self.req = req
        self.stats.requests += 1
        host = http1.get(req.headers, b"host")
        host_value = host[0].decode("latin-1") if host else ""
        target = self.router.route(host_value, req.target, self.https, self.port)
        if target.status:
            # A body we will not read makes the connection unusable afterwards.
            # nginx keeps the connection after a 308, 404 or 503, not after a 400.
            keep = (
                req.keep_alive
                and req.body.length == 0
                and not req.body.chunked
                and target.status != 400
            )
            self._answer(target.status, keep=keep, location=target.location)
            return
        self._proxy(req, host_value, target)

    def _proxy(self, req: Request, host: str, target: Target) -> None:
        headers = _backend_headers(req, host, self.peer, self.https, self.port)
        version = req.version
        first = b" ".join((req.method, req.target, version))
        self.req_head = http1.head(first, headers)
        self.body = BodyReader(req.body)
        kept = self.backend
        if kept is not None and kept.upstream == target.upstream and kept.ep in target.endpoints:
            kept.start(self, self.req_head, req.method, reused=True)
            self._flush_body()
            return
        if kept is not None:
            kept.close()
            self.backend = None
        self._pause("dial")
        self.dialing = self.spawn(self._dial(target), f"ingress-dial {self.peer}")

    async def _dial(self, target: Target) -> None:
        loop = asyncio.get_running_loop()
        for ep in target.endpoints[:TRIES]:
            try:
                _, conn = await asyncio.wait_for(
                    loop.create_connection(
                        lambda ep=ep: BackendConn(target.upstream, ep),  # type: ignore[misc]
                        ep[0],
                        ep[1],
                    ),
                    CONNECT_TIMEOUT,
                )
            except (OSError, TimeoutError) as e:
                logger.debug("ingress: connect to %s:%s failed: %s", ep[0], ep[1], e)
                continue
            self.dialing = None
            if self.closing:
                conn.close()
                return
            self.backend = conn
            self._resume("dial")
            assert self.req is not None
            conn.start(self, self.req_head, self.req.method, reused=False)
            self._flush_body()
            return
        self.dialing = None
        self._answer(502, keep=False)

    def _flush_body(self) -> None:
        """Send what of the body arrived while the backend was being chosen."""
        if self.buf and self.body is not None and not self.body.done:
            data = bytes(self.buf)
            self.buf.clear()
            self._forward_body(data)
        elif self.req is not None and self.req.upgrade and self.buf:
            pass  # bytes after an upgrade request wait for the 101

    def _forward_body(self, data: bytes) -> None:
        body, backend = self.body, self.backend
        assert body is not None and backend is not None
        try:
            n = body.feed(data)
        except HttpError:
            self.close()
            return
        backend.write(data[:n])
        if n < len(data):
            self.buf += data[n:]  # the next (pipelined) request

    def backend_failed(self, stale: bool) -> None:
        """The backend connection ended before its response did."""
        self.backend = None
        req = self.req
        if stale and req is not None and req.body.length == 0 and not req.body.chunked:
            # A kept connection the backend had closed: dial afresh (nginx retries too).
            target = self.router.route(
                (http1.get(req.headers, b"host") or [b""])[0].decode("latin-1"),
                req.target,
                self.https,
                self.port,
            )
            if not target.status:
                self._pause("dial")
                self.dialing = self.spawn(self._dial(target), f"ingress-dial {self.peer}")
                return
        self.close()

    def response_done(self, reusable: bool) -> None:
        """The backend's response ended; the connection serves the next request."""
        backend = self.backend
        if not reusable and backend is not None:
            backend.close()
            self.backend = None
        req = self.req
        if (
            req is None
            or not req.keep_alive
            or self.client_eof
            or (self.body is not None and not self.body.done)
            or (backend is not None and backend.close_client)
        ):
            self.close()
            return
        self.busy = False
        self.req = None
        self.body = None
        self._arm(KEEPALIVE_TIMEOUT, self.close)
        self._resume("buffer")
        if self.buf:
            self._next_request()

    def start_tunnel(self) -> None:
        self.tunnel = True
        self.body = None
        if self.buf and self.backend is not None:
            self.backend.write(bytes(self.buf))
            self.buf.clear()

    # --- answers and endings ------------------------------------------------------

    def _answer(self, status: int, *, keep: bool, location: str = "") -> None:
        t = self.transport
        if t is None or self.closing:
            return
        self.stats.answered[status] = self.stats.answered.get(status, 0) + 1
        head_only = self.req is not None and self.req.method == b"HEAD"
        t.write(pages.response(status, keep_alive=keep, location=location, head_only=head_only))
        if not keep:
            self.close()
            return
        self.busy = False
        self.req = None
        self.body = None
        self._arm(KEEPALIVE_TIMEOUT, self.close)
        if self.buf:
            self._next_request()

    def write(self, data: bytes | memoryview) -> None:
        if self.transport is not None and not self.closing:
            self.transport.write(data)

    def _head_timeout(self) -> None:
        self.timer = None
        if self.buf:
            self._answer(408, keep=False)
        else:
            self.close()

    def _arm(self, delay: float, fn: Callable[[], None]) -> None:
        self._disarm()
        self.timer = asyncio.get_running_loop().call_later(delay, fn)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _pause(self, why: str) -> None:
        if not self.paused_by and self.transport is not None:
            self.transport.pause_reading()
        self.paused_by.add(why)

    def _resume(self, why: str) -> None:
        if why in self.paused_by:
            self.paused_by.discard(why)
            if not self.paused_by and self.transport is not None and not self.closing:
                self.transport.resume_reading()

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        self._disarm()
        if self.backend is not None:
            self.backend.close()
            self.backend = None
        if self.transport is not None:
            self.transport.close()


class BackendConn(asyncio.Protocol):
    """The connection to one endpoint, serving one request at a time."""

    def __init__(self, upstream: object, ep: Endpoint) -> None:
        self.upstream = upstream
        self.ep = ep
        self.transport: asyncio.Transport | None = None
        self.client: ClientConn | None = None
        self.buf = bytearray()
        self.method = b"GET"
        self.body: BodyReader | None = None
        """The response body being forwarded; None while its head is awaited."""
        self.reusable = False
        self.close_client = False
        self.got_bytes = False
        self.reused = False
        self.tunnel = False
        self.closed = False
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(HIGH_WATER)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def start(self, client: ClientConn, head: bytes, method: bytes, reused: bool) -> None:
        self.client = client
        self.method = method
        self.body = None
        self.buf.clear()
        self.got_bytes = False
        self.reused = reused
        self.close_client = False
        self._disarm()
        self.timer = asyncio.get_running_loop().call_later(READ_TIMEOUT, self._timeout)
        self.write(head)

    def write(self, data: bytes | memoryview) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def write_eof(self) -> None:
        if self.transport is not None and not self.closed and self.transport.can_write_eof():
            self.transport.write_eof()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        if self.client is not None:
            self.client._pause("backend")

    def resume_writing(self) -> None:
        if self.client is not None:
            self.client._resume("backend")

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is None:
            self.close()  # bytes nobody asked for, on an idle connection
            return
        self.got_bytes = True
        if self.tunnel:
            client.write(data)
            return
        if self.body is not None:
            self._forward(data)
            return
        self.buf += data
        while self.body is None and client.busy:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > http1.MAX_RESPONSE_HEAD:
                    self._fail(502)
                return
            raw = bytes(self.buf[:end])
            del self.buf[: end + 4]
            try:
                resp = http1.parse_response(raw, self.method)
            except HttpError as e:
                logger.debug("ingress: bad response from %s:%s: %s", *self.ep, e)
                self._fail(502)
                return
            self._disarm()
            req = client.req
            assert req is not None
            if resp.status == 101 and req.upgrade:
                client.write(http1.head(resp.line, resp.headers))
                self.tunnel = True
                client.start_tunnel()
                if self.buf:
                    client.write(bytes(self.buf))
                    self.buf.clear()
                return
            keep = req.keep_alive
            headers = [(k, v) for k, v in resp.headers if k.lower() not in _DROP_RESPONSE]
            if resp.body.chunked:
                headers.append((b"Transfer-Encoding", b"chunked"))
            elif resp.body.until_close:
                keep = False
            elif (resp.status >= 200 and resp.status not in (204, 304)) or resp.body.length:
                cl = http1.get(resp.headers, b"content-length")
                if cl:
                    headers.append((b"Content-Length", cl[0]))
            if resp.status >= 200:
                headers.append((b"Connection", b"keep-alive" if keep else b"close"))
                self.close_client = not keep
            client.write(http1.head(resp.line, headers))
            if resp.status < 200:
                continue  # 100 Continue and friends: the real response follows
            self.reusable = resp.keep_alive
            self.body = BodyReader(resp.body)
            if self.body.done:
                self._done()
                return
            if self.buf:
                data = bytes(self.buf)
                self.buf.clear()
                self._forward(data)
            return

    def _forward(self, data: bytes) -> None:
        body, client = self.body, self.client
        assert body is not None and client is not None
        try:
            n = body.feed(data)
        except HttpError:
            self.close()
            client.close()
            return
        client.write(data[:n] if n < len(data) else data)
        if body.done:
            if n < len(data):
                self.reusable = False  # bytes beyond the response: do not trust it
            self._done()

    def _done(self) -> None:
        client = self.client
        self.client = None
        self.body = None
        if client is not None:
            client.response_done(self.reusable)

    def eof_received(self) -> bool | None:
        if self.tunnel and self.client is not None:
            t = self.client.transport
            if t is not None and t.can_write_eof():
                t.write_eof()
            return True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._disarm()
        client = self.client
        self.client = None
        if client is None:
            return
        if self.tunnel:
            client.close()
        elif self.body is not None and self.body.left < 0:
            # A body delimited by the end of the connection: this is its end.
            self.body = None
            client.backend = None
            client.response_done(False)
        elif not self.got_bytes and client.busy:
            if self.reused:
                client.backend_failed(stale=True)
            else:
                client.backend = None
                client._answer(502, keep=False)
        else:
            client.backend_failed(stale=False)

    def _timeout(self) -> None:
        self.timer = None
        if self.body is None and not self.tunnel:
            self._fail(504)

    def _fail(self, status: int) -> None:
        client = self.client
        self.client = None
        self.close()
        if client is not None:
            client.backend = None
            if self.got_bytes and self.body is not None:
                client.close()
            else:
                client._answer(status, keep=False)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._disarm()
            if self.transport is not None:
                self.transport.close()


_DROP_RESPONSE = frozenset({*http1.HOP_BY_HOP})
_DROP_REQUEST = frozenset(
    {
        *http1.HOP_BY_HOP,
        b"x-real-ip",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-proto",
        b"x-forwarded-scheme",
        b"x-scheme",
        b"x-request-id",
    }
)


def _backend_headers(
    req: Request, host: str, peer: str, https: bool, port: int
) -> list[tuple[bytes, bytes]]:
    dropped = {t for t in http1.tokens(req.headers, b"connection")} | _DROP_REQUEST
    request_id = http1.get(req.headers, b"x-request-id")
    out = [(k, v) for k, v in req.headers if k.lower() not in dropped]
    scheme = b"https" if https else b"http"
    client = peer.encode()
    out += [
        (b"X-Request-ID", request_id[0] if request_id else os.urandom(16).hex().encode()),
        (b"X-Real-IP", client),
        (b"X-Forwarded-For", client),
        (b"X-Forwarded-Host", host.encode("latin-1")),
        (b"X-Forwarded-Port", str(port).encode()),
        (b"X-Forwarded-Proto", scheme),
        (b"X-Forwarded-Scheme", scheme),
        (b"X-Scheme", scheme),
    ]
    if req.body.chunked:
        out.append((b"Transfer-Encoding", b"chunked"))
    elif req.body.length or http1.get(req.headers, b"content-length"):
        out.append((b"Content-Length", str(req.body.length).encode()))
    if req.upgrade:
        out += [(b"Upgrade", req.upgrade), (b"Connection", b"upgrade")]
    return out
