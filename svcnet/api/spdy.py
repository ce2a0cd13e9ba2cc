"""SPDY/3.1, the server half, as kubectl's port-forward, exec and attach speak it.

kubectl (client-go's httpstream/spdy over moby/spdystream) upgrades an HTTP
request to `SPDY/3.1` (or, for port-forward, tunnels the same bytes in binary
WebSocket messages, subprotocol `SPDY/3.1+portforward.k8s.io`) and then opens
streams with SYN_STREAM frames whose headers say what each stream is for. This
module is the upgrade (`upgrade`, with apimachinery's `Handshake` as
`negotiate`), the framing and the stream bookkeeping; what the streams mean is
api/portforward.py's and api/remotecommand.py's.

What spdystream does, and so what this does:
- header blocks are zlib streams with the SPDY/3 dictionary, one compression
  context per direction for the whole connection (so every header block is
  compressed and written in order, under one lock);
- every SYN_STREAM gets a SYN_REPLY with no headers (the client waits for it);
- PINGs the client started (odd ids) are echoed;
- no flow-control windows: spdystream neither sends nor honours
  WINDOW_UPDATE, and relies on TCP. Here each stream holds at most
  STREAM_QUEUE frames; a stream whose reader is slow stops the reading of the
  whole connection (spdystream's own behaviour), never the memory bound.

Bounds: a frame over MAX_FRAME bytes, a header block over MAX_HEADER_BYTES
once inflated or with more than MAX_HEADERS pairs, or more than MAX_STREAMS
open streams end the connection (GOAWAY PROTOCOL_ERROR).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from aiohttp import web

logger = logging.getLogger(__name__)

VERSION: Final = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = (
    1,
    2,
    3,
    4,
    6,
    7,
    8,
    9,
)
FLAG_FIN: Final = 0x01
RST_PROTOCOL_ERROR, RST_INVALID_STREAM, RST_REFUSED_STREAM, RST_CANCEL = 1, 2, 3, 5
GOAWAY_OK, GOAWAY_PROTOCOL_ERROR = 0, 1

MAX_FRAME: Final = 1 << 20
"""Largest frame accepted (spdystream writes each Write() as one frame; io.Copy
writes 32 KiB)."""
DATA_CHUNK: Final = 32 << 10
"""Largest DATA frame sent."""
MAX_HEADER_BYTES: Final = 64 << 10
MAX_HEADERS: Final = 64
MAX_STREAMS: Final = 1024
"""Open streams per connection (two per forwarded connection)."""
STREAM_QUEUE: Final = 16
"""DATA frames held per stream before the connection's reading waits."""

_WORDS = [
    *(
        "options head post put delete trace accept accept-charset accept-encoding "
        "accept-language accept-ranges age allow authorization cache-control connection "
        "content-base content-encoding content-language content-length content-location "
        "content-md5 content-range content-type date etag expect expires from host if-match "
        "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
        "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
        "server te trailer transfer-encoding upgrade user-agent vary via warning "
        "www-authenticate method get status"
    ).split(),
    *("200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"),
]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417"
    "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
    "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
    "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
    "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
    "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8"
    "charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY: Final = (
    b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()
)
"""The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00 2.6.10.1):
length-prefixed header words, then a run of common values."""


class ProtocolError(Exception):
    """The peer broke SPDY framing; the connection ends."""


def control_frame(kind: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(payload)) + payload


