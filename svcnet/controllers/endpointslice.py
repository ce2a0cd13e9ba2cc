"""The EndpointSlice controller, and Events about Services that reach nothing.

``EndpointSliceController`` plays kube-controller-manager's EndpointSlice
controller (pkg/controller/endpointslice): every Service with a selector gets
EndpointSlices listing the pods it selects, labelled
``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/managed-by:
endpointslice-controller.k8s.io``, owned by the Service (so deleting the
Service collects them), named ``<service>-<random>``. One slice per address
type and set of resolved ports, at most 100 endpoints each; a Service whose
selector matches nothing keeps one empty placeholder slice, as in a cluster.
Each endpoint carries the conditions kube-proxy and CoreDNS read:
``serving`` is the pod's readiness, ``terminating`` its deletionTimestamp,
and ``ready`` is serving and not terminating (or always true with
``publishNotReadyAddresses``). Terminating pods stay listed until they are
gone, so a proxy can drain to them when nothing else serves.

These slices, the mirrored ones (endpointslicemirroring.py) and any a user
writes are what DNS and the proxy read (k8s/endpointslices.py); the Endpoints
object is kept for clients that still read it.

``ServiceEventRecorder`` records the Warning Events a user debugging "my
Service does not answer" needs to see in `describe svc`: the selector matches
no pod (``SelectorMatchesNothing``), or pods match but none is ready
(``NoReadyEndpoints``). Kubernetes itself stays silent here; these reasons are
svcnet's. A condition must last ``grace`` seconds before it is recorded, so a
Service applied a moment before its pods does not leave a stale warning.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable, Sequence

import orjson

from svcnet import _json
from svcnet.controllers.base import Controller, Key
from svcnet.controllers.endpoints import find_port, should_include
from svcnet.controllers.selection import pods_selected, services_to_sync
from svcnet.events import record
from svcnet.k8s import labels
from svcnet.k8s.endpointslices import ip_family
from svcnet.k8s.objects import Obj, pod_ready
from svcnet.k8s.owners import controller_ref
from svcnet.k8s.wellknown import (
    ENDPOINTS_CONTROLLER,
    SERVICE_NAME,
    SLICE_CONTROLLER,
    SLICE_MANAGED_BY,
)
from svcnet.registry import ApiError, Registry
from svcnet.store import Event, ReadOnlyStore

MAX_ENDPOINTS_PER_SLICE = 100
"""kube-controller-manager's --max-endpoints-per-slice default."""

HEADLESS = "service.kubernetes.io/headless"

_FAMILY_TYPE = {4: "IPv4", 6: "IPv6"}


def _slice_key(s: Obj) -> tuple[str, str]:
    """What makes two slices interchangeable: address type and ports."""
    ports = sorted(orjson.dumps(p, option=orjson.OPT_SORT_KEYS) for p in s.get("ports") or ())
    return str(s.get("addressType")), b"|".join(ports).decode()


_SLICES_OF = "endpointslice.managed"


def _managed_key(s: Obj) -> list[str]:
    md = s["metadata"]
    have = md.get("labels") or {}
    if SERVICE_NAME not in have or SLICE_MANAGED_BY not in have:
        return []
    return [f"{md.get('namespace')}\x00{have[SERVICE_NAME]}\x00{have[SLICE_MANAGED_BY]}"]


def managed_slices(store: ReadOnlyStore, ns: str, service: str, manager: str) -> list[Obj]:
    """One manager's slices of one Service, through an index: a sync of one Service
    does not look at the slices of the others."""
    store.index(_SLICES_OF, "EndpointSlice", _managed_key)
    return store.by_index(_SLICES_OF, f"{ns}\x00{service}\x00{manager}")


def reconcile(registry: Registry, ns: str, have: Sequence[Obj], want: Sequence[Obj]) -> None:
    """Make the slices `have` (one manager's slices of one Service) say what `want`
    does (slices without names): reuse a slice of the same address type and ports,
    create the rest with generateName, delete what is left over. Nothing is
    written for a slice that already says the right thing."""
    pool: dict[tuple[str, str], list[Obj]] = {}
    for s in sorted(have, key=lambda s: str(s["metadata"]["name"])):
        pool.setdefault(_slice_key(s), []).append(s)
    fields = ("addressType", "endpoints", "ports")
    owned_md = ("labels", "annotations", "ownerReferences")
    for s in want:
        candidates = pool.get(_slice_key(s)) or []
        # Prefer a slice that already lists exactly these endpoints.
        cur = next(
            (c for c in candidates if c.get("endpoints") == s.get("endpoints")),
            candidates[0] if candidates else None,
        )
        try:
            if cur is None:
                registry.create(s)
                continue
            candidates.remove(cur)
            md, want_md = cur["metadata"], s["metadata"]
            if all(cur.get(k) == s.get(k) for k in fields) and all(
                md.get(k) == want_md.get(k) for k in owned_md
            ):
                continue
            new = {k: v for k, v in cur.items() if k not in fields}
            new.update({k: s[k] for k in fields if k in s})
            new["metadata"] = {k: v for k, v in md.items() if k not in owned_md}
            new["metadata"].update({k: want_md[k] for k in owned_md if k in want_md})
            registry.update(new)
        except ApiError:
            pass  # the object moved under us; its event brings the key back
    for left in pool.values():
        for s in left:
            try:
                registry.delete("EndpointSlice", ns, s["metadata"]["name"])
            except ApiError:
                pass


