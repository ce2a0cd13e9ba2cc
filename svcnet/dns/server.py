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
from typing import Any

from dnslib import CLASS, QTYPE, RCODE

from svcnet._aio import TaskSet
from svcnet.config import Settings
from svcnet.dns import wire
from svcnet.dns.cache import AnswerCache
from svcnet.dns.chain import Chain, Reply
from svcnet.dns.handlers.cluster import ClusterHandler, PodMode
from svcnet.dns.handlers.forward import ForwardHandler, Upstream, resolve_upstreams
from svcnet.dns.index import ClusterIndex
from svcnet.dns.transport import Conn, DnsTcpProtocol, ReplyTarget, UdpListener, bind_error
from svcnet.dns.wire import Query
from svcnet.store import ReadOnlyStore

logger = logging.getLogger(__name__)
query_log = logging.getLogger("svcnet.dns.query")
"""One DEBUG line per query (CoreDNS's ``log`` plugin): enable this logger to see them."""

_BIND_ATTEMPTS = 20
HOST_FLAGS = ("--dns-port (dns.port)", "--dns-host (dns.host)")
"""The `svcnet up` flags (and settings) that move the host-facing listener."""
CLUSTER_FLAGS = (
    "--dns-cluster-port (dns.cluster_port)",
    "--service-cidr (network.service_cidr; kube-dns is its tenth address)",
)
"""Those that move the kube-dns ClusterIP listener."""


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
            reverse_cidrs=[net.service_cidr, net.pod_cidr],
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
            (self.settings.dns.host, self.settings.dns.port, HOST_FLAGS),
            (*self.settings.kube_dns, CLUSTER_FLAGS),
        ]
        try:
            for host, port, flags in wanted:
                if (host, port) in self._addresses:
                    continue
                self._addresses.append((host, await self._listen(host, port, flags)))
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

    async def _listen(self, host: str, port: int, flags: tuple[str, str]) -> int:
        """Bind UDP and TCP on one port (the same ephemeral one when port is 0)."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _ in range(_BIND_ATTEMPTS if port == 0 else 1):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError as e:
                sock.close()
                raise bind_error(e, host, port, "udp", flags) from e
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
                raise bind_error(e, host, bound, "tcp", flags) from e
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

    def dispatch(self, data: bytes, tcp: bool, conn: Conn, peer: Any) -> bytes | None:
        """Handle one message: the reply if it is ready now, else None.

        Cache hits and cluster answers are computed right here; a reply that
        needs an upstream is sent later to ``conn.deferred(peer)``.
        """
        self._queries += 1
        fast = wire.fast_key(data)
        if fast is not None:
            key, qend, limit = fast
            hit = self.cache.get(key, data[12 : qend - 4])
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
            spelling = query.data[wire.HEADER_LEN : query.name_end] if reply.spelled else None
            self.cache.put(query.key, reply.wire, reply.rcode, generation, reply.scope, spelling)
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
