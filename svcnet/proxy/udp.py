"""The UDP relay: datagrams to a Service address, relayed per client "session".

As kube-proxy's userspace ``proxysocket.go`` does for UDP, each client address
(ip and port) gets its own endpoint socket, chosen by the balancer (so
round-robin and ClientIP affinity apply per session, not per datagram). The
endpoint socket is a connected UDP socket: its replies go back to that client
from the Service address, and an ICMP port-unreachable from a dead endpoint
surfaces as ECONNREFUSED on it. A session whose endpoint refuses is dropped;
if that endpoint never answered, the session's last datagram is sent again
through a new session on the next endpoint (at most ``len(ATTEMPT_TIMEOUTS)``
tries in all), the UDP shape of the TCP relay's dial retries and
retry-on-empty-response: a client of a pod that just died gets its answer
from another one instead of waiting for its own timeout.

Sessions end after ``UDP_IDLE_TIMEOUT`` seconds without a datagram either way
(conntrack's UDP timeout, since iptables mode is what users know; the old
userspace proxy used a much shorter one). One sweep timer per listener runs
while it has sessions; no timer per datagram.

Like the TCP side, this is sockets in the proxy's own epoll (``poller.py``,
level-triggered here): no transports, no tasks.
Datagrams the kernel cannot take at once (a full socket buffer) are dropped,
as UDP may be.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time

from svcnet.proxy.poller import IN
from svcnet.proxy.relay import ATTEMPT_TIMEOUTS
from svcnet.proxy.target import Closable, Hub, PortTarget

logger = logging.getLogger(__name__)

UDP_IDLE_TIMEOUT = 30.0
"""Seconds a session lives without traffic (nf_conntrack_udp_timeout)."""

DATAGRAM_MAX = 65535
RECV_BATCH = 64
"""Datagrams read per readable event, at most."""

_DGRAM_NB = socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
_SOFT_ERRORS = (BlockingIOError, InterruptedError)


class UdpListener:
    """One Service address for UDP: reads client datagrams, owns their sessions."""

    __slots__ = ("fd", "hub", "idle_timeout", "sessions", "sock", "sweeper", "target")

    def __init__(
        self,
        hub: Hub,
        sock: socket.socket,
        target: PortTarget,
        idle_timeout: float = UDP_IDLE_TIMEOUT,
    ) -> None:
        self.hub = hub
        self.sock = sock
        self.fd = sock.fileno()
        self.target = target
        self.idle_timeout = idle_timeout
        self.sessions: dict[tuple[str, int], UdpSession] = {}
        self.sweeper: asyncio.TimerHandle | None = None
        hub.poller.register(self.fd, IN, self._readable)

    def _readable(self, _events: int) -> None:
        recvfrom = self.sock.recvfrom
        for _ in range(RECV_BATCH):
            try:
                data, addr = recvfrom(DATAGRAM_MAX)
            except _SOFT_ERRORS:
                return
            except OSError as e:
                # An ICMP error for an earlier reply to a client; nothing to do.
                if self.hub.debug:
                    logger.debug("%s: udp recv: %s", self.target.name, e)
                continue
            self._forward(data, addr)

    def _forward(self, data: bytes, addr: tuple[str, int], tries: int = 0) -> None:
        now = time.monotonic()
        session = self.sessions.get(addr) if tries == 0 else None
        while tries < len(ATTEMPT_TIMEOUTS):
            if session is None:
                session = self._open(addr, reset=tries > 0)
                if session is None:
                    return
                session.tries = tries
            session.last = now
            try:
                session.sock.send(data)
            except _SOFT_ERRORS:
                return  # full: drop, as UDP may
            except OSError as e:
                # ECONNREFUSED: an ICMP unreachable came back for an earlier datagram.
                self.target.retries += 1
                if self.hub.debug:
                    logger.debug("%s: endpoint %s: %s", self.target.name, session.ep, e)
                session.close()
                session = None
                tries += 1
                continue
            if not session.replied:
                session.unanswered = data
            return
        self.target.fail("every endpoint refused the datagram", self.hub.debug)

    def _open(self, addr: tuple[str, int], reset: bool) -> UdpSession | None:
        ep = self.target.balancer.pick(addr[0], reset)
        if ep is None:
            self.target.fail("no ready endpoints", self.hub.debug)
            return None
        try:
            s = socket.socket(socket.AF_INET6 if ":" in ep[0] else socket.AF_INET, _DGRAM_NB)
        except OSError as e:  # out of descriptors
            self.hub.throttle.log(
                logging.ERROR, "socket", "%s: cannot open a socket: %s", self.target.name, e
            )
            return None
        try:
            s.connect(ep)
        except OSError as e:
            s.close()
            self.hub.throttle.log(
                logging.WARNING,
                f"reach {self.target.name}",
                "%s: cannot reach endpoint %s:%d: %s",
                self.target.name,
                *ep,
                e,
            )
            return None
        session = UdpSession(self, addr, ep, s)
        self.sessions[addr] = session
        self.target.connections += 1
        self.target.active += 1
        if self.sweeper is None:
            self.sweeper = self.hub.loop.call_later(self.idle_timeout / 2, self._sweep)
        return session

    def _sweep(self) -> None:
        self.sweeper = None
        deadline = time.monotonic() - self.idle_timeout
        for s in [s for s in self.sessions.values() if s.last <= deadline]:
            s.close()
        if self.sessions:
            self.sweeper = self.hub.loop.call_later(self.idle_timeout / 2, self._sweep)

    def reply(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.sock.sendto(data, addr)
        except OSError as e:
            if self.hub.debug:
                logger.debug("%s: reply to %s: %s", self.target.name, addr, e)

    def close(self) -> None:
        """Stop listening; sessions end too (their replies would have nowhere to go)."""
        self.hub.poller.close_later(self.sock)
        for s in list(self.sessions.values()):
            s.close()
        if self.sweeper is not None:
            self.sweeper.cancel()
            self.sweeper = None


class UdpSession(Closable):
    """One client address and its endpoint socket."""

    __slots__ = ("addr", "ep", "fd", "last", "listener", "replied", "sock", "tries", "unanswered")

    def __init__(
        self, listener: UdpListener, addr: tuple[str, int], ep: tuple[str, int], sock: socket.socket
    ) -> None:
        self.listener = listener
        self.addr = addr
        self.ep = ep
        self.sock = sock
        self.fd = sock.fileno()
        self.last = time.monotonic()
        self.replied = False
        self.unanswered: bytes | None = None
        """The last datagram sent while the endpoint has not answered yet."""
        self.tries = 0
        listener.hub.sessions.add(self)
        # Through the proxy's own epoll, which reports EPOLLERR (the ICMP
        # unreachable) to the handler; uvloop's add_reader would not.
        listener.hub.poller.register(self.fd, IN, self._readable)

    def _readable(self, _events: int) -> None:
        recv = self.sock.recv
        for _ in range(RECV_BATCH):
            try:
                data = recv(DATAGRAM_MAX)
            except _SOFT_ERRORS:
                return
            except OSError:
                # The endpoint is gone (ICMP unreachable): drop the session, and
                # if it never answered, send its last datagram to the next one.
                lst = self.listener
                lst.target.retries += 1
                again, tries = self.unanswered, self.tries
                self.close()
                if again is not None:
                    lst._forward(again, self.addr, tries + 1)
                return
            self.replied = True
            self.unanswered = None
            self.last = time.monotonic()
            self.listener.reply(data, self.addr)

    def close(self) -> None:
        lst = self.listener
        if lst.sessions.get(self.addr) is self:
            del lst.sessions[self.addr]
            lst.target.active -= 1
        if self.fd >= 0:
            lst.hub.poller.close_later(self.sock)
            self.fd = -1
        lst.hub.sessions.discard(self)
