"""CoreDNS's own kubernetes-plugin test cases, asked of a whole `svcnet up`.

The table is coredns/coredns plugin/kubernetes/handler_test.go (``commonDnsTestCases``
and ``dnsTestCases``, served by ``TestServeDNS``) and handler_case_test.go
(``dnsPreserveCaseCases``), row for row in CoreDNS's own text, plus the cases of
reverse_test.go that concern the same objects. The objects are the ones its fake
API (``APIConnServeTest``) serves, written as manifests and applied to a svcnet
the test starts; every case is asked over real UDP and TCP with dnspython, and
one with dig. Answers are compared as CoreDNS's ``test.SortAndCheck`` compares
them: rcode, TC, and each section as a set (the SOA serial aside), plus CNAMEs
before their targets.

Adaptations forced by svcnet's address plan (all in `adapt` and `manifests`):

- ClusterIPs must come from the service CIDR (127.<b>.0.0/16 for the test's
  block b): 10.0.0.N becomes 127.<b>.100.N. CoreDNS gives svc1 and svcempty the
  same 10.0.0.1, which two Services cannot share here, so svcempty has
  10.0.0.101 (127.<b>.100.101) in the rows below.
- Endpoint addresses are pod addresses: 172.0.0.N becomes 127.<b+1>.0.N, and
  the dashed names with them (172-0-0-2 becomes 127-<b+1>-0-2). hdls1's IPv6
  endpoints 5678:abcd::1 and ::2 are kept: the Service is headless, so they are
  only ever DNS data, never proxied or contacted.
- svc-dual-stack is single-stack (IPv4): the service CIDR is IPv4 only. Its A
  case is shared; its AAAA and SRV cases are in NOT_SHARED.
- svcempty's Endpoints (a subset with no addresses) is no Endpoints object: the
  API server refuses a subset without addresses, and "no endpoints" is what
  CoreDNS's fixture means.
- Ports' protocol "tcp" is "TCP", as the API server requires (CoreDNS matches
  protocols case-insensitively either way).
- UDP queries carry EDNS with a 4096-byte buffer: CoreDNS's unit test writes to
  a recorder that never truncates, and hdls1's SRV answer is over 512 bytes
  (truncation itself: tests/dns/test_dns_details.py).
- ``external`` chases ext.interwebs.test through a fake upstream on loopback
  that answers with TC set, over UDP and over TCP alike: svcnet's forwarder
  retries a truncated UDP answer over TCP, and the case (``Upstub{Truncated}``)
  is about passing the upstream's TC on.
"""

from __future__ import annotations

import re
import shutil
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from dnslib import QTYPE, RR, A, DNSRecord

from svcnet.testing import Svcnet, free_port

pytestmark = pytest.mark.slow

NOERROR, NXDOMAIN = int(dns.rcode.NOERROR), int(dns.rcode.NXDOMAIN)
SOA = "cluster.local.	5	IN	SOA	ns.dns.cluster.local. hostmaster.cluster.local. 1499347823 7200 1800 86400 5"  # noqa: E501


@dataclass(frozen=True)
class Case:
    """One test.Case: records in CoreDNS's presentation text."""

    qname: str
    qtype: str
    rcode: int
    answer: tuple[str, ...] = ()
    ns: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    truncated: bool = False


