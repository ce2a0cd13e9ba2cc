"""EndpointSlices as their readers see them: a Service's endpoints are the union
of every slice labelled ``kubernetes.io/service-name: <service>``, whoever
wrote them (the EndpointSlice controller, the mirroring controller or a user).

The conditions are read as the API documents them and kube-proxy reads them
(pkg/proxy/endpointslicecache.go): ``ready`` and ``serving`` absent mean true,
``terminating`` absent means false. What each reader takes:

- kube-proxy (``ServiceSlices.backends``): the ready endpoints of the
  Service's address families; when none is ready, the ones still serving
  while they terminate (pkg/proxy/topology.go, so a rolling restart of a
  one-replica Deployment drains instead of refusing);
- CoreDNS (``ServiceSlices.published``): ready endpoints only
  (plugin/kubernetes/object/endpoint.go); the EndpointSlice controller marks
  every endpoint ready when the Service has ``publishNotReadyAddresses``.

``SliceIndex`` keeps slices grouped by Service from the store's change events,
so a reader finds a Service's endpoints without scanning the namespace.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass

from svcnet.k8s.objects import EndpointAddress, EndpointPort, Obj
from svcnet.k8s.wellknown import SERVICE_NAME

ServiceKey = tuple[str, str]
"""(namespace, Service name)."""

ADDRESS_FAMILY = {"IPv4": 4, "IPv6": 6}
"""An addressType that kube-proxy and CoreDNS use, and its IP version; FQDN slices
are stored and listed but route nothing (as in a cluster)."""


@dataclass(frozen=True, slots=True)
class SliceEndpoint:
    address: EndpointAddress
    ready: bool
    serving: bool
    terminating: bool
    pod_uid: str


@dataclass(frozen=True, slots=True)
class SliceView:
    namespace: str
    name: str
    service: str
    address_type: str
    endpoints: tuple[SliceEndpoint, ...]
    ports: tuple[EndpointPort, ...]
    """Ports with a number; a port without one means "all ports", which no proxy uses."""

    @classmethod
    def from_obj(cls, obj: Obj) -> SliceView:
        md = obj["metadata"]
        eps: list[SliceEndpoint] = []
        for e in obj.get("endpoints") or ():
            addrs = e.get("addresses") or ()
            if not addrs:
                continue
            cond = e.get("conditions") or {}
            ref = e.get("targetRef") or {}
            ready = cond.get("ready") is not False
            serving = cond.get("serving")
            eps.append(
                SliceEndpoint(
                    address=EndpointAddress(
                        # Only the first address counts (the API's own rule for consumers).
                        ip=str(addrs[0]),
                        hostname=str(e.get("hostname") or ""),
                        pod_name=str(ref.get("name") or "") if ref.get("kind") == "Pod" else "",
                    ),
                    ready=ready,
                    serving=ready if serving is None else serving is True,
                    terminating=cond.get("terminating") is True,
                    pod_uid=str(ref.get("uid") or "") if ref.get("kind") == "Pod" else "",
                )
            )
        ports = tuple(
            EndpointPort(
                name=str(p.get("name") or ""),
                port=int(p["port"]),
                protocol=str(p.get("protocol") or "TCP"),
            )
            for p in obj.get("ports") or ()
            if p.get("port") is not None
        )
        return cls(
            namespace=str(md.get("namespace") or "default"),
            name=str(md["name"]),
            service=service_of(obj) or "",
            address_type=str(obj.get("addressType") or ""),
            endpoints=tuple(eps),
            ports=ports,
        )


def service_of(obj: Obj | None) -> str | None:
    """The Service an EndpointSlice belongs to, from its label."""
    if obj is None:
        return None
    value = ((obj.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME)
    return str(value) if value else None


def ip_family(ip: str) -> int | None:
    """4 or 6 for an IP address in text, None for anything else."""
    # inet_pton rather than ipaddress: kube-proxy's sync asks this of every
    # endpoint of a Service at each change, and it is ten times cheaper.
    for family, af in ((4, socket.AF_INET), (6, socket.AF_INET6)):
        try:
            socket.inet_pton(af, ip)
        except OSError:
            continue
        return family
    return None


@dataclass(frozen=True, slots=True)
class ServiceSlices:
    """One Service's endpoints: the union of its slices, in slice-name order."""

    slices: tuple[SliceView, ...]

    def backends(
        self, port_name: str, protocol: str, families: Iterable[int] = (4, 6)
    ) -> list[tuple[str, int]]:
        """(ip, port) pairs kube-proxy sends this Service port to."""
        fams = set(families)
        ready: dict[tuple[str, int], None] = {}
        draining: dict[tuple[str, int], None] = {}
        for s in self.slices:
            if ADDRESS_FAMILY.get(s.address_type) not in fams:
                continue
            for p in s.ports:
                if p.name != port_name or p.protocol != protocol:
                    continue
                for e in s.endpoints:
                    if ip_family(e.address.ip) != ADDRESS_FAMILY[s.address_type]:
                        continue  # an address that contradicts its slice's type
                    key = (e.address.ip, p.port)
                    if e.ready:
                        ready[key] = None
                    elif e.serving and e.terminating:
                        draining[key] = None
        return list(ready or draining)

    def published(self) -> list[tuple[EndpointAddress, tuple[EndpointPort, ...]]]:
        """Ready addresses with their slice's ports, as CoreDNS publishes them."""
        out: list[tuple[EndpointAddress, tuple[EndpointPort, ...]]] = []
        for s in self.slices:
            fam = ADDRESS_FAMILY.get(s.address_type)
            if fam is None:
                continue
            out.extend(
                (e.address, s.ports)
                for e in s.endpoints
                if e.ready and ip_family(e.address.ip) == fam
            )
        return out

    def routes_to(self, pod_uid: str) -> bool:
        """Whether the pod is a ready endpoint here (new connections may reach it)."""
        return any(e.ready and e.pod_uid == pod_uid for s in self.slices for e in s.endpoints)


