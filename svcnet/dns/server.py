"""The DNS listeners: UDP and TCP on the host-facing address and the kube-dns ClusterIP.

One `DnsServer` owns everything: the index (fed synchronously by the store),
the handler chain (cluster, then forward), a wire-level answer cache, and per
listening address a UDP reader plus a TCP stream protocol. Both hand raw
messages to `DnsServer.dispatch`, which is transport-agnostic apart from the
size limit a reply must fit.

The hot path never leaves the UDP reader callback (`UdpListener`), which
drains up to `_RECV_BATCH` datagrams per wake-up straight from the socket:

1. exact hit: the query's bytes after the id were seen since the last
   relevant change; the stored reply bytes go back with the client's id.
2. keyed hit (`wire.fast_key`: lowercased name, type, class, RD/CD/EDNS/DO):
   the cached bytes with the client's id and spelling of the name patched in
   (a new spelling, or TCP).
3. miss on a cluster name: parsed and answered synchronously by the cluster
   handler (no task), then cached.
4. anything else (forwarding, ExternalName chasing) runs through the chain in
   a task of its own, so a slow upstream never holds up anyone else.

Cached answers are dropped inside the store's change event (see
`AnswerCache`), so an answer never outlives the state it was computed from.

Errors stay contained: an unreadable header or a response is dropped, an
unparsable query gets FORMERR, other opcodes NOTIMP, OPT or type 0 as the
question FORMERR, an unknown EDNS version BADVERS, zone transfers REFUSED, a
handler exception SERVFAIL (CoreDNS recovers panics the same way), and none
of them touches the listener. With the ``svcnet.dns.query`` logger at DEBUG,
every query gets one log line shaped like CoreDNS's ``log`` plugin.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any, Protocol, cast

from dnslib import CLASS, QTYPE, RCODE

from svcnet._aio import TaskSet
from svcnet.config import Settings
from svcnet.dns import wire
from svcnet.dns.chain import Chain, Reply
from svcnet.dns.handlers.cluster import ClusterHandler, PodMode
from svcnet.dns.handlers.forward import ForwardHandler, Upstream, resolve_upstreams
from svcnet.dns.index import ClusterIndex
from svcnet.dns.wire import Query
from svcnet.store import ReadOnlyStore

logger = logging.getLogger(__name__)
query_log = logging.getLogger("svcnet.dns.query")
"""One DEBUG line per query (CoreDNS's ``log`` plugin): enable this logger to see them."""

_BIND_ATTEMPTS = 20


Scope = tuple[str, str]


class AnswerCache:
    """Cluster answers, kept until the state they were computed from changes. Two levels:

    - by cache key (lowercased name, type, class, the flags that shape the
      reply): (wire bytes, rcode), patched per client with its id and its
      spelling of the name; used for TCP and for a new spelling.
    - ``exact``: the UDP hot path. Keyed by the query's bytes after the id,
      it holds the reply's bytes after the id, already fitted to the query's
      UDP size, so a hit costs one dict lookup and one concatenation. Each
      entry counts its hits (folded into the per-rcode and per-type totals
      when the entry goes).

    Invalidation is synchronous with the store's change event. A positive
    answer computed from one Service carries that Service's scope and is
    dropped when that Service or its Endpoints change; every other answer
    (negative ones, PTR, ExternalName chains) is dropped on any change. So a
    change to one Service does not make every other name miss at once.

    Both levels are bounded FIFOs.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: dict[bytes, tuple[bytes, int, Scope | None]] = {}
        self.exact: dict[bytes, list[Any]] = {}
        """query[2:] -> [reply[2:], hits, rcode, qtype, scope]; never replaced, only emptied."""
        self._by_scope: dict[Scope | None, set[bytes]] = {}
        self._exact_by_scope: dict[Scope | None, set[bytes]] = {}
        self.folded: dict[tuple[int, int], int] = {}
        self.generation = 0

    def get(self, key: bytes) -> tuple[bytes, int] | None:
        hit = self._entries.get(key)
        return None if hit is None else (hit[0], hit[1])

    def put(
        self, key: bytes, wire_: bytes, rcode: int, generation: int, scope: Scope | None = None
    ) -> None:
        if generation != self.generation or self._size <= 0:
            return  # computed before a change: it may already be stale
        if key not in self._entries and len(self._entries) >= self._size:
            old = next(iter(self._entries))
            self._by_scope.get(self._entries.pop(old)[2], set()).discard(old)
        self._entries[key] = (wire_, rcode, scope)
        self._by_scope.setdefault(scope, set()).add(key)

    def put_exact(
        self,
        query: bytes,
        reply: bytes,
        rcode: int,
        qtype: int,
        generation: int,
        scope: Scope | None = None,
    ) -> None:
        if generation != self.generation or self._size <= 0:
            return
        key = query[2:]
        if key not in self.exact and len(self.exact) >= self._size:
            old = next(iter(self.exact))
            entry = self.exact.pop(old)
            self._fold(entry)
            self._exact_by_scope.get(entry[4], set()).discard(old)
        self.exact[key] = [reply[2:], 0, rcode, qtype, scope]
        self._exact_by_scope.setdefault(scope, set()).add(key)

    def _fold(self, entry: list[Any]) -> None:
        if entry[1]:
            k = (entry[2], entry[3])
            self.folded[k] = self.folded.get(k, 0) + entry[1]

    def exact_hits(self) -> dict[tuple[int, int], int]:
        """Hits served by the exact cache so far, by (rcode, qtype)."""
        out = dict(self.folded)
        for entry in self.exact.values():
            if entry[1]:
                k = (entry[2], entry[3])
                out[k] = out.get(k, 0) + entry[1]
        return out

    def invalidate(self, scope: Scope | None) -> None:
        """Drop what a change to `scope` (None: to anything) may have made stale."""
        self.generation += 1
        if scope is None:
            self.clear()
            return
        for s in (scope, None):
            for key in self._by_scope.pop(s, ()):
                self._entries.pop(key, None)
            for key in self._exact_by_scope.pop(s, ()):
                entry = self.exact.pop(key, None)
                if entry is not None:
                    self._fold(entry)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._by_scope.clear()
        for entry in self.exact.values():
            self._fold(entry)
        self.exact.clear()
        self._exact_by_scope.clear()

    def __len__(self) -> int:
        return len(self._entries)


class ReplyTarget(Protocol):
    """Where a reply computed later (in a task) goes."""

    def send(self, data: bytes) -> None: ...

    def done(self) -> None: ...


class _Conn(Protocol):
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

    It listens on ``dns.host:dns.port`` and on ``Settings.kube_dns``. `stats()` holds
    per-rcode and per-qtype counters.
    """

    def __init__(
        self,
        settings: Settings,
        store: ReadOnlyStore,
        *,
        tcp_idle_timeout: float = 10.0,
        cache_size: int = 10000,
        max_pending: int = 2000,
        pods: PodMode | None = None,
    ) -> None:
        self.settings = settings
        self._tcp_idle_timeout = tcp_idle_timeout
        self._max_pending = max_pending
        # Settings.validate() has checked dns.ttl and dns.pods (CoreDNS's `pods` option).
        mode = pods or settings.dns.pods
        ttl = settings.dns.ttl
        self.cache = AnswerCache(cache_size)
        self.index = ClusterIndex(
            store, on_change=self.cache.invalidate, track_pods=mode == "verified"
        )
        net = settings.network
        self.cluster = ClusterHandler(
            self.index,
            net.cluster_domain,
            net.alias_zones,
            ttl,
            pods=mode,
            dns_ips=[settings.kube_dns[0]],
        )
        self.forward = ForwardHandler([], settings.dns.upstream_timeout)
        self.chain = Chain([self.cluster, self.forward])
        # ExternalName targets outside the zone go through the whole chain again.
        self.cluster.lookup = self.chain
        self.connections: set[DnsTcpProtocol] = set()
        self._tasks = TaskSet()
        self._udp: list[UdpListener] = []
        self.send_drops = 0
        """UDP replies dropped because the socket's send buffer was full."""
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
            self.settings.kube_dns,
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
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _ in range(_BIND_ATTEMPTS if port == 0 else 1):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError as e:
                sock.close()
                raise bind_error(e, host, port, "udp") from e
            udp = UdpListener(self, sock)
            bound = udp.sockname[1]
            try:
                tcp = await loop.create_server(
                    lambda: DnsTcpProtocol(self, self._tcp_idle_timeout),
                    host,
                    bound,
                    reuse_address=True,
                    family=family,
                )
            except OSError as e:
                udp.close()
                if port == 0 and e.errno == errno.EADDRINUSE:
                    continue  # the ephemeral UDP port is taken for TCP: try another
                raise bind_error(e, host, bound, "tcp") from e
            self._udp.append(udp)
            self._tcp.append(tcp)
            return bound
        raise OSError(errno.EADDRINUSE, f"cannot find a free port for DNS on {host}")

    async def stop(self) -> None:
        self._running = False
        self.index.stop()
        for udp in self._udp:
            udp.close()
        for srv in self._tcp:
            srv.close()
        for conn in list(self.connections):
            conn.close()
        for srv in self._tcp:
            await srv.wait_closed()
        self._udp.clear()
        self._tcp.clear()
        self._addresses.clear()
        await self._tasks.stop()

    # --- queries -----------------------------------------------------------

    def dispatch(self, data: bytes, tcp: bool, conn: _Conn, peer: Any) -> bytes | None:
        """Handle one message: the reply if it is ready now, else None.

        Cache hits and cluster answers are computed right here; a reply that
        needs an upstream is sent later to ``conn.deferred(peer)``.
        """
        self._queries += 1
        fast = wire.fast_key(data)
        if fast is not None:
            key, qend, limit = fast
            hit = self.cache.get(key)
            if hit is not None:
                cached, rcode = hit
                self._cache_hits += 1
                qtype = (data[qend - 4] << 8) | data[qend - 3]
                self._by_rcode[rcode] = self._by_rcode.get(rcode, 0) + 1
                self._by_qtype[qtype] = self._by_qtype.get(qtype, 0) + 1
                # The client's id and spelling of the name; the rest is ours.
                reply = data[:2] + cached[2:12] + data[12 : qend - 4] + cached[qend - 4 :]
                out = wire.fit(
                    reply, data, qend, wire.MAX_MESSAGE if tcp else limit, wire.key_edns_do(key)
                )
                if query_log.isEnabledFor(logging.DEBUG):
                    _log_query(peer, data, tcp, out, "cache")
                return out
        try:
            query = wire.parse_query(data, tcp=tcp)
        except wire.FormatError as e:
            self._count(wire.FORMERR, -1)
            err = wire.formerr(data)
            if query_log.isEnabledFor(logging.DEBUG):
                _log_query(peer, data, tcp, err, f"malformed: {e}")
            return err
        if query is None:
            self._dropped += 1
            if query_log.isEnabledFor(logging.DEBUG):
                _log_query(peer, data, tcp, None, "dropped: not a query")
            return None
        rcode = -1
        if query.opcode != 0:
            rcode = wire.NOTIMP  # NOTIFY, UPDATE, IQUERY, STATUS: not a resolver's job
        elif query.edns is not None and query.edns.version != 0:
            rcode = wire.BADVERS
        elif query.qtype in _META_QTYPES:
            rcode = wire.FORMERR  # RFC 6891: OPT is never a question; 0 is reserved
        if rcode >= 0:
            self._count(rcode, query.qtype)
            out = wire.empty_reply(query, rcode)
            if query_log.isEnabledFor(logging.DEBUG):
                _log_query(peer, data, tcp, out, "server")
            return out
        # Cluster names are answered synchronously: no task, no await.
        generation = self.cache.generation
        try:
            now = self.cluster.answer(query)
        except Exception:
            logger.exception("DNS: cluster lookup failed on %s", query.name)
            now = Reply(wire.empty_reply(query, wire.SERVFAIL), wire.SERVFAIL, source="error")
        if isinstance(now, Reply):
            return self._finish(query, now, generation, peer)
        if len(self._tasks) >= self._max_pending:
            # Shed load rather than queue without bound; the client will retry.
            self._dropped += 1
            if query_log.isEnabledFor(logging.DEBUG):
                _log_query(peer, data, tcp, None, "dropped: too many pending")
            return None
        self._tasks.spawn(self._answer(query, conn.deferred(peer), peer), name="dns-query")
        return None

    def _finish(self, query: Query, reply: Reply, generation: int, peer: Any) -> bytes:
        edns_do = query.edns.do if query.edns is not None else None
        out = wire.fit(reply.wire, query.data, query.qend, query.udp_limit, edns_do)
        if reply.cacheable:
            self.cache.put(query.key, reply.wire, reply.rcode, generation, reply.scope)
            if not query.tcp:
                self.cache.put_exact(
                    query.data, out, reply.rcode, query.qtype, generation, reply.scope
                )
        self._count(reply.rcode, query.qtype)
        if query_log.isEnabledFor(logging.DEBUG):
            _log_query(peer, query.data, query.tcp, out, reply.source)
        return out

    async def _answer(self, query: Query, sender: ReplyTarget, peer: Any) -> None:
        try:
            generation = self.cache.generation
            reply = await self.resolve(query)
            sender.send(self._finish(query, reply, generation, peer))
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
        """Counters since start (what the API and, later, Prometheus expose).

        ``rcodes`` and ``qtypes`` count every answered query by response code
        and question type (CoreDNS's ``coredns_dns_responses_total{rcode}`` and
        ``coredns_dns_requests_total{type}``); queries that got no answer at
        all (not a query, or shed under load) are in ``dropped``.
        """
        by_rcode = dict(self._by_rcode)
        by_qtype = dict(self._by_qtype)
        exact = 0
        for (rcode, qtype), n in self.cache.exact_hits().items():
            exact += n
            by_rcode[rcode] = by_rcode.get(rcode, 0) + n
            by_qtype[qtype] = by_qtype.get(qtype, 0) + n
        return {
            "queries": self._queries + exact,
            "cacheHits": self._cache_hits + exact,
            "cacheEntries": len(self.cache),
            "dropped": self._dropped,
            "sendDrops": self.send_drops,
            "forwardFailures": self.forward.failures,
            "forwardTcpRetries": self.forward.tcp_retries,
            "rcodes": {_rcode_name(k): v for k, v in sorted(by_rcode.items())},
            "qtypes": {_qtype_name(k): v for k, v in sorted(by_qtype.items())},
        }


_META_QTYPES = frozenset({0, wire.TYPE_OPT})

_FLAG_NAMES = ((wire.QR, "qr"), (wire.AA, "aa"), (wire.TC, "tc"), (wire.RD, "rd"), (wire.RA, "ra"))


def _log_query(peer: Any, data: bytes, tcp: bool, reply: bytes | None, source: str) -> None:
    """One line per query, shaped like CoreDNS's log plugin::

    127.0.0.1:40001 - 4242 "A IN echo.default.svc.cluster.local. udp 58" NOERROR qr,aa,rd 92 cache
    """
    try:
        q = wire.parse_query(data, tcp=tcp)
    except wire.FormatError:
        q = None
    qid = int.from_bytes(data[:2], "big") if len(data) >= 2 else -1
    if q is not None:
        question = f"{_qtype_name(q.qtype)} {_class_name(q.qclass)} {q.name}"
    else:
        question = "- - -"
    where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)
    proto = "tcp" if tcp else "udp"
    if reply is None or len(reply) < wire.HEADER_LEN:
        query_log.debug(
            '%s - %d "%s %s %d" - - 0 %s', where, qid, question, proto, len(data), source
        )
        return
    flags = int.from_bytes(reply[2:4], "big")
    names_ = ",".join(name for bit, name in _FLAG_NAMES if flags & bit)
    query_log.debug(
        '%s - %d "%s %s %d" %s %s %d %s',
        where,
        qid,
        question,
        proto,
        len(data),
        _rcode_name(wire.rcode_of(reply)),
        names_,
        len(reply),
        source,
    )


def _class_name(code: int) -> str:
    return str(CLASS.get(code, f"CLASS{code}"))


def _rcode_name(code: int) -> str:
    if code == wire.BADVERS:
        return "BADVERS"
    return str(RCODE.get(code, f"RCODE{code}"))


def _qtype_name(code: int) -> str:
    return str(QTYPE.get(code, f"TYPE{code}"))