# handler_test.go commonDnsTestCases, in order.
COMMON = {
    "svc1-a": Case("svc1.testns.svc.cluster.local.", "A", NOERROR, answer=(
        "svc1.testns.svc.cluster.local.	5	IN	A	10.0.0.1",)),
    "svcempty-a": Case("svcempty.testns.svc.cluster.local.", "A", NOERROR, answer=(
        "svcempty.testns.svc.cluster.local.	5	IN	A	10.0.0.101",)),
    "svc1-srv": Case("svc1.testns.svc.cluster.local.", "SRV", NOERROR, answer=(
        "svc1.testns.svc.cluster.local.	5	IN	SRV	0 100 80 svc1.testns.svc.cluster.local.",),
        extra=("svc1.testns.svc.cluster.local.  5       IN      A       10.0.0.1",)),
    "svcempty-srv": Case("svcempty.testns.svc.cluster.local.", "SRV", NOERROR, answer=(
        "svcempty.testns.svc.cluster.local.	5	IN	SRV	0 100 80 svcempty.testns.svc.cluster.local.",),  # noqa: E501
        extra=("svcempty.testns.svc.cluster.local.  5       IN      A       10.0.0.101",)),
    "svc1-port-srv": Case("_http._tcp.svc1.testns.svc.cluster.local.", "SRV", NOERROR, answer=(
        "_http._tcp.svc1.testns.svc.cluster.local.	5	IN	SRV	0 100 80 svc1.testns.svc.cluster.local.",),  # noqa: E501
        extra=("svc1.testns.svc.cluster.local.	5	IN	A	10.0.0.1",)),
    "svcempty-port-srv": Case("_http._tcp.svcempty.testns.svc.cluster.local.", "SRV", NOERROR,
        answer=("_http._tcp.svcempty.testns.svc.cluster.local.	5	IN	SRV	0 100 80 svcempty.testns.svc.cluster.local.",),  # noqa: E501
        extra=("svcempty.testns.svc.cluster.local.	5	IN	A	10.0.0.101",)),
    "hdls1-a": Case("hdls1.testns.svc.cluster.local.", "A", NOERROR, answer=(
        "hdls1.testns.svc.cluster.local.	5	IN	A	172.0.0.2",
        "hdls1.testns.svc.cluster.local.	5	IN	A	172.0.0.3",
        "hdls1.testns.svc.cluster.local.	5	IN	A	172.0.0.4",
        "hdls1.testns.svc.cluster.local.	5	IN	A	172.0.0.5")),
    "hdlsprtls-a": Case("hdlsprtls.testns.svc.cluster.local.", "A", NOERROR, answer=(
        "hdlsprtls.testns.svc.cluster.local.	5	IN	A	172.0.0.20",)),
    "svc1-aaaa": Case("svc1.testns.svc.cluster.local.", "AAAA", NOERROR, ns=(SOA,)),
    "svc0-aaaa": Case("svc0.testns.svc.cluster.local.", "AAAA", NXDOMAIN, ns=(SOA,)),
    "svc0-a": Case("svc0.testns.svc.cluster.local.", "A", NXDOMAIN, ns=(SOA,)),
    "svc0-nons-a": Case("svc0.svc-nons.svc.cluster.local.", "A", NXDOMAIN, ns=(SOA,)),
    "dns-version": Case("dns-version.cluster.local.", "TXT", NOERROR, answer=(
        "dns-version.cluster.local 28800 IN TXT 1.1.0",)),
    "svc1-txt": Case("svc1.testns.svc.cluster.local.", "TXT", NOERROR, ns=(SOA,)),
    "svc0-nons-txt": Case("svc0.svc-nons.svc.cluster.local.", "TXT", NXDOMAIN, ns=(SOA,)),
    "bogus-hdls1": Case("bogusendpoint.hdls1.testns.svc.cluster.local.", "A", NXDOMAIN, ns=(SOA,)),
    "bogus-svc0": Case("bogusendpoint.svc0.testns.svc.cluster.local.", "A", NXDOMAIN, ns=(SOA,)),
    "hdls1-aaaa": Case("hdls1.testns.svc.cluster.local.", "AAAA", NOERROR, answer=(
        "hdls1.testns.svc.cluster.local.	5	IN	AAAA	5678:abcd::1",
        "hdls1.testns.svc.cluster.local.	5	IN	AAAA	5678:abcd::2")),
    "svc-root-a": Case("svc.cluster.local.", "A", NOERROR, ns=(SOA,)),
    "pod-root-a": Case("pod.cluster.local.", "A", NOERROR, ns=(SOA,)),
    "testns-a": Case("testns.svc.cluster.local.", "A", NOERROR, ns=(SOA,)),
    "svc-root-ns": Case("svc.cluster.local.", "NS", NOERROR, ns=(SOA,)),
    "testns-ns": Case("testns.svc.cluster.local.", "NS", NOERROR, ns=(SOA,)),
    "foo-ns": Case("foo.cluster.local.", "NS", NXDOMAIN, ns=(SOA,)),
    "foo-svc-ns": Case("foo.svc.cluster.local.", "NS", NXDOMAIN, ns=(SOA,)),
    "dual-stack-a": Case("svc-dual-stack.testns.svc.cluster.local.", "A", NOERROR, answer=(
        "svc-dual-stack.testns.svc.cluster.local.	5	IN	A	10.0.0.3",)),
    "svc1-soa": Case("svc1.testns.svc.cluster.local.", "SOA", NOERROR, ns=(SOA,)),
    "under-external": Case("endpoint.external.testns.svc.cluster.local.", "CNAME", NXDOMAIN,
        ns=(SOA,)),
    "under-under-external": Case(
        "subdomain.subdomain.external.testns.svc.cluster.local.", "CNAME", NXDOMAIN, ns=(SOA,)),
}  # fmt: skip