class SliceIndex:
    """EndpointSlices grouped by Service, kept current by ``put`` and ``remove``."""

    def __init__(self) -> None:
        self._slices: dict[ServiceKey, dict[str, SliceView]] = {}
        self._owner: dict[tuple[str, str], str] = {}
        """(namespace, slice name) -> the Service it is filed under."""
        self._views: dict[ServiceKey, ServiceSlices] = {}

    def reset(self, objs: Iterable[Obj]) -> None:
        self._slices.clear()
        self._owner.clear()
        self._views.clear()
        for obj in objs:
            self.put(obj)

    def put(self, obj: Obj) -> set[ServiceKey]:
        """File a created or updated slice; returns the Services whose endpoints changed."""
        md = obj.get("metadata") or {}
        try:
            view = SliceView.from_obj(obj)
        except (KeyError, TypeError, ValueError):
            # The registry validated it; a slice that still does not read is
            # dropped rather than allowed to take a reader down.
            return self.remove(str(md.get("namespace") or "default"), str(md.get("name")))
        changed = self.remove(view.namespace, view.name)
        if view.service:
            self._slices.setdefault((view.namespace, view.service), {})[view.name] = view
            self._owner[(view.namespace, view.name)] = view.service
            changed.add((view.namespace, view.service))
            self._views.pop((view.namespace, view.service), None)
        return changed

    def remove(self, namespace: str, name: str) -> set[ServiceKey]:
        service = self._owner.pop((namespace, name), None)
        if service is None:
            return set()
        key = (namespace, service)
        group = self._slices.get(key)
        if group is not None:
            group.pop(name, None)
            if not group:
                del self._slices[key]
        self._views.pop(key, None)
        return {key}

    def get(self, namespace: str, service: str) -> ServiceSlices | None:
        key = (namespace, service)
        view = self._views.get(key)
        if view is None:
            group = self._slices.get(key)
            if not group:
                return None
            view = self._views[key] = ServiceSlices(tuple(group[n] for n in sorted(group)))
        return view

    def services(self) -> Iterable[ServiceKey]:
        return self._slices.keys()
