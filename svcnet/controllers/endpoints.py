"""Endpoints controller: Services with a selector get an Endpoints object of
the same name listing matching pods, ready ones in `addresses`, the others in
`notReadyAddresses` (k/k pkg/controller/endpoint/endpoints_controller.go).

ExternalName Services and Services without a selector are left alone: their
Endpoints, if any, are written by users. Deleting a Service deletes the
Endpoints object of its name, whoever wrote it, as the endpoints controller
does. The Endpoints it writes carry ``endpointslice.kubernetes.io/skip-mirror``
(the EndpointSlice controller makes the slices for a selector Service; the
mirroring controller must not copy them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from svcnet.controllers.base import Controller, Key
from svcnet.controllers.selection import pods_selected, services_to_sync
from svcnet.k8s.objects import Obj, pod_ready
from svcnet.k8s.wellknown import ENDPOINTS_CONTROLLER, ENDPOINTS_MANAGED_BY, SKIP_MIRROR
from svcnet.registry import ApiError
from svcnet.store import Event


def find_port(pod: Obj, target: int | str, protocol: str) -> int | None:
    """FindPort: a number is used as is; a name must match a container port's
    name and protocol."""
    if isinstance(target, int):
        return target
    if target.isdigit():
        return int(target)
    for c in pod["spec"].get("containers") or ():
        for p in c.get("ports") or ():
            if p.get("name") == target and p.get("protocol", "TCP") == protocol:
                return int(p["containerPort"])
    return None


def should_include(pod: Obj, include_terminating: bool) -> bool:
    st = pod.get("status") or {}
    if st.get("phase") in ("Succeeded", "Failed") or not st.get("podIP"):
        return False
    return include_terminating or not pod["metadata"].get("deletionTimestamp")


def endpoints_for(svc: Obj, pods: Iterable[Obj]) -> list[Obj]:
    spec = svc["spec"]
    publish = bool(spec.get("publishNotReadyAddresses"))
    groups: dict[tuple[tuple[str, int, str], ...], tuple[list[Obj], list[Obj]]] = {}
    for pod in pods:
        if not should_include(pod, publish):
            continue
        ports: list[tuple[str, int, str]] = []
        for sp in spec.get("ports") or ():
            proto = sp.get("protocol", "TCP")
            port = find_port(pod, sp.get("targetPort", sp["port"]), proto)
            if port is not None:
                ports.append((sp.get("name") or "", port, proto))
        if not ports and spec.get("ports"):
            continue
        md = pod["metadata"]
        addr: Obj = {
            "ip": pod["status"]["podIP"],
            "nodeName": pod["spec"].get("nodeName"),
            "targetRef": {
                "kind": "Pod",
                "namespace": md["namespace"],
                "name": md["name"],
                "uid": md["uid"],
            },
        }
        if not addr["nodeName"]:
            del addr["nodeName"]
        if pod["spec"].get("hostname") and pod["spec"].get("subdomain") == svc["metadata"]["name"]:
            addr["hostname"] = pod["spec"]["hostname"]
        ready, not_ready = groups.setdefault(tuple(sorted(ports)), ([], []))
        (ready if publish or pod_ready(pod) else not_ready).append(addr)
    subsets = []
    for ports_key, (ready, not_ready) in sorted(groups.items()):
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=lambda a: a["ip"])
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=lambda a: a["ip"])
        if ports_key:
            subset["ports"] = [
                {**({"name": n} if n else {}), "port": p, "protocol": proto}
                for n, p, proto in ports_key
            ]
        subsets.append(subset)
    return subsets


class EndpointsController(Controller):
    name = "endpoints-controller"
    owns = "Service"

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.kind == "Service":
            return [(ev.namespace, ev.name)]
        if ev.kind == "Pod":
            return [
                (ev.namespace, svc["metadata"]["name"]) for svc in services_to_sync(self.store, ev)
            ]
        return ()

    def sync(self, key: Key) -> None:
        ns, name = key
        svc = self.store.get("Service", ns, name)
        current = self.store.get("Endpoints", ns, name)
        if svc is None:
            if current is not None:
                with contextlib.suppress(ApiError):  # already gone
                    self.registry.delete("Endpoints", ns, name)
            return
        spec = svc["spec"]
        if spec.get("type") == "ExternalName" or spec.get("selector") is None:
            return
        subsets = endpoints_for(svc, pods_selected(self.store, ns, spec["selector"]))
        lab = dict(svc["metadata"].get("labels") or {})
        lab[ENDPOINTS_MANAGED_BY] = ENDPOINTS_CONTROLLER
        lab[SKIP_MIRROR] = "true"
        if current is None:
            self.registry.create(
                {
                    "apiVersion": "v1",
                    "kind": "Endpoints",
                    "metadata": {"name": name, "namespace": ns, "labels": lab},
                    "subsets": subsets,
                }
            )
        elif current.get("subsets") != subsets or current["metadata"].get("labels") != lab:

            def put(o: Obj) -> None:
                o["subsets"] = subsets
                o["metadata"]["labels"] = lab

            self.registry.modify("Endpoints", ns, name, put)