# handler_test.go dnsTestCases, in order.
SPECIFIC = {
    "hdls1-port-srv": Case("_http._tcp.hdls1.testns.svc.cluster.local.", "SRV", NOERROR, answer=(
        "_http._tcp.hdls1.testns.svc.cluster.local.	5	IN	SRV	0 16 80 172-0-0-2.hdls1.testns.svc.cluster.local.",  # noqa: E501
        "_http._tcp.hdls1.testns.svc.cluster.local.	5	IN	SRV	0 16 80 172-0-0-3.hdls1.testns.svc.cluster.local.",  # noqa: E501
        "_http._tcp.hdls1.testns.svc.cluster.local.	5	IN	SRV	0 16 80 5678-abcd--1.hdls1.testns.svc.cluster.local.",  # noqa: E501
        "_http._tcp.hdls1.testns.svc.cluster.local.	5	IN	SRV	0 16 80 5678-abcd--2.hdls1.testns.svc.cluster.local.",  # noqa: E501
        "_http._tcp.hdls1.testns.svc.cluster.local.	5	IN	SRV	0 16 80 dup-name.hdls1.testns.svc.cluster.local."),  # noqa: E501
        extra=(
        "172-0-0-2.hdls1.testns.svc.cluster.local.	5	IN	A	172.0.0.2",
        "172-0-0-3.hdls1.testns.svc.cluster.local.	5	IN	A	172.0.0.3",
        "5678-abcd--1.hdls1.testns.svc.cluster.local.	5	IN	AAAA	5678:abcd::1",
        "5678-abcd--2.hdls1.testns.svc.cluster.local.	5	IN	AAAA	5678:abcd::2",
        "dup-name.hdls1.testns.svc.cluster.local.	5	IN	A	172.0.0.4",
        "dup-name.hdls1.testns.svc.cluster.local.	5	IN	A	172.0.0.5")),
    "hdls1-a-again": Case("hdls1.testns.svc.cluster.local.", "A", NOERROR, answer=(
        "hdls1.testns.svc.cluster.local.	5	IN	A	172.0.0.2",
        "hdls1.testns.svc.cluster.local.	5	IN	A	172.0.0.3",
        "hdls1.testns.svc.cluster.local.	5	IN	A	172.0.0.4",
        "hdls1.testns.svc.cluster.local.	5	IN	A	172.0.0.5")),
    "ep6-2-aaaa": Case("5678-abcd--2.hdls1.testns.svc.cluster.local", "AAAA", NOERROR, answer=(
        "5678-abcd--2.hdls1.testns.svc.cluster.local.	5	IN	AAAA	5678:abcd::2",)),
    "ep6-1-aaaa": Case("5678-abcd--1.hdls1.testns.svc.cluster.local.", "AAAA", NOERROR, answer=(
        "5678-abcd--1.hdls1.testns.svc.cluster.local.	5	IN	AAAA	5678:abcd::1",)),
    "portless-ep-a": Case("172-0-0-20.hdlsprtls.testns.svc.cluster.local.", "A", NOERROR, answer=(
        "172-0-0-20.hdlsprtls.testns.svc.cluster.local.	5	IN	A	172.0.0.20",)),
    "ep-2-a": Case("172-0-0-2.hdls1.testns.svc.cluster.local.", "A", NOERROR, answer=(
        "172-0-0-2.hdls1.testns.svc.cluster.local.	5	IN	A	172.0.0.2",)),
    "ep-3-a": Case("172-0-0-3.hdls1.testns.svc.cluster.local.", "A", NOERROR, answer=(
        "172-0-0-3.hdls1.testns.svc.cluster.local.	5	IN	A	172.0.0.3",)),
    "dup-name-a": Case("dup-name.hdls1.testns.svc.cluster.local.", "A", NOERROR, answer=(
        "dup-name.hdls1.testns.svc.cluster.local.	5	IN	A	172.0.0.4",
        "dup-name.hdls1.testns.svc.cluster.local.	5	IN	A	172.0.0.5")),
    "external-cname": Case("external.testns.svc.cluster.local.", "CNAME", NOERROR, answer=(
        "external.testns.svc.cluster.local.	5	IN	CNAME	ext.interwebs.test.",)),
    "external-a-truncated": Case("external.testns.svc.cluster.local.", "A", NOERROR, answer=(
        "ext.interwebs.test.	5	IN	A	1.2.3.4",
        "external.testns.svc.cluster.local.	5	IN	CNAME	ext.interwebs.test."), truncated=True),
    "external-to-service": Case("external-to-service.testns.svc.cluster.local", "A", NOERROR,
        answer=(
        "external-to-service.testns.svc.cluster.local.	5	IN	CNAME	svc1.testns.svc.cluster.local.",  # noqa: E501
        "svc1.testns.svc.cluster.local.	5	IN	A	10.0.0.1")),
}  # fmt: skip

