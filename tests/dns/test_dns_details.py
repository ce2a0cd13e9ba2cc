"""CoreDNS details that the reference table does not pin down, one group per behaviour:

1. SRV weights as plugin/backend_lookup.go computes them (100 per entry of a
   priority, entries counted before duplicates are dropped, sentinel ports too);
2. the zone as the client spelled it in SOA owner names and data, NS data and
   SRV targets (handler.go keeps the query's case of the zone), also from the cache;
3. reverse names in the service and pod CIDRs answered authoritatively (NXDOMAIN
   with the reverse zone's SOA), while other reverse names still fall through;
4. truncation as miekg/dns ``Msg.Truncate``: the records that fit, and TC.

Over real UDP and TCP with dnspython against the in-process server of conftest.py
(service CIDR 127.11.96.0/20, pod CIDR 127.244.0.0/16, the fake upstream on
127.11.0.53).
"""

from __future__ import annotations

from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from svcnet.dns import DnsServer
from svcnet.store import Store
from tests.dns.conftest import FakeUpstream, addresses, ask, endpoints, service

TRANSPORTS = [pytest.param(False, id="udp"), pytest.param(True, id="tcp")]
S = ".default.svc.cluster.local."


def rdata(msg: dns.message.Message, section: str = "answer") -> set[tuple[str, str, str]]:
    return {
        (rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), rd.to_text())
        for rrset in getattr(msg, section)
        for rd in rrset
    }


def soa_of(msg: dns.message.Message) -> tuple[str, str, str]:
    (rrset,) = msg.authority
    (rd,) = rrset
    return rrset.name.to_text(), rd.mname.to_text(), rd.rname.to_text()


def headless(name: str, subsets: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    svc = service(name, clusterIP="None", clusterIPs=["None"], ports=[{"name": "http", "port": 80}])
    eps = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": name, "namespace": "default"},
        "subsets": subsets,
    }
    return svc, eps


HTTP = [{"name": "http", "port": 80, "protocol": "TCP"}]


# --- 1. SRV weights -------------------------------------------------------------------


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_dual_stack_cluster_ip_splits_the_weight(
    server: DnsServer, store: Store, tcp: bool
) -> None:
    # CoreDNS's "svc-dual-stack" case: one entry per (port, ClusterIP), so one SRV
    # record of weight 50 and both address records in the additional section.
    store.create(
        service(
            "dual",
            clusterIP="127.11.96.30",
            clusterIPs=["127.11.96.30", "fd00::30"],
            ipFamilies=["IPv4", "IPv6"],
            ports=[{"name": "http", "protocol": "TCP", "port": 80}],
        )
    )
    target = "dual" + S
    for qname in (target, "_http._tcp." + target):
        r = await ask(server, qname, "SRV", tcp=tcp)
        assert rdata(r) == {(qname, "SRV", f"0 50 80 {target}")}
        assert rdata(r, "additional") == {
            (target, "A", "127.11.96.30"),
            (target, "AAAA", "fd00::30"),
        }


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_duplicate_endpoint_names_count_before_they_merge(
    server: DnsServer, store: Store, tcp: bool
) -> None:
    # CoreDNS's hdls1: six addresses, two sharing the hostname dup-name, give five
    # SRV records of weight floor(100/6) = 16 and six address records.
    addrs = [{"ip": f"127.244.7.{i}"} for i in (2, 3)]
    addrs += [{"ip": f"127.244.7.{i}", "hostname": "dup-name"} for i in (4, 5)]
    addrs += [{"ip": "fd00::7:1"}, {"ip": "fd00::7:2"}]
    for obj in headless("hdls", [{"addresses": addrs, "ports": HTTP}]):
        store.create(obj)
    h = "hdls" + S
    # Over UDP without EDNS the last address record would not fit in 512 bytes.
    r = await ask(server, "_http._tcp." + h, "SRV", tcp=tcp, use_edns=0, payload=1232)
    targets = ["127-244-7-2", "127-244-7-3", "dup-name", "fd00--7-1", "fd00--7-2"]
    assert rdata(r) == {("_http._tcp." + h, "SRV", f"0 16 80 {t}.{h}") for t in targets}
    assert rdata(r, "additional") == {
        (f"127-244-7-2.{h}", "A", "127.244.7.2"),
        (f"127-244-7-3.{h}", "A", "127.244.7.3"),
        (f"dup-name.{h}", "A", "127.244.7.4"),
        (f"dup-name.{h}", "A", "127.244.7.5"),
        (f"fd00--7-1.{h}", "AAAA", "fd00::7:1"),
        (f"fd00--7-2.{h}", "AAAA", "fd00::7:2"),
    }


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_an_endpoint_without_ports_counts_in_the_weight(
    server: DnsServer, store: Store, tcp: bool
) -> None:
    # An endpoint with no ports is CoreDNS's sentinel port -1: it takes its share of
    # the weight and gets no record, so the one record left has weight 50.
    subsets: list[dict[str, Any]] = [
        {"addresses": [{"ip": "127.244.8.1"}], "ports": HTTP},
        {"addresses": [{"ip": "127.244.8.2"}]},
    ]
    for obj in headless("mixed", subsets):
        store.create(obj)
    h = "mixed" + S
    r = await ask(server, h, "SRV", tcp=tcp)
    assert rdata(r) == {(h, "SRV", f"0 50 80 127-244-8-1.{h}")}
    assert rdata(r, "additional") == {(f"127-244-8-1.{h}", "A", "127.244.8.1")}
    # Only the portless endpoint: the name exists, no SRV record (NODATA).
    r = await ask(server, "127-244-8-2." + h, "SRV", tcp=tcp)
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    # A named port never matches the sentinel: the unnamed one is simply absent.
    r = await ask(server, "_http._tcp." + h, "SRV", tcp=tcp)
    assert rdata(r) == {("_http._tcp." + h, "SRV", f"0 100 80 127-244-8-1.{h}")}


