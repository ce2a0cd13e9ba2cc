"""Which sources each pod admits under the ingress NetworkPolicies that select it.

Pure: objects in, ``{pod IP: allows}`` out, for the socket hooks to hold
(kernel/sockhooks.py, ``set_ingress_policy``). The semantics are the
NetworkPolicy API's, as Calico and Cilium apply them:

- a pod selected by no policy with policyType Ingress admits everything and
  is left out of the result;
- a selected pod admits what some ingress rule of some selecting policy
  allows (rules and policies add up; none at all: nothing);
- a rule's ``from`` peers: ``podSelector`` (pods of the policy's namespace),
  ``namespaceSelector`` (every pod of the matching namespaces), both (pods
  matching the one in namespaces matching the other), ``ipBlock`` (a CIDR
  less its excepts, matched against the source address: this machine's
  processes, other non-pod sources, and pods too); an empty ``from``:
  every source;
- a rule's ``ports``: a number, a number with ``endPort`` (a range), or a
  name resolved against the destination pod's container ports of that
  protocol (no such port: the entry allows nothing there); an empty list:
  every port. SCTP entries allow nothing the hooks see (they judge TCP and
  UDP only).

Only IPv4 is judged: pods have IPv4 addresses, and the hooks look at IPv4.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from svcnet.k8s import labels
from svcnet.k8s.endpointslices import ip_family
from svcnet.k8s.objects import Obj

Proto = Literal["TCP", "UDP"]
Allow = tuple[str, Proto, int, int]
"""(source CIDR, protocol, first port, last port); 0-65535 is every port."""

EVERY_PORT: list[tuple[Proto, int, int]] = [("TCP", 0, 65535), ("UDP", 0, 65535)]
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True, slots=True)
class PodInfo:
    """What policies look at in a pod."""

    namespace: str
    name: str
    ip: str
    labels: Mapping[str, str]
    ports: Mapping[tuple[str, str], int]
    """(port name, protocol) -> containerPort: named ports."""


def pod_info(pod: Obj) -> PodInfo | None:
    """A pod that can send or receive: it has an IPv4 address and has not ended."""
    status = pod.get("status") or {}
    ip = str(status.get("podIP") or "")
    if not ip or status.get("phase") in ("Succeeded", "Failed"):
        return None
    if (pod.get("spec") or {}).get("hostNetwork"):
        # The node's own address: NetworkPolicies do not select host-network pods
        # (Calico and Cilium police only pods on the pod network).
        return None
    if ip_family(ip) != 4:
        return None
    md = pod.get("metadata") or {}
    ports: dict[tuple[str, str], int] = {}
    spec = pod.get("spec") or {}
    for c in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]:
        for p in c.get("ports") or ():
            if p.get("name") and isinstance(p.get("containerPort"), int):
                key = (str(p["name"]), str(p.get("protocol") or "TCP"))
                ports.setdefault(key, p["containerPort"])
    return PodInfo(
        str(md.get("namespace") or ""),
        str(md.get("name") or ""),
        ip,
        dict(md.get("labels") or {}),
        ports,
    )


def _selector(sel: Any) -> labels.Selector:
    try:
        return labels.from_label_selector(sel if isinstance(sel, dict) else {})
    except labels.SelectorError:
        # Validation refused it already; a stored one that slipped by selects nothing.
        return labels.NOTHING


def applies_to_ingress(policy: Obj) -> bool:
    return "Ingress" in ((policy.get("spec") or {}).get("policyTypes") or ["Ingress"])


def _block(peer: Obj) -> list[str]:
    """An ipBlock's CIDR less its excepts, as IPv4 CIDRs."""
    block = peer.get("ipBlock") or {}
    try:
        net = ipaddress.ip_network(str(block.get("cidr") or ""), strict=False)
    except ValueError:
        return []
    if not isinstance(net, ipaddress.IPv4Network):
        return []
    left = [net]
    for text in block.get("except") or ():
        try:
            ex = ipaddress.ip_network(str(text), strict=False)
        except ValueError:
            continue
        if not isinstance(ex, ipaddress.IPv4Network):
            continue
        nxt: list[ipaddress.IPv4Network] = []
        for n in left:
            if ex.subnet_of(n):
                nxt.extend(n.address_exclude(ex))
            elif not n.subnet_of(ex):
                nxt.append(n)
        left = nxt
    return [str(n) for n in ipaddress.collapse_addresses(left)]


