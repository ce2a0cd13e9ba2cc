"""End to end, in one process: a probe's verdict reaches Endpoints and the
proxy within 100 ms, and a deleted pod leaves Endpoints before its process
gets SIGTERM."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from svcnet.k8s.endpointslices import service_of
from svcnet.k8s.objects import Obj
from svcnet.store import Event
from tests.agent.conftest import wait_until
from tests.agent.test_probes import FLAG_SERVER, ready_cond
from tests.workloads.conftest import Cluster

pytestmark = pytest.mark.slow


def deployment(name: str, container: Obj, **pod_spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container], **pod_spec},
            },
        },
    }


def service(name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": "http"}]},
    }


def ready_ips(c: Cluster, name: str) -> list[str]:
    """The Service's ready endpoints, as its EndpointSlices (what the proxy reads) list them."""
    return [
        e["addresses"][0]
        for s in c.store.list("EndpointSlice", "default")
        if service_of(s) == name
        for e in s.get("endpoints") or ()
        if e["conditions"].get("ready")
    ]


def proxy_endpoints(c: Cluster, name: str) -> int:
    return sum(st.endpoints for k, st in c.proxy.stats().items() if k.name == name)


async def http_get(ip: str) -> bytes:
    reader, writer = await asyncio.open_connection(ip, 80)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


async def test_readiness_change_reaches_endpoints_and_proxy_within_100ms(
    cluster: Cluster, tmp_path: Path
) -> None:
    c = cluster
    flag = tmp_path / "ready"
    container = {
        "name": "web",
        "image": "flag-server",
        "command": [sys.executable, "-c", FLAG_SERVER],
        "env": [{"name": "FLAG", "value": str(flag)}],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {
            "httpGet": {"path": "/", "port": "http"},
            "periodSeconds": 1,
            "failureThreshold": 1,
        },
    }
    svc = c.registry.create(service("gated"))
    cluster_ip = svc["spec"]["clusterIP"]
    c.registry.create(deployment("gated", container))

    def first_pod() -> Obj | None:
        pods = c.store.list("Pod", "default")
        return pods[0] if pods else None

    pod = await wait_until(c.store, first_pod)
    name = pod["metadata"]["name"]

    def running(p: Obj | None) -> Obj | None:
        st = (p or {}).get("status") or {}
        return p if st.get("phase") == "Running" and st.get("podIP") else None

    await wait_until(c.store, lambda: running(c.store.get("Pod", "default", name)))
    assert ready_ips(c, "gated") == [] and proxy_endpoints(c, "gated") == 0
    with pytest.raises(ConnectionRefusedError):
        await http_get(cluster_ip)

    times: dict[str, float] = {}

    def watch(ev: Event) -> None:
        now = time.monotonic()
        if ev.kind == "Pod" and ev.name == name:
            was, now_ready = ev.old is not None and ready_cond(ev.old), ready_cond(ev.obj)
            if now_ready != was:
                times["pod " + ("ready" if now_ready else "unready")] = now
        if ev.kind == "EndpointSlice" and service_of(ev.obj) == "gated":
            times["endpoints " + ("ready" if ready_ips(c, "gated") else "unready")] = now
            times["proxy endpoints"] = proxy_endpoints(c, "gated")

    unsubscribe = c.store.subscribe(watch)
    try:
        flag.touch()
        await wait_until(c.store, lambda: "endpoints ready" in times or None, within=5)
        assert times["endpoints ready"] - times["pod ready"] < 0.1
        await asyncio.sleep(0)  # the proxy's own subscriber runs in the same emit
        assert proxy_endpoints(c, "gated") == 1
        assert b"200 OK" in await http_get(cluster_ip)
        flag.unlink()
        await wait_until(c.store, lambda: "endpoints unready" in times or None, within=5)
        assert times["endpoints unready"] - times["pod unready"] < 0.1
        assert proxy_endpoints(c, "gated") == 0
        with pytest.raises(ConnectionRefusedError):
            await http_get(cluster_ip)
    finally:
        unsubscribe()


TERM_RECORDER = r"""
import os, signal, sys, time, http.server
out = os.environ["OUT"]
def term(*_):
    with open(out, "w") as f:
        f.write(repr(time.monotonic()))
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer((os.environ["POD_IP"], 8080), H).serve_forever()
"""


async def test_deleted_pod_leaves_endpoints_before_sigterm(
    cluster: Cluster, tmp_path: Path
) -> None:
    c = cluster
    out = tmp_path / "term"
    container = {
        "name": "web",
        "image": "term-recorder",
        "command": [sys.executable, "-c", TERM_RECORDER],
        "env": [{"name": "OUT", "value": str(out)}],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1},
    }
    c.registry.create(service("graceful"))
    c.registry.create(deployment("graceful", container, terminationGracePeriodSeconds=5))
    await wait_until(c.store, lambda: ready_ips(c, "graceful") or None, within=10)
    [pod] = c.store.list("Pod", "default")
    name = pod["metadata"]["name"]
    left: list[float] = []

    def watch(ev: Event) -> None:
        if (
            ev.kind == "EndpointSlice"
            and service_of(ev.obj) == "graceful"
            and not ready_ips(c, "graceful")
        ):
            left.append(time.monotonic())

    unsubscribe = c.store.subscribe(watch)
    try:
        from svcnet.k8s.kinds import BY_KIND

        c.registry.delete(BY_KIND["Pod"], "default", name)
        live = c.store.get("Pod", "default", name)
        assert live is not None and live["metadata"]["deletionTimestamp"]  # Terminating
        await wait_until(c.store, lambda: None if c.store.get("Pod", "default", name) else True)
    finally:
        unsubscribe()
    sigterm_at = float(out.read_text())
    assert left and left[0] <= sigterm_at
