"""DnsServer end to end: real sockets on 127.11.0.0/16, dnspython and dig as clients."""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import socket
import struct

import dns.asyncquery
import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from svcnet.config import Settings
from svcnet.dns import DnsServer
from svcnet.store import Store
from tests.dns.conftest import (
    ECHO_IP,
    HOST,
    UPSTREAM_HOST,
    UPSTREAM_IP,
    FakeUpstream,
    addresses,
    ask,
    echo_service,
    endpoints,
    namespace,
    service,
    update,
)

TRANSPORTS = [pytest.param(False, id="udp"), pytest.param(True, id="tcp")]


def soa_of(msg: dns.message.Message) -> str:
    (rrset,) = msg.authority
    assert rrset.rdtype == dns.rdatatype.SOA
    return f"{rrset.name} {rrset.ttl} {rrset[0].to_text()}"


# --- listeners -----------------------------------------------------------------


async def test_listens_on_host_and_cluster_ip(server: DnsServer) -> None:
    (host, port), (cluster_ip, cluster_port) = server.addresses
    assert host == HOST and port > 0
    assert cluster_ip == "127.11.96.10" and cluster_port > 0
    for where in (0, 1):
        for tcp in (False, True):
            r = await ask(server, "echo.default.svc.cluster.local", tcp=tcp, where=where)
            assert addresses(r) == {ECHO_IP}


async def test_bind_conflict_names_address_and_fix(server: DnsServer, store: Store) -> None:
    s = Settings()
    s.network.service_cidr = "127.11.96.0/20"
    s.dns.host, s.dns.port = server.addresses[0]
    s.dns.upstream = []
    s.dns.cluster_port = 0
    other = DnsServer(s, store)
    with pytest.raises(OSError) as e:
        await other.start()
    assert f"{HOST}:{s.dns.port}/udp" in str(e.value)
    assert "--dns-port" in str(e.value)
    assert other.addresses == []


async def test_stop_frees_ports_and_is_idempotent(settings: Settings, store: Store) -> None:
    settings.dns.cluster_port = 0
    srv = DnsServer(settings, store)
    await srv.start()
    host, port = srv.addresses[0]
    await srv.stop()
    await srv.stop()
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind((host, port))


# --- cluster answers --------------------------------------------------------------


@pytest.mark.parametrize("tcp", TRANSPORTS)
@pytest.mark.parametrize(
    "name",
    [
        "echo.default.svc.cluster.local.",
        "echo.default.svc.local.",
        "echo.",
        "echo.default.",
    ],
)
async def test_service_a(server: DnsServer, name: str, tcp: bool) -> None:
    r = await ask(server, name, tcp=tcp)
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA
    (rrset,) = r.answer
    assert rrset.name.to_text() == name
    assert rrset.ttl == 5
    assert addresses(r) == {ECHO_IP}


async def test_query_case_is_preserved_even_from_cache(server: DnsServer) -> None:
    await ask(server, "echo.default.svc.cluster.local")
    r = await ask(server, "EcHo.Default.SVC.cluster.LOCAL")
    assert server.stats()["cacheHits"] >= 1
    assert r.question[0].name.to_text() == "EcHo.Default.SVC.cluster.LOCAL."
    assert r.answer[0].name.to_text() == "EcHo.Default.SVC.cluster.LOCAL."
    assert addresses(r) == {ECHO_IP}


async def test_short_name_of_missing_service_is_forwarded(
    server: DnsServer, upstream: FakeUpstream
) -> None:
    upstream.answers["nosuch."] = ["127.11.200.9"]
    r = await ask(server, "nosuch.")
    assert addresses(r) == {"127.11.200.9"}
    assert not r.flags & dns.flags.AA
    r = await ask(server, "echo.nosuchns.")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert [name for _, name, _ in upstream.seen] == ["nosuch.", "echo.nosuchns."]


