"""The TCP relay: one client connection spliced to one endpoint connection.

Both legs are ``asyncio.Protocol`` objects wired to each other, so once a
connection is set up, bytes move by callbacks alone: ``data_received`` on one
leg is a ``write`` on the other, with no task, queue or copy in between.

Set-up is the only part that needs a coroutine: ``loop.create_connection`` is
awaitable only, so each accepted connection gets one short task that dials the
endpoints and ends as soon as one answers. It follows kube-proxy's userspace
``tryConnect``: up to four dials with timeouts of 250 ms, 500 ms, 1 s and 2 s,
each to the next endpoint in the round-robin, so a pod that has just died
costs the client one refused dial, not an error. Bytes the client sends while
the dial is in progress are kept (up to ``PRECONNECT_LIMIT``, then the client
is paused) and written once the endpoint is connected.

Flow control is symmetric: when one leg's write buffer goes over its high-water
mark, asyncio calls that leg's ``pause_writing`` and we stop reading from the
other leg; ``resume_writing`` undoes it. The proxy therefore holds at most
about one high-water mark plus one read per direction, however fast one side
is and however slow the other.

Half-close is passed through: EOF from one side becomes ``write_eof`` on the
other, and the connection is closed once both directions have ended (or either
socket is lost). A client that cannot be served at all (no ready endpoint when
it is accepted, or every dial failed) is reset (SO_LINGER 0), the nearest an
accepted socket can get to the ECONNREFUSED a missing listener gives.

Nothing here logs per connection unless debug logging is on; the counters on
``PortTarget`` are the per-service-port record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from typing import NamedTuple, cast

from svcnet._aio import TaskSet
from svcnet.proxy.balancer import RoundRobin

logger = logging.getLogger(__name__)

ATTEMPT_TIMEOUTS = (0.25, 0.5, 1.0, 2.0)
"""Dial timeouts, one per attempt (kube-proxy userspace ``EndpointDialTimeouts``)."""

CLOSE_TIMEOUT = 5.0
"""How long stop() waits for aborted sockets to report closed (a bound, not a delay)."""

PRECONNECT_LIMIT = 256 * 1024
"""Client bytes buffered while the endpoint is being dialled before the client is paused."""

_LINGER_RESET = struct.pack("ii", 1, 0)


class ServicePortName(NamedTuple):
    """Which service port a listener serves: kube-proxy's ``ServicePortName``."""

    namespace: str
    name: str
    port: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port}"


class PortTarget:
    """One service port's live state, shared by all of its listeners.

    Listeners keep a reference to it, and each new connection reads the
    balancer at accept time, so an Endpoints change applies to the next
    connection without touching any socket.
    """

    __slots__ = ("active", "balancer", "connections", "failing", "failures", "name", "retries")

    def __init__(self, name: ServicePortName, balancer: RoundRobin | None = None) -> None:
        self.name = name
        self.balancer = balancer if balancer is not None else RoundRobin()
        self.connections = 0
        """Client connections accepted."""
        self.active = 0
        """Client connections open now."""
        self.failures = 0
        """Connections closed unserved: no ready endpoint, or every dial failed."""
        self.retries = 0
        """Dials that failed and moved on to the next endpoint."""
        self.failing = False
        """Set by a failure, cleared by a success: logs one warning per outage, not per client."""


class Hub:
    """What every connection of one proxier shares: the loop, dial tasks, live set.

    The live set lets ``Proxier.stop`` close every relayed connection.
    """

    __slots__ = ("conns", "debug", "drained", "loop", "tasks")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.tasks = TaskSet()
        self.conns: set[ClientSide] = set()
        self.debug = logger.isEnabledFor(logging.DEBUG)
        self.drained: asyncio.Future[None] | None = None
        """Set while close_all waits for the last connection_lost."""

    async def close_all(self) -> None:
        """Abort every connection and wait until their sockets are closed."""
        if self.conns:
            self.drained = self.loop.create_future()
            for conn in list(self.conns):
                conn.abort()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self.drained
            self.drained = None
        await self.tasks.stop()

    def buffered(self) -> int:
        """Bytes held in the proxy's write buffers, both legs of every connection."""
        total = 0
        for conn in self.conns:
            total += conn.buffered()
        return total