def address_types(svc: Obj) -> list[str]:
    """getAddressTypesForService: ipFamilies, else the ClusterIP's family, else both."""
    spec = svc.get("spec") or {}
    fams = [str(f) for f in spec.get("ipFamilies") or () if f in ("IPv4", "IPv6")]
    if fams:
        return fams
    try:
        return [_FAMILY_TYPE[ipaddress.ip_address(str(spec.get("clusterIP"))).version]]
    except ValueError:
        return ["IPv4", "IPv6"]


def _pod_ip(pod: Obj, address_type: str) -> str | None:
    st = pod.get("status") or {}
    ips = [str(p.get("ip")) for p in st.get("podIPs") or () if isinstance(p, dict)]
    if not ips and st.get("podIP"):
        ips = [str(st["podIP"])]
    for ip in ips:
        fam = ip_family(ip)
        if fam is not None and _FAMILY_TYPE[fam] == address_type:
            return ip
    return None


def pod_endpoint(pod: Obj, svc: Obj, ip: str) -> Obj:
    """podToEndpoint (pkg/controller/endpointslice/utils.go)."""
    md, spec = pod["metadata"], pod.get("spec") or {}
    serving = pod_ready(pod)
    terminating = bool(md.get("deletionTimestamp"))
    publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    e: Obj = {
        "addresses": [ip],
        "conditions": {
            # Never ready while terminating, unless the Service publishes
            # not-ready addresses (compatibility with Endpoints).
            "ready": publish or (serving and not terminating),
            "serving": serving,
            "terminating": terminating,
        },
    }
    if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"]:
        e["hostname"] = spec["hostname"]
    e["targetRef"] = {
        "kind": "Pod",
        "namespace": md.get("namespace") or "default",
        "name": md["name"],
        "uid": md.get("uid"),
    }
    if spec.get("nodeName"):
        e["nodeName"] = spec["nodeName"]
    return e


def _pod_ports(pod: Obj, svc: Obj) -> list[Obj]:
    out: list[Obj] = []
    for sp in (svc.get("spec") or {}).get("ports") or ():
        proto = sp.get("protocol", "TCP")
        port = find_port(pod, sp.get("targetPort", sp["port"]), proto)
        if port is None:
            continue  # a named port this pod does not have: the pod goes without it
        # name is a *string the controller always sets, "" for an unnamed port;
        # kubectl's describe dereferences it (and panics without it).
        p: Obj = {"name": str(sp.get("name") or ""), "port": port, "protocol": proto}
        if sp.get("appProtocol"):
            p["appProtocol"] = sp["appProtocol"]
        out.append(p)
    return out


def slice_labels(svc: Obj, manager: str) -> dict[str, str]:
    lab = {
        k: v
        for k, v in (svc["metadata"].get("labels") or {}).items()
        if k not in (SERVICE_NAME, SLICE_MANAGED_BY)
    }
    if (svc.get("spec") or {}).get("clusterIP") == "None":
        lab[HEADLESS] = ""
    lab[SERVICE_NAME] = svc["metadata"]["name"]
    lab[SLICE_MANAGED_BY] = manager
    return lab


def new_slice(ns: str, prefix: str, lab: dict[str, str], owner: Obj, address_type: str) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": f"{prefix}-",
            "namespace": ns,
            "labels": lab,
            "ownerReferences": [controller_ref(owner)],
        },
        "addressType": address_type,
        "endpoints": [],
    }


def chunked(base: Obj, ports: list[Obj] | None, endpoints: list[Obj], size: int) -> Iterable[Obj]:
    endpoints = sorted(endpoints, key=lambda e: (str(e["addresses"][0]), _json.dumps(e)))
    for i in range(0, max(len(endpoints), 1), size):
        s = {**base, "metadata": dict(base["metadata"]), "endpoints": endpoints[i : i + size]}
        if ports is not None:
            s["ports"] = ports
        yield s


