"""The reference's case table (k8s-dns.md section 4), row by row, over UDP and TCP.

The fixture is the reference's own: Services echo (ClusterIP 127.10.0.10),
echo-headless and gihyo (ExternalName gihyo.jp), pods echo-1 (127.20.0.2)
and echo-2 (127.20.0.3), both ready. Answers are compared as sets (CoreDNS's
``loadbalance`` shuffles them), with owner names exactly as asked (case kept),
TTLs, and the additional section where the reference says what it holds.
Every negative answer must carry AA and the zone's SOA. Then the variants
(unready pods, hostname/subdomain), ExternalName chasing with a fake upstream,
pod modes, and the shapes section 2 lists beyond the table.
"""

from __future__ import annotations

import copy
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from svcnet.config import ConfigError, Settings
from svcnet.dns import DnsServer
from svcnet.store import Store
from tests.dns.conftest import UPSTREAM_HOST, FakeUpstream, ask, namespace, service
from tests.slices import mirror_endpoints

ECHO_IP = "127.10.0.10"
POD1, POD2 = "127.20.0.2", "127.20.0.3"
GIHYO_A = "127.11.200.7"
GIHYO_AAAA = "::1"
S = ".default.svc.cluster.local."
E = "echo" + S
H = "echo-headless" + S
G = "gihyo" + S

NOERROR, NXDOMAIN = dns.rcode.NOERROR, dns.rcode.NXDOMAIN
Record = tuple[str, int, str, str]
TRANSPORTS = [pytest.param(False, id="udp"), pytest.param(True, id="tcp")]

PORTS = [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 80}]


def pod_endpoints(
    name: str,
    ready: list[tuple[str, str]],
    not_ready: list[tuple[str, str]] = (),  # type: ignore[assignment]
    *,
    hostnames: dict[str, str] | None = None,
    port: int = 80,
) -> dict[str, Any]:
    """Endpoints as the endpoints controller writes them: (ip, pod name) pairs."""
    hostnames = hostnames or {}

    def addr(ip: str, pod: str) -> dict[str, Any]:
        a: dict[str, Any] = {
            "ip": ip,
            "targetRef": {"kind": "Pod", "name": pod, "namespace": "default"},
        }
        if pod in hostnames:
            a["hostname"] = hostnames[pod]
        return a

    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": "default"},
        "subsets": [
            {
                "addresses": [addr(ip, pod) for ip, pod in ready],
                "notReadyAddresses": [addr(ip, pod) for ip, pod in not_ready],
                "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            }
        ],
    }


PODS = [(POD1, "echo-1"), (POD2, "echo-2")]


def pod(name: str, ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "echo"}},
        "spec": {"containers": [{"name": "echo", "image": "gihyodocker/echo"}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]},
    }


@pytest.fixture
def store() -> Store:
    s = Store()
    mirror_endpoints(s)
    s.create(namespace("default"))
    s.create(
        service(
            "echo",
            clusterIP=ECHO_IP,
            clusterIPs=[ECHO_IP],
            selector={"app": "echo", "release": "summer"},
            ports=PORTS,
        )
    )
    s.create(
        service(
            "echo-headless",
            clusterIP="None",
            clusterIPs=["None"],
            selector={"app": "echo", "release": "summer"},
            ports=PORTS,
        )
    )
    s.create(service("gihyo", type="ExternalName", externalName="gihyo.jp"))
    s.create(pod_endpoints("echo", PODS))
    s.create(pod_endpoints("echo-headless", PODS))
    for name, ip in (("echo-1", POD1), ("echo-2", POD2)):
        s.create(pod(name, ip))
    return s


@pytest.fixture(autouse=True)
def upstream_records(upstream: FakeUpstream) -> None:
    upstream.answers["gihyo.jp."] = [GIHYO_A]
    upstream.answers6["gihyo.jp."] = [GIHYO_AAAA]


def records(section: list[Any]) -> set[Record]:
    return {
        (rrset.name.to_text(), rrset.ttl, dns.rdatatype.to_text(rrset.rdtype), rd.to_text())
        for rrset in section
        for rd in rrset
    }


