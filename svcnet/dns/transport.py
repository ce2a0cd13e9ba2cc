"""The DNS listeners' transport: UDP readers and TCP stream protocols.

Both hand raw messages to the server's ``dispatch`` (server.py) and send back
what it returns; the UDP reader is the hot path and drains a batch of
datagrams per wake-up straight from the socket, trying the cache's exact
answers before anything else. Kept apart from the server so the socket
handling (batching, send-buffer drops, TCP framing and idle time-outs) reads
on its own.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from svcnet.dns.server import DnsServer

logger = logging.getLogger("svcnet.dns.server")
query_log = logging.getLogger("svcnet.dns.query")


class ReplyTarget(Protocol):
    """Where a reply computed later (in a task) goes."""

    def send(self, data: bytes) -> None: ...

    def done(self) -> None: ...


class Conn(Protocol):
    def deferred(self, addr: Any) -> ReplyTarget: ...


_RECV_BATCH = 64
"""Datagrams read per wake-up: one epoll round trip serves a burst of queries."""
_RECV_SIZE = 65535


class UdpListener:
    """One UDP socket served straight from the event loop's reader callback.

    No transport object: under load the socket holds a burst of queries, and
    reading them in a loop (`_RECV_BATCH` per wake-up) costs one epoll round
    trip per burst instead of one per datagram. Replies are sent at once; a
    reply the kernel cannot take right now (EAGAIN) is dropped, as the network
    may drop any datagram, and the client retries.
    """

    def __init__(self, server: DnsServer, sock: socket.socket) -> None:
        self._server = server
        self._sock = sock
        self._exact = server.cache.exact
        self._loop = asyncio.get_running_loop()
        self._closed = False
        sock.setblocking(False)
        self._loop.add_reader(sock.fileno(), self._readable)

    @property
    def sockname(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def _readable(self) -> None:
        recv, send, exact = self._sock.recvfrom, self._sock.sendto, self._exact
        for _ in range(_RECV_BATCH):
            try:
                data, addr = recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                # ICMP errors from clients that went away; nothing to do for a server.
                logger.debug("DNS UDP socket error: %s", e)
                continue
            # The hot path: the same query bytes as before (but the id) since
            # the last change. Skipped while the per-query log is on.
            entry = exact.get(data[2:])
            try:
                if entry is not None and not query_log.isEnabledFor(logging.DEBUG):
                    entry[1] += 1
                    send(data[:2] + entry[0], addr)
                    continue
                now = self._server.dispatch(data, False, self, addr)
                if now is not None:
                    send(now, addr)
            except (BlockingIOError, InterruptedError):
                self._server.send_drops += 1
            except OSError as e:
                logger.debug("DNS UDP send to %s failed: %s", addr, e)
            except Exception:
                logger.exception("DNS: unexpected error on a UDP query from %s", addr)

    def deferred(self, addr: Any) -> ReplyTarget:
        return _UdpReply(self, addr)

    def sendto(self, data: bytes, addr: Any) -> None:
        if self._closed:
            return
        try:
            self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self._server.send_drops += 1
        except OSError as e:
            logger.debug("DNS UDP send to %s failed: %s", addr, e)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()


class _UdpReply:
    """A UDP client waiting for a deferred reply (only cache misses pay for one)."""

    __slots__ = ("_addr", "_listener")

    def __init__(self, listener: UdpListener, addr: Any) -> None:
        self._listener = listener
        self._addr = addr

    def send(self, data: bytes) -> None:
        self._listener.sendto(data, self._addr)

    def done(self) -> None:
        pass


class DnsTcpProtocol(asyncio.Protocol):
    """RFC 7766: 2-byte length prefix, pipelined queries, replies in any order."""

    def __init__(self, server: DnsServer, idle_timeout: float) -> None:
        self._server = server
        self._idle_timeout = idle_timeout
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._pending = 0
        self._idle: asyncio.TimerHandle | None = None
        self._peer: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._peer = transport.get_extra_info("peername")
        self._server.connections.add(self)
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        buf = self._buffer
        while len(buf) >= 2:
            size = (buf[0] << 8) | buf[1]
            if len(buf) < 2 + size:
                break
            msg = bytes(buf[2 : 2 + size])
            del buf[: 2 + size]
            try:
                now = self._server.dispatch(msg, True, self, self._peer)
            except Exception:
                logger.exception("DNS: unexpected error on a TCP query from %s", self._peer)
                now = None
            if now is not None:
                self.send(now)
            if self._transport is None:
                return
        self._arm_idle()

    def pause_writing(self) -> None:
        # A client that does not read its answers must not grow our buffers.
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    # The deferred-reply side (ReplyTarget).

    def deferred(self, addr: Any) -> ReplyTarget:
        self._pending += 1
        return self

    def send(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(len(data).to_bytes(2, "big") + data)

    def done(self) -> None:
        self._pending -= 1
        self._arm_idle()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(self._idle_timeout, self._on_idle)

    def _on_idle(self) -> None:
        self._idle = None
        if self._pending:
            self._arm_idle()  # still waiting on an upstream for this client
        else:
            logger.debug("DNS TCP connection from %s idle, closing", self._peer)
            self.close()


def bind_error(
    exc: OSError, host: str, port: int, proto: str, flags: tuple[str, str] = ("", "")
) -> OSError:
    """Reword a bind failure into what happened, where, and how to fix it. `flags`:
    the `svcnet up` flags that move this listener (port, address)."""
    port_flag, host_flag = flags
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    msg = f"cannot listen for DNS on {where}/{proto}: {exc.strerror or exc}"
    if exc.errno in (errno.EACCES, errno.EPERM):
        msg += (
            "; ports below 1024 need root or CAP_NET_BIND_SERVICE: run as root, "
            "grant the capability (`sudo setcap cap_net_bind_service=+ep <python>`), or "
            "allow it for everyone with `sudo sysctl net.ipv4.ip_unprivileged_port_start=53`; "
            f"or pick another port ({port_flag})"
        )
    elif exc.errno == errno.EADDRINUSE:
        msg += (
            "; another DNS server (systemd-resolved, dnsmasq, another svcnet) already "
            f"listens there: stop it or pick another port ({port_flag})"
        )
    elif exc.errno == errno.EADDRNOTAVAIL:
        msg += (
            f"; {host} is not a local address here (on macOS add it first: "
            f"`sudo ifconfig lo0 alias {host}`, or pick another address: {host_flag})"
        )
    return OSError(exc.errno, msg)