async def test_weights_round_down_as_float64(server: DnsServer, store: Store) -> None:
    # 100/300*100 = 33.33.. -> 33 (and never 0: 1 is the floor).
    addrs = [{"ip": f"127.244.9.{i}"} for i in (1, 2, 3)]
    for obj in headless("three", [{"addresses": addrs, "ports": HTTP}]):
        store.create(obj)
    r = await ask(server, "three" + S, "SRV")
    assert {rd.weight for rrset in r.answer for rd in rrset} == {33}


# --- 2. the zone as the client spelled it ------------------------------------------------


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_srv_target_keeps_the_zone_spelling(server: DnsServer, tcp: bool) -> None:
    # handler_case_test.go: the Service part is the object's name, the zone the query's.
    q = "_HtTp._TcP.eChO.DeFaUlT.SvC.cLuStEr.LoCaL."
    target = "echo.default.svc.cLuStEr.LoCaL."
    r = await ask(server, q, "SRV", tcp=tcp)
    assert rdata(r) == {(q, "SRV", f"0 100 80 {target}")}
    assert rdata(r, "additional") == {(target, "A", "127.96.12.34")}


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_negative_answers_name_the_zone_as_spelled(server: DnsServer, tcp: bool) -> None:
    r = await ask(server, "not-a-service.default.svc.ClUsTeR.lOcAl.", tcp=tcp)
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert soa_of(r) == ("ClUsTeR.lOcAl.", "ns.dns.ClUsTeR.lOcAl.", "hostmaster.ClUsTeR.lOcAl.")
    r = await ask(server, "echo.default.svc.Cluster.Local.", "AAAA", tcp=tcp)
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    assert soa_of(r)[0] == "Cluster.Local."
    r = await ask(server, "nosuch.default.svc.LOCAL.", tcp=tcp)  # the alias zone too
    assert soa_of(r) == ("LOCAL.", "ns.dns.LOCAL.", "hostmaster.LOCAL.")


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_apex_records_name_the_zone_as_spelled(server: DnsServer, tcp: bool) -> None:
    r = await ask(server, "Cluster.local.", "SOA", tcp=tcp)
    ((rrset,),) = [r.answer]
    (rd,) = rrset
    assert (rrset.name.to_text(), rd.mname.to_text(), rd.rname.to_text()) == (
        "Cluster.local.",
        "ns.dns.Cluster.local.",
        "hostmaster.Cluster.local.",
    )
    r = await ask(server, "Cluster.local.", "NS", tcp=tcp)
    assert rdata(r) == {("Cluster.local.", "NS", "ns.dns.Cluster.local.")}
    assert rdata(r, "additional") == {("ns.dns.Cluster.local.", "A", "127.11.96.10")}


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_cached_answers_keep_each_spelling(server: DnsServer, tcp: bool) -> None:
    # The cache shares answers between spellings of a name by patching the question;
    # SOA and SRV data name the zone outside it, so those must not be shared.
    # (Names compressed into the question follow the patch; SRV targets never are.)
    for zone in ("cluster.local.", "CLUSTER.local.", "cluster.local.", "Cluster.Local."):
        q, target = "_http._tcp.echo.default.svc." + zone, "echo.default.svc." + zone
        r = await ask(server, q, "SRV", tcp=tcp)
        assert rdata(r) == {(q, "SRV", f"0 100 80 {target}")}
        assert rdata(r, "additional") == {(target, "A", "127.96.12.34")}
        r = await ask(server, "nosuch.default.svc." + zone, tcp=tcp)
        assert soa_of(r)[0] == zone
    r = await ask(server, "echo.default.svc.cluster.local.", tcp=tcp)
    r = await ask(server, "ECHO.default.svc.CLUSTER.local.", tcp=tcp)  # still shared
    assert rdata(r) == {("ECHO.default.svc.CLUSTER.local.", "A", "127.96.12.34")}
    assert server.stats()["cacheHits"] >= 1