@pytest.mark.parametrize("rdtype", ["A", "AAAA", "CNAME"])
async def test_external_name_is_a_cname(server: DnsServer, rdtype: str) -> None:
    r = await ask(server, "gihyo.default.svc.cluster.local", rdtype)
    assert r.rcode() == dns.rcode.NOERROR
    (rrset,) = r.answer
    assert rrset.rdtype == dns.rdatatype.CNAME
    assert rrset[0].target.to_text() == "gihyo.jp."


async def test_under_external_name_is_nxdomain(server: DnsServer) -> None:
    r = await ask(server, "www.gihyo.default.svc.cluster.local")
    assert r.rcode() == dns.rcode.NXDOMAIN


async def test_missing_service_is_nxdomain_with_soa(server: DnsServer) -> None:
    r = await ask(server, "nosuch.default.svc.cluster.local")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert r.flags & dns.flags.AA
    assert not r.answer
    serial = server.index.serial
    assert soa_of(r) == (
        "cluster.local. 5 ns.dns.cluster.local. hostmaster.cluster.local."
        f" {serial} 7200 1800 86400 5"
    )


async def test_alias_zone_soa_names_the_alias(server: DnsServer) -> None:
    r = await ask(server, "nosuch.default.svc.local")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert soa_of(r).startswith("local. 5 ns.dns.local. hostmaster.local. ")


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_aaaa_for_ipv4_service_is_nodata(server: DnsServer, tcp: bool) -> None:
    r = await ask(server, "echo.default.svc.cluster.local", "AAAA", tcp=tcp)
    assert r.rcode() == dns.rcode.NOERROR
    assert not r.answer
    assert soa_of(r).startswith("cluster.local. ")


@pytest.mark.parametrize(
    ("name", "rdtype", "rcode", "answers"),
    [
        ("default.svc.cluster.local", "A", dns.rcode.NOERROR, 0),
        ("nosuchns.svc.cluster.local", "A", dns.rcode.NXDOMAIN, 0),
        ("svc.cluster.local", "A", dns.rcode.NOERROR, 0),
        ("cluster.local", "A", dns.rcode.NOERROR, 0),
        ("cluster.local", "SOA", dns.rcode.NOERROR, 1),
        ("foo.cluster.local", "A", dns.rcode.NXDOMAIN, 0),
        ("echo.nosuchns.svc.cluster.local", "A", dns.rcode.NXDOMAIN, 0),
        ("a.b.c.echo.default.svc.cluster.local", "A", dns.rcode.NXDOMAIN, 0),
        ("echo.default.default.svc.cluster.local", "A", dns.rcode.NXDOMAIN, 0),
        ("echo.default.svc.cluster.local", "TXT", dns.rcode.NOERROR, 0),
        ("dns-version.cluster.local", "TXT", dns.rcode.NOERROR, 1),
        ("127-244-0-2.echo.default.svc.cluster.local", "A", dns.rcode.NOERROR, 1),
        ("127-244-0-9.echo.default.svc.cluster.local", "A", dns.rcode.NXDOMAIN, 0),
        ("_http._tcp.echo.default.svc.cluster.local", "A", dns.rcode.NOERROR, 1),
        ("_http._udp.echo.default.svc.cluster.local", "A", dns.rcode.NXDOMAIN, 0),
    ],
)
async def test_zone_shapes(
    server: DnsServer, name: str, rdtype: str, rcode: int, answers: int
) -> None:
    r = await ask(server, name, rdtype)
    assert r.rcode() == rcode
    assert len(r.answer) == answers
    assert r.flags & dns.flags.AA
    if not answers:
        assert soa_of(r).startswith("cluster.local. ")


async def test_headless_ready_endpoints(server: DnsServer, store: Store) -> None:
    store.create(service("db", clusterIP="None", clusterIPs=["None"], selector={"app": "db"}))
    store.create(endpoints("db", ["127.244.0.5", "127.244.0.6"], not_ready=("127.244.0.7",)))
    r = await ask(server, "db.default.svc.cluster.local")
    assert r.rcode() == dns.rcode.NOERROR
    assert addresses(r) == {"127.244.0.5", "127.244.0.6"}
    r = await ask(server, "db.default.svc.cluster.local", "AAAA")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer


