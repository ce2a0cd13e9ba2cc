"""The TCP relay: accepted client connections spliced to endpoint connections.

Built for connection set-up as much as for bytes, because a Service proxy in
front of HTTP/1.0-style clients spends most of its time setting connections
up. So there are no transports, Protocols or tasks here, only non-blocking
sockets and the loop's reader/writer callbacks (``add_reader`` and friends,
which both the stock loop and uvloop implement):

- The listening socket is watched with ``add_reader``; its callback accepts in
  a batch until the queue is empty.
- An endpoint is dialled with a non-blocking ``connect``. On loopback the
  handshake has completed by the time ``connect`` returns (the kernel runs
  both ends inline), which one ``getpeername`` confirms, so the common case
  takes no timer, no callback and no loop iteration. A refused dial is known
  at once too (``SO_ERROR``) and moves on to the next endpoint synchronously.
  Only a dial still in progress waits for writability, with kube-proxy
  userspace's timeouts (250 ms, 500 ms, 1 s, 2 s; at most four attempts).
- Bytes go ``recv_into`` one shared buffer, then ``send`` to the other side.
  Whatever the other side does not take at once is copied out, reading from
  the sender stops, and a writer callback finishes the send: that is the flow
  control, and it bounds what the proxy holds to one read per direction per
  connection, however fast one side is and however slow the other.
- A direction that fills a whole read (a bulk transfer: a download, an
  upload) switches to ``splice(2)`` through a pipe of its own (splice.py): the kernel
  moves the pages from one socket to the other and the bytes never enter the
  process, which halves what a large transfer costs (HAProxy's
  ``option splice-auto`` makes the same choice). The flow control is the same,
  with the pipe holding what the other side does not take yet. Small
  exchanges never pay for the pipe's two descriptors.
- Half-close is passed through (EOF one way becomes ``shutdown(SHUT_WR)`` the
  other way) and the connection is closed once both directions have ended, or
  at once when either socket fails.

No request is ever replayed (docs/architecture.md, "Surviving churn"): once
a connection to an endpoint is made, what happens to it reaches the client,
as on a cluster, where a pod that dies with a request in flight fails that
request (a POST may have had its effect). Only a connect() that fails moves on
to the next endpoint, before any byte of the client's was sent anywhere.

A client that cannot be served at all (no ready endpoint when it is accepted,
or every attempt failed) is reset (SO_LINGER 0), the nearest an accepted
socket can get to the ECONNREFUSED a missing listener gives.

Nothing here logs per connection unless debug logging is on; the counters on
``PortTarget`` are the per-service-port record.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
from _socket import socket as RawSocket

from svcnet.proxy.balancer import Endpoint
from svcnet.proxy.poller import ERR, HUP, IN, OUT, RDHUP, STREAM
from svcnet.proxy.splice import EOF, FULL, READ_SIZE, Pipe
from svcnet.proxy.target import Hub, PortTarget

logger = logging.getLogger(__name__)

ATTEMPT_TIMEOUTS = (0.25, 0.5, 1.0, 2.0)
"""Dial timeouts, one per attempt (kube-proxy userspace ``EndpointDialTimeouts``)."""

ACCEPT_BATCH = 128
"""Connections accepted per readable event of a listener, at most."""

ACCEPT_PAUSE = 0.1
"""Seconds a listener stops accepting after the process ran out of descriptors."""

_LINGER_RESET = struct.pack("ii", 1, 0)
_NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
_STREAM_NB = socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
_IN_PROGRESS = frozenset({errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY})
_DONTWAIT = socket.MSG_DONTWAIT
_FIN = RDHUP | HUP
_READABLE = IN | RDHUP | HUP | ERR

_buf = bytearray(READ_SIZE)
_view = memoryview(_buf)
"""One read buffer for every connection: the loop runs one callback at a time."""

# Connections use _socket.socket, the C type under socket.socket: socket.py's
# Python-level __init__ and close() wrappers cost more than the calls themselves
# at tens of thousands of connections per second.


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _set_reset(sock: RawSocket) -> None:
    """Make close() send RST rather than FIN, so the peer sees an error, not an empty reply."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)