class HeaderCodec:
    """The two zlib contexts of a connection's header blocks."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(
            9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY
        )

    def encode(self, headers: list[tuple[str, str]]) -> bytes:
        raw = [struct.pack(">I", len(headers))]
        for name, value in headers:
            n, v = name.lower().encode(), value.encode()
            raw += [struct.pack(">I", len(n)), n, struct.pack(">I", len(v)), v]
        return self._deflate.compress(b"".join(raw)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def decode(self, block: bytes) -> dict[str, str]:
        """name -> first value (names lowercase, as spdystream sends them)."""
        try:
            raw = self._inflate.decompress(block, MAX_HEADER_BYTES)
        except zlib.error as e:
            raise ProtocolError(f"header block: {e}") from None
        if self._inflate.unconsumed_tail:
            raise ProtocolError("header block too large")
        out: dict[str, str] = {}
        try:
            (count,) = struct.unpack_from(">I", raw, 0)
            if count > MAX_HEADERS:
                raise ProtocolError(f"{count} headers")
            at = 4
            for _ in range(count):
                (n,) = struct.unpack_from(">I", raw, at)
                name = raw[at + 4 : at + 4 + n]
                at += 4 + n
                (v,) = struct.unpack_from(">I", raw, at)
                value = raw[at + 4 : at + 4 + v]
                at += 4 + v
                if at > len(raw):
                    raise ProtocolError("header block truncated")
                out.setdefault(
                    name.decode("latin-1").lower(), value.split(b"\0")[0].decode("latin-1")
                )
        except struct.error:
            raise ProtocolError("header block truncated") from None
        return out


class Stream:
    """One stream the client opened: its headers, and what it sent, in order."""

    def __init__(self, session: SpdySession, stream_id: int, headers: dict[str, str]) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue(STREAM_QUEUE)
        self.remote_closed = False
        """The client sent FIN (or reset): nothing more will be read."""
        self.local_closed = False
        """FIN (or RST) sent: nothing more will be written."""
        self.reset = False

    async def read(self) -> bytes:
        """The next bytes the client sent; b"" once it closed or reset the stream."""
        if self.reset and self._inbox.empty():
            return b""
        data = await self._inbox.get()
        if not data:
            self._inbox.put_nowait(b"")  # every later read sees the end too
        return data

    async def write(self, data: bytes) -> None:
        for at in range(0, len(data), DATA_CHUNK):
            if self.local_closed:
                return
            await self.session.send(data_frame(self.id, 0, data[at : at + DATA_CHUNK]))

    async def close(self) -> None:
        """Half-close: FIN, as spdystream's Stream.Close."""
        if not self.local_closed:
            self.local_closed = True
            await self.session.send(data_frame(self.id, FLAG_FIN, b""))
            self.session.forget_if_done(self)

    async def _deliver(self, data: bytes, fin: bool) -> None:
        if self.remote_closed:
            return
        if data:
            await self._inbox.put(data)
        if fin:
            self.remote_closed = True
            await self._inbox.put(b"")
            self.session.forget_if_done(self)

    def _on_reset(self) -> None:
        self.reset = self.remote_closed = self.local_closed = True
        while not self._inbox.empty():
            self._inbox.get_nowait()
        self._inbox.put_nowait(b"")


class SpdySession:
    """A server-side SPDY/3.1 connection over any byte transport.

    `write(bytes)` sends bytes to the client and waits while its buffer is full;
    `on_stream(stream)` is called (synchronously, in order) for each stream the
    client opens, after its SYN_REPLY has been queued."""

    def __init__(
        self,
        write: Callable[[bytes], Awaitable[None]],
        on_stream: Callable[[Stream], None],
    ) -> None:
        self._write = write
        self._on_stream = on_stream
        self._codec = HeaderCodec()
        self._lock = asyncio.Lock()
        self._buf = bytearray()
        self.streams: dict[int, Stream] = {}
        self._last_id = 0
        self.closed = False

    async def send(self, frame: bytes) -> None:
        if self.closed:
            return
        async with self._lock:
            await self._write(frame)

    async def _send_headers_frame(self, kind: int, stream_id: int) -> None:
        # Compressed inside the lock: the client inflates header blocks in the
        # order they arrive, with one zlib context.
        if self.closed:
            return
        async with self._lock:
            block = self._codec.encode([])
            await self._write(control_frame(kind, 0, struct.pack(">I", stream_id) + block))

    async def reset(self, stream: Stream, status: int = RST_CANCEL) -> None:
        if stream.local_closed and stream.remote_closed:
            return
        stream._on_reset()
        self.streams.pop(stream.id, None)
        await self.send(control_frame(RST_STREAM, 0, struct.pack(">II", stream.id, status)))

    def forget_if_done(self, stream: Stream) -> None:
        if stream.local_closed and stream.remote_closed:
            self.streams.pop(stream.id, None)

    async def feed(self, data: bytes) -> None:
        """Handle bytes from the client: every whole frame in them, in order. Waits
        while a stream's queue is full (which is how reading stops)."""
        self._buf += data
        while len(self._buf) >= 8:
            word, length = struct.unpack_from(">II", self._buf, 0)
            flags, length = length >> 24, length & 0xFFFFFF
            if length > MAX_FRAME:
                raise ProtocolError(f"frame of {length} bytes")
            if len(self._buf) < 8 + length:
                return
            payload = bytes(self._buf[8 : 8 + length])
            del self._buf[: 8 + length]
            if word & 0x80000000:
                version, kind = (word >> 16) & 0x7FFF, word & 0xFFFF
                if version != VERSION:
                    raise ProtocolError(f"SPDY version {version}")
                await self._control(kind, flags, payload)
            else:
                stream = self.streams.get(word & 0x7FFFFFFF)
                if stream is not None:
                    await stream._deliver(payload, bool(flags & FLAG_FIN))

    async def _control(self, kind: int, flags: int, payload: bytes) -> None:
        if kind == SYN_STREAM:
            if len(payload) < 10:
                raise ProtocolError("short SYN_STREAM")
            stream_id = struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF
            headers = self._codec.decode(payload[10:])
            if stream_id <= self._last_id or not stream_id % 2:
                raise ProtocolError(f"stream id {stream_id}")
            if len(self.streams) >= MAX_STREAMS:
                await self.send(
                    control_frame(RST_STREAM, 0, struct.pack(">II", stream_id, RST_REFUSED_STREAM))
                )
                return
            self._last_id = stream_id
            stream = Stream(self, stream_id, headers)
            self.streams[stream_id] = stream
            await self._send_headers_frame(SYN_REPLY, stream_id)
            if flags & FLAG_FIN:
                await stream._deliver(b"", True)
            self._on_stream(stream)
        elif kind == RST_STREAM:
            if len(payload) >= 4:
                stream_id = struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF
                found = self.streams.pop(stream_id, None)
                if found is not None:
                    found._on_reset()
        elif kind == PING:
            if len(payload) == 4 and struct.unpack(">I", payload)[0] % 2:
                await self.send(control_frame(PING, 0, payload))
        elif kind == GOAWAY:
            raise EOFError
        elif kind == HEADERS:
            if len(payload) >= 4:
                self._codec.decode(payload[4:])  # keeps the zlib context in step
        # SETTINGS, WINDOW_UPDATE and unknown kinds: spdystream ignores them too.

    def end(self) -> None:
        """The connection is gone: every stream reads its end."""
        self.closed = True
        for stream in list(self.streams.values()):
            stream._on_reset()
        self.streams.clear()

    async def goaway(self, status: int = GOAWAY_OK) -> None:
        await self.send(control_frame(GOAWAY, 0, struct.pack(">II", self._last_id, status)))