async def test_headless_without_ready_endpoints_is_nxdomain(
    server: DnsServer, store: Store
) -> None:
    store.create(service("db", clusterIP="None", selector={"app": "db"}))
    r = await ask(server, "db.default.svc.cluster.local")
    assert r.rcode() == dns.rcode.NXDOMAIN
    store.create(endpoints("db", [], not_ready=("127.244.0.7",)))
    r = await ask(server, "db.default.svc.cluster.local")
    assert r.rcode() == dns.rcode.NXDOMAIN

    def publish(obj: dict[str, object]) -> None:
        obj["spec"]["publishNotReadyAddresses"] = True  # type: ignore[index]

    # DNS publishes what the slices call ready; for a Service that publishes
    # not-ready addresses the controllers list every pod as ready (CoreDNS
    # itself never reads the Service's flag).
    update(store, "Service", "default", "db", publish)
    r = await ask(server, "db.default.svc.cluster.local")
    assert r.rcode() == dns.rcode.NXDOMAIN
    update(
        store, "Endpoints", "default", "db", lambda o: o.update(endpoints("db", ["127.244.0.7"]))
    )
    r = await ask(server, "db.default.svc.cluster.local")
    assert addresses(r) == {"127.244.0.7"}


async def test_answers_follow_store_changes_at_once(server: DnsServer, store: Store) -> None:
    name = "echo.default.svc.cluster.local"
    assert addresses(await ask(server, name)) == {ECHO_IP}
    assert addresses(await ask(server, name)) == {ECHO_IP}  # now served from the cache

    def move(obj: dict[str, object]) -> None:
        obj["spec"] = echo_service("127.96.55.66")["spec"]

    update(store, "Service", "default", "echo", move)
    assert addresses(await ask(server, name)) == {"127.96.55.66"}
    assert addresses(await ask(server, "echo.")) == {"127.96.55.66"}

    store.delete("Service", "default", "echo")
    r = await ask(server, name)
    assert r.rcode() == dns.rcode.NXDOMAIN

    store.create(namespace("prod"))
    store.create(service("api", "prod", clusterIP="127.96.7.7", clusterIPs=["127.96.7.7"]))
    assert addresses(await ask(server, "api.prod.svc.local")) == {"127.96.7.7"}
    assert addresses(await ask(server, "api.prod.")) == {"127.96.7.7"}


# --- EDNS and truncation ------------------------------------------------------------


async def test_edns_is_echoed_only_when_asked(server: DnsServer) -> None:
    r = await ask(server, "echo.default.svc.cluster.local", use_edns=0, want_dnssec=True)
    assert r.edns == 0
    assert r.ednsflags & dns.flags.DO
    assert r.payload == 1232
    r = await ask(server, "echo.default.svc.cluster.local", use_edns=0)
    assert r.edns == 0 and not r.ednsflags & dns.flags.DO
    r = await ask(server, "echo.default.svc.cluster.local")
    assert r.edns == -1


async def test_unknown_edns_version_is_badvers(server: DnsServer) -> None:
    r = await ask(server, "echo.default.svc.cluster.local", use_edns=1)
    assert r.rcode() == dns.rcode.BADVERS
    assert not r.answer


async def test_oversized_udp_answer_is_truncated(server: DnsServer, store: Store) -> None:
    ips = [f"127.244.1.{i}" for i in range(1, 61)]
    store.create(service("big", clusterIP="None", selector={"app": "big"}))
    store.create(endpoints("big", ips))
    name = "big.default.svc.cluster.local"
    for _ in range(2):  # a miss, then the same from the cache
        r = await ask(server, name)
        assert r.flags & dns.flags.TC
        # The records that fit, as miekg/dns Truncate leaves them: 12 bytes of
        # header, 35 of question, then 16 per A record (owner compressed).
        assert len(addresses(r)) == (512 - 12 - 35) // 16
        assert addresses(r) < set(ips)
        assert r.question[0].name.to_text() == name + "."
    r = await ask(server, name, use_edns=0, payload=512)
    assert r.flags & dns.flags.TC and r.edns == 0
    r = await ask(server, name, use_edns=0, payload=4096)
    assert not r.flags & dns.flags.TC
    assert addresses(r) == set(ips)
    r = await ask(server, name, tcp=True)
    assert not r.flags & dns.flags.TC
    assert addresses(r) == set(ips)