def a(owner: str, ip: str, ttl: int = 5) -> Record:
    return (owner, ttl, "AAAA" if ":" in ip else "A", ip)


def srv(owner: str, weight: int, port: int, target: str) -> Record:
    return (owner, 5, "SRV", f"0 {weight} {port} {target}")


def soa(serial: int, zone: str = "cluster.local") -> Record:
    return (zone + ".", 5, "SOA", f"ns.dns.{zone}. hostmaster.{zone}. {serial} 7200 1800 86400 5")


NODATA: set[Record] = set()
ANY_ADDITIONAL = None

# (row, qname, qtype, rcode, answer, additional or None = not checked)
Row = tuple[str, str, str, int, set[Record], set[Record] | None]
TABLE: list[Row] = [
    ("1", E, "A", NOERROR, {a(E, ECHO_IP)}, set()),
    ("2", "ECHO.Default.SVC.cluster.local.", "A", NOERROR,
     {a("ECHO.Default.SVC.cluster.local.", ECHO_IP)}, set()),
    ("3", E, "AAAA", NOERROR, NODATA, set()),
    ("4", E, "TXT", NOERROR, NODATA, set()),
    ("5", E, "MX", NOERROR, NODATA, set()),
    ("6", "_http._tcp" + "." + E, "SRV", NOERROR,
     {srv("_http._tcp." + E, 100, 80, E)}, {a(E, ECHO_IP)}),
    ("7", "_HTTP._TCP." + E, "SRV", NOERROR,
     {srv("_HTTP._TCP." + E, 100, 80, E)}, {a(E, ECHO_IP)}),
    ("8", "_http._udp." + E, "SRV", NXDOMAIN, set(), set()),
    ("9", "_https._tcp." + E, "SRV", NXDOMAIN, set(), set()),
    ("10", E, "SRV", NOERROR, {srv(E, 100, 80, E)}, {a(E, ECHO_IP)}),
    ("11", "10.0.10.127.in-addr.arpa.", "PTR", NOERROR,
     {("10.0.10.127.in-addr.arpa.", 5, "PTR", E)}, set()),
    ("12", "127-20-0-2." + E, "A", NOERROR, {a("127-20-0-2." + E, POD1)}, set()),
    ("13", H, "A", NOERROR, {a(H, POD1), a(H, POD2)}, set()),
    ("14", H, "AAAA", NOERROR, NODATA, set()),
    ("15", "127-20-0-2." + H, "A", NOERROR, {a("127-20-0-2." + H, POD1)}, set()),
    ("16", "127-20-0-3." + H, "A", NOERROR, {a("127-20-0-3." + H, POD2)}, set()),
    ("17", "127-20-0-9." + H, "A", NXDOMAIN, set(), set()),
    ("18", "_http._tcp." + H, "SRV", NOERROR,
     {srv("_http._tcp." + H, 50, 80, "127-20-0-2." + H),
      srv("_http._tcp." + H, 50, 80, "127-20-0-3." + H)},
     {a("127-20-0-2." + H, POD1), a("127-20-0-3." + H, POD2)}),
    ("19", "2.0.20.127.in-addr.arpa.", "PTR", NOERROR,
     {("2.0.20.127.in-addr.arpa.", 5, "PTR", "127-20-0-2." + H),
      ("2.0.20.127.in-addr.arpa.", 5, "PTR", "127-20-0-2." + E)}, set()),
    ("20", G, "A", NOERROR,
     {(G, 5, "CNAME", "gihyo.jp."), ("gihyo.jp.", 60, "A", GIHYO_A)}, set()),
    ("21", G, "CNAME", NOERROR, {(G, 5, "CNAME", "gihyo.jp.")}, set()),
    ("22", G, "AAAA", NOERROR,
     {(G, 5, "CNAME", "gihyo.jp."), ("gihyo.jp.", 60, "AAAA", GIHYO_AAAA)}, set()),
    ("23", G, "SRV", NOERROR, NODATA, set()),
    ("24", "_http._tcp." + G, "SRV", NXDOMAIN, set(), set()),
    ("25", "www." + G, "A", NXDOMAIN, set(), set()),
    ("26", "nosuch" + S, "A", NXDOMAIN, set(), set()),
    ("27", "echo.nosuchns.svc.cluster.local.", "A", NXDOMAIN, set(), set()),
    ("28", "default.svc.cluster.local.", "A", NOERROR, NODATA, set()),
    ("29", "nosuchns.svc.cluster.local.", "A", NXDOMAIN, set(), set()),
    ("30", "svc.cluster.local.", "A", NOERROR, NODATA, set()),
    # 31 (the apex SOA) needs the serial: test_row_31_apex_soa.
    ("32", "foo.cluster.local.", "A", NXDOMAIN, set(), set()),
    ("33", "a.b.c." + E, "A", NXDOMAIN, set(), set()),
    ("34", "echo.default.default.svc.cluster.local.", "A", NXDOMAIN, set(), set()),
    ("35", "dns-version.cluster.local.", "TXT", NOERROR,
     {("dns-version.cluster.local.", 28800, "TXT", '"1.1.0"')}, set()),
    ("36", "127-20-0-2.default.pod.cluster.local.", "A", NOERROR,
     {a("127-20-0-2.default.pod.cluster.local.", POD1)}, set()),
    ("37", "127-20-0-99.default.pod.cluster.local.", "A", NOERROR,
     {a("127-20-0-99.default.pod.cluster.local.", "127.20.0.99")}, set()),
    ("38", "127-20-0-2.default.pod.cluster.local.", "AAAA", NOERROR, NODATA, set()),
    # 39: svcnet's addition (issue 3 item 3): literal short names of existing
    # Services answer like the full name, authoritatively; others are forwarded.
    ("39", "echo.", "A", NOERROR, {a("echo.", ECHO_IP)}, set()),
    ("39b", "echo.default.", "A", NOERROR, {a("echo.default.", ECHO_IP)}, set()),
    ("40", "gihyo.jp.", "A", NOERROR, {("gihyo.jp.", 60, "A", GIHYO_A)}, set()),
    # Section 3's search walk: every intermediate name is NXDOMAIN.
    ("walk1", "gihyo.jp.default.svc.cluster.local.", "A", NXDOMAIN, set(), set()),
    ("walk2", E + "default.svc.cluster.local.", "A", NXDOMAIN, set(), set()),
    ("walk3", "echo.svc.cluster.local.", "A", NXDOMAIN, set(), set()),
    ("walk4", "echo.cluster.local.", "A", NXDOMAIN, set(), set()),
    # Section 2's other shapes.
    ("ns-root", "nosuchns.svc.cluster.local.", "TXT", NXDOMAIN, set(), set()),
    ("svc-any", E, "ANY", NOERROR, NODATA, set()),
    ("svc-cname", E, "CNAME", NOERROR, NODATA, set()),
    ("soa-below-apex", E, "SOA", NOERROR, NODATA, set()),
    ("soa-missing-name", "nosuch" + S, "SOA", NOERROR, NODATA, set()),
    ("wildcard-svc", "*" + S, "A", NXDOMAIN, set(), set()),
    ("wildcard-ns", "echo.*.svc.cluster.local.", "A", NXDOMAIN, set(), set()),
    ("wildcard-port", "_*._tcp." + E, "SRV", NXDOMAIN, set(), set()),
    ("wildcard-ep", "*." + H, "A", NXDOMAIN, set(), set()),
    ("port-no-underscore", "http.tcp." + E, "SRV", NOERROR,
     {srv("http.tcp." + E, 100, 80, E)}, {a(E, ECHO_IP)}),
    ("port-a", "_http._tcp." + E, "A", NOERROR, {a("_http._tcp." + E, ECHO_IP)}, set()),
    ("headless-bare-srv", H, "SRV", NOERROR,
     {srv(H, 50, 80, "127-20-0-2." + H), srv(H, 50, 80, "127-20-0-3." + H)},
     {a("127-20-0-2." + H, POD1), a("127-20-0-3." + H, POD2)}),
    ("endpoint-srv", "127-20-0-2." + H, "SRV", NOERROR,
     {srv("127-20-0-2." + H, 100, 80, "127-20-0-2." + H)}, {a("127-20-0-2." + H, POD1)}),
    ("gihyo-txt", G, "TXT", NOERROR, NODATA, set()),
    ("gihyo-mx", G, "MX", NOERROR, NODATA, set()),
    ("pod-root", "pod.cluster.local.", "A", NOERROR, NODATA, set()),
    ("pod-ns", "default.pod.cluster.local.", "A", NOERROR, NODATA, set()),
    ("pod-nosuchns", "127-20-0-2.nosuchns.pod.cluster.local.", "A", NXDOMAIN, set(), set()),
    ("pod-not-an-ip", "foo.default.pod.cluster.local.", "A", NXDOMAIN, set(), set()),
    ("pod-too-long", "x.127-20-0-2.default.pod.cluster.local.", "A", NXDOMAIN, set(), set()),
    ("apex-a", "cluster.local.", "A", NOERROR, NODATA, set()),
    ("dns-version-a", "dns-version.cluster.local.", "A", NOERROR, NODATA, set()),
    ("ns-host", "ns.dns.cluster.local.", "A", NOERROR,
     {a("ns.dns.cluster.local.", "127.11.96.10")}, set()),
    ("apex-ns", "cluster.local.", "NS", NOERROR,
     {("cluster.local.", 5, "NS", "ns.dns.cluster.local.")},
     {a("ns.dns.cluster.local.", "127.11.96.10")}),
    ("alias-zone", "echo.default.svc.local.", "A", NOERROR,
     {a("echo.default.svc.local.", ECHO_IP)}, set()),
    ("alias-srv", "_http._tcp.echo.default.svc.local.", "SRV", NOERROR,
     {srv("_http._tcp.echo.default.svc.local.", 100, 80, "echo.default.svc.local.")},
     {a("echo.default.svc.local.", ECHO_IP)}),
    ("short-gihyo", "gihyo.", "A", NOERROR,
     {("gihyo.", 5, "CNAME", "gihyo.jp."), ("gihyo.jp.", 60, "A", GIHYO_A)}, set()),
    ("short-aaaa", "echo.", "AAAA", NOERROR, NODATA, set()),
]  # fmt: skip

