"""Fixtures for the DNS tests: a store, a DnsServer on 127.11.0.1 with ephemeral
ports, and a fake upstream resolver on 127.11.0.53 (tests never forward to the
machine's own resolver)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import dns.asyncquery
import dns.message
import dns.rdatatype
import pytest
from dnslib import AAAA, QTYPE, RR, A, DNSRecord

from svcnet.config import Settings
from svcnet.dns import DnsServer
from svcnet.k8s.objects import Obj
from svcnet.store import Store
from tests.slices import mirror_endpoints

HOST = "127.11.0.1"
UPSTREAM_HOST = "127.11.0.53"
SERVICE_CIDR = "127.11.96.0/20"  # kube-dns ClusterIP: 127.11.96.10
ECHO_IP = "127.96.12.34"
UPSTREAM_IP = "127.11.200.1"


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def service(name: str, ns: str = "default", **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def echo_service(cluster_ip: str = ECHO_IP) -> Obj:
    return service(
        "echo",
        type="NodePort",
        clusterIP=cluster_ip,
        clusterIPs=[cluster_ip],
        selector={"app": "echo"},
        ports=[
            {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30026}
        ],
    )


def endpoints(
    name: str, ready: list[str], not_ready: tuple[str, ...] = (), ns: str = "default"
) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": ns},
        "subsets": [
            {
                "addresses": [
                    {"ip": ip, "targetRef": {"kind": "Pod", "name": f"{name}-{i}", "namespace": ns}}
                    for i, ip in enumerate(ready)
                ],
                "notReadyAddresses": [{"ip": ip} for ip in not_ready],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            }
        ],
    }


@pytest.fixture
def store() -> Store:
    s = Store()
    mirror_endpoints(s)
    s.create(namespace("default"))
    s.create(echo_service())
    s.create(endpoints("echo", ["127.244.0.2"]))
    s.create(service("gihyo", type="ExternalName", externalName="gihyo.jp"))
    return s


class FakeUpstream:
    """A scripted resolver: `answers` maps lowercased qname to A addresses,
    `answers6` to AAAA addresses (a name in neither is NXDOMAIN).

    Names in `held` are not answered until `release` is set (a slow upstream);
    names in `truncate` get TC over UDP and the full answer over TCP.
    """

    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {"example.com.": [UPSTREAM_IP]}
        self.answers6: dict[str, list[str]] = {}
        self.held: set[str] = set()
        self.truncate: set[str] = set()
        self.release = asyncio.Event()
        self.holding = asyncio.Event()
        """Set once a held query has arrived (so a test knows it is stuck upstream)."""
        self.seen: list[tuple[str, str, int]] = []  # (transport, qname, id)
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def reply(self, data: bytes, transport: str) -> bytes:
        q = DNSRecord.parse(data)
        name = str(q.q.qname).lower()
        r = q.reply()
        r.header.aa = 0
        r.header.ra = 1
        if transport == "udp" and name in self.truncate:
            r.header.tc = 1
            return bytes(r.pack())
        if q.q.qtype == QTYPE.A:
            for ip in self.answers.get(name, []):
                r.add_answer(RR(q.q.qname, QTYPE.A, rdata=A(ip), ttl=60))
        elif q.q.qtype == QTYPE.AAAA:
            for ip in self.answers6.get(name, []):
                r.add_answer(RR(q.q.qname, QTYPE.AAAA, rdata=AAAA(ip), ttl=60))
        if name not in self.answers and name not in self.answers6:
            r.header.rcode = 3
        return bytes(r.pack())

    async def respond(self, data: bytes, transport: str) -> bytes:
        q = DNSRecord.parse(data)
        name = str(q.q.qname).lower()
        self.seen.append((transport, name, q.header.id))
        if name in self.held:
            self.holding.set()
            await self.release.wait()
        return self.reply(data, transport)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        upstream = self
        tasks: set[asyncio.Task[None]] = set()

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = cast(asyncio.DatagramTransport, transport)

            def datagram_received(self, data: bytes, addr: Any) -> None:
                async def answer() -> None:
                    self.transport.sendto(await upstream.respond(data, "udp"), addr)

                t = loop.create_task(answer())
                tasks.add(t)
                t.add_done_callback(tasks.discard)

        async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            size = int.from_bytes(await reader.readexactly(2), "big")
            out = await upstream.respond(await reader.readexactly(size), "tcp")
            writer.write(len(out).to_bytes(2, "big") + out)
            await writer.drain()
            writer.close()

        self._udp, _ = await loop.create_datagram_endpoint(Udp, local_addr=(UPSTREAM_HOST, 0))
        self.port = int(self._udp.get_extra_info("sockname")[1])
        self._tcp = await asyncio.start_server(tcp, UPSTREAM_HOST, self.port)
        self._tasks = tasks

    async def stop(self) -> None:
        self.release.set()
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
        for t in list(self._tasks):
            t.cancel()


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    up = FakeUpstream()
    await up.start()
    yield up
    await up.stop()


@pytest.fixture
def settings(upstream: FakeUpstream) -> Settings:
    s = Settings()
    s.network.service_cidr = SERVICE_CIDR
    s.dns.host = HOST
    s.dns.port = 0
    s.dns.upstream = [f"{UPSTREAM_HOST}:{upstream.port}"]
    s.dns.upstream_timeout = 1.0
    return s


@pytest.fixture
async def server(settings: Settings, store: Store) -> AsyncIterator[DnsServer]:
    settings.dns.cluster_port = 0
    srv = DnsServer(settings, store)
    await srv.start()
    yield srv
    await srv.stop()


async def ask(
    srv: DnsServer,
    name: str,
    rdtype: str = "A",
    *,
    tcp: bool = False,
    where: int = 0,
    **make: Any,
) -> dns.message.Message:
    """Query the server with dnspython (a client independent of our dnslib use)."""
    host, port = srv.addresses[where]
    q = dns.message.make_query(name, rdtype, **make)
    if tcp:
        return await dns.asyncquery.tcp(q, host, port=port, timeout=5)
    return await dns.asyncquery.udp(q, host, port=port, timeout=5)


def addresses(msg: dns.message.Message) -> set[str]:
    return {rd.to_text() for rrset in msg.answer for rd in rrset if rrset.rdtype == dns.rdatatype.A}


def update(store: Store, kind: str, ns: str, name: str, fn: Callable[[Obj], None]) -> None:
    obj = copy.deepcopy(store.get(kind, ns, name))
    assert obj is not None
    fn(obj)
    store.update(obj)