# --- forwarding ---------------------------------------------------------------------


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_forwards_other_names(server: DnsServer, upstream: FakeUpstream, tcp: bool) -> None:
    r = await ask(server, "Example.COM.", tcp=tcp)  # dnspython checks the id and question
    assert r.rcode() == dns.rcode.NOERROR
    assert addresses(r) == {UPSTREAM_IP}
    assert r.answer[0].ttl == 60
    assert [(t, name) for t, name, _ in upstream.seen] == [("udp", "example.com.")]


async def test_forwarded_answer_carries_the_client_id(server: DnsServer) -> None:
    host, port = server.addresses[0]
    q = dns.message.make_query("example.com", "A")
    for qid in (1, 0xBEEF, 0xFFFF):
        q.id = qid
        r = await dns.asyncquery.udp(q, host, port=port, timeout=5)
        assert r.id == qid


async def test_forwarded_nxdomain_is_relayed(server: DnsServer) -> None:
    r = await ask(server, "nosuch.example.")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert not r.flags & dns.flags.AA


async def test_truncated_upstream_answer_is_retried_over_tcp(
    server: DnsServer, upstream: FakeUpstream
) -> None:
    upstream.answers["wide.example."] = ["127.11.200.2", "127.11.200.3"]
    upstream.truncate.add("wide.example.")
    r = await ask(server, "wide.example.")
    assert addresses(r) == {"127.11.200.2", "127.11.200.3"}
    assert [t for t, _, _ in upstream.seen] == ["udp", "tcp"]
    assert server.stats()["forwardTcpRetries"] == 1


async def test_slow_upstream_is_servfail_and_does_not_delay_cluster_answers(
    server: DnsServer, upstream: FakeUpstream
) -> None:
    upstream.held.add("slow.example.")
    slow = asyncio.get_running_loop().create_task(ask(server, "slow.example."))
    await upstream.holding.wait()
    for tcp in (False, True):
        r = await ask(server, "echo.default.svc.cluster.local", tcp=tcp)
        assert addresses(r) == {ECHO_IP}
        assert not slow.done()
    r = await slow
    assert r.rcode() == dns.rcode.SERVFAIL
    assert server.stats()["forwardFailures"] == 1


async def test_dead_upstream_is_servfail(settings: Settings, store: Store) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((UPSTREAM_HOST, 0))
        dead_port = sock.getsockname()[1]
    settings.dns.upstream = [f"{UPSTREAM_HOST}:{dead_port}"]
    settings.dns.cluster_port = 0
    srv = DnsServer(settings, store)
    await srv.start()
    try:
        for tcp in (False, True):
            r = await ask(srv, "example.com", tcp=tcp)
            assert r.rcode() == dns.rcode.SERVFAIL
            assert addresses(await ask(srv, "echo.", tcp=tcp)) == {ECHO_IP}
    finally:
        await srv.stop()


