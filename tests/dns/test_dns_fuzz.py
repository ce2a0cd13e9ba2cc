"""Fuzzing a running DnsServer: 100,000 random and mutated UDP packets plus TCP streams.

A seeded generator (so a failure replays exactly) mixes three kinds of input:
pure random bytes; valid queries mutated (bit flips, byte overwrites,
truncation, insertion, header fields, counts, OPT records, compression
pointers); and well-formed queries with random names, types, classes,
opcodes and flags, in and out of the cluster zones. Names outside the zones
reach a fake upstream on loopback that answers every datagram at once.

The oracle, checked throughout:
- every reply is a well-formed DNS message (dnspython parses it) answering an
  id we sent, with QR set;
- after every window of packets, a valid query still gets the right answer;
- nothing was logged at ERROR (an unexpected exception anywhere in the
  server logs there), and the server counted every packet.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import pytest

from svcnet.config import Settings
from svcnet.dns import DnsServer
from svcnet.store import Store
from tests.dns.conftest import ECHO_IP, UPSTREAM_HOST, addresses

pytestmark = pytest.mark.slow

PACKETS = 100_000
TCP_MESSAGES = 10_000
WINDOW = 100

NAMES = [
    b"echo.default.svc.cluster.local",
    b"gihyo.default.svc.cluster.local",
    b"_http._tcp.echo.default.svc.cluster.local",
    b"127-244-0-2.echo.default.svc.cluster.local",
    b"127-244-0-2.default.pod.cluster.local",
    b"dns-version.cluster.local",
    b"cluster.local",
    b"echo",
    b"echo.default",
    b"nosuch.default.svc.local",
    b"34.12.96.127.in-addr.arpa",
    b"example.com",
    b"a.b.c.d.e.f.example.org",
]
QTYPES = [1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 251, 252, 255, 0, 65535, 99]


def encode_name(name: bytes) -> bytes:
    return b"".join(bytes((len(p),)) + p for p in name.split(b".") if p) + b"\0"


def query(rng: random.Random, qid: int) -> bytes:
    """A well-formed query with random contents."""
    name = rng.choice(NAMES)
    if rng.random() < 0.3:
        name = bytes(rng.choice(b"abcXYZ019-_*.") for _ in range(rng.randrange(1, 40))).strip(b".")
        name = b".".join(p[:63] for p in name.split(b".") if p) or b"x"
    flags = rng.choice([0x0100, 0x0000, 0x0110, rng.getrandbits(16) & ~0x8000])
    ar = 0
    tail = b""
    if rng.random() < 0.4:
        ar = 1
        ttl = rng.choice([0, 0x8000, rng.getrandbits(32)])
        tail = b"\0" + struct.pack("!HHIH", 41, rng.choice([0, 512, 1232, 4096, 65535]), ttl, 0)
    qtype = rng.choice(QTYPES)
    qclass = rng.choice([1, 1, 1, 3, 255, rng.getrandbits(16)])
    return (
        struct.pack("!6H", qid, flags, 1, 0, 0, ar)
        + encode_name(name)
        + struct.pack("!HH", qtype, qclass)
        + tail
    )


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(7)
        if op == 0 and b:  # bit flip
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:  # byte overwrite
            b[rng.randrange(len(b))] = rng.choice([0, 0xC0, 0x3F, 0x40, 0xFF, rng.getrandbits(8)])
        elif op == 2:  # truncate
            del b[rng.randrange(len(b) + 1) :]
        elif op == 3:  # insert bytes
            i = rng.randrange(len(b) + 1)
            b[i:i] = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 8)))
        elif op == 4 and len(b) >= 12:  # section counts
            i = rng.choice([4, 6, 8, 10])
            b[i : i + 2] = struct.pack("!H", rng.choice([0, 1, 2, 0xFFFF]))
        elif op == 5 and len(b) >= 4:  # opcode / QR / rcode bits
            b[2] = rng.getrandbits(8)
        elif op == 6 and len(b) > 13:  # a compression pointer in the question
            i = rng.randrange(12, len(b) - 1)
            b[i : i + 2] = struct.pack("!H", 0xC000 | rng.randrange(0, len(b)))
    return bytes(b)


def packet(rng: random.Random, qid: int) -> bytes:
    r = rng.random()
    if r < 0.2:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300)))
    if r < 0.4:
        return query(rng, qid)
    return mutate(rng, query(rng, qid))


def check_reply(reply: bytes, sent_ids: set[int]) -> None:
    qid, flags = struct.unpack_from("!HH", reply)
    assert flags & dns.flags.QR
    assert qid in sent_ids, qid
    if flags & 0x7800:
        # Not a QUERY (dnspython would read an UPDATE's sections by RFC 2136's
        # rules): a server that does not implement it says so.
        assert flags & 0xF in (dns.rcode.NOTIMP, dns.rcode.FORMERR), flags
        return
    msg = dns.message.from_wire(reply, ignore_trailing=False)
    assert msg.id == qid


class InstantUpstream(asyncio.DatagramProtocol):
    """Answers every datagram at once: the header's id, QR, NXDOMAIN, the question if any."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) < 12:
            return
        try:
            q = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return
        r = dns.message.make_response(q)
        r.set_rcode(dns.rcode.NXDOMAIN)
        self.transport.sendto(r.to_wire(), addr)


