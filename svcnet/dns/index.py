"""The cluster DNS index: Services, EndpointSlices and Namespaces, kept in step with the store.

CoreDNS's kubernetes plugin reads an informer cache; here the store delivers
change events synchronously, so the index is updated inside the store's call
and the very next query sees the change. Only the affected entry is rebuilt;
a full rebuild happens once at `start`.

Every change also calls `on_change(scope)` so the server can drop cached
answers in the same step: no answer computed before a change is served after
it. The scope is the ``(namespace, name)`` of the Service whose object or
endpoints changed, or None when anything may have changed (namespaces, pods, rebuild).

Pods are watched only for ``pods verified`` (CoreDNS's mode that answers a
pod name only if such a pod exists); their frequent status updates clear the
cache only when the set of pod addresses really changed. The reverse (PTR)
map is derived lazily from Services and their endpoints and dropped on any
change. A Service's endpoints are the union of its EndpointSlices, whoever
wrote them (k8s/endpointslices.py says how they are read).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from svcnet.k8s.endpointslices import SliceIndex
from svcnet.k8s.objects import EndpointAddress, EndpointPort, Obj, ServiceView
from svcnet.store import Event, ReadOnlyStore

logger = logging.getLogger(__name__)

WATCHED_KINDS = frozenset({"Service", "EndpointSlice", "Namespace"})

Scope = tuple[str, str]
"""(namespace, Service name): what a cached positive answer depends on."""


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    view: ServiceView
    ipv4: tuple[str, ...]
    """ClusterIPs by family (dual-stack Services have both)."""
    ipv6: tuple[str, ...]

    @property
    def headless(self) -> bool:
        return self.view.headless

    @property
    def external(self) -> bool:
        return self.view.type == "ExternalName"


def _cluster_ips(obj: Obj, view: ServiceView) -> tuple[tuple[str, ...], tuple[str, ...]]:
    spec = obj.get("spec") or {}
    ips = spec.get("clusterIPs") or ([view.cluster_ip] if view.cluster_ip else [])
    v4: list[str] = []
    v6: list[str] = []
    for raw in ips:
        try:
            ip = ipaddress.ip_address(str(raw))
        except ValueError:
            continue  # "None" (headless) or garbage; neither has an address record
        (v4 if ip.version == 4 else v6).append(str(ip))
    return tuple(v4), tuple(v6)


def endpoint_hostname(addr: EndpointAddress) -> str:
    """The endpoint's DNS label: its hostname, else the dashed IP (CoreDNS's default)."""
    return addr.hostname or addr.ip.replace(".", "-").replace(":", "-")


def normalize_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _pod_ips(obj: Obj) -> frozenset[str]:
    status = obj.get("status") or {}
    raw = [p.get("ip") for p in status.get("podIPs") or () if isinstance(p, dict)]
    raw.append(status.get("podIP"))
    return frozenset(ip for ip in (normalize_ip(str(r)) for r in raw if r) if ip)


class ClusterIndex:
    def __init__(
        self,
        store: ReadOnlyStore,
        on_change: Callable[[Scope | None], None] | None = None,
        *,
        track_pods: bool = False,
    ) -> None:
        self._store = store
        self._on_change = on_change
        self._track_pods = track_pods
        self._kinds = WATCHED_KINDS | ({"Pod"} if track_pods else set())
        self._services: dict[tuple[str, str], ServiceEntry] = {}
        self._slices = SliceIndex()
        self._namespaces: set[str] = set()
        self._service_namespaces: dict[str, int] = {}
        """Namespace -> how many Services it has (kept as they come and go: a pod's
        or a slice's change does not count the Services again)."""
        self._namespaces_moved = False
        self._pods: dict[tuple[str, str], frozenset[str]] = {}
        self._pod_addresses: dict[tuple[str, str], int] = {}
        """(namespace, IP) -> how many pods have it (host-network pods share one)."""
        self._reverse: dict[str, list[str]] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.serial = 0
        """SOA serial: the Unix time of the last change, as CoreDNS's kubernetes plugin uses."""

    def start(self) -> None:
        if self._unsubscribe is not None:
            return
        self._unsubscribe = self._store.subscribe(self._on_event)
        self.rebuild()

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def rebuild(self) -> None:
        self._services.clear()
        self._service_namespaces.clear()
        self._namespaces = {str(o["metadata"]["name"]) for o in self._store.list("Namespace")}
        for obj in self._store.list("Service"):
            self._put_service(obj)
        self._slices.reset(self._store.list("EndpointSlice"))
        self._pods.clear()
        self._pod_addresses.clear()
        if self._track_pods:
            for obj in self._store.list("Pod"):
                md = obj["metadata"]
                self._set_pod(
                    (str(md.get("namespace") or "default"), str(md["name"])), _pod_ips(obj)
                )
        self._changed()

    # --- lookups -----------------------------------------------------------

    def has_namespace(self, ns: str) -> bool:
        # A Service implies its namespace even if the Namespace object is not
        # there (yet): answering its name but not its namespace would be odd.
        return ns in self._namespaces or ns in self._service_namespaces

    def service(self, namespace: str, name: str) -> ServiceEntry | None:
        return self._services.get((namespace, name))

    def ready_addresses(self, entry: ServiceEntry) -> list[EndpointAddress]:
        """Endpoint addresses DNS publishes (the ready ones), each address once."""
        seen: set[str] = set()
        out: list[EndpointAddress] = []
        for a, _ in self.ready_endpoints(entry):
            if a.ip not in seen:
                seen.add(a.ip)
                out.append(a)
        return out

    def ready_endpoints(
        self, entry: ServiceEntry
    ) -> list[tuple[EndpointAddress, tuple[EndpointPort, ...]]]:
        """Published addresses with the ports of their slice (for SRV), one per slice."""
        eps = self._slices.get(entry.view.namespace, entry.view.name)
        return eps.published() if eps is not None else []

    def has_pod(self, namespace: str, ip: str) -> bool:
        """A pod with this IP exists in this namespace (``pods verified``)."""
        return (namespace, ip) in self._pod_addresses

    def reverse(self, ip: str) -> list[str]:
        """PTR targets for an address, relative to the zone (``echo.default.svc``).

        As CoreDNS's reverse.go: a ClusterIP names its Service and nothing else;
        an endpoint address names ``<hostname>.<svc>.<ns>.svc`` for every
        Service whose published endpoints include it.
        """
        if self._reverse is None:
            self._reverse = self._build_reverse()
        return self._reverse.get(ip, [])

    def _build_reverse(self) -> dict[str, list[str]]:
        by_service: dict[str, list[str]] = {}
        by_endpoint: dict[str, list[str]] = {}
        for (ns, name), entry in sorted(self._services.items()):
            if entry.external:
                continue
            for raw in (*entry.ipv4, *entry.ipv6):
                ip = normalize_ip(raw)
                if ip is not None:
                    by_service.setdefault(ip, []).append(f"{name}.{ns}.svc")
            for addr in self.ready_addresses(entry):
                ip = normalize_ip(addr.ip)
                if ip is not None:
                    target = f"{endpoint_hostname(addr).lower()}.{name}.{ns}.svc"
                    targets = by_endpoint.setdefault(ip, [])
                    if target not in targets:
                        targets.append(target)
        # A ClusterIP answers with its Service alone (CoreDNS returns at once).
        return {**by_endpoint, **by_service}

    # --- events ------------------------------------------------------------

    def _on_event(self, ev: Event) -> None:
        if ev.kind not in self._kinds:
            return
        if ev.kind == "Pod":
            self._on_pod(ev)
            return
        scope: Scope | None = (ev.namespace or "default", ev.name)
        if ev.kind == "Namespace":
            scope = None
            if ev.type == "DELETED":
                self._namespaces.discard(ev.name)
            else:
                self._namespaces.add(ev.name)
        elif ev.kind == "Service":
            if ev.type == "DELETED":
                self._drop_service((ev.namespace or "default", ev.name))
            else:
                self._put_service(ev.obj)
        else:
            self._on_slice(ev)
            return
        self._changed(scope)

    def _on_slice(self, ev: Event) -> None:
        ns = ev.namespace or "default"
        if ev.type == "DELETED":
            changed = self._slices.remove(ns, ev.name)
        else:
            changed = self._slices.put(ev.obj)
        if not changed:
            return
        scope = next(iter(changed)) if len(changed) == 1 else None
        self._changed(scope)

    def _on_pod(self, ev: Event) -> None:
        key = (ev.namespace or "default", ev.name)
        ips = frozenset() if ev.type == "DELETED" else _pod_ips(ev.obj)
        if self._pods.get(key, frozenset()) == ips:
            return  # a status update that moved no address: answers stay valid
        self._set_pod(key, ips)
        self._changed()

    def _set_pod(self, key: tuple[str, str], ips: frozenset[str]) -> None:
        ns, old = key[0], self._pods.get(key, frozenset())
        counts = self._pod_addresses
        for ip in old - ips:
            left = counts.pop((ns, ip), 1) - 1
            if left:
                counts[(ns, ip)] = left
        for ip in ips - old:
            counts[(ns, ip)] = counts.get((ns, ip), 0) + 1
        if ips:
            self._pods[key] = ips
        else:
            self._pods.pop(key, None)

    def _put_service(self, obj: Obj) -> None:
        try:
            view = ServiceView.from_obj(obj)
        except (KeyError, TypeError, ValueError):
            # The registry validates before storing; a bad object here is a bug
            # elsewhere and must not take DNS down with it.
            logger.exception("ignoring malformed Service %r", obj.get("metadata"))
            return
        v4, v6 = _cluster_ips(obj, view)
        key = (view.namespace, view.name)
        if key not in self._services:
            n = self._service_namespaces.get(view.namespace, 0)
            self._service_namespaces[view.namespace] = n + 1
            self._namespaces_moved |= n == 0
        self._services[key] = ServiceEntry(view, v4, v6)

    def _drop_service(self, key: tuple[str, str]) -> None:
        if self._services.pop(key, None) is None:
            return
        left = self._service_namespaces.pop(key[0], 1) - 1
        if left:
            self._service_namespaces[key[0]] = left
        else:
            self._namespaces_moved = True

    def _changed(self, scope: Scope | None = None) -> None:
        self._reverse = None
        if self._namespaces_moved:
            scope = None  # a namespace came or went with its first or last Service
            self._namespaces_moved = False
        self.serial = int(time.time()) & 0xFFFFFFFF
        if self._on_change is not None:
            self._on_change(scope)
