"""The cluster DNS index: Services, Endpoints and Namespaces, kept in step with the store.

CoreDNS's kubernetes plugin reads an informer cache; here the store delivers
change events synchronously, so the index is updated inside the store's call
and the very next query sees the change. Only the affected entry is rebuilt;
a full rebuild happens once at `start`.

Every change also calls `on_change` so the server can drop its answer cache in
the same step: no answer computed before a change is served after it.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from svcnet.objects import EndpointAddress, EndpointsView, Obj, ServiceView
from svcnet.store import Event, Store

logger = logging.getLogger(__name__)

WATCHED_KINDS = frozenset({"Service", "Endpoints", "Namespace"})


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


class ClusterIndex:
    def __init__(self, store: Store, on_change: Callable[[], None] | None = None) -> None:
        self._store = store
        self._on_change = on_change
        self._services: dict[tuple[str, str], ServiceEntry] = {}
        self._endpoints: dict[tuple[str, str], EndpointsView] = {}
        self._namespaces: set[str] = set()
        self._service_namespaces: set[str] = set()
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
        self._endpoints.clear()
        self._namespaces = {str(o["metadata"]["name"]) for o in self._store.list("Namespace")}
        for obj in self._store.list("Service"):
            self._put_service(obj)
        for obj in self._store.list("Endpoints"):
            self._put_endpoints(obj)
        self._changed()

    # --- lookups -----------------------------------------------------------

    def has_namespace(self, ns: str) -> bool:
        # A Service implies its namespace even if the Namespace object is not
        # there (yet): answering its name but not its namespace would be odd.
        return ns in self._namespaces or ns in self._service_namespaces

    def service(self, namespace: str, name: str) -> ServiceEntry | None:
        return self._services.get((namespace, name))

    def ready_addresses(self, entry: ServiceEntry) -> list[EndpointAddress]:
        """Endpoint addresses DNS publishes: ready ones, plus unready if the Service asks."""
        eps = self._endpoints.get((entry.view.namespace, entry.view.name))
        if eps is None:
            return []
        seen: set[str] = set()
        out: list[EndpointAddress] = []
        for subset in eps.subsets:
            addrs = subset.addresses
            if entry.view.publish_not_ready:
                addrs = addrs + subset.not_ready_addresses
            for a in addrs:
                if a.ip not in seen:
                    seen.add(a.ip)
                    out.append(a)
        return out

    # --- events ------------------------------------------------------------

    def _on_event(self, ev: Event) -> None:
        if ev.kind not in WATCHED_KINDS:
            return
        if ev.kind == "Namespace":
            if ev.type == "DELETED":
                self._namespaces.discard(ev.name)
            else:
                self._namespaces.add(ev.name)
        elif ev.kind == "Service":
            if ev.type == "DELETED":
                self._services.pop((ev.namespace or "default", ev.name), None)
            else:
                self._put_service(ev.obj)
        elif ev.type == "DELETED":
            self._endpoints.pop((ev.namespace or "default", ev.name), None)
        else:
            self._put_endpoints(ev.obj)
        self._changed()

    def _put_service(self, obj: Obj) -> None:
        try:
            view = ServiceView.from_obj(obj)
        except (KeyError, TypeError, ValueError):
            # The registry validates before storing; a bad object here is a bug
            # elsewhere and must not take DNS down with it.
            logger.exception("ignoring malformed Service %r", obj.get("metadata"))
            return
        v4, v6 = _cluster_ips(obj, view)
        self._services[(view.namespace, view.name)] = ServiceEntry(view, v4, v6)

    def _put_endpoints(self, obj: Obj) -> None:
        try:
            view = EndpointsView.from_obj(obj)
        except (KeyError, TypeError, ValueError):
            logger.exception("ignoring malformed Endpoints %r", obj.get("metadata"))
            return
        self._endpoints[(view.namespace, view.name)] = view

    def _changed(self) -> None:
        self._service_namespaces = {ns for ns, _ in self._services}
        self.serial = int(time.time()) & 0xFFFFFFFF
        if self._on_change is not None:
            self._on_change()