def _reset(transport: asyncio.Transport) -> None:
    """Close with RST rather than FIN, so the client sees an error, not an empty reply."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass
    transport.abort()


class ClientSide(asyncio.Protocol):
    """The accepted (downstream) leg; owns the connection's state."""

    __slots__ = (
        "backend_eof",
        "client_eof",
        "closed",
        "dial",
        "hub",
        "pending",
        "pending_size",
        "pre_paused",
        "target",
        "transport",
        "up",
        "up_proto",
    )

    def __init__(self, hub: Hub, target: PortTarget) -> None:
        self.hub = hub
        self.target = target
        self.transport: asyncio.Transport | None = None
        self.up: asyncio.Transport | None = None
        self.up_proto: BackendSide | None = None
        self.dial: asyncio.Task[None] | None = None
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.pre_paused = False
        self.client_eof = False
        self.backend_eof = False
        self.closed = False

    # --- client socket events ----------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence cast, not isinstance.
        self.transport = cast(asyncio.Transport, transport)
        target = self.target
        target.connections += 1
        target.active += 1
        self.hub.conns.add(self)
        # Endpoints can vanish between the kernel's accept and this callback
        # (the listener is closed at once, but this connection was already
        # queued): refuse it as the listener would have.
        if not target.balancer:
            self._fail("no ready endpoints")
            return
        self.dial = self.hub.tasks.spawn(self._connect(), name="proxy-dial")

    def data_received(self, data: bytes) -> None:
        up = self.up
        if up is not None:
            up.write(data)
            return
        self.pending.append(data)
        self.pending_size += len(data)
        if self.pending_size > PRECONNECT_LIMIT and not self.pre_paused:
            self.pre_paused = True
            assert self.transport is not None
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.client_eof = True
        up = self.up
        if up is not None:
            if not up.is_closing():
                up.write_eof()
            if self.backend_eof:
                self._close_both()
        # Keep our side open: the endpoint may still be answering.
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.target.active -= 1
        hub = self.hub
        hub.conns.discard(self)
        if hub.drained is not None and not hub.conns and not hub.drained.done():
            hub.drained.set_result(None)
        up = self.up
        if up is not None:
            if not up.is_closing():
                up.close()
        elif self.dial is not None and not self.dial.done():
            self.dial.cancel()

    # The client's socket is full: stop reading from the endpoint until it drains.
    def pause_writing(self) -> None:
        up = self.up
        if up is not None and not up.is_closing():
            up.pause_reading()

    def resume_writing(self) -> None:
        up = self.up
        if up is not None and not up.is_closing():
            up.resume_reading()

    # --- endpoint side -------------------------------------------------------

    async def _connect(self) -> None:
        target = self.target
        loop = self.hub.loop
        last: BaseException | None = None
        for timeout in ATTEMPT_TIMEOUTS:
            ep = target.balancer.next()
            if ep is None:
                break
            try:
                async with asyncio.timeout(timeout):
                    await loop.create_connection(lambda: BackendSide(self), ep[0], ep[1])
            except (OSError, TimeoutError) as e:
                if self.up is not None:
                    # Connected after all (the timeout raced the connect
                    # callback); that leg's own events now decide its fate.
                    return
                last = e
                target.retries += 1
                if self.hub.debug:
                    logger.debug("%s: dial %s:%d failed: %r", target.name, ep[0], ep[1], e)
                continue
            if target.failing:
                target.failing = False
                logger.info("%s: endpoints reachable again", target.name)
            return
        self._fail(f"failed to connect to an endpoint ({last!r})" if last else "no ready endpoints")

    def attach(self, proto: BackendSide, transport: asyncio.Transport) -> None:
        """The endpoint answered: flush what the client already sent."""
        if self.closed:
            transport.abort()
            return
        self.up = transport
        self.up_proto = proto
        client = self.transport
        assert client is not None
        if self.pre_paused:
            # Resume before flushing: the flush may itself pause the client again.
            self.pre_paused = False
            client.resume_reading()
        if self.pending:
            transport.write(b"".join(self.pending) if len(self.pending) > 1 else self.pending[0])
            self.pending = []
            self.pending_size = 0
        if self.client_eof:
            transport.write_eof()

    def backend_eof_received(self) -> None:
        self.backend_eof = True
        client = self.transport
        assert client is not None
        if not client.is_closing():
            client.write_eof()
        if self.client_eof:
            self._close_both()

    def backend_lost(self, proto: BackendSide) -> None:
        if proto is not self.up_proto:
            return
        client = self.transport
        # A clean close rather than a reset: the endpoint's last bytes may
        # still be in our buffer, and close() delivers them first.
        if client is not None and not client.is_closing():
            client.close()

    # --- endings ---------------------------------------------------------

    def _close_both(self) -> None:
        assert self.transport is not None and self.up is not None
        self.transport.close()
        self.up.close()

    def _fail(self, why: str) -> None:
        target = self.target
        target.failures += 1
        if not target.failing:
            target.failing = True
            logger.warning("%s: %s; closing client connections", target.name, why)
        elif self.hub.debug:
            logger.debug("%s: %s", target.name, why)
        if self.transport is not None and not self.transport.is_closing():
            _reset(self.transport)

    def abort(self) -> None:
        """Drop both legs now (proxier shutdown)."""
        if self.dial is not None and not self.dial.done():
            self.dial.cancel()
        if self.up is not None:
            self.up.abort()
        if self.transport is not None:
            self.transport.abort()

    def buffered(self) -> int:
        total = 0
        if self.transport is not None:
            total += self.transport.get_write_buffer_size()
        if self.up is not None:
            total += self.up.get_write_buffer_size()
        return total + self.pending_size


class BackendSide(asyncio.Protocol):
    """The dialled (upstream) leg; forwards everything to its ClientSide."""

    __slots__ = ("client", "ct")

    def __init__(self, client: ClientSide) -> None:
        self.client = client
        self.ct: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.ct = self.client.transport
        self.client.attach(self, cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        ct = self.ct
        assert ct is not None
        ct.write(data)

    def eof_received(self) -> bool:
        self.client.backend_eof_received()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.backend_lost(self)

    # The endpoint's socket is full: stop reading from the client until it drains.
    def pause_writing(self) -> None:
        ct = self.ct
        if ct is not None and not ct.is_closing():
            ct.pause_reading()

    def resume_writing(self) -> None:
        ct = self.ct
        if ct is not None and not ct.is_closing():
            ct.resume_reading()
