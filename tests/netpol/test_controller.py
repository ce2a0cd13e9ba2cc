"""The NetworkPolicy agent against a real store: what it writes to the policy maps
as policies and pods come and go (the maps here record the writes)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from svcnet.netpol.controller import NetworkPolicyController
from svcnet.netpol.rules import Allow
from svcnet.store import Store


class Maps:
    def __init__(self) -> None:
        self.writes: list[tuple[str, list[Allow] | None]] = []

    def set_ingress_policy(self, pod_ip: str, allows: Iterable[Allow] | None) -> None:
        self.writes.append((pod_ip, None if allows is None else list(allows)))

    def exempt_process(self, pid: int) -> None:
        pass

    def last(self) -> tuple[str, list[Allow] | None]:
        return self.writes[-1]


def pod(name: str, ip: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"namespace": "default", "name": name, "labels": labels},
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Running", "podIP": ip},
    }


def deny_all(selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"namespace": "default", "name": "deny"},
        "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress"]},
    }


async def test_policies_isolate_pods_and_their_removal_sets_them_free() -> None:
    store = Store()
    store.create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default", "labels": {}}}
    )
    maps = Maps()
    ctl = NetworkPolicyController(store, maps, "", lambda *a: None)
    await ctl.start()
    try:
        store.create(pod("web", "127.244.0.2", app="web"))
        store.mutate("Pod", "default", "web", lambda p: p["metadata"]["labels"].update(x="1"))
        assert maps.writes == [] and ctl.isolated == {}  # no policy: nothing to write

        store.create(deny_all({"app": "web"}))
        assert maps.writes == [("127.244.0.2", [])] and ctl.isolated == {"127.244.0.2": set()}
        store.create(pod("late", "127.244.0.3", app="web"))  # selected as it comes
        assert maps.last() == ("127.244.0.3", [])

        # A label change that leaves the selector frees that pod, policy or not.
        store.mutate("Pod", "default", "late", lambda p: p["metadata"]["labels"].update(app="x"))
        assert maps.last() == ("127.244.0.3", None)
        assert set(ctl.isolated) == {"127.244.0.2"}

        # The last policy gone: the pod it isolated is let go, though none is left.
        store.delete("NetworkPolicy", "default", "deny")
        assert maps.last() == ("127.244.0.2", None) and ctl.isolated == {}
        n = len(maps.writes)
        store.mutate("Pod", "default", "web", lambda p: p["metadata"]["labels"].update(y="2"))
        assert len(maps.writes) == n
    finally:
        await ctl.stop()