FORWARDED = {"40"}


def _zone(qname: str) -> str:
    return "local" if qname.lower().endswith(".svc.local.") else "cluster.local"


async def check(srv: DnsServer, row: Row, tcp: bool) -> None:
    label, qname, qtype, rcode, answer, additional = row
    r = await ask(srv, qname, qtype, tcp=tcp)
    assert r.rcode() == rcode, (label, dns.rcode.to_text(r.rcode()))
    assert r.question[0].name.to_text() == qname
    assert records(r.answer) == answer, label
    if additional is not None:
        assert records(r.additional) == additional, label
    if label in FORWARDED:
        assert not r.flags & dns.flags.AA
        return
    assert r.flags & dns.flags.AA, label
    assert r.flags & dns.flags.QR and not r.flags & dns.flags.TC
    if answer:
        assert not r.authority, label
    else:
        assert records(r.authority) == {soa(srv.index.serial, _zone(qname))}, label


@pytest.mark.parametrize("tcp", TRANSPORTS)
@pytest.mark.parametrize("row", TABLE, ids=[row[0] for row in TABLE])
async def test_case_table(server: DnsServer, row: Row, tcp: bool) -> None:
    await check(server, row, tcp)


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_row_31_apex_soa(server: DnsServer, tcp: bool) -> None:
    r = await ask(server, "cluster.local.", "SOA", tcp=tcp)
    assert r.rcode() == NOERROR and r.flags & dns.flags.AA
    assert records(r.answer) == {soa(server.index.serial)}
    assert not r.authority


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_transfers_are_refused(server: DnsServer, tcp: bool) -> None:
    for rdtype in ("AXFR", "IXFR"):
        host, port = server.addresses[0]
        q = dns.message.make_query("cluster.local.", rdtype)
        r = await (
            dns.asyncquery.tcp(q, host, port=port, timeout=5)
            if tcp
            else dns.asyncquery.udp(q, host, port=port, timeout=5)
        )
        assert r.rcode() == dns.rcode.REFUSED