@pytest.fixture
async def fuzz_server(settings: Settings, store: Store) -> AsyncIterator[DnsServer]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        InstantUpstream, local_addr=(UPSTREAM_HOST, 0)
    )
    settings.dns.upstream = [f"{UPSTREAM_HOST}:{transport.get_extra_info('sockname')[1]}"]
    settings.dns.cluster_port = 0
    srv = DnsServer(settings, store)
    await srv.start()
    yield srv
    await srv.stop()
    transport.close()


def probe(qid: int) -> bytes:
    q = dns.message.make_query("echo.default.svc.cluster.local", "A")
    q.id = qid
    return q.to_wire()


def assert_probe_answer(reply: bytes) -> None:
    assert addresses(dns.message.from_wire(reply)) == {ECHO_IP}


async def test_udp_fuzz(fuzz_server: DnsServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="svcnet")
    rng = random.Random(20240603)
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.bind(("127.11.0.3", 0))
    sock.connect(fuzz_server.addresses[0])
    sock.setblocking(False)
    sent_ids: set[int] = set()
    replies = 0
    with sock:
        for start in range(0, PACKETS, WINDOW):
            for _ in range(WINDOW):
                data = packet(rng, rng.getrandbits(16))
                if len(data) >= 2:
                    sent_ids.add(struct.unpack_from("!H", data)[0])
                sock.send(data)
            probe_id = start // WINDOW % 0x10000
            sent_ids.add(probe_id)
            sock.send(probe(probe_id))
            while True:
                reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), 10)
                replies += 1
                check_reply(reply, sent_ids)
                if reply[:2] == struct.pack("!H", probe_id) and len(reply) > 12:
                    msg = dns.message.from_wire(reply)
                    if msg.question and msg.question[0].name.to_text() == (
                        "echo.default.svc.cluster.local."
                    ):
                        assert_probe_answer(reply)
                        break
    stats = fuzz_server.stats()
    assert stats["queries"] >= PACKETS
    assert replies > PACKETS // 2  # most packets get an answer (FORMERR at least)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_tcp_fuzz(fuzz_server: DnsServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="svcnet")
    rng = random.Random(7)
    host, port = fuzz_server.addresses[0]
    per_conn = 500
    for c in range(TCP_MESSAGES // per_conn):
        reader, writer = await asyncio.open_connection(host, port)
        sent_ids: set[int] = set()
        for _ in range(per_conn):
            data = packet(rng, rng.getrandbits(16))
            if len(data) >= 2:
                sent_ids.add(struct.unpack_from("!H", data)[0])
            writer.write(len(data).to_bytes(2, "big") + data)
        probe_id = 0xF000 + c
        sent_ids.add(probe_id)
        p = probe(probe_id)
        writer.write(len(p).to_bytes(2, "big") + p)
        while True:
            size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), 10), "big")
            reply = await reader.readexactly(size)
            check_reply(reply, sent_ids)
            if reply[:2] == struct.pack("!H", probe_id):
                msg = dns.message.from_wire(reply)
                if msg.question and msg.question[0].name.to_text() == (
                    "echo.default.svc.cluster.local."
                ):
                    assert_probe_answer(reply)
                    break
        writer.close()
        await writer.wait_closed()
    # A stream that lies about its length, then hangs up: the server shrugs.
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"\xff\xff" + bytes(100))
    writer.close()
    await writer.wait_closed()
    r = await dns.asyncquery.tcp(dns.message.make_query("echo.", "A"), host, port=port, timeout=5)
    assert addresses(r) == {ECHO_IP}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