# handler_case_test.go dnsPreserveCaseCases.
PRESERVE_CASE = {
    "case-nxdomain": Case("not-a-service.testns.svc.ClUsTeR.lOcAl.", "A", NXDOMAIN, ns=(
        "ClUsTeR.lOcAl.	5	IN	SOA	ns.dns.ClUsTeR.lOcAl. hostmaster.ClUsTeR.lOcAl. 1499347823 7200 1800 86400 5",)),  # noqa: E501
    "case-a": Case("SvC1.TeStNs.SvC.cLuStEr.LoCaL.", "A", NOERROR, answer=(
        "SvC1.TeStNs.SvC.cLuStEr.LoCaL.	5	IN	A	10.0.0.1",)),
    "case-srv": Case("_HtTp._TcP.sVc1.TeStNs.SvC.cLuStEr.LoCaL.", "SRV", NOERROR, answer=(
        "_HtTp._TcP.sVc1.TeStNs.SvC.cLuStEr.LoCaL.	5	IN	SRV	0 100 80 svc1.testns.svc.cLuStEr.LoCaL.",),  # noqa: E501
        extra=("svc1.testns.svc.cLuStEr.LoCaL.	5	IN	A	10.0.0.1",)),
    "case-apex-soa": Case("Cluster.local.", "SOA", NOERROR, answer=(
        "Cluster.local.	5	IN	SOA	ns.dns.Cluster.local. hostmaster.Cluster.local. 1499347823 7200 1800 86400 5",)),  # noqa: E501
}  # fmt: skip

