"""Forwarding: names that are not the cluster's go to the upstream resolvers.

CoreDNS's ``forward . /etc/resolv.conf`` in kubeadm's Corefile. Upstreams are
`ip`, `ip:port`, `[ipv6]:port` or a resolv.conf path (its ``nameserver``
lines), tried in order within one overall budget of `timeout` seconds: each
attempt gets a fair share of what is left, so a dead first upstream (an ICMP
refusal fails at once) still leaves time for the next one.

Each query uses a fresh connected UDP socket (a random source port and a
random id: the classic cache-poisoning defences), validated by id and
question; a truncated UDP answer is retried over TCP. The client's raw query
is relayed as is (flags, EDNS and all), and the upstream's answer comes back
byte for byte with the client's id. Any failure is SERVFAIL for that query
only: each query runs in its own task, so a slow upstream never holds up a
cluster answer.

Forwarded answers are not cached yet (they would need their TTLs honoured).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from svcnet.dns import wire
from svcnet.dns.chain import Next, Reply
from svcnet.dns.wire import Query

logger = logging.getLogger(__name__)

DNS_PORT = 53
_WARN_EVERY = 60.0  # seconds between warnings about the same failing upstream


@dataclass(frozen=True, slots=True)
class Upstream:
    host: str
    port: int = DNS_PORT

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(entry: str) -> Upstream | None:
    """`ip`, `ip:port` or `[ipv6]:port` as an Upstream; None if it is not an address."""
    text = entry.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]")
        if not sep or (port and not port.startswith(":")):
            return None
        return _upstream(host, port[1:] if port else str(DNS_PORT))
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return _upstream(host, port)
    return _upstream(text, str(DNS_PORT))


def _upstream(host: str, port: str) -> Upstream | None:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
        number = int(port)
    except ValueError:
        return None
    if not 0 < number < 65536:
        return None
    scope = host[len(host.split("%", 1)[0]) :] if ip.version == 6 else ""
    return Upstream(str(ip) + scope, number)


def parse_resolv_conf(text: str) -> list[Upstream]:
    out: list[Upstream] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            up = _upstream(fields[1], str(DNS_PORT))
            if up is not None:
                out.append(up)
    return out


def resolve_upstreams(
    entries: Iterable[str], read: Callable[[str], str] = lambda p: Path(p).read_text()
) -> list[Upstream]:
    """Expand the `dns.upstream` setting; unusable entries are logged and skipped.

    A bad entry must not stop the daemon: cluster names still work without any
    upstream, and the warning says what to fix.
    """
    out: list[Upstream] = []
    for entry in entries:
        up = parse_address(entry)
        if up is not None:
            out.append(up)
            continue
        try:
            found = parse_resolv_conf(read(entry))
        except OSError as e:
            logger.warning(
                "dns.upstream entry %r is neither an address (ip, ip:port, [ipv6]:port) "
                "nor a readable resolv.conf: %s",
                entry,
                e,
            )
            continue
        if not found:
            logger.warning("dns.upstream: %s has no usable nameserver lines", entry)
        out.extend(found)
    unique: list[Upstream] = []
    for up in out:
        if up not in unique:
            unique.append(up)
    return unique


class UpstreamError(Exception):
    pass


class _UdpExchange(asyncio.DatagramProtocol):
    def __init__(self, qid: bytes, question: bytes) -> None:
        self._qid = qid
        self._question = question.lower()
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        # The socket is connected, so only the upstream's address gets here;
        # still insist on our id and question (RFC 5452), and ignore the rest.
        if self.answer.done() or not _matches(data, self._qid, self._question):
            return
        self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc or UpstreamError("socket closed"))


def _matches(data: bytes, qid: bytes, question: bytes) -> bool:
    if len(data) < wire.HEADER_LEN or data[:2] != qid or not data[2] & 0x80:
        return False
    qdcount = struct.unpack_from("!H", data, 4)[0]
    if qdcount == 0:
        return True  # FORMERR/NOTIMP replies may leave the question out
    end = wire.HEADER_LEN + len(question)
    return data[wire.HEADER_LEN : end].lower() == question


class ForwardHandler:
    name = "forward"

    def __init__(self, upstreams: Sequence[Upstream], timeout: float) -> None:
        self.upstreams = list(upstreams)
        self.timeout = timeout
        self.failures = 0
        self.tcp_retries = 0
        self._warned: dict[Upstream, float] = {}

    async def handle(self, query: Query, next: Next) -> Reply:
        answer = await self.exchange(query)
        if answer is None:
            self.failures += 1
            return Reply(wire.empty_reply(query, wire.SERVFAIL), wire.SERVFAIL, source=self.name)
        relayed = query.data[:2] + answer[2:]
        return Reply(relayed, wire.rcode_of(relayed), source=self.name)

    async def exchange(self, query: Query) -> bytes | None:
        """The first upstream answer within the budget, or None."""
        if not self.upstreams:
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        qid = secrets.randbits(16).to_bytes(2, "big")
        payload = qid + query.data[2:]
        question = query.data[wire.HEADER_LEN : query.qend]
        for i, up in enumerate(self.upstreams):
            budget = (deadline - loop.time()) / (len(self.upstreams) - i)
            if budget <= 0:
                break
            try:
                async with asyncio.timeout(budget):
                    answer = await self._udp(up, payload, qid, question)
                    if answer[2] & 0x02:  # TC: the whole answer only fits over TCP
                        self.tcp_retries += 1
                        answer = await self._tcp(up, payload, qid, question)
                return answer
            except (OSError, TimeoutError, UpstreamError, asyncio.IncompleteReadError) as e:
                self._failed(up, query, e)
        return None

    async def _udp(self, up: Upstream, payload: bytes, qid: bytes, question: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            lambda: _UdpExchange(qid, question), remote_addr=(up.host, up.port)
        )
        try:
            transport.sendto(payload)
            return await proto.answer
        finally:
            transport.close()

    async def _tcp(self, up: Upstream, payload: bytes, qid: bytes, question: bytes) -> bytes:
        # Rare (only after TC), so streams are fine here.
        reader, writer = await asyncio.open_connection(up.host, up.port)
        try:
            writer.write(len(payload).to_bytes(2, "big") + payload)
            await writer.drain()
            size = int.from_bytes(await reader.readexactly(2), "big")
            data = await reader.readexactly(size)
        finally:
            writer.close()
        if not _matches(data, qid, question.lower()):
            raise UpstreamError("TCP answer does not match the query")
        return data

    def _failed(self, up: Upstream, query: Query, exc: BaseException) -> None:
        reason = type(exc).__name__ if isinstance(exc, TimeoutError) else repr(exc)
        now = time.monotonic()
        if now - self._warned.get(up, -_WARN_EVERY) >= _WARN_EVERY:
            self._warned[up] = now
            logger.warning(
                "upstream DNS %s failed (%s); answering SERVFAIL for names it should resolve",
                up,
                reason,
            )
        logger.debug("upstream %s failed for %s: %s", up, query.name, reason)
