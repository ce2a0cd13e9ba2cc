"""pods/portforward: kube-apiserver and the kubelet's port-forward protocols.

Three ways in, one way to the pod (NodeApi.port_forward, the kubelet's dial):

- SPDY/3.1 (an HTTP upgrade, `X-Stream-Protocol-Version: portforward.k8s.io`):
  what kubectl speaks. Per local connection it opens an error stream and a
  data stream, with headers `streamType` (error/data), `port` and
  `requestID`; the pair is forwarded once both are there. The data stream
  relays both ways (a FIN from kubectl half-closes the pod connection); when
  the pod's side ends, the data stream gets FIN and the error stream closes,
  empty, or with the kubelet's message when the dial failed.
- WebSocket, subprotocol `SPDY/3.1+portforward.k8s.io`: kubectl 1.31+'s
  tunnel, the same SPDY bytes carried in binary messages (client-go's
  tools/portforward/tunneling_connection.go). kubectl falls back to plain
  SPDY when a server refuses the upgrade.
- WebSocket, `v4.channel.k8s.io` (or no subprotocol): the kubelet's channel
  protocol, which the Python client speaks. `ports=A,B` names the ports at
  the start; port i has channel 2i (data) and 2i+1 (error), and the server's
  first message on each carries the port, little-endian uint16. One pod
  connection per port, dialed when the WebSocket opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from typing import Any

from aiohttp import WSMsgType, web

from svcnet._aio import TaskSet
from svcnet.api import spdy
from svcnet.k8s.objects import Obj
from svcnet.nodeapi import NodeApi, NodeApiError, PortForwardError
from svcnet.registry.errors import bad_request

logger = logging.getLogger(__name__)

PORT_FORWARD_V1 = "portforward.k8s.io"
TUNNEL_PROTOCOL = "SPDY/3.1+" + PORT_FORWARD_V1
CHANNEL_PROTOCOL = "v4.channel.k8s.io"
STREAM_TYPE, PORT, REQUEST_ID = "streamtype", "port", "requestid"
READ_CHUNK = 32 << 10
MAX_PORTS = 64
"""Ports one WebSocket may name (kubectl sends one request per pod)."""
PAIR_TIMEOUT = 30.0
"""The kubelet's streamCreationTimeout: a stream whose partner has not come by
then is reset."""


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def serve(request: web.Request, pod: Obj, node: NodeApi | None) -> web.StreamResponse:
    if node is None:
        raise bad_request("no node agent is running, so ports cannot be forwarded")
    target = _Target(pod, node)
    if _is_websocket(request):
        offered = _offered_ws(request)
        if TUNNEL_PROTOCOL in offered:
            return await _serve_tunnel(request, target)
        return await _serve_channels(request, target)
    if not spdy.is_upgrade(request):
        raise bad_request("Upgrade request required")
    return await _serve_spdy(request, target)


def _offered_ws(request: web.Request) -> list[str]:
    return [
        p.strip()
        for h in request.headers.getall("Sec-WebSocket-Protocol", [])
        for p in h.split(",")
        if p.strip()
    ]


class _Target:
    """The pod being forwarded to, and the kubelet's words for a failed dial."""

    def __init__(self, pod: Obj, node: NodeApi) -> None:
        md = pod.get("metadata") or {}
        self.namespace = str(md.get("namespace", ""))
        self.name = str(md.get("name", ""))
        self.uid = str(md.get("uid", ""))
        self.node = node

    async def dial(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Raises _DialError with the message the kubelet writes on the error stream."""
        try:
            return await self.node.port_forward(self.namespace, self.name, port)
        except (NodeApiError, PortForwardError) as e:
            # The kubelet: "error forwarding port %d to pod %s, uid %v: %v", where
            # the pod is the sandbox's id and uid is empty under CRI.
            detail = e.strerror if isinstance(e, PortForwardError) and e.strerror else str(e)
            raise _DialError(
                f"error forwarding port {port} to pod {self.uid}, uid : {detail}"
            ) from None


class _DialError(Exception):
    pass


# --- SPDY, upgraded or tunnelled -----------------------------------------------


async def _serve_spdy(request: web.Request, target: _Target) -> web.StreamResponse:
    protocol = spdy.negotiate(request, (PORT_FORWARD_V1,), required=False)
    resp, inbox = await spdy.upgrade(request, protocol)
    session = _Forwarder(target, resp.write)
    await session.run(inbox.read)
    return resp


async def _serve_tunnel(request: web.Request, target: _Target) -> web.StreamResponse:
    ws = web.WebSocketResponse(protocols=(TUNNEL_PROTOCOL,), autoping=True)
    await ws.prepare(request)

    async def read() -> bytes:
        while True:
            msg = await ws.receive()
            if msg.type == WSMsgType.BINARY:
                if msg.data:
                    return bytes(msg.data)
                continue
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return b""

    async def write(data: bytes) -> None:
        await ws.send_bytes(data)

    try:
        await _Forwarder(target, write).run(read)
    finally:
        if not ws.closed:
            await ws.close(code=1000)
    return ws


class _Forwarder:
    """The kubelet's SPDY port-forward handler over one SPDY session."""

    def __init__(self, target: _Target, write: Any) -> None:
        self.target = target
        self.session = spdy.SpdySession(write, self._on_stream)
        self.tasks = TaskSet()
        self.pending: dict[str, tuple[spdy.Stream | None, spdy.Stream | None]] = {}

    async def run(self, read: Any) -> None:
        try:
            while True:
                data = await read()
                if not data:
                    break
                await self.session.feed(data)
        except (EOFError, ConnectionError):
            pass
        except spdy.ProtocolError as e:
            logger.debug("port-forward to %s: %s", self.target.name, e)
            with contextlib.suppress(Exception):
                await self.session.goaway(spdy.GOAWAY_PROTOCOL_ERROR)
        finally:
            self.session.end()
            await self.tasks.stop()

    def _on_stream(self, stream: spdy.Stream) -> None:
        kind = stream.headers.get(STREAM_TYPE, "")
        rid = stream.headers.get(REQUEST_ID)
        if rid is None:
            # Clients before requestID paired streams by id: the error stream, then
            # the data stream two ids later (the kubelet's fallback).
            rid = str(stream.id if kind == "error" else stream.id - 2)
        if kind not in ("data", "error"):
            self.tasks.spawn(
                self._refuse(stream, f'invalid stream type "{kind}"'), name="pf refuse"
            )
            return
        data, error = self.pending.pop(rid, (None, None))
        if kind == "data":
            data = stream
        else:
            error = stream
        if data is None or error is None:
            if len(self.pending) >= spdy.MAX_STREAMS:
                self.tasks.spawn(self.session.reset(stream), name="pf reset")
                return
            self.pending[rid] = (data, error)
            self.tasks.spawn(self._expire(rid, stream), name=f"pf pair {rid}")
            return
        self.tasks.spawn(self._forward(data, error), name=f"pf {self.target.name} {rid}")

    async def _expire(self, rid: str, stream: spdy.Stream) -> None:
        await asyncio.sleep(PAIR_TIMEOUT)
        pair = self.pending.get(rid)
        if pair is not None and stream in pair:
            del self.pending[rid]
            await self.session.reset(stream)

    async def _refuse(self, stream: spdy.Stream, message: str) -> None:
        await stream.write(message.encode())
        await stream.close()

    async def _forward(self, data: spdy.Stream, error: spdy.Stream) -> None:
        raw = data.headers.get(PORT, "")
        try:
            port = int(raw, 10)
            if not 0 < port < 65536:
                raise ValueError(raw)
        except ValueError:
            await self._refuse(error, f'unable to parse "{raw}" as a port')
            await self.session.reset(data)
            return
        try:
            reader, writer = await self.target.dial(port)
        except _DialError as e:
            await error.write(str(e).encode())
            await error.close()
            await data.close()
            return
        try:
            await _relay(reader, writer, data)
        finally:
            writer.close()
            await error.close()
            if not data.local_closed:
                await self.session.reset(data)


async def _relay(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: spdy.Stream
) -> None:
    """Both ways until the pod's side ends (its bytes sent, then FIN) or the client
    resets the stream; the client's FIN half-closes the pod connection."""
    tasks = TaskSet()

    async def upstream() -> None:
        while chunk := await data.read():
            writer.write(chunk)
            await writer.drain()
        if not data.reset and writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()

    async def downstream() -> None:
        with contextlib.suppress(OSError):
            while chunk := await reader.read(READ_CHUNK):
                if data.local_closed:
                    return
                await data.write(chunk)
        await data.close()

    up = tasks.spawn(upstream(), name="pf upstream")
    down = tasks.spawn(downstream(), name="pf downstream")
    try:
        while not down.done():
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            if up.done() and data.reset:
                break
    except (ConnectionError, OSError):
        pass
    finally:
        await tasks.stop()


# --- WebSocket channels (the Python client) --------------------------------------


def _ports(request: web.Request) -> list[int]:
    raw = [p for v in request.query.getall("ports", []) for p in v.split(",") if p]
    if not raw:
        raise bad_request("at least one port must be specified")
    if len(raw) > MAX_PORTS:
        raise bad_request(f"at most {MAX_PORTS} ports may be forwarded at once")
    ports = []
    for p in raw:
        try:
            n = int(p, 10)
        except ValueError:
            raise bad_request(f'unable to parse "{p}" as a port') from None
        if not 0 < n < 65536:
            raise bad_request(f"port {n} must be in the range 1-65535")
        ports.append(n)
    return ports


async def _serve_channels(request: web.Request, target: _Target) -> web.StreamResponse:
    ports = _ports(request)
    ws = web.WebSocketResponse(protocols=(CHANNEL_PROTOCOL,), autoping=True)
    await ws.prepare(request)
    tasks = TaskSet()
    loop = asyncio.get_running_loop()
    # What the client sends before its port's dial has finished waits for it.
    dialed: list[asyncio.Future[asyncio.StreamWriter | None]] = [
        loop.create_future() for _ in ports
    ]

    async def one(i: int, port: int) -> None:
        try:
            reader, writer = await target.dial(port)
        except _DialError as e:
            dialed[i].set_result(None)
            await ws.send_bytes(bytes([2 * i + 1]) + str(e).encode())
            return
        except BaseException:
            dialed[i].set_result(None)
            raise
        dialed[i].set_result(writer)
        try:
            with contextlib.suppress(OSError):
                while chunk := await reader.read(READ_CHUNK):
                    await ws.send_bytes(bytes([2 * i]) + chunk)
        finally:
            writer.close()

    for i, port in enumerate(ports):
        prefix = struct.pack("<H", port)
        await ws.send_bytes(bytes([2 * i]) + prefix)
        await ws.send_bytes(bytes([2 * i + 1]) + prefix)
    relays = [tasks.spawn(one(i, p), name=f"pf {target.name}:{p}") for i, p in enumerate(ports)]

    async def inbound() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, payload = msg.data[0], msg.data[1:]
            if channel % 2 or channel // 2 >= len(ports) or not payload:
                continue
            writer = await dialed[channel // 2]
            if writer is not None and not writer.is_closing():
                writer.write(payload)
                with contextlib.suppress(OSError):
                    await writer.drain()

    reading = tasks.spawn(inbound(), name=f"pf {target.name} in")
    try:
        # Until the client goes away, or every port's pod connection has ended.
        pending = {reading, *relays}
        while reading in pending and pending != {reading}:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for f in dialed:
            if f.done() and f.result() is not None:
                f.result().close()  # type: ignore[union-attr]
        await tasks.stop()
        if not ws.closed:
            await ws.close(code=1000)
    return ws