# reverse_test.go, on the objects above: its svc1 (ClusterIP 192.168.1.100, endpoint
# ep1a 10.0.0.100) is our svc1, its reverse zone 0.10.in-addr.arpa is the pod
# CIDR's 127.<b+1> zone (REVPOD) and 168.192.in-addr.arpa the service CIDR's (REVSVC);
# svc2 and svc3 both select double-ep (10.0.0.99 there, 172.0.0.99 here).
REVERSE = {
    "rev-endpoint": Case("1.0.0.172.in-addr.arpa.", "PTR", NOERROR, answer=(
        "1.0.0.172.in-addr.arpa.      5    IN      PTR       ep1a.svc1.testns.svc.cluster.local.",)),  # noqa: E501
    "rev-cluster-ip": Case("1.0.0.10.in-addr.arpa.", "PTR", NOERROR, answer=(
        "1.0.0.10.in-addr.arpa.     5     IN      PTR       svc1.testns.svc.cluster.local.",)),
    "rev-unknown": Case("101.0.0.172.in-addr.arpa.", "PTR", NXDOMAIN, ns=(
        "REVPOD.	5	IN	SOA	ns.dns.REVPOD. hostmaster.REVPOD. 1502782828 7200 1800 86400 5",)),
    "rev-unknown-svc": Case("9.0.0.10.in-addr.arpa.", "PTR", NXDOMAIN, ns=(
        "REVSVC.	5	IN	SOA	ns.dns.REVSVC. hostmaster.REVSVC. 1502782828 7200 1800 86400 5",)),
    "rev-not-ptr-zone": Case("example.org.cluster.local.", "PTR", NXDOMAIN, ns=(SOA,)),
    "rev-svc-name": Case("svc1.testns.svc.cluster.local.", "PTR", NOERROR, ns=(SOA,)),
    "rev-svc-in-rev-zone": Case("svc1.testns.svc.REVPOD.", "A", NXDOMAIN, ns=(
        "REVPOD.       5     IN      SOA     ns.dns.REVPOD. hostmaster.REVPOD. 1502989566 7200 1800 86400 5",)),  # noqa: E501
    "rev-ip-in-cluster-zone": Case("100.0.0.10.cluster.local.", "PTR", NXDOMAIN, ns=(SOA,)),
    "rev-double-ep": Case("99.0.0.172.in-addr.arpa.", "PTR", NOERROR, answer=(
        "99.0.0.172.in-addr.arpa.      5    IN      PTR       double-ep.svc2.testns.svc.cluster.local.",  # noqa: E501
        "99.0.0.172.in-addr.arpa.      5    IN      PTR       double-ep.svc3.testns.svc.cluster.local.")),  # noqa: E501
}  # fmt: skip

CASES = {**COMMON, **SPECIFIC, **PRESERVE_CASE, **REVERSE}

NOT_SHARED = {
    # commonDnsTestCases svc6: its only ClusterIP is IPv6, and svcnet's service CIDR
    # is IPv4 (127.0.0.0/8): the API server refuses it. Dual-stack weights are
    # checked in-process in tests/dns/test_dns_details.py.
    "svc6 SRV": "IPv6 ClusterIP (1234:abcd::1): the service CIDR is IPv4 only",
    "svc6 AAAA": "IPv6 ClusterIP (1234:abcd::1): the service CIDR is IPv4 only",
    "_http._tcp.svc6 SRV": "IPv6 ClusterIP (1234:abcd::1): the service CIDR is IPv4 only",
    "svc-dual-stack AAAA": "second ClusterIP 10::3: the service CIDR is IPv4 only",
    "svc-dual-stack SRV (0 50 80, A and AAAA)": "the same; the weight 50 of one SRV record over "
    "two ClusterIPs is tests/dns/test_dns_details.py::test_dual_stack_cluster_ip_splits_the_weight",
    # The other test functions of handler_test.go.
    "TestMultiClusterServeDNS": "no multicluster zones (ServiceImport, clusterset.local)",
    "TestServeNamespaceDNS": "no `namespaces` option: every namespace is served",
    "TestNotSyncedServeDNS": "the index is fed synchronously by the store: never unsynced",
}


