"""LoadBalancer controller: what MetalLB or a cloud controller does.

Each Service of type LoadBalancer gets `status.loadBalancer.ingress[0].ip` from
the LoadBalancer pool (first free address); the proxy then listens there.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from svcnet.controllers.base import Controller, Key
from svcnet.k8s.objects import Obj
from svcnet.registry import Registry
from svcnet.store import Event


def ingress_ips(svc: Obj) -> list[str]:
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
    return [str(i["ip"]) for i in ingress if i.get("ip")]


class LoadBalancerController(Controller):
    name = "loadbalancer-controller"
    owns = "Service"

    def __init__(self, registry: Registry, cidr: str) -> None:
        super().__init__(registry)
        self.pool = ipaddress.IPv4Network(cidr)

    def keys_for(self, ev: Event) -> Iterable[Key]:
        return [(ev.namespace, ev.name)] if ev.kind == "Service" else ()

    def sync(self, key: Key) -> None:
        svc = self.store.get("Service", *key)
        if svc is None or svc["spec"].get("type") != "LoadBalancer" or ingress_ips(svc):
            return
        used = {ip for s in self.store.list("Service") for ip in ingress_ips(s)}
        for host in self.pool.hosts():
            if str(host) not in used:
                ip = str(host)
                break
        else:
            return  # Pool exhausted: the Service stays <pending>, as without MetalLB.

        def put(o: Obj) -> None:
            o.setdefault("status", {})["loadBalancer"] = {"ingress": [{"ip": ip, "ipMode": "VIP"}]}

        self.registry.update_status("Service", *key, put)