def _sources(
    rule: Obj, namespace: str, pods: list[PodInfo], ns_labels: Mapping[str, Mapping[str, str]]
) -> list[str]:
    peers = rule.get("from") or []
    if not peers:
        return [ANYWHERE]
    out: list[str] = []
    for peer in peers:
        if peer.get("ipBlock") is not None:
            out += _block(peer)
            continue
        pod_sel = peer.get("podSelector")
        ns_sel = peer.get("namespaceSelector")
        if ns_sel is None:
            in_ns = {namespace}
        else:
            nss = _selector(ns_sel)
            in_ns = {n for n, lab in ns_labels.items() if nss.matches(lab)}
        match = _selector(pod_sel) if pod_sel is not None else labels.EVERYTHING
        out += [f"{p.ip}/32" for p in pods if p.namespace in in_ns and match.matches(p.labels)]
    return out


def _ports(rule: Obj, dest: PodInfo) -> list[tuple[Proto, int, int]]:
    entries = rule.get("ports") or []
    if not entries:
        return list(EVERY_PORT)
    out: list[tuple[Proto, int, int]] = []
    for entry in entries:
        proto = str(entry.get("protocol") or "TCP")
        if proto not in ("TCP", "UDP"):
            continue
        p: Proto = "UDP" if proto == "UDP" else "TCP"
        port = entry.get("port")
        if port is None:
            out.append((p, 0, 65535))
        elif isinstance(port, int):
            end = entry.get("endPort")
            out.append((p, port, end if isinstance(end, int) and end >= port else port))
        else:
            number = dest.ports.get((str(port), p))
            if number is not None:
                out.append((p, number, number))
    return out


def ingress_allows(
    policies: Iterable[Obj], pods: Iterable[PodInfo], namespaces: Iterable[Obj]
) -> dict[str, frozenset[Allow]]:
    """{pod IP: what it admits} for every pod some ingress policy selects."""
    pod_list = list(pods)
    ns_labels = {
        str(ns["metadata"]["name"]): dict(ns["metadata"].get("labels") or {}) for ns in namespaces
    }
    by_ns: dict[str, list[Obj]] = {}
    for pol in policies:
        if applies_to_ingress(pol):
            by_ns.setdefault(str(pol["metadata"].get("namespace") or ""), []).append(pol)
    out: dict[str, frozenset[Allow]] = {}
    for dest in pod_list:
        selecting = [
            pol
            for pol in by_ns.get(dest.namespace, ())
            if _selector((pol.get("spec") or {}).get("podSelector")).matches(dest.labels)
        ]
        if not selecting:
            continue
        grouped: dict[tuple[Proto, int, int], list[str]] = {}
        for pol in selecting:
            for rule in (pol.get("spec") or {}).get("ingress") or ():
                sources = _sources(rule, dest.namespace, pod_list, ns_labels)
                if not sources:
                    continue
                for ports in _ports(rule, dest):
                    grouped.setdefault(ports, []).extend(sources)
        allows: set[Allow] = set()
        for (proto, first, last), sources in grouped.items():
            nets = ipaddress.collapse_addresses(ipaddress.IPv4Network(s) for s in sources)
            allows.update((str(n), proto, first, last) for n in nets)
        if dest.ip in out:
            # Two live pods with one IP (a restart's race): the stricter wins.
            allows &= out[dest.ip]
        out[dest.ip] = frozenset(allows)
    return out
