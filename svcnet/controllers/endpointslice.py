"""EndpointSlices mirrored from Endpoints, and Events about Services that reach nothing.

``EndpointSliceMirror`` plays kube-controller-manager's EndpointSlice
controller for what svcnet needs: every Endpoints object written by the
Endpoints controller gets EndpointSlices (one per subset, IPv4) labelled
``kubernetes.io/service-name``, which is what `kubectl describe svc` lists
as Endpoints. The Endpoints object stays the source of truth for the proxy
and DNS; the slices are a read-only view for clients.

``ServiceEventRecorder`` records the Warning Events a user debugging "my
Service does not answer" needs to see in `describe svc`: the selector matches
no pod (``SelectorMatchesNothing``), or pods match but none is ready
(``NoReadyEndpoints``). Kubernetes itself stays silent here; these reasons are
svcnet's. A condition must last ``grace`` seconds before it is recorded, so a
Service applied a moment before its pods does not leave a stale warning.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable

from svcnet.controllers.base import Controller, Key
from svcnet.events import record
from svcnet.k8s import labels
from svcnet.k8s.names import ALPHANUMS
from svcnet.k8s.objects import Obj, pod_ready
from svcnet.k8s.owners import controller_ref
from svcnet.k8s.wellknown import (
    ENDPOINTS_CONTROLLER,
    SERVICE_NAME,
    SLICE_CONTROLLER,
    SLICE_MANAGED_BY,
)
from svcnet.registry import ApiError, Registry
from svcnet.store import Event


def _suffix(*parts: str) -> str:
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return "".join(ALPHANUMS[b % len(ALPHANUMS)] for b in digest[:5])


def slices_for(ep: Obj, svc: Obj | None) -> list[Obj]:
    """The EndpointSlices for one Endpoints object (one per subset)."""
    md = ep["metadata"]
    ns, name = str(md.get("namespace") or "default"), str(md["name"])
    out: list[Obj] = []
    subsets = ep.get("subsets") or []
    if not subsets:
        subsets = [{}]
    for i, subset in enumerate(subsets):
        endpoints: list[Obj] = []
        for addrs, ready in (
            (subset.get("addresses"), True),
            (subset.get("notReadyAddresses"), False),
        ):
            for a in addrs or ():
                e: Obj = {
                    "addresses": [a["ip"]],
                    "conditions": {"ready": ready, "serving": ready, "terminating": False},
                }
                if a.get("nodeName"):
                    e["nodeName"] = a["nodeName"]
                if a.get("hostname"):
                    e["hostname"] = a["hostname"]
                if a.get("targetRef"):
                    e["targetRef"] = a["targetRef"]
                endpoints.append(e)
        # name is a *string that the real controllers always set, "" for an unnamed
        # port; kubectl's describe dereferences it (and panics without it).
        ports = [
            {
                "name": str(p.get("name") or ""),
                **{k: p[k] for k in ("port", "protocol", "appProtocol") if k in p},
            }
            for p in subset.get("ports") or ()
        ]
        slice_md: Obj = {
            "name": f"{name}-{_suffix(ns, name, str(i))}",
            "namespace": ns,
            "labels": {SERVICE_NAME: name, SLICE_MANAGED_BY: SLICE_CONTROLLER},
        }
        if svc is not None:
            slice_md["ownerReferences"] = [controller_ref(svc)]
        out.append(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": slice_md,
                "addressType": "IPv4",
                "endpoints": endpoints,
                "ports": ports or None,
            }
        )
    for s in out:
        if s["ports"] is None:
            del s["ports"]
    return out


class EndpointSliceMirror(Controller):
    name = "endpointslice"
    owns = "Endpoints"

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.kind in ("Endpoints", "Service"):
            return [(ev.namespace, ev.name)]
        if ev.kind == "EndpointSlice":
            svc = (ev.obj["metadata"].get("labels") or {}).get(SERVICE_NAME)
            if svc and ev.type == "DELETED":
                return [(ev.namespace, str(svc))]
        return ()

    def sync(self, key: Key) -> None:
        ns, name = key
        ep = self.store.get("Endpoints", ns, name)
        want = (
            {s["metadata"]["name"]: s for s in slices_for(ep, self.store.get("Service", ns, name))}
            if ep
            else {}
        )
        have = {
            s["metadata"]["name"]: s
            for s in self.store.list("EndpointSlice", ns)
            if (s["metadata"].get("labels") or {}).get(SERVICE_NAME) == name
            and (s["metadata"].get("labels") or {}).get(SLICE_MANAGED_BY) == SLICE_CONTROLLER
        }
        for sname in have:
            if sname not in want:
                try:
                    self.registry.delete("EndpointSlice", ns, sname)
                except ApiError:
                    pass
        for sname, s in want.items():
            cur = have.get(sname)
            try:
                if cur is None:
                    self.registry.create(s)
                elif any(cur.get(k) != s.get(k) for k in ("endpoints", "ports", "addressType")) or (
                    cur["metadata"].get("ownerReferences") != s["metadata"].get("ownerReferences")
                ):
                    new = dict(cur)
                    new.update({k: v for k, v in s.items() if k != "metadata"})
                    if "ports" not in s:
                        new.pop("ports", None)
                    new["metadata"] = {**cur["metadata"], **s["metadata"]}
                    self.registry.update(new)
            except ApiError:
                pass


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
            return [
                (ev.namespace, s["metadata"]["name"])
                for s in self.store.list("Service", ev.namespace)
            ]
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
        sel = labels.from_map(selector)
        text = labels.format_map(selector)
        pods = [
            p
            for p in self.store.list("Pod", ns)
            if sel.matches(p["metadata"].get("labels"))
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
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
