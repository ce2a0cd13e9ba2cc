"""metrics.k8s.io as metrics-server serves it: PodMetrics and NodeMetrics, read-only."""

from __future__ import annotations

import time

import aiohttp

from svcnet.nodeapi import ContainerUsage, PodUsage
from svcnet.store import Store
from tests.api.conftest import FakeNode, make_pod

BASE = "/apis/metrics.k8s.io/v1beta1"


async def test_pod_and_node_metrics(
    client: aiohttp.ClientSession, store: Store, node: FakeNode
) -> None:
    store.create(make_pod("web", labels={"app": "web"}, containers=("main", "side")))
    store.create(make_pod("db", labels={"app": "db"}))
    node.pod_usage = [
        PodUsage(
            "default",
            "web",
            time.time(),
            15.0,
            (ContainerUsage("main", 12_345_678, 5 << 20), ContainerUsage("side", 0, 1 << 20)),
        ),
        PodUsage("default", "db", time.time(), 15.0, (ContainerUsage("main", 1, 2048),)),
        PodUsage("default", "done", time.time(), 15.0, (ContainerUsage("main", 1, 2048),)),
    ]
    # A pod that has ended (an OOMKilled Never pod, say) is not reported, as by
    # metrics-server, even while its cgroup is still being read.
    store.create(make_pod("done"))
    store.mutate(
        "Pod", "default", "done", lambda p: p.setdefault("status", {}).update(phase="Failed")
    )
    async with client.get(f"{BASE}/namespaces/default/pods") as r:
        names = [i["metadata"]["name"] for i in (await r.json())["items"]]
    assert names == ["db", "web"]
    async with client.get(f"{BASE}/namespaces/default/pods?labelSelector=app%3Dweb") as r:
        assert r.status == 200
        body = await r.json()
    assert body["kind"] == "PodMetricsList" and len(body["items"]) == 1
    web = body["items"][0]
    assert web["metadata"]["name"] == "web" and web["window"] == "15s"
    assert web["containers"] == [
        {"name": "main", "usage": {"cpu": "12345678n", "memory": "5120Ki"}},
        {"name": "side", "usage": {"cpu": "0n", "memory": "1024Ki"}},
    ]
    async with client.get(f"{BASE}/namespaces/default/pods/db") as r:
        assert (await r.json())["containers"][0]["usage"]["memory"] == "2Ki"
    async with client.get(f"{BASE}/namespaces/default/pods/nope") as r:
        assert r.status == 404
    async with client.get(f"{BASE}/nodes") as r:
        (item,) = (await r.json())["items"]
    assert item["metadata"]["name"] == "svcnet"
    assert item["usage"] == {"cpu": "250000000n", "memory": "1048576Ki"}


async def test_metrics_are_read_only_and_discoverable(client: aiohttp.ClientSession) -> None:
    async with client.post(f"{BASE}/namespaces/default/pods", json={}) as r:
        assert r.status == 405
    async with client.get("/apis/metrics.k8s.io/v1beta1") as r:
        resources = {x["name"]: x["verbs"] for x in (await r.json())["resources"]}
    assert resources == {"nodes": ["get", "list"], "pods": ["get", "list"]}