# --- the objects APIConnServeTest serves, as manifests ----------------------------------


def adapt(text: str, block: int) -> str:
    """CoreDNS's addresses on svcnet's address plan (see the module docstring)."""
    pod = block + 1
    text = re.sub(r"\b10\.0\.0\.(\d+)\b", rf"127.{block}.100.\1", text)
    text = re.sub(r"\b172\.0\.0\.(\d+)\b", rf"127.{pod}.0.\1", text)
    text = re.sub(r"\b172-0-0-(\d+)\b", rf"127-{pod}-0-\1", text)
    # Reverse names of those addresses, and the CIDRs' reverse zones.
    text = re.sub(r"\b(\d+)\.0\.0\.10\.in-addr\.arpa\b", rf"\1.100.{block}.127.in-addr.arpa", text)
    text = re.sub(r"\b(\d+)\.0\.0\.172\.in-addr\.arpa\b", rf"\1.0.{pod}.127.in-addr.arpa", text)
    text = text.replace("REVPOD", f"{pod}.127.in-addr.arpa")
    return text.replace("REVSVC", f"{block}.127.in-addr.arpa")


HTTP = "[{name: http, protocol: TCP, port: 80}]"


def _service(name: str, spec: str) -> str:
    return f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: testns}}\nspec: {spec}\n"  # noqa: E501


def _endpoints(name: str, addresses: str, ports: str | None = HTTP) -> str:
    subset = f"addresses: [{addresses}]" + (f", ports: {ports}" if ports else "")
    return (
        f"---\napiVersion: v1\nkind: Endpoints\nmetadata: {{name: {name}, namespace: testns}}\n"
        f"subsets: [{{{subset}}}]\n"
    )


def manifests(block: int) -> str:
    text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: testns}\n"
    text += _service("svc1", f"{{clusterIP: 10.0.0.1, ports: {HTTP}}}")
    text += _endpoints("svc1", "{ip: 172.0.0.1, hostname: ep1a}")
    text += _service("svcempty", f"{{clusterIP: 10.0.0.101, ports: {HTTP}}}")
    text += _service("hdls1", "{clusterIP: None}")
    text += _endpoints(
        "hdls1",
        "{ip: 172.0.0.2}, {ip: 172.0.0.3}, {ip: 172.0.0.4, hostname: dup-name}, "
        "{ip: 172.0.0.5, hostname: dup-name}, {ip: '5678:abcd::1'}, {ip: '5678:abcd::2'}",
    )
    text += _service("hdlsprtls", "{clusterIP: None}")
    text += _endpoints("hdlsprtls", "{ip: 172.0.0.20}", ports=None)
    text += _service(
        "external", f"{{type: ExternalName, externalName: ext.interwebs.test, ports: {HTTP}}}"
    )
    text += _service(
        "external-to-service",
        f"{{type: ExternalName, externalName: svc1.testns.svc.cluster.local., ports: {HTTP}}}",
    )
    text += _service("svc-dual-stack", f"{{clusterIP: 10.0.0.3, ports: {HTTP}}}")
    # reverse_test.go's two Services sharing one endpoint.
    for name, ip in (("svc2", "10.0.0.20"), ("svc3", "10.0.0.30")):
        text += _service(name, f"{{clusterIP: {ip}, ports: {HTTP}}}")
        text += _endpoints(name, "{ip: 172.0.0.99, hostname: double-ep}")
    return adapt(text, block)


# --- the fake upstream (Upstub) -------------------------------------------------------


