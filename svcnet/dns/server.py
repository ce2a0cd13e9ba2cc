"""The DNS listeners: UDP and TCP on the host-facing address and the kube-dns ClusterIP.

One `DnsServer` owns everything: the index (fed synchronously by the store),
the handler chain (cluster, then forward), a wire-level answer cache, and a
datagram protocol plus a stream protocol per listening address. Both
protocols hand raw messages to `DnsServer.dispatch`, which is transport-
agnostic apart from the size limit a reply must fit.

The hot path is a cache hit and never leaves ``datagram_received``: the query
is keyed with `wire.fast_key` (lowercased name, type, class, RD/CD/EDNS/DO
bits), and the cached bytes are sent back with the client's id and the
client's spelling of the name patched in. Only misses are parsed fully and run
through the chain in a task of their own; answers that depend on the cluster
index alone are then cached. Any Service, Endpoints or Namespace change clears
the cache inside the store's event, so an answer never outlives the state it
was computed from.

Errors stay contained: an unreadable header is dropped, an unparsable query
gets FORMERR, a handler exception gets SERVFAIL (CoreDNS recovers panics the
same way), and none of them touches the listener.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any, Protocol, cast

from dnslib import QTYPE, RCODE

from svcnet._aio import TaskSet
from svcnet.config import Settings
from svcnet.dns import wire
from svcnet.dns.chain import Chain, Reply
from svcnet.dns.handlers.cluster import ClusterHandler
from svcnet.dns.handlers.forward import ForwardHandler, Upstream, resolve_upstreams
from svcnet.dns.index import ClusterIndex
from svcnet.dns.wire import Query
from svcnet.store import Store

logger = logging.getLogger(__name__)

_BIND_ATTEMPTS = 20


class AnswerCache:
    """Cluster answers by cache key: (wire bytes, rcode), dropped on any index change.

    Bounded FIFO: the index changes far more often than the cache fills.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: dict[bytes, tuple[bytes, int]] = {}
        self.generation = 0

    def get(self, key: bytes) -> tuple[bytes, int] | None:
        return self._entries.get(key)

    def put(self, key: bytes, wire_: bytes, rcode: int, generation: int) -> None:
        if generation != self.generation or self._size <= 0:
            return  # computed before a change: it may already be stale
        if len(self._entries) >= self._size:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (wire_, rcode)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class ReplyTarget(Protocol):
    """Where a reply computed later (in a task) goes."""

    def send(self, data: bytes) -> None: ...

    def done(self) -> None: ...


class _Conn(Protocol):
    def deferred(self, addr: Any) -> ReplyTarget: ...


class _UdpReply:
    """A UDP client waiting for a deferred reply (only cache misses pay for one)."""

    __slots__ = ("_addr", "_transport")

    def __init__(self, transport: asyncio.DatagramTransport, addr: Any) -> None:
        self._transport = transport
        self._addr = addr

    def send(self, data: bytes) -> None:
        if not self._transport.is_closing():
            self._transport.sendto(data, self._addr)

    def done(self) -> None:
        pass


class DnsUdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        """Resolves once the socket is really closed (transport.close() only schedules it)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        transport = self._transport
        if transport is None:
            return
        try:
            now = self._server.dispatch(data, False, self, addr)
            if now is not None:
                transport.sendto(now, addr)
        except Exception:
            logger.exception("DNS: unexpected error on a UDP query from %s", addr)

    def deferred(self, addr: Any) -> ReplyTarget:
        assert self._transport is not None
        return _UdpReply(self._transport, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors from clients that went away; nothing to do for a server.
        logger.debug("DNS UDP socket error: %s", exc)


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


def bind_error(exc: OSError, host: str, port: int, proto: str) -> OSError:
    """Reword a bind failure into what happened, where, and how to fix it."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    msg = f"cannot listen for DNS on {where}/{proto}: {exc.strerror or exc}"
    if exc.errno in (errno.EACCES, errno.EPERM):
        msg += (
            "; ports below 1024 need root or CAP_NET_BIND_SERVICE: run as root, "
            "grant the capability (`sudo setcap cap_net_bind_service=+ep <python>`), or "
            "allow it for everyone with `sudo sysctl net.ipv4.ip_unprivileged_port_start=53`; "
            "or pick another port (--dns-port)"
        )
    elif exc.errno == errno.EADDRINUSE:
        msg += (
            "; another DNS server (systemd-resolved, dnsmasq, another svcnet) already "
            "listens there: stop it or pick another port (--dns-port)"
        )
    elif exc.errno == errno.EADDRNOTAVAIL:
        msg += (
            f"; {host} is not a local address here (on macOS add it first: "
            f"`sudo ifconfig lo0 alias {host}`)"
        )
    return OSError(exc.errno, msg)