async def test_unknown_ptr_falls_through_to_upstream(
    server: DnsServer, upstream: FakeUpstream
) -> None:
    r = await ask(server, "9.9.9.127.in-addr.arpa.", "PTR")
    assert r.rcode() == NXDOMAIN and not r.flags & dns.flags.AA
    assert [n for _, n, _ in upstream.seen] == ["9.9.9.127.in-addr.arpa."]


# --- variants ------------------------------------------------------------------


def _rows(*labels: str) -> list[Row]:
    return [row for row in TABLE if row[0] in labels]


def _replace(store: Store, obj: dict[str, Any]) -> None:
    cur = store.get(obj["kind"], "default", obj["metadata"]["name"])
    assert cur is not None
    new = copy.deepcopy(obj)
    new["metadata"]["resourceVersion"] = cur["metadata"].get("resourceVersion")
    store.update(new)


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_v1_unready_pods(server: DnsServer, store: Store, tcp: bool) -> None:
    # Warm the cache first: the change must drop what was cached.
    for row in _rows("1", "6", "13", "15", "18"):
        await check(server, row, tcp)
    _replace(store, pod_endpoints("echo", [], PODS))
    _replace(store, pod_endpoints("echo-headless", [], PODS))
    for row in _rows("1", "6"):
        await check(server, row, tcp)
    for qname, qtype in (
        (H, "A"),
        ("127-20-0-2." + H, "A"),
        ("_http._tcp." + H, "SRV"),
        (H, "SRV"),
        (H, "TXT"),
    ):
        await check(server, ("v1", qname, qtype, NXDOMAIN, set(), set()), tcp)
    # Deleted endpoints: the same.
    store.delete("Endpoints", "default", "echo-headless")
    await check(server, ("v1", H, "A", NXDOMAIN, set(), set()), tcp)