async def test_dead_first_upstream_falls_back_to_next(
    settings: Settings, store: Store, upstream: FakeUpstream
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((UPSTREAM_HOST, 0))
        dead_port = sock.getsockname()[1]
    settings.dns.upstream = [f"{UPSTREAM_HOST}:{dead_port}", f"{UPSTREAM_HOST}:{upstream.port}"]
    settings.dns.cluster_port = 0
    srv = DnsServer(settings, store)
    await srv.start()
    try:
        assert addresses(await ask(srv, "example.com")) == {UPSTREAM_IP}
    finally:
        await srv.stop()


async def test_own_address_is_never_an_upstream(settings: Settings, store: Store) -> None:
    settings.dns.upstream = [f"{HOST}:0"]
    settings.dns.cluster_port = 0
    srv = DnsServer(settings, store)
    await srv.start()
    try:
        host, port = srv.addresses[0]
        settings.dns.upstream = [f"{host}:{port}"]
        assert srv._upstreams() == []
    finally:
        await srv.stop()


# --- malformed input ------------------------------------------------------------------


def _udp_client(srv: DnsServer) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.11.0.2", 0))
    sock.connect(srv.addresses[0])
    sock.setblocking(False)
    return sock


async def _recv(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)


async def test_garbage_never_kills_the_server(server: DnsServer) -> None:
    rng = random.Random(1234)
    valid = dns.message.make_query("echo.default.svc.cluster.local", "A")
    valid.id = 4242
    with _udp_client(server) as sock:
        for size in [0, 1, 5, 11, *(rng.randrange(12, 600) for _ in range(200))]:
            payload = bytes(rng.getrandbits(8) for _ in range(size))
            sock.send(payload)
            sock.send(valid.to_wire())
            # Each datagram is handled in order: whatever the garbage got
            # (nothing, FORMERR, or an answer if it happened to parse), the
            # valid query is still answered.
            while True:
                reply = await _recv(sock)
                if reply[:2] == (4242).to_bytes(2, "big") and reply[12:] != payload[12:]:
                    break
            assert addresses(dns.message.from_wire(reply)) == {ECHO_IP}
    assert server.stats()["queries"] > 400


async def test_short_header_is_dropped_and_bad_question_is_formerr(server: DnsServer) -> None:
    valid = dns.message.make_query("echo.default.svc.cluster.local", "A")
    valid.id = 7
    with _udp_client(server) as sock:
        sock.send(b"\x12\x34\x01\x00\x00")  # truncated header: no reply at all
        sock.send(valid.to_wire())
        assert dns.message.from_wire(await _recv(sock)).id == 7
        # Header says one question, then the name runs off the end.
        sock.send(struct.pack("!6H", 0x5151, 0x0100, 1, 0, 0, 0) + b"\x04ech")
        reply = await _recv(sock)
        qid, flags = struct.unpack_from("!HH", reply)
        assert qid == 0x5151
        assert flags & 0x8000 and flags & 0xF == dns.rcode.FORMERR
        # A response is never answered (no reflection loops).
        sock.send(struct.pack("!6H", 9, 0x8180, 0, 0, 0, 0))
        sock.send(valid.to_wire())
        assert dns.message.from_wire(await _recv(sock)).id == 7
    assert server.stats()["rcodes"]["FORMERR"] == 1


async def test_tcp_pipelined_queries_and_garbage(server: DnsServer) -> None:
    host, port = server.addresses[0]
    reader, writer = await asyncio.open_connection(host, port)
    try:
        wires = []
        for i, name in enumerate(["echo.", "echo.default.", "example.com."]):
            q = dns.message.make_query(name, "A")
            q.id = 100 + i
            wires.append(q.to_wire())
        bad = b"\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03ab"
        stream = b"".join(len(w).to_bytes(2, "big") + w for w in wires)
        writer.write(len(bad).to_bytes(2, "big") + bad + stream)
        got = {}
        for _ in range(4):
            size = int.from_bytes(await reader.readexactly(2), "big")
            msg = await reader.readexactly(size)
            got[int.from_bytes(msg[:2], "big")] = msg
        assert got[7][3] & 0xF == dns.rcode.FORMERR
        assert addresses(dns.message.from_wire(got[100])) == {ECHO_IP}
        assert addresses(dns.message.from_wire(got[101])) == {ECHO_IP}
        assert addresses(dns.message.from_wire(got[102])) == {UPSTREAM_IP}
    finally:
        writer.close()
        await writer.wait_closed()


async def test_tcp_idle_connection_is_closed(settings: Settings, store: Store) -> None:
    settings.dns.cluster_port = 0
    srv = DnsServer(settings, store, tcp_idle_timeout=0.05)
    await srv.start()
    try:
        reader, writer = await asyncio.open_connection(*srv.addresses[0])
        assert await asyncio.wait_for(reader.read(), 5) == b""  # EOF from the server
        writer.close()
        await writer.wait_closed()
    finally:
        await srv.stop()


# --- stats and the real dig ------------------------------------------------------------


async def test_stats_count_rcodes_and_qtypes(server: DnsServer) -> None:
    await ask(server, "echo.default.svc.cluster.local")
    await ask(server, "echo.default.svc.cluster.local")
    await ask(server, "echo.default.svc.cluster.local", "AAAA")
    await ask(server, "nosuch.default.svc.cluster.local")
    stats = server.stats()
    assert stats["queries"] == 4
    assert stats["cacheHits"] == 1
    assert stats["rcodes"] == {"NOERROR": 3, "NXDOMAIN": 1}
    assert stats["qtypes"] == {"A": 3, "AAAA": 1}


async def test_dig_short_name(server: DnsServer) -> None:
    dig = shutil.which("dig")
    assert dig is not None, "install dnsutils: the DNS tests use the real dig"
    host, port = server.addresses[0]
    for extra in ([], ["+tcp"]):
        proc = await asyncio.create_subprocess_exec(
            dig,
            f"@{host}",
            "-p",
            str(port),
            "echo.default",
            "+short",
            "+time=5",
            "+tries=1",
            *extra,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err
        assert out.decode().split() == [ECHO_IP]


async def test_a_change_drops_only_what_it_touches(server: DnsServer, store: Store) -> None:
    echo, missing = "echo.default.svc.cluster.local", "nosuch.default.svc.cluster.local"
    for _ in range(2):
        await ask(server, echo)
        await ask(server, missing)
    hits = server.stats()["cacheHits"]
    assert hits == 2
    # Another Service appears: echo's answer stays cached; the NXDOMAIN may
    # now be wrong (and carries the SOA serial), so it is computed again.
    store.create(service("nosuch", clusterIP="127.96.9.9", clusterIPs=["127.96.9.9"]))
    assert addresses(await ask(server, echo)) == {ECHO_IP}
    assert server.stats()["cacheHits"] == hits + 1
    assert addresses(await ask(server, missing)) == {"127.96.9.9"}
    assert server.stats()["cacheHits"] == hits + 1
    # echo's own Endpoints change: its answers are computed again.
    update(store, "Endpoints", "default", "echo", lambda o: o.update(subsets=[]))
    assert addresses(await ask(server, echo)) == {ECHO_IP}
    assert server.stats()["cacheHits"] == hits + 1


async def test_query_log_has_one_line_per_query(
    server: DnsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="svcnet.dns.query")
    name = "echo.default.svc.cluster.local"
    await ask(server, name)  # computed
    await ask(server, name)  # the UDP exact cache
    await ask(server, name, tcp=True)  # the keyed cache
    await ask(server, "example.com")  # forwarded
    lines = [r.getMessage() for r in caplog.records if r.name == "svcnet.dns.query"]
    assert len(lines) == 4, lines
    assert all(f'"A IN {name}. ' in line for line in lines[:3])
    assert " udp " in lines[0] and " tcp " in lines[2]
    assert all(" NOERROR qr,aa,rd,ra " in line for line in lines[:3])
    assert lines[3].endswith(" forward") and '"A IN example.com. udp' in lines[3]


async def test_compression_loops_get_formerr_and_the_server_keeps_answering(
    server: DnsServer,
) -> None:
    valid = dns.message.make_query("echo.default.svc.cluster.local", "A")
    valid.id = 8
    header = struct.pack("!6H", 0x5252, 0x0100, 1, 0, 0, 0)
    loops = [
        header + b"\xc0\x0c" + b"\x00\x01\x00\x01",  # the name points at itself
        header + b"\x01a\xc0\x0c" + b"\x00\x01\x00\x01",  # a label, then back to its start
        header + b"\x01a\xc0\x0e\x01b\xc0\x0c" + b"\x00\x01\x00\x01",  # two pointers in a ring
        header + b"\xc0\xff",  # a pointer past the end
    ]
    with _udp_client(server) as sock:
        for wire in loops:
            sock.send(wire)
            reply = await _recv(sock)
            qid, flags = struct.unpack_from("!HH", reply)
            assert qid == 0x5252 and flags & 0xF == dns.rcode.FORMERR
        sock.send(valid.to_wire())
        assert dns.message.from_wire(await _recv(sock)).id == 8
