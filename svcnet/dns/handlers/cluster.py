"""Cluster names: what CoreDNS's kubernetes plugin answers, from the index.

The whole Kubernetes DNS specification 1.1.0 as CoreDNS v1.14 answers it
(../shared/reference/k8s-dns.md; row numbers R1-R10 and 1-40 refer to it):

- ``<svc>.<ns>.svc.<zone>``: ClusterIP A/AAAA [R2]; headless: one record per
  published endpoint, NXDOMAIN when none is ready [R5]; ExternalName: CNAME,
  and for A/AAAA the target's records too [R9, 20-22] (see below). SRV on the
  bare name lists every port (CoreDNS's extension, row 10).
- ``<hostname>.<svc>.<ns>.svc.<zone>``: the endpoint's addresses, for headless
  and ClusterIP Services alike [R6, row 12]. The hostname is the endpoint's
  ``hostname`` (set by the endpoints controller only when the pod's
  ``subdomain`` names this Service) or else the dashed IP.
- ``_<port>._<proto>.<svc>.<ns>.svc.<zone>``: SRV per named port; ClusterIP
  Services give the Service port and target the Service name [R3], headless
  ones one record per (endpoint, port) with the endpoint port and the
  endpoint name [R7]. Priority 0, weight ``floor(100 / N)`` (at least 1)
  where N counts CoreDNS's entries before duplicates merge: one per (port,
  ClusterIP), or per (endpoint, port) with a portless endpoint counted too;
  target addresses in the additional section. An A query there gets the
  addresses.
- PTR for ClusterIPs and for every published endpoint of every Service
  [R4, R8]. The reverse zones of the service and pod CIDRs are ours, as
  ``kubernetes cluster.local <service CIDR> <pod CIDR>`` makes them CoreDNS's:
  an address there without a record is NXDOMAIN with that zone's SOA. Any
  other reverse name we do not know goes on down the chain (kubeadm's
  ``fallthrough in-addr.arpa ip6.arpa``).
- ``dns-version.<zone>`` TXT "1.1.0" at TTL 28800 [R1]; ``<zone>`` SOA and NS,
  ``ns.dns.<zone>`` A (the kube-dns address).
- ``a-b-c-d.<ns>.pod.<zone>`` [R10]: ``pods`` is ``insecure`` (kubeadm's
  default: echo the address), ``verified`` (only if such a pod exists in that
  namespace) or ``disabled`` (NXDOMAIN).

Negative answers (section 2): AA and the zone's SOA in the authority section,
NODATA (NOERROR, no answer) where the name exists but has no record of the
type asked (including ANY, TXT, MX and CNAME on a Service, SOA below the apex),
NXDOMAIN for everything else in the zone: missing Services, namespaces,
endpoints, ports, too-long names, names under an ExternalName, wildcards
(which CoreDNS dropped), so that a resolver's search walk moves on. AXFR/IXFR
are REFUSED. Owner names keep the query's case (CoreDNS PR #2430), and so does
the zone wherever CoreDNS names it (SOA owner and data, NS data, SRV targets:
``echo.default.svc.Cluster.Local.``); names of objects are the objects' own.

ExternalName chasing (section 3): a target inside one of our zones is
resolved here, up to `MAX_CHASE` hops with a loop check; when it has no
records the answer is NODATA without the CNAME (coredns#6088). Any other
target is looked up through the whole chain again (`lookup`, CoreDNS's
``Upstream.Lookup``), and the answer is the CNAME followed by whatever
records come back; when that lookup fails (SERVFAIL, NXDOMAIN, timeout) the
CNAME alone, NOERROR.

svcnet's own additions: the alias zones answer exactly like the cluster
domain, and the literal short names ``<svc>.`` (namespace default) and
``<svc>.<ns>.`` answer like the full name, only while that Service exists;
otherwise they fall through to forwarding like any outside name.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from dnslib import AAAA, CNAME, NS, PTR, QTYPE, RR, SOA, SRV, TXT, A, DNSLabel, DNSRecord

from svcnet.dns import names, wire
from svcnet.dns.chain import Next, Reply, build_reply, owner
from svcnet.dns.index import ClusterIndex, ServiceEntry, endpoint_hostname
from svcnet.dns.names import ClusterName, Kind
from svcnet.dns.wire import Query
from svcnet.k8s.objects import EndpointAddress, EndpointPort, ServicePort

_T = TypeVar("_T")
_Endpoints = Sequence[tuple[EndpointAddress, Sequence[EndpointPort]]]

DNS_SCHEMA_VERSION = "1.1.0"
DNS_VERSION_TTL = 28800  # CoreDNS hard-codes this for dns-version.<zone>
MAX_CHASE = 10
"""ExternalName hops followed before giving up (CoreDNS's limit)."""

PodMode = Literal["disabled", "insecure", "verified"]
POD_MODES: tuple[PodMode, ...] = ("disabled", "insecure", "verified")

_T_A, _T_AAAA, _T_SRV, _T_PTR = QTYPE.A, QTYPE.AAAA, QTYPE.SRV, QTYPE.PTR
_T_CNAME, _T_TXT, _T_SOA, _T_NS = QTYPE.CNAME, QTYPE.TXT, QTYPE.SOA, QTYPE.NS
_ADDRESS_TYPES = (_T_A, _T_AAAA)
_TRANSFERS = (QTYPE.AXFR, QTYPE.IXFR)
_NS_LABELS = ("ns", "dns")


@dataclass(slots=True)
class _Result:
    """An answer before packing: records, and maybe an outside target still to chase."""

    rcode: int
    answers: list[RR] = field(default_factory=list)
    additional: list[RR] = field(default_factory=list)
    chase: str | None = None
    """ExternalName target outside our zones whose records should follow the CNAMEs."""
    scope: tuple[str, str] | None = None
    """The one Service a positive answer was computed from (see Reply.scope)."""
    spelled: bool = False
    """Records name the zone as the client spelled it (SRV targets, SOA, NS): see
    Reply.spelled."""


_NXDOMAIN = wire.NXDOMAIN
_NOERROR = wire.NOERROR


def _nodata() -> _Result:
    return _Result(_NOERROR)


def _nxdomain() -> _Result:
    return _Result(_NXDOMAIN)


class ClusterHandler:
    name = "kubernetes"

    def __init__(
        self,
        index: ClusterIndex,
        cluster_domain: str,
        alias_zones: Sequence[str],
        ttl: int,
        *,
        pods: PodMode = "insecure",
        dns_ips: Sequence[str] = (),
        reverse_cidrs: Sequence[str] = (),
    ) -> None:
        self._index = index
        self._cluster_domain = cluster_domain.strip(".").lower()
        self._zones = names.zone_labels([cluster_domain, *alias_zones])
        self._reverse_zones = names.ReverseZones(reverse_cidrs)
        self._ttl = ttl
        self._pods = pods
        self._dns_ips = tuple(dns_ips)
        self.lookup: Next | None = None
        """The whole chain, for ExternalName targets outside the zones (set by the server)."""

    async def handle(self, query: Query, next: Next) -> Reply:
        reply = self.answer(query)
        if reply is None:
            return await next(query)
        if isinstance(reply, Reply):
            return reply
        return await self._chase(query, reply)

    def answer(self, query: Query) -> Reply | _Chase | None:
        """The answer; a `_Chase` when an upstream lookup must complete it; None if not ours."""
        labels = query.lower_labels
        split = names.split_zone(labels, self._zones)
        reverse = False
        if split is None:
            split = self._reverse_zones.split(labels)
            if split is None:
                return self._outside(query, labels)
            reverse = True
        rest, zone_labels = split
        # The zone as the client spelled it: CoreDNS names it so in SOA, NS and SRV
        # targets ("maintain case of original query", handler.go).
        zone = ".".join(label.decode("latin-1") for label in query.labels[len(rest) :])
        if query.qclass != wire.CLASS_IN or query.qtype in _TRANSFERS:
            return self._pack(query, _Result(wire.REFUSED), zone, negative=False)
        qtype = query.qtype
        if qtype == _T_SOA and rest:
            result = _nodata()  # SOA lives at the apex only; CoreDNS says NODATA below it
        elif rest == _NS_LABELS:
            result = self._ns_host(query, qtype)
        elif reverse:
            result = self._reverse_zone(labels, rest, zone_labels, qtype, owner(query), zone)
        else:
            result = self._lookup(
                names.parse_cluster(rest, zone_labels),
                qtype,
                owner(query),
                zone,
                query.depth,
                set(),
            )
        return self._finish(query, result, zone)

    def _reverse_zone(
        self,
        labels: names.Labels,
        rest: names.Labels,
        zone_labels: names.Labels,
        qtype: int,
        rname: DNSLabel,
        zone: str,
    ) -> _Result:
        """A name in the reverse zone of the service or pod CIDR, which CoreDNS serves
        authoritatively (``kubernetes cluster.local <service CIDR> <pod CIDR>``): the
        PTR records of addresses that have some, NXDOMAIN for every other name below
        the apex (parse.go finds no ``svc`` or ``pod`` there), and the apex's own
        SOA and NS."""
        if not rest or rest == ("dns-version",):
            apex = names.parse_cluster(rest, zone_labels)
            return self._lookup(apex, qtype, rname, zone, 0, set())
        ip = names.parse_reverse(labels) if qtype == _T_PTR else None
        targets = self._index.reverse(ip) if ip is not None else []
        if not targets:
            return _nxdomain()
        return _Result(_NOERROR, self._ptr_records(rname, targets))

    def _ptr_records(self, rname: DNSLabel, targets: Sequence[str]) -> list[RR]:
        # PTR targets are in the cluster domain as configured (CoreDNS's primaryZone).
        return [
            RR(rname, _T_PTR, rdata=PTR(f"{t}.{self._cluster_domain}."), ttl=self._ttl)
            for t in targets
        ]

    # --- outside the zones: reverse names and literal short names ------------

    def _outside(self, query: Query, labels: names.Labels) -> Reply | _Chase | None:
        if query.qclass != wire.CLASS_IN:
            return None
        ip = names.parse_reverse(labels) if len(labels) > 5 else None
        if ip is not None:
            targets = self._index.reverse(ip) if query.qtype == _T_PTR else []
            if not targets:
                return None  # fallthrough in-addr.arpa ip6.arpa: the upstream may know
            answers = self._ptr_records(owner(query), targets)
            return self._pack(query, _Result(_NOERROR, answers), self._cluster_domain)
        short = names.short_name(labels)
        if short is None:
            return None
        svc, ns = short
        entry = self._index.service(ns, svc)
        if entry is None or not self._index.has_namespace(ns):
            return None
        zone = self._cluster_domain
        result = self._service(entry, query.qtype, owner(query), zone, query.depth, set())
        return self._finish(query, _scoped(result, entry), zone)

    # --- name shapes -------------------------------------------------------

    def _lookup(
        self, name: ClusterName, qtype: int, rname: DNSLabel, zone: str, depth: int, seen: set[str]
    ) -> _Result:
        kind = name.kind
        if kind is Kind.SERVICE or kind is Kind.ENDPOINT or kind is Kind.PORT:
            if not self._index.has_namespace(name.namespace):
                return _nxdomain()
            entry = self._index.service(name.namespace, name.service)
            if entry is None:
                return _nxdomain()
            if kind is Kind.SERVICE:
                result = self._service(entry, qtype, rname, zone, depth, seen)
            elif kind is Kind.ENDPOINT:
                result = self._endpoint(entry, name.endpoint, qtype, rname, zone)
            else:
                result = self._port(entry, name, qtype, rname, zone)
            return _scoped(result, entry)
        if kind is Kind.APEX:
            if qtype == _T_SOA:
                return _Result(_NOERROR, [self._soa(zone)], spelled=True)
            if qtype == _T_NS:
                ns = DNSLabel(f"ns.dns.{zone}.")
                return _Result(
                    _NOERROR,
                    [RR(rname, _T_NS, rdata=NS(ns), ttl=self._ttl)],
                    self._address_records(ns, self._dns_ips, _ADDRESS_TYPES),
                    spelled=True,
                )
            return _nodata()
        if kind is Kind.SVC_ROOT or kind is Kind.POD_ROOT:
            return _nodata()
        if kind is Kind.NAMESPACE or kind is Kind.POD_NAMESPACE:
            return _nodata() if self._index.has_namespace(name.namespace) else _nxdomain()
        if kind is Kind.DNS_VERSION:
            if qtype == _T_TXT:
                txt = TXT(DNS_SCHEMA_VERSION)
                return _Result(_NOERROR, [RR(rname, _T_TXT, rdata=txt, ttl=DNS_VERSION_TTL)])
            return _nodata()
        if kind is Kind.POD:
            return self._pod(name, qtype, rname)
        return _nxdomain()  # INVALID, TOO_LONG

    def _ns_host(self, query: Query, qtype: int) -> _Result:
        """``ns.dns.<zone>``: the kube-dns address, as CoreDNS's isDefaultNS."""
        records = self._address_records(owner(query), self._dns_ips, (qtype,))
        return _Result(_NOERROR, records)

    def _service(
        self,
        entry: ServiceEntry,
        qtype: int,
        rname: DNSLabel,
        zone: str,
        depth: int,
        seen: set[str],
    ) -> _Result:
        if entry.external:
            return self._external(entry, qtype, rname, depth, seen)
        if entry.headless:
            eps = self._index.ready_endpoints(entry)
            if not eps:
                return _nxdomain()  # SPEC 2.4.1, kubernetes/dns#234
            if qtype == _T_SRV:
                return self._srv_endpoints(entry, eps, None, rname, zone)
            ips = _unique(a.ip for a, _ in eps)
            return _Result(_NOERROR, self._address_records(rname, ips, (qtype,)))
        if qtype == _T_SRV:
            return self._srv_cluster_ip(entry, entry.view.ports, rname, zone)
        return _Result(_NOERROR, self._address_records(rname, entry.ipv4 + entry.ipv6, (qtype,)))

    def _external(
        self, entry: ServiceEntry, qtype: int, rname: DNSLabel, depth: int, seen: set[str]
    ) -> _Result:
        target = entry.view.external_name.strip(".").lower()
        if not target or _is_ip(target):
            # Kubernetes docs: IP-valued externalNames are not resolved by DNS.
            return _nxdomain()
        if qtype not in (_T_CNAME, *_ADDRESS_TYPES):
            return _nodata()
        cname = RR(rname, _T_CNAME, rdata=CNAME(target + "."), ttl=self._ttl)
        if qtype == _T_CNAME:
            return _Result(_NOERROR, [cname])
        labels = tuple(target.split("."))
        split = names.split_zone(labels, self._zones)
        if split is None:
            return _Result(_NOERROR, [cname], chase=target)
        # In the zone: resolve here, with a loop check and a hop limit.
        if target in seen or depth >= MAX_CHASE:
            return _nodata()
        seen.add(target)
        rest, zone_labels = split
        inner = self._lookup(
            names.parse_cluster(rest, zone_labels),
            qtype,
            DNSLabel(target + "."),
            ".".join(zone_labels),
            depth + 1,
            seen,
        )
        if inner.rcode != _NOERROR or not inner.answers:
            return _nodata()  # coredns#6088: no CNAME to a name that has nothing
        return _Result(_NOERROR, [cname, *inner.answers], inner.additional, inner.chase)

    def _endpoint(
        self, entry: ServiceEntry, label: str, qtype: int, rname: DNSLabel, zone: str
    ) -> _Result:
        if entry.external:
            return _nxdomain()  # coredns#5733: nothing lives under an ExternalName
        eps = [
            (a, ports)
            for a, ports in self._index.ready_endpoints(entry)
            if endpoint_hostname(a).lower() == label
        ]
        if not eps:
            return _nxdomain()
        if qtype == _T_SRV:
            return self._srv_endpoints(entry, eps, None, rname, zone)
        ips = _unique(a.ip for a, _ in eps)
        return _Result(_NOERROR, self._address_records(rname, ips, (qtype,)))

    def _port(
        self, entry: ServiceEntry, name: ClusterName, qtype: int, rname: DNSLabel, zone: str
    ) -> _Result:
        if entry.external:
            return _nxdomain()
        port, proto = name.port, name.protocol
        if entry.headless:
            eps = [
                (a, tuple(p for p in ports if _port_matches(p.name, p.protocol, port, proto)))
                for a, ports in self._index.ready_endpoints(entry)
            ]
            eps = [(a, ports) for a, ports in eps if ports]
            if not eps:
                return _nxdomain()
            if qtype == _T_SRV:
                return self._srv_endpoints(entry, eps, (port, proto), rname, zone)
            ips = _unique(a.ip for a, _ in eps)
            return _Result(_NOERROR, self._address_records(rname, ips, (qtype,)))
        ports_ = [p for p in entry.view.ports if _port_matches(p.name, p.protocol, port, proto)]
        if not ports_:
            return _nxdomain()
        if qtype == _T_SRV:
            return self._srv_cluster_ip(entry, ports_, rname, zone)
        return _Result(_NOERROR, self._address_records(rname, entry.ipv4 + entry.ipv6, (qtype,)))

    def _pod(self, name: ClusterName, qtype: int, rname: DNSLabel) -> _Result:
        if self._pods == "disabled" or not self._index.has_namespace(name.namespace):
            return _nxdomain()
        ip = names.pod_address(name.endpoint)
        if ip is None:
            return _nxdomain()
        if self._pods == "verified" and not self._index.has_pod(name.namespace, ip):
            return _nxdomain()
        return _Result(_NOERROR, self._address_records(rname, (ip,), (qtype,)))

    # --- records -----------------------------------------------------------

    def _address_records(
        self, rname: DNSLabel, ips: Sequence[str], qtypes: Sequence[int]
    ) -> list[RR]:
        out: list[RR] = []
        for ip in ips:
            if ":" in ip:
                if _T_AAAA in qtypes:
                    out.append(RR(rname, _T_AAAA, rdata=AAAA(ip), ttl=self._ttl))
            elif _T_A in qtypes:
                out.append(RR(rname, _T_A, rdata=A(ip), ttl=self._ttl))
        return out

    def _srv_cluster_ip(
        self, entry: ServiceEntry, ports: Sequence[ServicePort], rname: DNSLabel, zone: str
    ) -> _Result:
        view = entry.view
        target = DNSLabel(f"{view.name}.{view.namespace}.svc.{zone}.")
        ips = entry.ipv4 + entry.ipv6
        # findServices makes one entry per (port, ClusterIP): a dual-stack Service
        # splits the weight over both families even though the records coincide.
        count = len(ports) * len(ips)
        if not count:
            return _nodata()
        weight = _weight(count)
        answers = [
            RR(rname, _T_SRV, rdata=SRV(0, weight, n, target), ttl=self._ttl)
            for n in _unique(p.port for p in ports)
        ]
        extra = self._address_records(target, ips, _ADDRESS_TYPES)
        return _Result(_NOERROR, answers, extra, spelled=True)

    def _srv_endpoints(
        self,
        entry: ServiceEntry,
        eps: _Endpoints,
        match: tuple[str, str] | None,
        rname: DNSLabel,
        zone: str,
    ) -> _Result:
        view = entry.view
        pairs: list[tuple[str, str, int]] = []  # (target name, ip, port)
        for addr, ports in eps:
            host = endpoint_hostname(addr).lower()
            target = f"{host}.{view.name}.{view.namespace}.svc.{zone}."
            if not ports and match is None:
                # CoreDNS's sentinel port -1 for an endpoint without ports: it
                # counts in the weight but gets no SRV record (backend_lookup.go).
                pairs.append((target, addr.ip, -1))
            for p in ports:
                if match is None or _port_matches(p.name, p.protocol, *match):
                    pairs.append((target, addr.ip, p.port))
        if not pairs:
            return _nodata()
        weight = _weight(len(pairs))
        answers: list[RR] = []
        extra: list[RR] = []
        seen: set[tuple[str, int]] = set()
        seen_ips: set[tuple[str, str]] = set()
        for target, ip, port in pairs:
            if port < 0:
                continue
            if (target, port) not in seen:
                seen.add((target, port))
                label = DNSLabel(target)
                answers.append(RR(rname, _T_SRV, rdata=SRV(0, weight, port, label), ttl=self._ttl))
            if (target, ip) not in seen_ips:
                seen_ips.add((target, ip))
                extra.extend(self._address_records(DNSLabel(target), (ip,), _ADDRESS_TYPES))
        return _Result(_NOERROR, answers, extra, spelled=True)

    def _soa(self, zone: str) -> RR:
        # k8s-dns.md section 2: the shape CoreDNS's kubernetes plugin sends.
        times = (self._index.serial, 7200, 1800, 86400, self._ttl)
        return RR(
            DNSLabel(zone + "."),
            _T_SOA,
            rdata=SOA(f"ns.dns.{zone}.", f"hostmaster.{zone}.", times),
            ttl=min(self._ttl, 300),
        )

    # --- packing -----------------------------------------------------------

    def _finish(self, query: Query, result: _Result, zone: str) -> Reply | _Chase:
        if result.chase is not None:
            return _Chase(result, zone)
        return self._pack(query, result, zone)

    def _pack(self, query: Query, result: _Result, zone: str, *, negative: bool = True) -> Reply:
        authority = []
        if negative and not result.answers and result.rcode in (_NOERROR, _NXDOMAIN):
            authority.append(self._soa(zone))
        packed = build_reply(
            query,
            result.rcode,
            answers=result.answers,
            authority=authority,
            additional=result.additional,
            aa=True,
        )
        # Negative answers carry the SOA serial and may turn positive with any
        # new Service: only positive answers are tied to one Service.
        scope = result.scope if result.answers else None
        spelled = result.spelled or bool(authority)
        return Reply(
            packed, result.rcode, cacheable=True, scope=scope, spelled=spelled, source=self.name
        )

    async def _chase(self, query: Query, chase: _Chase) -> Reply:
        """Complete an ExternalName answer with the target's records from the chain."""
        result = chase.result
        target = result.chase
        assert target is not None
        records: list[RR] = []
        truncated = False
        if self.lookup is not None and query.depth < MAX_CHASE:
            sub = wire.make_query(
                tuple(label.encode() for label in target.split(".")),
                query.qtype,
                depth=query.depth + 1,
            )
            reply = await self.lookup(sub)
            # A lookup that came back truncated (even over TCP) makes ours truncated
            # too, as CoreDNS's plugin.A passes m1.Truncated on.
            truncated = len(reply.wire) > 2 and bool(reply.wire[2] & (wire.TC >> 8))
            if reply.rcode == _NOERROR:
                try:
                    records = DNSRecord.parse(reply.wire).rr
                except Exception:  # an upstream's garbage must not cost us the CNAME
                    records = []
        answers = list(result.answers)
        have = {(str(rr.rname).lower(), rr.rtype, str(rr.rdata).lower()) for rr in answers}
        for rr in records:
            k = (str(rr.rname).lower(), rr.rtype, str(rr.rdata).lower())
            if k not in have:
                have.add(k)
                answers.append(rr)
        packed = build_reply(
            query, _NOERROR, answers=answers, additional=result.additional, aa=True, tc=truncated
        )
        # Depends on an upstream answer: never cached with the cluster's answers.
        return Reply(packed, _NOERROR, cacheable=False, source=self.name)


@dataclass(frozen=True, slots=True)
class _Chase:
    result: _Result
    zone: str


def _scoped(result: _Result, entry: ServiceEntry) -> _Result:
    """Tie an answer to its Service, unless it followed an ExternalName elsewhere."""
    if not entry.external:
        result.scope = (entry.view.namespace, entry.view.name)
    return result


def _port_matches(pname: str, pproto: str, port: str, proto: str) -> bool:
    # Unnamed ports have no SRV name; a TCP port answers _tcp and _TCP alike.
    return bool(pname) and pname.lower() == port and pproto.lower() == proto


def _weight(n: int) -> int:
    """CoreDNS's SRV weight for one of `n` entries of one priority (all are priority 0).

    backend_lookup.go sums a weight of 100 per entry (before duplicates are dropped,
    sentinel ports included) and gives each ``floor(100 / total * 100)`` in float64,
    at least 1; Python's floats are the same IEEE doubles, so the same expression
    rounds the same way.
    """
    return max(1, math.floor(100.0 / float(100 * n) * 100))


def _unique(items: Iterable[_T]) -> list[_T]:
    out: list[_T] = []
    for x in items:
        if x not in out:
            out.append(x)
    return out


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