async def test_v1_publish_not_ready_addresses(server: DnsServer, store: Store) -> None:
    _replace(store, pod_endpoints("echo-headless", [], PODS))
    svc = copy.deepcopy(store.get("Service", "default", "echo-headless"))
    assert svc is not None
    svc["spec"]["publishNotReadyAddresses"] = True
    store.update(svc)
    # The controllers then list the not-ready pods as ready (CoreDNS reads only
    # the slices' ready condition, never the Service's flag).
    await check(server, ("13", H, "A", NXDOMAIN, set(), set()), False)
    _replace(store, pod_endpoints("echo-headless", PODS))
    await check(server, _rows("13")[0], False)


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_v2_hostname_and_subdomain(server: DnsServer, store: Store, tcp: bool) -> None:
    # The endpoints controller sets the hostname only on the Service the pod's
    # subdomain names (echo-headless), not on echo.
    _replace(store, pod_endpoints("echo-headless", PODS, hostnames={"echo-1": "echo-1"}))
    await check(server, ("v2", "echo-1." + H, "A", NOERROR, {a("echo-1." + H, POD1)}, set()), tcp)
    await check(server, ("v2", "127-20-0-2." + H, "A", NXDOMAIN, set(), set()), tcp)
    await check(server, _rows("16")[0], tcp)
    await check(
        server,
        (
            "v2",
            "_http._tcp." + H,
            "SRV",
            NOERROR,
            {
                srv("_http._tcp." + H, 50, 80, "echo-1." + H),
                srv("_http._tcp." + H, 50, 80, "127-20-0-3." + H),
            },
            {a("echo-1." + H, POD1), a("127-20-0-3." + H, POD2)},
        ),
        tcp,
    )
    ptr = "2.0.20.127.in-addr.arpa."
    await check(
        server,
        (
            "v2",
            ptr,
            "PTR",
            NOERROR,
            {(ptr, 5, "PTR", "echo-1." + H), (ptr, 5, "PTR", "127-20-0-2." + E)},
            set(),
        ),
        tcp,
    )
    await check(server, _rows("12")[0], tcp)


