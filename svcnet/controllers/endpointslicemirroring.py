"""The EndpointSlice mirroring controller: hand-written Endpoints become EndpointSlices.

As kube-controller-manager's (pkg/controller/endpointslicemirroring): an
Endpoints object whose Service exists and has no selector, and which does not
carry ``endpointslice.kubernetes.io/skip-mirror: "true"`` (the endpoints
controller puts that on its own), gets EndpointSlices labelled
``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/managed-by:
endpointslicemirroring-controller.k8s.io``, owned by the Endpoints object.
One slice per subset and address family (IPv6 addresses go to an ``IPv6``
slice, never into an IPv4 one), at most 1000 endpoints each; ``addresses``
become ready endpoints and ``notReadyAddresses`` not-ready ones. The Endpoints'
labels and annotations are copied, but not kubectl's last-applied one.

The slices are what DNS and the proxy read (k8s/endpointslices.py), so a
Service without a selector is served from its hand-written Endpoints only
through them, exactly as in a cluster.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from svcnet.controllers.base import Controller, Key
from svcnet.controllers.endpointslice import chunked, managed_slices, new_slice, reconcile
from svcnet.k8s.objects import Obj
from svcnet.k8s.wellknown import (
    LAST_APPLIED,
    SERVICE_NAME,
    SKIP_MIRROR,
    SLICE_MANAGED_BY,
    SLICE_MIRRORING_CONTROLLER,
)
from svcnet.store import Event

MAX_ENDPOINTS_PER_SLICE = 1000
"""--mirroring-max-endpoints-per-subset's default."""

_SKIPPED_ANNOTATIONS = (LAST_APPLIED, "endpoints.kubernetes.io/last-change-trigger-time")


def mirrored(ep: Obj) -> list[Obj]:
    """The slices that mirror one Endpoints object."""
    md = ep["metadata"]
    ns, name = str(md.get("namespace") or "default"), str(md["name"])
    lab = {
        k: v
        for k, v in (md.get("labels") or {}).items()
        if k not in (SERVICE_NAME, SLICE_MANAGED_BY)
    }
    lab[SERVICE_NAME] = name
    lab[SLICE_MANAGED_BY] = SLICE_MIRRORING_CONTROLLER
    notes = {
        k: v for k, v in (md.get("annotations") or {}).items() if k not in _SKIPPED_ANNOTATIONS
    }
    out: list[Obj] = []
    for subset in ep.get("subsets") or ():
        ports = [
            {
                "name": str(p.get("name") or ""),
                **{k: p[k] for k in ("port", "protocol", "appProtocol") if k in p},
            }
            for p in subset.get("ports") or ()
        ]
        by_type: dict[str, list[Obj]] = {}
        for addrs, ready in (
            (subset.get("addresses"), True),
            (subset.get("notReadyAddresses"), False),
        ):
            for a in addrs or ():
                try:
                    version = ipaddress.ip_address(str(a.get("ip"))).version
                except ValueError:
                    continue  # validation refuses these; nothing to mirror
                e: Obj = {"addresses": [str(a["ip"])], "conditions": {"ready": ready}}
                if a.get("hostname"):
                    e["hostname"] = a["hostname"]
                if a.get("targetRef"):
                    e["targetRef"] = a["targetRef"]
                if a.get("nodeName"):
                    e["nodeName"] = a["nodeName"]
                by_type.setdefault("IPv4" if version == 4 else "IPv6", []).append(e)
        for at, eps in sorted(by_type.items()):
            base = new_slice(ns, name, lab, ep, at)
            if notes:
                base["metadata"]["annotations"] = notes
            out.extend(chunked(base, ports, eps, MAX_ENDPOINTS_PER_SLICE))
    return out


class EndpointSliceMirroring(Controller):
    name = "endpointslice-mirroring-controller"
    owns = "Endpoints"

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.kind in ("Endpoints", "Service"):
            return [(ev.namespace, ev.name)]
        if ev.kind == "EndpointSlice":
            lab = ev.obj["metadata"].get("labels") or {}
            if lab.get(SLICE_MANAGED_BY) == SLICE_MIRRORING_CONTROLLER and lab.get(SERVICE_NAME):
                return [(ev.namespace, str(lab[SERVICE_NAME]))]
        return ()

    def sync(self, key: Key) -> None:
        ns, name = key
        have = managed_slices(self.store, ns, name, SLICE_MIRRORING_CONTROLLER)
        ep = self.store.get("Endpoints", ns, name)
        svc = self.store.get("Service", ns, name)
        mirror = (
            ep is not None
            and svc is not None
            and (svc.get("spec") or {}).get("selector") is None
            and (ep["metadata"].get("labels") or {}).get(SKIP_MIRROR) != "true"
        )
        reconcile(self.registry, ns, have, mirrored(ep) if mirror and ep is not None else [])