class TcpListener:
    """Accepts on one listening socket for a PortTarget."""

    __slots__ = ("closed", "fd", "hub", "resume", "sock", "target")

    def __init__(self, hub: Hub, sock: socket.socket, target: PortTarget) -> None:
        self.hub = hub
        self.sock = sock
        self.fd = sock.fileno()
        self.target = target
        self.resume: asyncio.TimerHandle | None = None
        """Set while accepting is paused for lack of descriptors."""
        self.closed = False
        # Level-triggered: what one batch leaves in the queue is reported again.
        hub.poller.register(self.fd, IN, self._accept)

    def _accept(self, _events: int) -> None:
        accept = self.sock._accept  # type: ignore[attr-defined]  # (fd, addr): no socket.py wrapper
        family = self.sock.family
        hub = self.hub
        spares = hub.spares
        target = self.target
        for _ in range(ACCEPT_BATCH):
            # The endpoint's socket first: a client accepted without one could
            # only be reset (see Hub.spares).
            bs = spares.get(family)
            if bs is None:
                try:
                    bs = spares[family] = RawSocket(family, _STREAM_NB)
                except OSError as e:
                    self._out_of_descriptors(e)
                    return
            try:
                fd, addr = accept()
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR):
                    continue
                self._out_of_descriptors(e)
                return
            del spares[family]
            # Left blocking: every call below passes MSG_DONTWAIT, which saves
            # the ioctl that setblocking(False) would cost per connection.
            Conn(hub, target, RawSocket(family, socket.SOCK_STREAM, 0, fd), addr[0]).start(bs)

    def _out_of_descriptors(self, e: OSError) -> None:
        # EMFILE/ENFILE and the like: the connection stays queued. A
        # level-triggered poll would report the listener again at once (a busy
        # loop that once logged this 1.5 million times in 30 s), so stop
        # watching it for a moment, as HAProxy does, and say so once per interval.
        name = self.target.name
        self.hub.throttle.log(
            logging.ERROR,
            f"accept {name}",
            "%s: accept failed: %s; new connections wait until descriptors free up",
            name,
            e.strerror,
        )
        self._pause()

    def _pause(self) -> None:
        self.hub.poller.unregister(self.fd)
        self.resume = self.hub.loop.call_later(ACCEPT_PAUSE, self._resume)

    def _resume(self) -> None:
        self.resume = None
        if not self.closed:
            self.hub.poller.register(self.fd, IN, self._accept)

    def close(self) -> None:
        self.closed = True
        if self.resume is not None:
            self.resume.cancel()
            self.resume = None
        self.hub.poller.close_later(self.sock)