class Upstream:
    """A resolver on loopback: ext.interwebs.test A is 1.2.3.4 with TC set (over UDP
    and TCP alike, as Upstub{Truncated: true}); anything else is NXDOMAIN."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.port = free_port()
        upstream = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                sock.sendto(upstream.reply(data), self.client_address)

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                size = int.from_bytes(self.rfile.read(2), "big")
                out = upstream.reply(self.rfile.read(size))
                self.wfile.write(len(out).to_bytes(2, "big") + out)

        self._servers: list[socketserver.BaseServer] = [
            socketserver.ThreadingUDPServer(("127.0.0.1", self.port), Udp),
            socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Tcp),
        ]
        self._threads = [
            threading.Thread(target=s.serve_forever, name="fake-upstream", daemon=True)
            for s in self._servers
        ]

    def reply(self, data: bytes) -> bytes:
        q = DNSRecord.parse(data)
        name = str(q.q.qname)
        self.seen.append(name)
        r = q.reply()
        r.header.aa = 0
        if name.lower() == "ext.interwebs.test." and q.q.qtype == QTYPE.A:
            r.header.tc = 1
            r.add_answer(RR(q.q.qname, QTYPE.A, rdata=A("1.2.3.4"), ttl=5))
        else:
            r.header.rcode = 3
        return bytes(r.pack())

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        for s in self._servers:
            s.shutdown()
            s.server_close()


@dataclass
class Cluster:
    svcnet: Svcnet
    upstream: Upstream
    block: int = field(init=False)

    def __post_init__(self) -> None:
        self.block = self.svcnet.block

    def ask(self, qname: str, qtype: str, tcp: bool) -> dns.message.Message:
        if tcp:
            q = dns.message.make_query(qname, qtype)
            return dns.query.tcp(q, "127.0.0.1", port=self.svcnet.dns_port, timeout=5)
        q = dns.message.make_query(qname, qtype, use_edns=0, payload=4096)
        return dns.query.udp(q, "127.0.0.1", port=self.svcnet.dns_port, timeout=5)


def _settled(c: Cluster) -> bool:
    """Every object's records are served (whatever feeds the index, at once or not)."""
    want = {
        "_http._tcp.hdls1.testns.svc.cluster.local.": ("SRV", 5),
        "ep1a.svc1.testns.svc.cluster.local.": ("A", 1),
        "hdlsprtls.testns.svc.cluster.local.": ("A", 1),
        adapt("99.0.0.172.in-addr.arpa.", c.block): ("PTR", 2),
    }
    for qname, (qtype, n) in want.items():
        r = c.ask(qname, qtype, tcp=True)
        if sum(len(rrset) for rrset in r.answer) != n:
            return False
    return True


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    upstream = Upstream()
    upstream.start()
    state = tmp_path_factory.mktemp("coredns") / "state"
    try:
        # The isolated arguments already name a dead upstream first; ours is tried next.
        with Svcnet.start(state, extra_args=["--upstream-dns", f"127.0.0.1:{upstream.port}"]) as s:
            c = Cluster(s, upstream)
            s.apply(manifests(s.block), namespace="testns")
            deadline = time.monotonic() + 20
            while not _settled(c):
                assert time.monotonic() < deadline, "the objects' records never appeared"
                time.sleep(0.05)
            yield c
    finally:
        upstream.stop()


# --- comparing as test.SortAndCheck does --------------------------------------------------


Record = tuple[str, int, str, str]


def _record(name: str, ttl: int, rtype: str, rdata: str) -> Record:
    if rtype == "SOA":
        # The serial is the time of the last change; CoreDNS's test ignores it too.
        fields = rdata.split()
        fields[2] = "0"
        rdata = " ".join(fields)
    return (name, ttl, rtype, rdata)


