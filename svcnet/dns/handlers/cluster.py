"""Cluster names: what CoreDNS's kubernetes plugin answers, from the index.

Scope today (k8s-dns.md has the full table; rows in brackets):

- ``<svc>.<ns>.svc.<zone>`` for the cluster domain and every alias zone:
  ClusterIP A/AAAA [R2], headless endpoint addresses or NXDOMAIN when none is
  ready [R5], ExternalName CNAME without chasing the target [R9, 21].
- ``<endpoint>.<svc>.<ns>.svc.<zone>``: the endpoint's addresses [R6].
- Negative answers with CoreDNS's SOA and AA [section 2]; NODATA where the
  name exists (``<ns>.svc``, ``svc``, the apex, other types); NXDOMAIN for
  everything else in the zone, including too-long names and anything under an
  ExternalName (coredns#5733) so that search-path walks move on.
- ``dns-version.<zone>`` TXT [R1].
- The literal short names ``<svc>.`` (namespace default) and ``<svc>.<ns>.``
  answer like the full name, but only while that Service exists; otherwise
  they fall through to the next handler (forwarding), as any outside name.

Left for the full-spec issue: SRV [R3, R7] (port names are matched and get
NODATA), PTR [R4, R8], pod A records [R10] (NXDOMAIN, as ``pods disabled``),
and chasing ExternalName targets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from dnslib import AAAA, CNAME, QTYPE, RR, SOA, TXT, A, DNSLabel

from svcnet.dns import names, wire
from svcnet.dns.chain import Next, Reply, build_reply, owner
from svcnet.dns.index import ClusterIndex, ServiceEntry, endpoint_hostname
from svcnet.dns.names import ClusterName, Kind
from svcnet.dns.wire import Query

DNS_SCHEMA_VERSION = "1.1.0"
DNS_VERSION_TTL = 28800  # CoreDNS hard-codes this for dns-version.<zone>

_ADDRESS_TYPES = (QTYPE.A, QTYPE.AAAA)
_ANY = QTYPE.ANY


class ClusterHandler:
    name = "kubernetes"

    def __init__(
        self, index: ClusterIndex, cluster_domain: str, alias_zones: Sequence[str], ttl: int
    ) -> None:
        self._index = index
        self._cluster_domain = cluster_domain.strip(".").lower()
        self._zones = names.zone_labels([cluster_domain, *alias_zones])
        self._ttl = ttl

    async def handle(self, query: Query, next: Next) -> Reply:
        reply = self.answer(query)
        if reply is None:
            return await next(query)
        return reply

    def answer(self, query: Query) -> Reply | None:
        """The cluster's answer, or None when the name is not ours (synchronous)."""
        if query.qclass != wire.CLASS_IN:
            return None
        labels = query.lower_labels
        split = names.split_zone(labels, self._zones)
        if split is None:
            return self._short(query, labels)
        rest, zone = split
        return self._cluster(query, names.parse_cluster(rest, zone))

    # --- name shapes -------------------------------------------------------

    def _short(self, query: Query, labels: names.Labels) -> Reply | None:
        short = names.short_name(labels)
        if short is None:
            return None
        svc, ns = short
        entry = self._index.service(ns, svc)
        if entry is None or not self._index.has_namespace(ns):
            return None
        return self._service(query, entry, self._cluster_domain)

    def _cluster(self, query: Query, name: ClusterName) -> Reply:
        kind, zone, qtype = name.kind, name.zone, query.qtype
        if kind is Kind.APEX:
            if qtype == QTYPE.SOA:
                return self._reply(query, wire.NOERROR, [self._soa(zone)], [])
            return self._nodata(query, zone)
        if kind is Kind.SVC_ROOT or kind is Kind.POD_ROOT:
            return self._nodata(query, zone)
        if kind is Kind.NAMESPACE or kind is Kind.POD_NAMESPACE:
            if self._index.has_namespace(name.namespace):
                return self._nodata(query, zone)
            return self._nxdomain(query, zone)
        if kind is Kind.DNS_VERSION:
            if qtype in (QTYPE.TXT, _ANY):
                rr = RR(owner(query), QTYPE.TXT, rdata=TXT(DNS_SCHEMA_VERSION), ttl=DNS_VERSION_TTL)
                return self._reply(query, wire.NOERROR, [rr], [])
            return self._nodata(query, zone)
        if kind in (Kind.SERVICE, Kind.ENDPOINT, Kind.PORT):
            if not self._index.has_namespace(name.namespace):
                return self._nxdomain(query, zone)
            entry = self._index.service(name.namespace, name.service)
            if entry is None:
                return self._nxdomain(query, zone)
            if kind is Kind.SERVICE:
                return self._service(query, entry, zone)
            if kind is Kind.ENDPOINT:
                return self._endpoint(query, entry, name.endpoint, zone)
            return self._port(query, entry, name, zone)
        # POD (pods disabled for now), INVALID, TOO_LONG
        return self._nxdomain(query, zone)

    def _service(self, query: Query, entry: ServiceEntry, zone: str) -> Reply:
        qtype = query.qtype
        if entry.external:
            target = entry.view.external_name.strip(".")
            if not target or _is_ip(target):
                # Kubernetes docs: IP-valued externalNames are not resolved by DNS.
                return self._nxdomain(query, zone)
            if qtype in (QTYPE.A, QTYPE.AAAA, QTYPE.CNAME, _ANY):
                rr = RR(owner(query), QTYPE.CNAME, rdata=CNAME(target + "."), ttl=self._ttl)
                return self._reply(query, wire.NOERROR, [rr], [])
            return self._nodata(query, zone)
        if entry.headless:
            addrs = [a.ip for a in self._index.ready_addresses(entry)]
            if not addrs:
                return self._nxdomain(query, zone)
            return self._addresses(query, addrs, zone)
        return self._addresses(query, [*entry.ipv4, *entry.ipv6], zone)

    def _endpoint(self, query: Query, entry: ServiceEntry, label: str, zone: str) -> Reply:
        if entry.external:
            return self._nxdomain(query, zone)
        ips = [
            a.ip
            for a in self._index.ready_addresses(entry)
            if endpoint_hostname(a).lower() == label
        ]
        if not ips:
            return self._nxdomain(query, zone)
        return self._addresses(query, ips, zone)

    def _port(self, query: Query, entry: ServiceEntry, name: ClusterName, zone: str) -> Reply:
        if entry.external:
            return self._nxdomain(query, zone)
        for p in entry.view.ports:
            if p.name and p.name.lower() == name.port and p.protocol.lower() == name.protocol:
                # The name exists; SRV records arrive with the full-spec issue.
                return self._nodata(query, zone)
        return self._nxdomain(query, zone)

    # --- records -----------------------------------------------------------

    def _addresses(self, query: Query, ips: list[str], zone: str) -> Reply:
        qtype = query.qtype
        if qtype not in _ADDRESS_TYPES and qtype != _ANY:
            return self._nodata(query, zone)
        name = owner(query)
        answers = []
        for ip in ips:
            v6 = ":" in ip
            if v6 and qtype != QTYPE.A:
                answers.append(RR(name, QTYPE.AAAA, rdata=AAAA(ip), ttl=self._ttl))
            elif not v6 and qtype != QTYPE.AAAA:
                answers.append(RR(name, QTYPE.A, rdata=A(ip), ttl=self._ttl))
        if not answers:
            # NODATA, not NXDOMAIN: an A answer exists (coredns#779).
            return self._nodata(query, zone)
        return self._reply(query, wire.NOERROR, answers, [])

    def _soa(self, zone: str) -> RR:
        # k8s-dns.md section 2: the shape CoreDNS's kubernetes plugin sends.
        times = (self._index.serial, 7200, 1800, 86400, self._ttl)
        return RR(
            DNSLabel(zone + "."),
            QTYPE.SOA,
            rdata=SOA(f"ns.dns.{zone}.", f"hostmaster.{zone}.", times),
            ttl=min(self._ttl, 300),
        )

    def _nodata(self, query: Query, zone: str) -> Reply:
        return self._reply(query, wire.NOERROR, [], [self._soa(zone)])

    def _nxdomain(self, query: Query, zone: str) -> Reply:
        return self._reply(query, wire.NXDOMAIN, [], [self._soa(zone)])

    def _reply(self, query: Query, rcode: int, answers: list[RR], authority: list[RR]) -> Reply:
        packed = build_reply(query, rcode, answers=answers, authority=authority, aa=True)
        return Reply(packed, rcode, cacheable=True, source=self.name)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
