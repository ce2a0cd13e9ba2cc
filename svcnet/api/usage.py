"""metrics.k8s.io: what `kubectl top` reads, from the node's own usage figures.

On a cluster, metrics-server scrapes every kubelet and serves PodMetrics and
NodeMetrics through the aggregation layer. Here the agent is the one kubelet
and measures its pods' cgroups when asked (``NodeApi.usage``), so the API
server answers these paths itself. Quantities are written as metrics-server
writes them: CPU in nanocores (`12345678n`), memory in KiB (`2048Ki`).
"""

from __future__ import annotations

from svcnet.k8s import labels
from svcnet.k8s.objects import Obj
from svcnet.k8s.timestamps import rfc3339
from svcnet.nodeapi import NODE_NAME, ContainerUsage, NodeApi, PodUsage
from svcnet.store import ReadOnlyStore

API_VERSION = "metrics.k8s.io/v1beta1"


def _quantities(u: ContainerUsage) -> Obj:
    return {"cpu": f"{u.cpu_nanocores}n", "memory": f"{u.memory_bytes // 1024}Ki"}


def pod_metrics(pod: Obj, usage: PodUsage) -> Obj:
    md = pod["metadata"]
    return {
        "kind": "PodMetrics",
        "apiVersion": API_VERSION,
        "metadata": {
            "name": md["name"],
            "namespace": md.get("namespace", "default"),
            "creationTimestamp": rfc3339(usage.timestamp),
            "labels": dict(md.get("labels") or {}),
        },
        "timestamp": rfc3339(usage.timestamp),
        "window": f"{usage.window:.0f}s",
        "containers": [{"name": c.name, "usage": _quantities(c)} for c in usage.containers],
    }


def pod_metrics_list(
    node: NodeApi, store: ReadOnlyStore, namespace: str | None, selector: str | None
) -> list[Obj]:
    """PodMetrics of the running pods in namespace (None: all) that match selector.
    Raises labels.SelectorError."""
    sel = labels.parse(selector)
    out = []
    for u in sorted(node.usage(), key=lambda u: (u.namespace, u.name)):
        if namespace is not None and u.namespace != namespace:
            continue
        pod = store.get("Pod", u.namespace, u.name)
        if pod is None or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue  # metrics-server reports running pods only
        if sel.matches(pod["metadata"].get("labels")):
            out.append(pod_metrics(pod, u))
    return out


def node_metrics(node: NodeApi, timestamp: float) -> Obj:
    u = node.node_usage()
    return {
        "kind": "NodeMetrics",
        "apiVersion": API_VERSION,
        "metadata": {"name": NODE_NAME, "creationTimestamp": rfc3339(timestamp)},
        "timestamp": rfc3339(timestamp),
        "window": "15s",
        "usage": _quantities(u),
    }
