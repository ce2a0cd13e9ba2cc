"""Controllers against a real store and registry, with the agent's part
(pod status) written by the test."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from svcnet.config import Settings
from svcnet.controllers import (
    EndpointsController,
    GarbageCollector,
    LoadBalancerController,
    NamespaceController,
    ReplicaSetController,
)
from svcnet.controllers.endpointslice import EndpointSliceController
from svcnet.controllers.endpointslicemirroring import EndpointSliceMirroring
from svcnet.k8s.kinds import BY_KIND
from svcnet.k8s.objects import Obj
from svcnet.registry import ApiError, Registry
from svcnet.store import Store


@pytest.fixture
async def env() -> Any:
    store = Store()
    reg = Registry(Settings(), store)
    reg.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    ctrls = [
        ReplicaSetController(reg),
        EndpointsController(reg),
        EndpointSliceController(reg),
        EndpointSliceMirroring(reg),
        LoadBalancerController(reg, "127.240.0.0/16"),
        GarbageCollector(reg),
        NamespaceController(reg),
    ]
    for c in ctrls:
        c.start()
    yield store, reg
    for c in ctrls:
        c.stop()


async def settle() -> None:
    # Controllers sync in loop callbacks scheduled by store events; a few loop
    # turns let every chained reaction run. No wall-clock wait is involved.
    for _ in range(10):
        await asyncio.sleep(0)


RS = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "metadata": {"name": "echo-summer", "labels": {"app": "echo", "release": "summer"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "echo", "release": "summer"}},
        "template": {
            "metadata": {"labels": {"app": "echo", "release": "summer"}},
            "spec": {
                "containers": [
                    {
                        "name": "echo",
                        "image": "gihyodocker/echo:latest",
                        "ports": [{"name": "web", "containerPort": 8080}],
                    }
                ]
            },
        },
    },
}


def run_pod(store: Store, name: str, ip: str, ready: bool = True) -> None:
    def put(o: Obj) -> None:
        o["spec"]["nodeName"] = "svcnet"
        o["status"] = {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        }

    store.mutate("Pod", "default", name, put)


async def test_replicaset_creates_scales_and_collects(env: Any) -> None:
    store, reg = env
    reg.create(RS)
    await settle()
    pods = store.list("Pod", "default")
    assert len(pods) == 2
    for p in pods:
        assert re.fullmatch(r"echo-summer-[bcdfghjklmnpqrstvwxz2456789]{5}", p["metadata"]["name"])
        assert p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    run_pod(store, pods[0]["metadata"]["name"], "127.244.0.2")
    await settle()
    st = store.get("ReplicaSet", "default", "echo-summer")["status"]
    assert st["replicas"] == 2 and st["readyReplicas"] == 1
    # A pod that disappears is replaced.
    store.delete("Pod", "default", pods[1]["metadata"]["name"])
    await settle()
    assert len(store.list("Pod", "default")) == 2
    # Scale down removes the unready one first.
    rs = dict(RS, spec=dict(RS["spec"], replicas=1))  # type: ignore[arg-type]
    reg.apply(rs)
    await settle()
    left = store.list("Pod", "default")
    assert [p["metadata"]["name"] for p in left] == [pods[0]["metadata"]["name"]]
    reg.delete(BY_KIND["ReplicaSet"], "default", "echo-summer")
    await settle()
    # The remaining pod is scheduled, so deletion is graceful (the agent finishes it).
    assert store.list("Pod", "default")[0]["metadata"].get("deletionTimestamp")


async def test_a_namespace_terminates_until_its_pods_are_gone(env: Any) -> None:
    store, reg = env
    reg.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    reg.create(RS, namespace="shop")
    await settle()
    names = [p["metadata"]["name"] for p in store.list("Pod", "shop")]
    for n in names:
        store.mutate("Pod", "shop", n, lambda o: o["spec"].__setitem__("nodeName", "svcnet"))
    ns = reg.delete(BY_KIND["Namespace"], "", "shop")
    await settle()
    # Running pods stop gracefully, so the namespace waits for them.
    assert ns["status"]["phase"] == "Terminating"
    assert ns["metadata"]["deletionTimestamp"]
    assert store.get("ReplicaSet", "shop", "echo-summer") is None
    pods = store.list("Pod", "shop")
    assert sorted(p["metadata"]["name"] for p in pods) == sorted(names)
    assert all(p["metadata"].get("deletionTimestamp") for p in pods)
    with pytest.raises(ApiError) as err:
        reg.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "shop"},
            }
        )
    assert err.value.code == 403
    assert 'configmaps "c" is forbidden: unable to create new content in namespace shop' in (
        err.value.message
    )
    # The agent's part: the last process exits, the pod goes, and with it the namespace.
    store.delete("Pod", "shop", names[0])
    await settle()
    assert store.get("Namespace", "", "shop") is not None
    store.delete("Pod", "shop", names[1])
    await settle()
    assert store.get("Namespace", "", "shop") is None


async def test_an_empty_namespace_goes_at_once(env: Any) -> None:
    store, reg = env
    reg.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "empty"}})
    reg.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "empty"}}
    )
    reg.delete(BY_KIND["Namespace"], "", "empty")
    assert store.get("Namespace", "", "empty") is None
    assert store.list("ConfigMap", "empty") == []


async def test_endpoints_follow_readiness_and_named_target_port(env: Any) -> None:
    store, reg = env
    reg.create(RS)
    reg.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "echo"},
            "spec": {
                "selector": {"app": "echo"},
                "ports": [{"name": "http", "port": 80, "targetPort": "web"}],
            },
        }
    )
    await settle()
    a, b = (p["metadata"]["name"] for p in store.list("Pod", "default"))
    run_pod(store, a, "127.244.0.3")
    run_pod(store, b, "127.244.0.2", ready=False)
    await settle()
    ep = store.get("Endpoints", "default", "echo")
    assert ep["subsets"] == [
        {
            "addresses": [
                {
                    "ip": "127.244.0.3",
                    "nodeName": "svcnet",
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": "default",
                        "name": a,
                        "uid": store.get("Pod", "default", a)["metadata"]["uid"],
                    },
                }
            ],
            "notReadyAddresses": [
                {
                    "ip": "127.244.0.2",
                    "nodeName": "svcnet",
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": "default",
                        "name": b,
                        "uid": store.get("Pod", "default", b)["metadata"]["uid"],
                    },
                }
            ],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }
    ]
    reg.delete(BY_KIND["Service"], "default", "echo")
    await settle()
    assert store.get("Endpoints", "default", "echo") is None


async def test_selectorless_and_externalname_get_no_endpoints(env: Any) -> None:
    store, reg = env
    reg.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "gihyo"},
            "spec": {"type": "ExternalName", "externalName": "gihyo.jp"},
        }
    )
    reg.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "manual"},
            "spec": {"ports": [{"port": 80}]},
        }
    )
    await settle()
    assert store.list("Endpoints") == []


async def test_loadbalancer_gets_ingress_ip(env: Any) -> None:
    store, reg = env
    for n in ("a", "b"):
        reg.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": n},
                "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
            }
        )
    await settle()
    ips = [s["status"]["loadBalancer"]["ingress"][0]["ip"] for s in store.list("Service")]
    assert ips == ["127.240.0.1", "127.240.0.2"]