class Conn:
    """One client connection and its endpoint connection.

    Both sockets are registered edge-triggered for everything at once: a
    handler reads until a short read (all there was), and remembers a peer's
    FIN (EPOLLRDHUP), so a short read after it is the end of the stream
    without another recv. Pausing a direction is not reading it; resuming
    reads what waited.

    Field prefixes, short because the handlers read them on every event: ``c``
    is the client side and ``b`` the backend (the endpoint) side; ``cs``/``bs``
    are their sockets and ``cfd``/``bfd`` their descriptors; ``cb_`` is the
    client-to-backend direction and ``bc_`` the other; ``to_b``/``to_c`` are
    bytes waiting to be sent that way; ``ep`` is the endpoint dialled.
    """

    __slots__ = (
        "attempt",
        "b_eof",
        "b_fin",
        "b_paused",
        "bc_pipe",
        "bfd",
        "bs",
        "c_eof",
        "c_fin",
        "c_paused",
        "cb_pipe",
        "cfd",
        "client_ip",
        "closed",
        "connecting",
        "cs",
        "ep",
        "hub",
        "poller",
        "started",
        "target",
        "timer",
        "to_b",
        "to_c",
    )

    def __init__(self, hub: Hub, target: PortTarget, cs: RawSocket, client_ip: str) -> None:
        self.hub = hub
        self.poller = hub.poller
        self.target = target
        self.cs = cs
        self.cfd = cs.fileno()
        self.client_ip = client_ip
        self.bs: RawSocket | None = None
        self.bfd = -1
        self.ep: Endpoint | None = None
        self.attempt = 0
        self.timer: asyncio.TimerHandle | None = None
        self.connecting = False
        self.to_b = b""
        """Client bytes the endpoint's socket has not taken yet (reading the client waits)."""
        self.to_c = b""
        """Endpoint bytes the client's socket has not taken yet (reading the endpoint waits)."""
        self.cb_pipe: Pipe | None = None
        """Client to endpoint through splice(2), once that direction turned out bulk."""
        self.bc_pipe: Pipe | None = None
        """Endpoint to client through splice(2), likewise."""
        self.c_fin = False
        self.b_fin = False
        self.c_eof = False
        self.b_eof = False
        self.c_paused = True
        self.b_paused = False
        self.closed = False
        self.started = False
        """The client socket is registered (its edges until then are not lost)."""

    # --- set-up ----------------------------------------------------------------

    def start(self, spare: RawSocket | None = None) -> None:
        """Dial, with ``spare`` as the endpoint's socket if its family fits."""
        target = self.target
        target.connections += 1
        target.active += 1
        self.hub.conns.add(self)
        self._dial(False, spare)
        if not self.closed:
            self.poller.register(self.cfd, STREAM, self._on_client)
            self.started = True

    def _dial(self, reset: bool, spare: RawSocket | None = None) -> None:
        """Dial the next endpoint; refused dials move on synchronously.

        ``spare``, an unconnected socket, is used when its family fits.
        """
        target = self.target
        while True:
            ep = target.balancer.pick(self.client_ip, reset)
            if ep is None:
                if spare is not None:
                    spare.close()
                self._give_up("no ready endpoints")
                return
            self.ep = ep
            family = _family(ep[0])
            try:
                if spare is not None and spare.family == family:
                    bs = spare
                else:
                    if spare is not None:
                        spare.close()  # frees the descriptor the right family takes
                    bs = RawSocket(family, _STREAM_NB)
                spare = None
            except OSError as e:  # out of descriptors: this client cannot be served now
                self.hub.throttle.log(
                    logging.ERROR, "socket", "%s: cannot open a socket: %s", target.name, e
                )
                self._give_up(f"cannot open a socket: {e.strerror}")
                return
            bs.setsockopt(*_NODELAY)
            err = bs.connect_ex(ep)
            if err in _IN_PROGRESS:
                try:
                    bs.getpeername()
                    err = 0
                except OSError:
                    err = bs.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err == 0:
                        # Still in progress: the first EPOLLOUT says how it went.
                        self.bs = bs
                        self.bfd = bs.fileno()
                        self.connecting = True
                        self.poller.register(self.bfd, STREAM, self._on_backend)
                        self.timer = self.hub.loop.call_later(
                            ATTEMPT_TIMEOUTS[self.attempt], self._dial_timeout
                        )
                        return
            if err == 0:
                self.bs = bs
                self.bfd = bs.fileno()
                self.poller.register(self.bfd, STREAM, self._on_backend)
                self._connected()
                return
            bs.close()
            if not self._next_attempt(f"dial {ep[0]}:{ep[1]} failed: {errno.errorcode.get(err)}"):
                return
            reset = True

    def _next_attempt(self, why: str) -> bool:
        """Count a failed attempt; False (client given up) when none is left."""
        target = self.target
        target.retries += 1
        if self.hub.debug:
            logger.debug("%s: %s", target.name, why)
        self.attempt += 1
        if self.attempt >= len(ATTEMPT_TIMEOUTS):
            self._give_up(f"failed to connect to an endpoint ({why})")
            return False
        return True

    def _dial_done(self) -> None:
        bs = self.bs
        assert bs is not None
        self._cancel_timer()
        self.connecting = False
        err = bs.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err == 0:
            self._connected()
            return
        self._drop_backend()
        ep = self.ep
        assert ep is not None
        if self._next_attempt(f"dial {ep[0]}:{ep[1]} failed: {errno.errorcode.get(err)}"):
            self._dial(True)

    def _dial_timeout(self) -> None:
        self.timer = None
        if self.closed or not self.connecting:
            return
        self.connecting = False
        self._drop_backend()
        ep = self.ep
        assert ep is not None
        if self._next_attempt(f"dial {ep[0]}:{ep[1]} timed out"):
            self._dial(True)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _connected(self) -> None:
        target = self.target
        if target.failing:
            target.recovered()
        if self.c_eof:
            if not self.to_b:
                self._shut(self.bs)
        elif not self.to_b and self.c_paused:
            self.c_paused = False
            if self.started:
                # Registered already: what the client sent meanwhile raised no new edge.
                self._read_c()

    def _drop_backend(self) -> None:
        """Forget the endpoint connection (failed or empty); the client stays."""
        if self.bs is not None:
            self.poller.close_later(self.bs)
            self.bs = None
        self.bfd = -1
        self.to_b = b""
        self._close_pipes()
        self.b_fin = self.b_eof = self.b_paused = False

    # --- events ------------------------------------------------------------------

    # The handlers are the hot path (two calls per relayed request): module
    # constants, and the common case, a read taken whole by the other side,
    # goes through _read_c/_read_b without further calls.

    def _on_client(self, ev: int) -> None:
        if ev & _FIN:
            self.c_fin = True
        if self.to_c:
            if ev & OUT:
                self._flush_c()
        elif self.bc_pipe is not None and ev & OUT and self.bc_pipe.held:
            self._flush_pipe_c()
        if ev & _READABLE and not (self.c_paused or self.c_eof or self.closed):
            self._read_c()

    def _on_backend(self, ev: int) -> None:
        if self.connecting:
            if ev & (OUT | ERR | HUP):
                self._dial_done()
            return
        if ev & _FIN:
            self.b_fin = True
        if self.to_b:
            if ev & OUT:
                self._flush_b()
        elif self.cb_pipe is not None and ev & OUT and self.cb_pipe.held:
            self._flush_pipe_b()
        if ev & _READABLE and not (self.b_paused or self.b_eof or self.closed):
            self._read_b()

    # --- client -> endpoint ------------------------------------------------------

    def _read_c(self) -> None:
        if self.cb_pipe is not None:
            self._splice_c()
            return
        recv_into = self.cs.recv_into
        bs = self.bs
        assert bs is not None
        while True:
            try:
                n = recv_into(_buf, READ_SIZE, _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.close(reset=True)
                return
            if n == 0:
                self._client_eof()
                return
            # _send_b inlined: the endpoint's socket is non-blocking.
            try:
                sent = bs.send(_view[:n])
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self.close(reset=True)
                return
            if sent < n:
                self.to_b = bytes(_view[sent:n])
                self.c_paused = True
                return
            if n < READ_SIZE:
                if self.c_fin:
                    self._client_eof()
                return
            if (pipe := self._new_pipe()) is not None:
                # A whole read, all taken: an upload; the rest goes by splice.
                self.cb_pipe = pipe
                self._splice_c()
                return

    def _splice_c(self) -> None:
        pipe = self.cb_pipe
        assert pipe is not None
        try:
            got = pipe.pump(self.cfd, self.bfd)
        except OSError:
            self.close(reset=True)
            return
        if got == FULL:
            self.c_paused = True
        elif got == EOF:
            self._client_eof()

    def _flush_pipe_b(self) -> None:
        pipe = self.cb_pipe
        assert pipe is not None
        try:
            if not pipe.flush(self.bfd):
                return
        except OSError:
            self.close(reset=True)
            return
        if self.c_eof:
            self._shut(self.bs)
        elif self.c_paused:
            self.c_paused = False
            self._splice_c()

    def _client_eof(self) -> None:
        self.c_eof = True
        if self.b_eof:
            if not self._pending_c():
                self.close()
        elif not self.to_b and self.bs is not None and not self.connecting:
            self._shut(self.bs)

    def _send_b(self, data: bytes | memoryview) -> bool:
        """Send to the endpoint, keeping what it does not take; False if the connection moved."""
        bs = self.bs
        assert bs is not None
        try:
            sent = bs.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close(reset=True)
            return False
        if sent < len(data):
            self.to_b = bytes(data[sent:])
            self.c_paused = True
        return True

    def _flush_b(self) -> None:
        data = self.to_b
        bs = self.bs
        assert bs is not None
        try:
            sent = bs.send(data)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close(reset=True)
            return
        if sent < len(data):
            self.to_b = data[sent:]
            return
        self.to_b = b""
        if self.c_eof:
            self._shut(bs)
        elif self.c_paused:
            self.c_paused = False
            self._read_c()

    # --- endpoint -> client --------------------------------------------------------

    def _read_b(self) -> None:
        if self.bc_pipe is not None:
            self._splice_b()
            return
        bs = self.bs
        assert bs is not None
        recv_into = bs.recv_into
        send = self.cs.send
        while True:
            try:
                n = recv_into(_buf, READ_SIZE, _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.close(reset=True)
                return
            if n == 0:
                self._backend_eof()
                return
            try:
                sent = send(_view[:n], _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self.close(reset=True)
                return
            if sent < n:
                self.to_c = bytes(_view[sent:n])
                self.b_paused = True
                return
            if n < READ_SIZE:
                if self.b_fin:
                    self._backend_eof()
                return
            if (pipe := self._new_pipe()) is not None:
                # A whole read, all taken: a download; the rest goes by splice.
                self.bc_pipe = pipe
                self._splice_b()
                return

    def _splice_b(self) -> None:
        pipe = self.bc_pipe
        assert pipe is not None
        try:
            got = pipe.pump(self.bfd, self.cfd)
        except OSError:
            self.close(reset=True)
            return
        if got == FULL:
            self.b_paused = True
        elif got == EOF:
            self._backend_eof()

    def _flush_pipe_c(self) -> None:
        pipe = self.bc_pipe
        assert pipe is not None
        try:
            if not pipe.flush(self.cfd):
                return
        except OSError:
            self.close(reset=True)
            return
        if self.b_eof:
            if self.c_eof:
                self.close()
            else:
                self._shut(self.cs)
        elif self.b_paused:
            self.b_paused = False
            self._splice_b()

    def _backend_eof(self) -> None:
        self.b_eof = True
        if self.c_eof:
            if not self._pending_c():
                self.close()
        elif not self._pending_c():
            self._shut(self.cs)

    def _flush_c(self) -> None:
        data = self.to_c
        try:
            sent = self.cs.send(data, _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close(reset=True)
            return
        if sent < len(data):
            self.to_c = data[sent:]
            return
        self.to_c = b""
        if self.b_eof:
            if self.c_eof:
                self.close()
            else:
                self._shut(self.cs)
        elif self.b_paused:
            self.b_paused = False
            self._read_b()

    # --- splice ----------------------------------------------------------------

    def _new_pipe(self) -> Pipe | None:
        try:
            pipe = Pipe()
        except OSError:
            return None  # out of descriptors: copying still works
        # splice(2) honours the socket's O_NONBLOCK, not MSG_DONTWAIT.
        self.cs.setblocking(False)
        self.target.spliced += 1
        return pipe

    def _pending_c(self) -> bool:
        """Endpoint bytes are waiting for the client, copied or in a pipe."""
        return bool(self.to_c) or (self.bc_pipe is not None and self.bc_pipe.held > 0)

    def _close_pipes(self) -> None:
        if self.cb_pipe is not None:
            self.cb_pipe.close()
            self.cb_pipe = None
        if self.bc_pipe is not None:
            self.bc_pipe.close()
            self.bc_pipe = None

    # --- endings ---------------------------------------------------------------

    def _shut(self, sock: RawSocket | None) -> None:
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close(reset=True)

    def _give_up(self, why: str) -> None:
        self.target.fail(why, self.hub.debug)
        self.close(reset=True)

    def close(self, reset: bool = False) -> None:
        """Close both sides now (with RST when reset; proxier stop uses that)."""
        if self.closed:
            return
        self.closed = True
        self._cancel_timer()
        poller = self.poller
        if self.bs is not None:
            if reset:
                _set_reset(self.bs)
            poller.close_later(self.bs)
            self.bs = None
        if reset:
            _set_reset(self.cs)
        poller.close_later(self.cs)
        self.target.active -= 1
        self.hub.conns.discard(self)
        self.to_b = self.to_c = b""
        self._close_pipes()

    def buffered(self) -> int:
        held = sum(p.held for p in (self.cb_pipe, self.bc_pipe) if p is not None)
        return len(self.to_b) + len(self.to_c) + held