class DnsServer:
    """Cluster DNS: see the module docstring.

    `cluster_port` is the kube-dns ClusterIP's port (53, as pods expect; tests
    pass 0). `stats()` holds per-rcode and per-qtype counters.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        cluster_port: int = 53,
        tcp_idle_timeout: float = 10.0,
        cache_size: int = 10000,
        max_pending: int = 2000,
    ) -> None:
        self.settings = settings
        self._cluster_port = cluster_port
        self._tcp_idle_timeout = tcp_idle_timeout
        self._max_pending = max_pending
        self.cache = AnswerCache(cache_size)
        self.index = ClusterIndex(store, on_change=self.cache.clear)
        net = settings.network
        self.cluster = ClusterHandler(
            self.index, net.cluster_domain, net.alias_zones, settings.dns.ttl
        )
        self.forward = ForwardHandler([], settings.dns.upstream_timeout)
        self.chain = Chain([self.cluster, self.forward])
        self.connections: set[DnsTcpProtocol] = set()
        self._tasks = TaskSet()
        self._udp: list[tuple[asyncio.DatagramTransport, DnsUdpProtocol]] = []
        self._tcp: list[asyncio.Server] = []
        self._addresses: list[tuple[str, int]] = []
        self._running = False
        self._queries = 0
        self._cache_hits = 0
        self._dropped = 0
        self._by_rcode: dict[int, int] = {}
        self._by_qtype: dict[int, int] = {}

    # --- lifecycle ---------------------------------------------------------

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """(host, port) of each listener; UDP and TCP share the port."""
        return list(self._addresses)

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        self.index.start()
        wanted = [
            (self.settings.dns.host, self.settings.dns.port),
            (self.settings.network.dns_service_ip, self._cluster_port),
        ]
        try:
            for host, port in wanted:
                if (host, port) in self._addresses:
                    continue
                self._addresses.append((host, await self._listen(host, port)))
        except BaseException:
            await self.stop()
            raise
        self.forward.upstreams = self._upstreams()
        logger.info(
            "DNS listening on %s; forwarding to %s",
            ", ".join(f"{h}:{p}" for h, p in self._addresses),
            ", ".join(map(str, self.forward.upstreams)) or "nothing (no upstream configured)",
        )

    def _upstreams(self) -> list[Upstream]:
        ups = resolve_upstreams(self.settings.dns.upstream)
        own = {(h, p) for h, p in self._addresses}
        kept = [u for u in ups if (u.host, u.port) not in own]
        if len(kept) != len(ups):
            # Forwarding to ourselves would loop until every query timed out.
            logger.warning("dns.upstream: ignoring our own listening address(es)")
        return kept

    async def _listen(self, host: str, port: int) -> int:
        """Bind UDP and TCP on one port (the same ephemeral one when port is 0)."""
        loop = asyncio.get_running_loop()
        for _ in range(_BIND_ATTEMPTS if port == 0 else 1):
            try:
                udp, udp_proto = await loop.create_datagram_endpoint(
                    lambda: DnsUdpProtocol(self), local_addr=(host, port)
                )
            except OSError as e:
                raise bind_error(e, host, port, "udp") from e
            bound = int(udp.get_extra_info("sockname")[1])
            try:
                tcp = await loop.create_server(
                    lambda: DnsTcpProtocol(self, self._tcp_idle_timeout),
                    host,
                    bound,
                    reuse_address=True,
                    family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                )
            except OSError as e:
                udp.close()
                await udp_proto.closed
                if port == 0 and e.errno == errno.EADDRINUSE:
                    continue  # the ephemeral UDP port is taken for TCP: try another
                raise bind_error(e, host, bound, "tcp") from e
            self._udp.append((udp, udp_proto))
            self._tcp.append(tcp)
            return bound
        raise OSError(errno.EADDRINUSE, f"cannot find a free port for DNS on {host}")

    async def stop(self) -> None:
        self._running = False
        self.index.stop()
        for udp, _ in self._udp:
            udp.close()
        for srv in self._tcp:
            srv.close()
        for conn in list(self.connections):
            conn.close()
        for srv in self._tcp:
            await srv.wait_closed()
        for _, proto in self._udp:
            await proto.closed
        self._udp.clear()
        self._tcp.clear()
        self._addresses.clear()
        await self._tasks.stop()

    # --- queries -----------------------------------------------------------

    def dispatch(self, data: bytes, tcp: bool, conn: _Conn, peer: Any) -> bytes | None:
        """Handle one message: the reply if it is ready now, else None.

        A reply that needs the chain is sent later to ``conn.deferred(peer)``.
        """
        self._queries += 1
        fast = wire.fast_key(data)
        if fast is not None:
            key, qend, limit = fast
            hit = self.cache.get(key)
            if hit is not None:
                cached, rcode = hit
                self._cache_hits += 1
                self._count(rcode, (data[qend - 4] << 8) | data[qend - 3])
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("query %r from %s: %s (cached)", data[12 : qend - 4], peer, rcode)
                # The client's id and spelling of the name; the rest is ours.
                reply = data[:2] + cached[2:12] + data[12 : qend - 4] + cached[qend - 4 :]
                return wire.fit(
                    reply, data, qend, wire.MAX_MESSAGE if tcp else limit, wire.key_edns_do(key)
                )
        try:
            query = wire.parse_query(data, tcp=tcp)
        except wire.FormatError as e:
            logger.debug("malformed query from %s: %s", peer, e)
            self._count(wire.FORMERR, -1)
            return wire.formerr(data)
        if query is None:
            self._dropped += 1
            return None
        if query.opcode != 0:
            self._count(wire.NOTIMP, query.qtype)
            return wire.empty_reply(query, wire.NOTIMP)
        if query.edns is not None and query.edns.version != 0:
            self._count(wire.BADVERS, query.qtype)
            return wire.empty_reply(query, wire.BADVERS)
        if len(self._tasks) >= self._max_pending:
            # Shed load rather than queue without bound; the client will retry.
            self._dropped += 1
            return None
        self._tasks.spawn(self._answer(query, conn.deferred(peer)), name="dns-query")
        return None

    async def _answer(self, query: Query, sender: ReplyTarget) -> None:
        try:
            generation = self.cache.generation
            reply = await self.resolve(query)
            if reply.cacheable:
                self.cache.put(query.key, reply.wire, reply.rcode, generation)
            self._count(reply.rcode, query.qtype)
            logger.debug(
                "query %s %s from %s: %s by %s",
                query.name,
                query.qtype,
                "tcp" if query.tcp else "udp",
                reply.rcode,
                reply.source,
            )
            edns_do = query.edns.do if query.edns is not None else None
            sender.send(wire.fit(reply.wire, query.data, query.qend, query.udp_limit, edns_do))
        finally:
            sender.done()

    async def resolve(self, query: Query) -> Reply:
        """Run the chain; an exception in a handler is SERVFAIL for this query only."""
        try:
            return await self.chain(query)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("DNS handler failed on %s", query.name)
            return Reply(wire.empty_reply(query, wire.SERVFAIL), wire.SERVFAIL, source="error")

    # --- stats -------------------------------------------------------------

    def _count(self, rcode: int, qtype: int) -> None:
        self._by_rcode[rcode] = self._by_rcode.get(rcode, 0) + 1
        if qtype >= 0:
            self._by_qtype[qtype] = self._by_qtype.get(qtype, 0) + 1

    def stats(self) -> dict[str, Any]:
        return {
            "queries": self._queries,
            "cacheHits": self._cache_hits,
            "cacheEntries": len(self.cache),
            "dropped": self._dropped,
            "forwardFailures": self.forward.failures,
            "forwardTcpRetries": self.forward.tcp_retries,
            "rcodes": {_rcode_name(k): v for k, v in sorted(self._by_rcode.items())},
            "qtypes": {_qtype_name(k): v for k, v in sorted(self._by_qtype.items())},
        }


def _rcode_name(code: int) -> str:
    if code == wire.BADVERS:
        return "BADVERS"
    return str(RCODE.get(code, f"RCODE{code}"))


def _qtype_name(code: int) -> str:
    return str(QTYPE.get(code, f"TYPE{code}"))