# --- 3. reverse zones of the service and pod CIDRs ----------------------------------------

REV_SVC = "96.11.127.in-addr.arpa."  # 127.11.96.0/20 splits into /24 zones, like CoreDNS
REV_POD = "244.127.in-addr.arpa."


@pytest.mark.parametrize("tcp", TRANSPORTS)
@pytest.mark.parametrize(
    ("qname", "zone"),
    [
        ("7.0.96.11.127.in-addr.arpa.", REV_SVC),
        ("1.0.111.11.127.in-addr.arpa.", "111.11.127.in-addr.arpa."),  # the CIDR's last /24
        ("9.9.244.127.in-addr.arpa.", REV_POD),
        ("0.96.11.127.in-addr.arpa.", REV_SVC),  # a partial name is no address
        ("x.9.9.244.127.in-addr.arpa.", REV_POD),
        ("echo.default.svc.244.127.in-addr.arpa.", REV_POD),
    ],
)
async def test_unknown_addresses_in_our_cidrs_are_nxdomain(
    server: DnsServer, upstream: FakeUpstream, qname: str, zone: str, tcp: bool
) -> None:
    r = await ask(server, qname, "PTR", tcp=tcp)
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert r.flags & dns.flags.AA
    assert not r.answer
    assert soa_of(r) == (zone, "ns.dns." + zone, "hostmaster." + zone)
    assert upstream.seen == []


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_known_addresses_in_our_cidrs_answer(
    server: DnsServer, store: Store, upstream: FakeUpstream, tcp: bool
) -> None:
    store.create(
        service(
            "inside",
            clusterIP="127.11.96.77",
            clusterIPs=["127.11.96.77"],
            ports=[{"name": "http", "protocol": "TCP", "port": 80}],
        )
    )
    r = await ask(server, "77.96.11.127.in-addr.arpa.", "PTR", tcp=tcp)
    assert rdata(r) == {("77.96.11.127.in-addr.arpa.", "PTR", "inside" + S)}
    assert r.flags & dns.flags.AA and not r.authority
    r = await ask(server, "2.0.244.127.in-addr.arpa.", "PTR", tcp=tcp)  # echo's endpoint
    assert rdata(r) == {("2.0.244.127.in-addr.arpa.", "PTR", "127-244-0-2.echo" + S)}
    # Another type at a name that has a PTR: CoreDNS's fake A lookup finds nothing.
    r = await ask(server, "2.0.244.127.in-addr.arpa.", "A", tcp=tcp)
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert upstream.seen == []


@pytest.mark.parametrize("tcp", TRANSPORTS)
async def test_reverse_zone_apex(server: DnsServer, upstream: FakeUpstream, tcp: bool) -> None:
    r = await ask(server, REV_POD, "SOA", tcp=tcp)
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    ((rrset,),) = [r.answer]
    assert rrset.name.to_text() == REV_POD
    r = await ask(server, REV_POD, "PTR", tcp=tcp)
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    assert soa_of(r)[0] == REV_POD
    r = await ask(server, REV_POD, "NS", tcp=tcp)
    assert rdata(r) == {(REV_POD, "NS", "ns.dns." + REV_POD)}
    assert upstream.seen == []