async def test_headless_srv_uses_the_endpoint_port(server: DnsServer, store: Store) -> None:
    _replace(store, pod_endpoints("echo-headless", PODS[:1], port=8080))
    name = "_http._tcp." + H
    await check(
        server,
        (
            "port",
            name,
            "SRV",
            NOERROR,
            {srv(name, 100, 8080, "127-20-0-2." + H)},
            {a("127-20-0-2." + H, POD1)},
        ),
        False,
    )


async def test_srv_weights_split_over_named_ports(server: DnsServer, store: Store) -> None:
    svc = copy.deepcopy(store.get("Service", "default", "echo"))
    assert svc is not None
    svc["spec"]["ports"] = [
        *PORTS,
        {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": 9090},
        {"protocol": "UDP", "port": 53, "targetPort": 53},
    ]
    store.update(svc)
    # The bare name lists every port (unnamed too); only named ones have _port names.
    await check(
        server,
        (
            "bare",
            E,
            "SRV",
            NOERROR,
            {srv(E, 33, 80, E), srv(E, 33, 9090, E), srv(E, 33, 53, E)},
            {a(E, ECHO_IP)},
        ),
        False,
    )
    name = "_metrics._tcp." + E
    await check(server, ("m", name, "SRV", NOERROR, {srv(name, 100, 9090, E)}, None), False)
    await check(server, ("u", "_._udp." + E, "SRV", NXDOMAIN, set(), set()), False)


async def test_dual_stack_service_and_ipv6_ptr(server: DnsServer, store: Store) -> None:
    store.create(
        service(
            "dual", clusterIP="127.10.0.11", clusterIPs=["127.10.0.11", "fd00::11"], ports=PORTS
        )
    )
    name = "dual" + S
    await check(server, ("v4", name, "A", NOERROR, {a(name, "127.10.0.11")}, set()), False)
    await check(server, ("v6", name, "AAAA", NOERROR, {a(name, "fd00::11")}, set()), False)
    ptr = "1.1.0.0." + "0." * 26 + "d.f.ip6.arpa."
    await check(server, ("ptr6", ptr, "PTR", NOERROR, {(ptr, 5, "PTR", name)}, set()), False)


# --- ExternalName chasing --------------------------------------------------------


async def test_external_name_inside_the_zone_is_resolved_here(
    server: DnsServer, store: Store, upstream: FakeUpstream
) -> None:
    store.create(service("alias", type="ExternalName", externalName="echo" + S))
    store.create(service("alias2", type="ExternalName", externalName="ALIAS" + S))
    store.create(service("dangling", type="ExternalName", externalName="nosuch" + S))
    store.create(service("loop1", type="ExternalName", externalName="loop2" + S))
    store.create(service("loop2", type="ExternalName", externalName="loop1" + S))
    store.create(service("ipname", type="ExternalName", externalName="127.0.0.1"))
    al, al2 = "alias" + S, "alias2" + S
    await check(
        server, ("in", al, "A", NOERROR, {(al, 5, "CNAME", E), a(E, ECHO_IP)}, set()), False
    )
    await check(
        server,
        (
            "2hops",
            al2,
            "A",
            NOERROR,
            {(al2, 5, "CNAME", al), (al, 5, "CNAME", E), a(E, ECHO_IP)},
            set(),
        ),
        False,
    )
    # A name that has nothing: NODATA and no CNAME (coredns#6088); loops end the same way.
    await check(server, ("dangling", "dangling" + S, "A", NOERROR, NODATA, set()), False)
    await check(server, ("loop", "loop1" + S, "A", NOERROR, NODATA, set()), False)
    await check(server, ("aaaa", al, "AAAA", NOERROR, NODATA, set()), False)
    # IP-valued externalNames are not resolved by DNS.
    await check(server, ("ip", "ipname" + S, "A", NXDOMAIN, set(), set()), False)
    assert upstream.seen == []


async def test_external_name_cname_alone_when_upstream_fails(
    settings: Settings, store: Store, upstream: FakeUpstream
) -> None:
    del upstream.answers["gihyo.jp."], upstream.answers6["gihyo.jp."]
    settings.dns.cluster_port = 0
    srv = DnsServer(settings, store)
    await srv.start()
    try:
        cname_only = {(G, 5, "CNAME", "gihyo.jp.")}
        await check(srv, ("nx", G, "A", NOERROR, cname_only, set()), False)  # upstream NXDOMAIN
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((UPSTREAM_HOST, 0))
            dead_port = sock.getsockname()[1]
        settings.dns.upstream = [f"{UPSTREAM_HOST}:{dead_port}"]
        srv.forward.upstreams = srv._upstreams()
        for tcp in (False, True):
            await check(srv, ("dead", G, "A", NOERROR, cname_only, set()), tcp)
    finally:
        await srv.stop()


async def test_external_name_answers_are_not_cached(
    server: DnsServer, upstream: FakeUpstream
) -> None:
    await check(server, _rows("20")[0], False)
    upstream.answers["gihyo.jp."] = ["127.11.200.8"]
    r = await ask(server, G)
    assert ("gihyo.jp.", 60, "A", "127.11.200.8") in records(r.answer)


# --- pod modes and settings --------------------------------------------------------


MakeServer = Callable[..., Awaitable[DnsServer]]


@pytest.fixture
async def make_server(settings: Settings, store: Store) -> AsyncIterator[MakeServer]:
    servers: list[DnsServer] = []

    async def make(**kw: Any) -> DnsServer:
        settings.dns.cluster_port = 0
        srv = DnsServer(settings, store, **kw)
        await srv.start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        await srv.stop()


async def test_pods_verified(make_server: MakeServer, store: Store) -> None:
    srv = await make_server(pods="verified")
    p = ".default.pod.cluster.local."
    await check(
        srv, ("36", "127-20-0-2" + p, "A", NOERROR, {a("127-20-0-2" + p, POD1)}, set()), False
    )
    await check(srv, ("37", "127-20-0-99" + p, "A", NXDOMAIN, set(), set()), False)
    # A new pod appears at once; a status update that moves no address keeps the cache.
    store.create(pod("echo-3", "127.20.0.99"))
    await check(
        srv,
        ("37", "127-20-0-99" + p, "A", NOERROR, {a("127-20-0-99" + p, "127.20.0.99")}, set()),
        False,
    )
    hits = srv.stats()["cacheHits"]
    obj = copy.deepcopy(store.get("Pod", "default", "echo-3"))
    assert obj is not None
    obj["status"]["phase"] = "Succeeded"
    store.update(obj)
    await check(
        srv,
        ("37", "127-20-0-99" + p, "A", NOERROR, {a("127-20-0-99" + p, "127.20.0.99")}, set()),
        False,
    )
    assert srv.stats()["cacheHits"] == hits + 1
    store.delete("Pod", "default", "echo-3")
    await check(srv, ("37", "127-20-0-99" + p, "A", NXDOMAIN, set(), set()), False)


async def test_pods_disabled(make_server: MakeServer) -> None:
    srv = await make_server(pods="disabled")
    await check(
        srv, ("36", "127-20-0-2.default.pod.cluster.local.", "A", NXDOMAIN, set(), set()), False
    )


async def test_ttl_is_configurable(settings: Settings, make_server: MakeServer) -> None:
    settings.dns.ttl = 30  # kubeadm's Corefile
    srv = await make_server()
    r = await ask(srv, E)
    assert r.answer[0].ttl == 30
    r = await ask(srv, "nosuch" + S)
    assert r.authority[0].ttl == 30
    assert r.authority[0][0].minimum == 30


@pytest.mark.parametrize(("field", "value"), [("ttl", 3601), ("ttl", -1), ("pods", "bogus")])
def test_bad_settings_are_refused(settings: Settings, field: str, value: Any) -> None:
    setattr(settings.dns, field, value)
    with pytest.raises(ConfigError, match=f"dns.{field}"):
        settings.validate()
