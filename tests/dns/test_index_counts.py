"""dns/index.py's running counts against the store: which namespaces have a
Service and which (namespace, IP) pairs belong to a pod (``pods verified``),
over random writes, and which changes drop the whole cache (scope None)."""

from __future__ import annotations

import copy
import random

import pytest

from svcnet.dns.index import ClusterIndex
from svcnet.k8s.objects import Obj
from svcnet.store import Store


def _service(rng: random.Random, ns: str, name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"clusterIP": f"10.96.0.{rng.randrange(2, 250)}", "ports": [{"port": 80}]},
    }


def _pod(rng: random.Random, ns: str, name: str) -> Obj:
    # Few addresses, so that pods share one (hostNetwork pods share the node's).
    ip = rng.choice(["", "127.150.0.2", "127.150.0.3", "127.150.0.4"])
    status: Obj = {"podIP": ip, "podIPs": [{"ip": ip}]} if ip else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        "status": status,
    }


@pytest.mark.parametrize("seed", range(4))
def test_counts_match_the_store(seed: int) -> None:
    rng = random.Random(seed)
    store = Store()
    scopes: list[object] = []
    index = ClusterIndex(store, on_change=scopes.append, track_pods=True)
    index.start()
    namespaces = ["a", "b", "c"]
    for _ in range(600):
        ns, name = rng.choice(namespaces), f"x{rng.randrange(4)}"
        kind = rng.choice(["Service", "Pod"])
        have = store.get(kind, ns, name)
        had_namespaces = {s["metadata"]["namespace"] for s in store.list("Service")}
        scopes.clear()
        if have is not None and rng.random() < 0.4:
            store.delete(kind, ns, name)
        elif have is not None:
            new = _service(rng, ns, name) if kind == "Service" else _pod(rng, ns, name)
            new["metadata"] = copy.deepcopy(have["metadata"])
            store.update(new)
        else:
            store.create(_service(rng, ns, name) if kind == "Service" else _pod(rng, ns, name))
        with_services = {s["metadata"]["namespace"] for s in store.list("Service")}
        for n in namespaces:
            assert index.has_namespace(n) == (n in with_services)
        if with_services != had_namespaces:
            # A namespace came or went with its first or last Service: all answers go.
            assert None in scopes
        addresses = {
            (p["metadata"]["namespace"], p["status"]["podIP"])
            for p in store.list("Pod")
            if p["status"].get("podIP")
        }
        for n in namespaces:
            for last in (2, 3, 4):
                ip = f"127.150.0.{last}"
                assert index.has_pod(n, ip) == ((n, ip) in addresses)
    index.stop()
