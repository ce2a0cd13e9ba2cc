"""Slim, typed read-only views of stored objects.

The store keeps API-shaped dicts; readers on hot paths (dns, proxy) and the
agent take only what they need, like CoreDNS's ``object/service.go``
("a stripped down api.Service with only the items we need").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from svcnet.k8s.wellknown import LAST_APPLIED

Obj = dict[str, Any]


@dataclass(frozen=True)
class ServicePort:
    name: str
    protocol: str
    port: int
    target_port: int | str
    node_port: int | None


@dataclass(frozen=True)
class ServiceView:
    namespace: str
    name: str
    type: str
    cluster_ip: str  # "" for ExternalName, "None" for headless
    external_name: str
    ports: tuple[ServicePort, ...]
    selector: dict[str, str] | None
    load_balancer_ips: tuple[str, ...]
    session_affinity: str
    publish_not_ready: bool
    cluster_ips: tuple[str, ...] = ()
    """spec.clusterIPs (falling back to clusterIP); empty for ExternalName and headless."""
    session_affinity_timeout: int = 10800
    """spec.sessionAffinityConfig.clientIP.timeoutSeconds (default 10800); used with ClientIP."""

    @property
    def headless(self) -> bool:
        return self.cluster_ip == "None"

    @classmethod
    def from_obj(cls, obj: Obj) -> ServiceView:
        md, spec = obj["metadata"], obj.get("spec") or {}
        ports = tuple(
            ServicePort(
                name=str(p.get("name") or ""),
                protocol=str(p.get("protocol") or "TCP"),
                port=int(p["port"]),
                target_port=p.get("targetPort", p["port"]),
                node_port=int(p["nodePort"]) if p.get("nodePort") else None,
            )
            for p in spec.get("ports") or ()
        )
        ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
        cluster_ip = str(spec.get("clusterIP") or "")
        ips = [str(i) for i in spec.get("clusterIPs") or () if i] or (
            [cluster_ip] if cluster_ip else []
        )
        timeout = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get(
            "timeoutSeconds"
        )
        return cls(
            namespace=str(md.get("namespace") or "default"),
            name=str(md["name"]),
            type=str(spec.get("type") or "ClusterIP"),
            cluster_ip=cluster_ip,
            external_name=str(spec.get("externalName") or ""),
            ports=ports,
            selector=dict(spec["selector"]) if spec.get("selector") is not None else None,
            load_balancer_ips=tuple(str(i["ip"]) for i in ingress if i.get("ip")),
            session_affinity=str(spec.get("sessionAffinity") or "None"),
            publish_not_ready=bool(spec.get("publishNotReadyAddresses")),
            cluster_ips=() if cluster_ip == "None" else tuple(i for i in ips if i != "None"),
            session_affinity_timeout=int(timeout) if timeout else 10800,
        )


@dataclass(frozen=True)
class EndpointAddress:
    ip: str
    hostname: str
    pod_name: str


@dataclass(frozen=True)
class EndpointPort:
    name: str
    port: int
    protocol: str


@dataclass(frozen=True)
class EndpointSubset:
    addresses: tuple[EndpointAddress, ...]
    not_ready_addresses: tuple[EndpointAddress, ...]
    ports: tuple[EndpointPort, ...]


@dataclass(frozen=True)
class EndpointsView:
    namespace: str
    name: str
    subsets: tuple[EndpointSubset, ...]

    def ready(self, port_name: str, protocol: str = "TCP") -> list[tuple[str, int]]:
        """Ready (ip, port) pairs for the Service port called port_name."""
        out: list[tuple[str, int]] = []
        for s in self.subsets:
            for p in s.ports:
                if p.name == port_name and p.protocol == protocol:
                    out.extend((a.ip, p.port) for a in s.addresses)
        return out

    @classmethod
    def from_obj(cls, obj: Obj) -> EndpointsView:
        md = obj["metadata"]

        def addrs(items: Any) -> tuple[EndpointAddress, ...]:
            return tuple(
                EndpointAddress(
                    ip=str(a["ip"]),
                    hostname=str(a.get("hostname") or ""),
                    pod_name=str((a.get("targetRef") or {}).get("name") or ""),
                )
                for a in items or ()
            )

        subsets = tuple(
            EndpointSubset(
                addresses=addrs(s.get("addresses")),
                not_ready_addresses=addrs(s.get("notReadyAddresses")),
                ports=tuple(
                    EndpointPort(
                        name=str(p.get("name") or ""),
                        port=int(p["port"]),
                        protocol=str(p.get("protocol") or "TCP"),
                    )
                    for p in s.get("ports") or ()
                ),
            )
            for s in obj.get("subsets") or ()
        )
        return cls(str(md.get("namespace") or "default"), str(md["name"]), subsets)


def is_terminal(pod: Obj) -> bool:
    """The pod ended: Succeeded or Failed, for good."""
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def pod_ready(pod: Obj) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def namespace_of(obj: Obj) -> str:
    return str(obj["metadata"].get("namespace") or "")


def with_last_applied(obj: Obj) -> Obj:
    """`obj` carrying kubectl's last-applied-configuration annotation, as a
    client-side `kubectl apply` writes it (the object as applied, compact JSON
    with sorted keys, without that annotation, and a newline), so that a later
    `kubectl apply` of the same file has its three-way merge base and finds
    nothing to change. kubectl leaves `"annotations":{}` in it when there are
    no others, and so does this."""
    md = dict(obj.get("metadata") or {})
    annotations = {k: v for k, v in (md.get("annotations") or {}).items() if k != LAST_APPLIED}
    base = dict(obj, metadata=dict(md, annotations=annotations))
    text = json.dumps(base, separators=(",", ":"), sort_keys=True, ensure_ascii=False) + "\n"
    return dict(obj, metadata=dict(md, annotations={**annotations, LAST_APPLIED: text}))