# --- the HTTP upgrade ---------------------------------------------------------------

PROTOCOL_HEADER: Final = "X-Stream-Protocol-Version"
ACCEPTED_HEADER: Final = "X-Accepted-Stream-Protocol-Versions"


def is_upgrade(request: web.Request) -> bool:
    """An upgrade to SPDY/3.1, as spdy.ResponseUpgrader accepts it."""
    return "upgrade" in request.headers.get("Connection", "").lower() and (
        request.headers.get("Upgrade", "").lower() == "spdy/3.1"
    )


def offered(request: web.Request) -> list[str]:
    """The client's X-Stream-Protocol-Version values, in its order of preference."""
    return [
        p.strip()
        for h in request.headers.getall(PROTOCOL_HEADER, [])
        for p in h.split(",")
        if p.strip()
    ]


def _go_list(items: Sequence[str]) -> str:
    return "[" + " ".join(items) + "]"


def negotiate(request: web.Request, supported: Sequence[str], *, required: bool = True) -> str:
    """apimachinery's httpstream.Handshake: the first protocol the client offers that
    the server supports. Refused as the kubelet refuses (plain text, which kube-apiserver
    passes on and kubectl prints after "unable to upgrade connection: "). Without
    `required`, a client that offers nothing gets "" (port-forward's old clients)."""
    client = offered(request)
    if not client:
        if not required:
            return ""
        raise web.HTTPBadRequest(
            text=f"unable to upgrade: {PROTOCOL_HEADER} is required",
        )
    for p in client:
        if p in supported:
            return p
    raise web.HTTPForbidden(
        text=(
            f"unable to upgrade: unable to negotiate protocol: client supports "
            f"{_go_list(client)}, server accepts {_go_list(supported)}\n"
        ),
        headers=[(ACCEPTED_HEADER, p) for p in supported],
    )


class Inbox:
    """aiohttp's payload-parser hook for an upgraded connection: bytes in, read out,
    with the transport paused while LIMIT bytes wait."""

    LIMIT = 256 << 10

    def __init__(self, request: web.Request) -> None:
        self._transport = request.transport
        self._chunks: asyncio.Queue[bytes] = asyncio.Queue()
        self._size = 0
        self._paused = False

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._chunks.put_nowait(bytes(data))
        self._size += len(data)
        if self._size > self.LIMIT and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        return False, b""

    def feed_eof(self) -> None:
        self._chunks.put_nowait(b"")

    async def read(self) -> bytes:
        """The next bytes the client sent; b"" (again and again) once it closed."""
        data = await self._chunks.get()
        self._size -= len(data)
        if self._paused and self._size <= self.LIMIT // 2 and self._transport is not None:
            self._paused = False
            with contextlib.suppress(RuntimeError):
                self._transport.resume_reading()
        if not data:
            self._chunks.put_nowait(b"")
        return data


async def upgrade(request: web.Request, protocol: str) -> tuple[web.StreamResponse, Inbox]:
    """Answer 101 Switching Protocols to SPDY/3.1 (naming `protocol` when there is
    one); then the response's write() sends frames and the Inbox reads them. The
    connection closes when the handler returns the response."""
    headers = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1"}
    if protocol:
        headers[PROTOCOL_HEADER] = protocol
    resp = web.StreamResponse(status=101, headers=headers)
    resp.force_close()
    inbox = Inbox(request)
    # Installed before the 101 goes out: whatever the client sends after it is
    # SPDY, never an HTTP request for aiohttp's parser.
    request.protocol.set_parser(inbox)  # type: ignore[arg-type]
    await resp.prepare(request)
    return resp, inbox