def slices_for_service(svc: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """The slices the EndpointSlice controller wants for one selector Service."""
    md = svc["metadata"]
    ns, name = str(md.get("namespace") or "default"), str(md["name"])
    lab = slice_labels(svc, SLICE_CONTROLLER)
    types = address_types(svc)
    groups: dict[tuple[str, bytes], tuple[str, list[Obj], list[Obj]]] = {}
    for pod in pods:
        if not should_include(pod, include_terminating=True):
            continue
        ports = _pod_ports(pod, svc)
        if not ports and (svc.get("spec") or {}).get("ports"):
            continue
        for at in types:
            ip = _pod_ip(pod, at)
            if ip is None:
                continue
            key = (at, orjson.dumps(ports, option=orjson.OPT_SORT_KEYS))
            groups.setdefault(key, (at, ports, []))[2].append(pod_endpoint(pod, svc, ip))
    out: list[Obj] = []
    for (at, _), (_, ports, eps) in sorted(groups.items()):
        base = new_slice(ns, name, lab, svc, at)
        out.extend(chunked(base, ports, eps, MAX_ENDPOINTS_PER_SLICE))
    if not out:
        # The placeholder: a Service with no endpoints still has one slice.
        out.append(new_slice(ns, name, lab, svc, types[0]))
    return out


class EndpointSliceController(Controller):
    name = "endpointslice-controller"
    owns = "Service"

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.kind == "Service":
            return [(ev.namespace, ev.name)]
        if ev.kind == "Pod":
            return [
                (ev.namespace, svc["metadata"]["name"]) for svc in services_to_sync(self.store, ev)
            ]
        if ev.kind == "EndpointSlice" and not self._syncing:
            # Someone else changed or deleted one of ours: put it back. Our own
            # writes come back here while sync runs (the store tells its readers
            # synchronously) and need nothing, as the controller's slice tracker
            # knows the generations it wrote.
            lab = ev.obj["metadata"].get("labels") or {}
            if lab.get(SLICE_MANAGED_BY) == SLICE_CONTROLLER and lab.get(SERVICE_NAME):
                return [(ev.namespace, str(lab[SERVICE_NAME]))]
        return ()

    _syncing = False

    def sync(self, key: Key) -> None:
        self._syncing = True
        try:
            self._sync(key)
        finally:
            self._syncing = False

    def _sync(self, key: Key) -> None:
        ns, name = key
        svc = self.store.get("Service", ns, name)
        have = managed_slices(self.store, ns, name, SLICE_CONTROLLER)
        spec = (svc or {}).get("spec") or {}
        if svc is None or spec.get("selector") is None or spec.get("type") == "ExternalName":
            # Gone (the garbage collector takes owned slices too, but a Service
            # that lost its selector keeps its uid) or not ours to manage.
            reconcile(self.registry, ns, have, [])
            return
        pods = pods_selected(self.store, ns, spec["selector"])
        reconcile(self.registry, ns, have, slices_for_service(svc, pods))


class ServiceEventRecorder(Controller):
    name = "service-events"
    owns = "Service"

    def __init__(self, registry: Registry, grace: float = 2.0) -> None:
        super().__init__(registry)
        self.grace = grace
        self._pending: dict[Key, asyncio.TimerHandle] = {}

    def stop(self) -> None:
        super().stop()
        for h in self._pending.values():
            h.cancel()
        self._pending.clear()

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.kind == "Service":
            return [(ev.namespace, ev.name)]
        if ev.kind == "Pod":
            # Only the Services that select it (before or after the change) can
            # change their verdict; a pod leaving one is in ev.old.
            return [(ev.namespace, s["metadata"]["name"]) for s in services_to_sync(self.store, ev)]
        return ()

    def problem(self, key: Key) -> tuple[str, str] | None:
        """(reason, message) if the Service reaches nothing, else None."""
        ns, name = key
        svc = self.store.get("Service", ns, name)
        if svc is None:
            return None
        spec = svc.get("spec") or {}
        selector = spec.get("selector")
        if not selector or spec.get("type") == "ExternalName":
            return None
        text = labels.format_map(selector)
        pods = [
            p
            for p in pods_selected(self.store, ns, selector)
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        if not pods:
            return (
                "SelectorMatchesNothing",
                f"selector {text} matches no pods in namespace {ns}, so the Service has no "
                "endpoints",
            )
        if not any(pod_ready(p) for p in pods):
            n = len(pods)
            return (
                "NoReadyEndpoints",
                f"{n} pod{'s' if n != 1 else ''} match{'es' if n == 1 else ''} selector "
                f"{text} but none is ready, so the Service has no endpoints",
            )
        return None

    def sync(self, key: Key) -> None:
        found = self.problem(key)
        handle = self._pending.pop(key, None)
        if found is None:
            if handle is not None:
                handle.cancel()
            return
        if handle is not None:
            self._pending[key] = handle  # already counting down
            return
        assert self._loop is not None
        self._pending[key] = self._loop.call_later(self.grace, self._confirm, key)

    def _confirm(self, key: Key) -> None:
        self._pending.pop(key, None)
        found = self.problem(key)
        if found is None:
            return
        svc = self.store.get("Service", *key)
        if svc is not None:
            record(self.registry, svc, "Warning", found[0], found[1], ENDPOINTS_CONTROLLER)