def expected(texts: tuple[str, ...], block: int) -> set[Record]:
    out: set[Record] = set()
    for text in texts:
        name, ttl, klass, rtype, rdata = adapt(text, block).split(None, 4)
        rd = dns.rdata.from_text(dns.rdataclass.from_text(klass), rtype, rdata.strip())
        out.add(_record(dns.name.from_text(name).to_text(), int(ttl), rtype, rd.to_text()))
    return out


def got(section: list[dns.rrset.RRset]) -> set[Record]:
    return {
        _record(rrset.name.to_text(), rrset.ttl, dns.rdatatype.to_text(rrset.rdtype), rd.to_text())
        for rrset in section
        for rd in rrset
    }


def cname_order_ok(msg: dns.message.Message) -> bool:
    """test.CNAMEOrder: no CNAME comes after a record of its target."""
    seen: list[dns.name.Name] = []
    for rrset in msg.answer:
        if rrset.rdtype == dns.rdatatype.CNAME and any(rd.target in seen for rd in rrset):
            return False
        seen.append(rrset.name)
    return True


@pytest.mark.parametrize("tcp", [pytest.param(False, id="udp"), pytest.param(True, id="tcp")])
@pytest.mark.parametrize("label", list(CASES))
def test_coredns_case(cluster: Cluster, label: str, tcp: bool) -> None:
    case = CASES[label]
    r = cluster.ask(adapt(case.qname, cluster.block), case.qtype, tcp)
    assert r.rcode() == case.rcode, dns.rcode.to_text(r.rcode())
    assert bool(r.flags & dns.flags.TC) == case.truncated
    assert r.flags & dns.flags.AA  # the kubernetes plugin answers authoritatively
    assert got(r.answer) == expected(case.answer, cluster.block)
    assert got(r.authority) == expected(case.ns, cluster.block)
    assert got(r.additional) == expected(case.extra, cluster.block)
    assert cname_order_ok(r)


def test_the_upstream_was_asked_for_the_external_name(cluster: Cluster) -> None:
    cluster.ask("external.testns.svc.cluster.local.", "A", tcp=False)
    assert "ext.interwebs.test." in cluster.upstream.seen


def test_reverse_names_outside_our_cidrs_still_go_upstream(cluster: Cluster) -> None:
    # kubeadm's `fallthrough in-addr.arpa ip6.arpa`: 127.9.9.9 is in no CIDR of ours.
    r = cluster.ask("9.9.9.127.in-addr.arpa.", "PTR", tcp=False)
    assert r.rcode() == NXDOMAIN and not r.flags & dns.flags.AA
    assert "9.9.9.127.in-addr.arpa." in cluster.upstream.seen


def test_dig_reads_the_headless_srv_answer(cluster: Cluster) -> None:
    assert shutil.which("dig"), "dig is required (apt-get install dnsutils)"
    out = subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(cluster.svcnet.dns_port), "+noall", "+answer",
         "+additional", "+tries=3", "+time=2", "_http._tcp.hdls1.testns.svc.cluster.local", "SRV"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    lines = [line for line in out.stdout.splitlines() if line and not line.startswith(";")]
    seen = set()
    for line in lines:
        name, ttl, _, rtype, rdata = line.split(None, 4)
        seen.add(_record(name, int(ttl), rtype, rdata.strip()))
    case = SPECIFIC["hdls1-port-srv"]
    assert seen == expected(case.answer + case.extra, cluster.block)


def test_fixture_is_on_our_address_plan() -> None:
    # Every address the manifests name is loopback, or IPv6 endpoint data of a
    # headless Service (never contacted): adapt() left nothing of CoreDNS's plan.
    text = manifests(200)
    ips = re.findall(r"\bip: '?([0-9a-f:.]+)'?", text) + re.findall(r"clusterIP: ([0-9.]+)", text)
    assert len(ips) == 15  # 10 endpoint addresses, 5 ClusterIPs
    for ip in ips:
        assert ip.startswith(("127.200.", "127.201.", "5678:abcd::")), ip