async def test_reverse_zone_keeps_the_spelling(server: DnsServer) -> None:
    r = await ask(server, "7.0.96.11.127.IN-ADDR.Arpa.", "PTR")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert soa_of(r)[0] == "96.11.127.IN-ADDR.Arpa."


@pytest.mark.parametrize(
    "qname",
    [
        "9.9.9.127.in-addr.arpa.",  # 127.9.9.9: in no CIDR of ours
        "9.9.112.11.127.in-addr.arpa.",  # 127.11.112.9: just past the service CIDR
        "1.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
    ],
)
async def test_other_reverse_names_still_fall_through(
    server: DnsServer, upstream: FakeUpstream, qname: str
) -> None:
    r = await ask(server, qname, "PTR")
    assert r.rcode() == dns.rcode.NXDOMAIN and not r.flags & dns.flags.AA
    assert [n for _, n, _ in upstream.seen] == [qname]


# --- 4. truncation -------------------------------------------------------------------------

BIG = [f"127.244.1.{i}" for i in range(1, 201)]
NAME = "big.default.svc.cluster.local."
# 12 bytes of header and 35 of question; each A record is 16 bytes (its owner a
# pointer to the question); OPT takes 11.
PER_A, BEFORE = 16, 12 + 35


@pytest.fixture
def big(store: Store) -> None:
    store.create(service("big", clusterIP="None", clusterIPs=["None"]))
    store.create(endpoints("big", BIG))


@pytest.mark.usefixtures("big")
@pytest.mark.parametrize(
    ("make", "fits"),
    [
        ({}, (512 - BEFORE) // PER_A),
        ({"use_edns": 0, "payload": 512}, (512 - BEFORE - 11) // PER_A),
        ({"use_edns": 0, "payload": 1232}, (1232 - BEFORE - 11) // PER_A),
        ({"use_edns": 0, "payload": 100}, (512 - BEFORE - 11) // PER_A),  # below 512 is 512
    ],
)
async def test_udp_carries_what_fits_and_sets_tc(
    server: DnsServer, make: dict[str, Any], fits: int
) -> None:
    for _ in range(2):  # computed, then from the cache
        r = await ask(server, NAME, **make)
        assert r.flags & dns.flags.TC and r.flags & dns.flags.AA
        assert r.rcode() == dns.rcode.NOERROR
        assert len(addresses(r)) == fits
        assert addresses(r) < set(BIG)
        assert (r.edns == 0) == ("use_edns" in make)


@pytest.mark.usefixtures("big")
async def test_tcp_and_a_large_edns_buffer_get_everything(server: DnsServer) -> None:
    for r in (await ask(server, NAME, tcp=True), await ask(server, NAME, use_edns=0, payload=4096)):
        assert not r.flags & dns.flags.TC
        assert addresses(r) == set(BIG)


async def test_srv_answers_fill_before_the_additional_section(
    server: DnsServer, store: Store
) -> None:
    addrs = [{"ip": f"127.244.2.{i}"} for i in range(1, 31)]
    for obj in headless("many", [{"addresses": addrs, "ports": HTTP}]):
        store.create(obj)
    r = await ask(server, "_http._tcp.many" + S, "SRV")
    assert r.flags & dns.flags.TC
    kept = rdata(r)
    assert 0 < len(kept) < 30
    assert all(weight == "0 3 80" for weight in (rd.rsplit(" ", 1)[0] for _, _, rd in kept))
    assert not r.additional  # miekg stops at the first record that does not fit
    r = await ask(server, "_http._tcp.many" + S, "SRV", tcp=True)
    assert len(rdata(r)) == 30 and len(rdata(r, "additional")) == 30


async def test_forwarded_answers_are_truncated_the_same_way(
    server: DnsServer, upstream: FakeUpstream
) -> None:
    # The upstream truncates over UDP; svcnet asks again over TCP and then fits the
    # whole answer to its own client's UDP limit.
    upstream.answers["many.example."] = BIG
    upstream.truncate.add("many.example.")
    r = await ask(server, "many.example.")
    assert r.flags & dns.flags.TC
    fits = (512 - 12 - len("many.example.") - 1 - 4) // PER_A
    assert len(addresses(r)) == fits
    r = await ask(server, "many.example.", tcp=True)
    assert addresses(r) == set(BIG) and not r.flags & dns.flags.TC
