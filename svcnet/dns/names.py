"""Where a query name points in the cluster's namespace (pure functions).

Mirrors CoreDNS's ``plugin/kubernetes/parse.go``: the labels left of the zone
are read right to left as ``[_port._proto. | endpoint.] service.namespace.svc``
(or ``.pod``). Names are compared lowercased; callers keep the original labels
for the answer's owner name.

Reverse names (``in-addr.arpa``/``ip6.arpa``, CoreDNS's reverse.go) and pod
names (``a-b-c-d.<ns>.pod.<zone>``) are turned into addresses here too.

Two more shapes exist only in svcnet: the literal short names ``<svc>.`` and
``<svc>.<ns>.`` that ``dig @127.0.0.1 echo.default`` sends (no search path is
applied by dig). `short_name` only says how to read them; whether they are ours
depends on whether that Service exists, which the handler decides.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

Labels = tuple[str, ...]


class Kind(enum.Enum):
    APEX = "apex"  # <zone>
    SVC_ROOT = "svc-root"  # svc.<zone>
    NAMESPACE = "namespace"  # <ns>.svc.<zone>
    SERVICE = "service"  # <svc>.<ns>.svc.<zone>
    ENDPOINT = "endpoint"  # <hostname>.<svc>.<ns>.svc.<zone>
    PORT = "port"  # _<port>._<proto>.<svc>.<ns>.svc.<zone>
    POD_ROOT = "pod-root"  # pod.<zone>
    POD_NAMESPACE = "pod-namespace"  # <ns>.pod.<zone>
    POD = "pod"  # <a-b-c-d>.<ns>.pod.<zone>
    DNS_VERSION = "dns-version"  # dns-version.<zone>
    INVALID = "invalid"  # in the zone but no such shape: NXDOMAIN
    TOO_LONG = "too-long"  # more labels than any record has: NXDOMAIN


@dataclass(frozen=True, slots=True)
class ClusterName:
    kind: Kind
    zone: str
    namespace: str = ""
    service: str = ""
    endpoint: str = ""
    port: str = ""
    protocol: str = ""


def zone_labels(zones: Sequence[str]) -> list[Labels]:
    """Zones as lowercased label tuples, longest first so `cluster.local` wins over `local`."""
    out = {tuple(z.strip(".").lower().split(".")) for z in zones if z.strip(".")}
    return sorted(out, key=len, reverse=True)


def split_zone(labels: Labels, zones: Sequence[Labels]) -> tuple[Labels, Labels] | None:
    """(labels left of the zone, the zone) for the longest matching zone, or None."""
    for zone in zones:
        n = len(zone)
        if len(labels) >= n and labels[len(labels) - n :] == zone:
            return labels[: len(labels) - n], zone
    return None


def parse_cluster(rest: Labels, zone: Labels) -> ClusterName:
    """Classify the labels left of a cluster zone."""
    z = ".".join(zone)
    if not rest:
        return ClusterName(Kind.APEX, z)
    *head, typ = rest
    n = len(head)
    if typ == "svc":
        if n == 0:
            return ClusterName(Kind.SVC_ROOT, z)
        if n == 1:
            return ClusterName(Kind.NAMESPACE, z, namespace=head[0])
        if n == 2:
            return ClusterName(Kind.SERVICE, z, service=head[0], namespace=head[1])
        if n == 3:
            return ClusterName(
                Kind.ENDPOINT, z, endpoint=head[0], service=head[1], namespace=head[2]
            )
        if n == 4:
            # CoreDNS reads two extra labels as port and protocol, underscores or not.
            return ClusterName(
                Kind.PORT,
                z,
                port=head[0].removeprefix("_"),
                protocol=head[1].removeprefix("_"),
                service=head[2],
                namespace=head[3],
            )
        return ClusterName(Kind.TOO_LONG, z)
    if typ == "pod":
        if n == 0:
            return ClusterName(Kind.POD_ROOT, z)
        if n == 1:
            return ClusterName(Kind.POD_NAMESPACE, z, namespace=head[0])
        if n == 2:
            return ClusterName(Kind.POD, z, endpoint=head[0], namespace=head[1])
        return ClusterName(Kind.TOO_LONG, z)
    if rest == ("dns-version",):
        return ClusterName(Kind.DNS_VERSION, z)
    return ClusterName(Kind.INVALID, z)


def short_name(labels: Labels) -> tuple[str, str] | None:
    """(service, namespace) a literal short name would mean, if it has that shape."""
    if len(labels) == 1:
        return labels[0], "default"
    if len(labels) == 2:
        return labels[0], labels[1]
    return None


_IN_ADDR = ("in-addr", "arpa")
_IP6 = ("ip6", "arpa")
_HEX = frozenset("0123456789abcdef")


def parse_reverse(labels: Labels) -> str | None:
    """The address a full reverse name stands for (compressed form), else None.

    Partial names (``20.127.in-addr.arpa``) and anything malformed give None:
    they are not ours and go on down the chain, like CoreDNS's ``fallthrough``.
    """
    if labels[-2:] == _IN_ADDR and len(labels) == 6:
        octets = labels[3::-1]
        if all(o.isascii() and o.isdigit() and int(o) < 256 and o == str(int(o)) for o in octets):
            return ".".join(octets)
        return None
    if labels[-2:] == _IP6 and len(labels) == 34:
        nibbles = labels[31::-1]
        if all(len(n) == 1 and n in _HEX for n in nibbles):
            text = ":".join("".join(nibbles[i : i + 4]) for i in range(0, 32, 4))
            return str(ipaddress.IPv6Address(text))
        return None
    return None


class ReverseZones:
    """The reverse zones CoreDNS derives from CIDRs given as zones (plugin/pkg/cidr).

    ``kubernetes cluster.local 10.96.0.0/12`` makes the plugin authoritative for
    the CIDR's reverse names: a prefix off a label boundary (8 bits for IPv4, 4
    for IPv6) is split into the prefixes of the next boundary, and each gives the
    zone of its fixed labels (127.96.0.0/12 gives ``96.127.in-addr.arpa`` to
    ``111.127.in-addr.arpa``). At most 2**7 zones per IPv4 CIDR (2**3 for IPv6).
    """

    def __init__(self, cidrs: Sequence[str]) -> None:
        zones: set[Labels] = set()
        for text in cidrs:
            net = ipaddress.ip_network(text, strict=False)
            step = 8 if net.version == 4 else 4
            bits = -(-net.prefixlen // step) * step
            drop = (net.max_prefixlen - bits) // step
            for sub in net.subnets(new_prefix=bits):
                zones.add(tuple(sub.network_address.reverse_pointer.split("."))[drop:])
        self.zones = frozenset(zones)
        self._lengths = sorted({len(z) for z in zones}, reverse=True)

    def split(self, labels: Labels) -> tuple[Labels, Labels] | None:
        """(labels left of the zone, the zone) for the longest zone holding the name."""
        n = len(labels)
        for size in self._lengths:
            if n >= size and labels[n - size :] in self.zones:
                return labels[: n - size], labels[n - size :]
        return None


def reverse_name(ip: str) -> str:
    """``10.0.10.127.in-addr.arpa.`` for 127.10.0.10 (nibbles for IPv6)."""
    return ipaddress.ip_address(ip).reverse_pointer + "."


def pod_address(label: str) -> str | None:
    """The IP a pod label spells (``127-20-0-2``, ``fd00--1``), as CoreDNS reads it.

    Exactly three dashes and no ``--`` is IPv4; anything else is IPv6 with
    dashes for colons. None when that is not an address.
    """
    if label.count("-") == 3 and "--" not in label:
        text = label.replace("-", ".")
    else:
        text = label.replace("-", ":")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None
