"""Users' own, unmodified programs as pods (as root: cgroups and eBPF socket hooks).

- three replicas of `python3 -m http.server 8080` (binding 0.0.0.0) behind a
  Service, all serving, reached through the ClusterIP from the host and from
  a pod, the server logging the client pod's IP;
- busybox's static httpd, which no LD_PRELOAD could reach, in two replicas;
- a two-container pod whose containers talk over localhost while another pod
  uses the same localhost port, and cannot reach the first one's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from tests.e2e.cluster import Cluster, start, stop

pytestmark = pytest.mark.slow

APP = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: python:3.11
        command: ["python3", "-m", "http.server", "8080"]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: static}
spec:
  replicas: 2
  selector: {matchLabels: {app: static}}
  template:
    metadata: {labels: {app: static}}
    spec:
      containers:
      - name: httpd
        image: busybox
        command: ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/etc"]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: sidecar}
spec:
  containers:
  - name: cache
    image: python:3.11
    command: ["python3", "-m", "http.server", "9000", "--bind", "127.0.0.1"]
  - name: app
    image: busybox
    command:
    - sh
    - -c
    - >-
      until /bin/busybox wget -q -O /dev/null http://127.0.0.1:9000/ 2>/dev/null;
      do sleep 0.1; done; echo sidecar-reached; exec sleep 1000
---
apiVersion: v1
kind: Pod
metadata: {name: neighbour}
spec:
  containers:
  - name: cache
    image: python:3.11
    command: ["python3", "-m", "http.server", "9000", "--bind", "127.0.0.1"]
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    assert os.geteuid() == 0, "the pod sandbox needs root: run these tests as root (CI does)"
    tmp = tmp_path_factory.mktemp("sandbox")
    c = start(tmp, "182")
    try:
        (tmp / "app.yaml").write_text(APP)
        c.cli("apply", "-f", str(tmp / "app.yaml"), check=True)
        yield c
    finally:
        stop(c)


def ready(c: Cluster, selector: str, n: int) -> list[str]:
    """Names and IPs of `n` ready pods (each CLI call is a round trip: bounded, no sleeps)."""
    for _ in range(300):
        out = c.cli(
            "get",
            "pods",
            "-l",
            selector,
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.podIP} "
            '{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
            check=True,
        ).stdout.split("\n")
        rows = [r.split() for r in out if r.strip()]
        if len(rows) == n and all(len(r) == 3 and r[2] == "True" for r in rows):
            return [r[0] for r in rows]
    raise AssertionError(f"{selector}: not {n} ready pods: {out}")


def test_replicas_bound_to_the_wildcard_all_serve(cluster: Cluster) -> None:
    pods = ready(cluster, "app=web", 3)
    ip = cluster.cli("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}", check=True).stdout
    seen = set()
    for _ in range(6):
        assert "Directory listing" in cluster.curl(f"http://{ip}/")
    for pod in pods:
        log = cluster.cli("logs", pod, check=True).stdout
        if '"GET / HTTP/1.1" 200' in log:
            seen.add(pod)
    assert seen == set(pods)  # round-robin reached every replica
    restarts = cluster.cli(
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].status.containerStatuses[0].restartCount}",
    ).stdout.split()
    assert restarts == ["0", "0", "0"]  # no EADDRINUSE crash loop


def test_a_pod_is_seen_by_its_own_ip(cluster: Cluster) -> None:
    pods = ready(cluster, "app=web", 3)
    ip = cluster.cli("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}", check=True).stdout
    out = cluster.cli(
        "run",
        "client",
        "--image=busybox",
        "--restart=Never",
        "-i",
        "--rm",
        "--command",
        "--",
        "sh",
        "-c",
        f"for i in 1 2 3; do /bin/busybox wget -q -O /dev/null http://{ip}/ || echo failed; done; "
        "/bin/busybox wget -q -O - http://web/ | head -1",
        check=True,
        timeout=60,
    ).stdout
    assert "failed" not in out and "<!DOCTYPE" in out, out
    logs = "".join(cluster.cli("logs", p, check=True).stdout for p in pods)
    clients = set(re.findall(r"^(\S+) - - \[", logs, re.M))
    # The client pod's own IP (in the pod CIDR), never 127.0.0.1 for it.
    pod_net = cluster.pod_cidr.split(".0.0/")[0]
    assert any(c.startswith(pod_net + ".") for c in clients), clients


def test_a_static_binary_in_two_replicas(cluster: Cluster) -> None:
    ready(cluster, "app=static", 2)
    ips = cluster.cli(
        "get", "pods", "-l", "app=static", "-o", "jsonpath={.items[*].status.podIP}", check=True
    ).stdout.split()
    for ip in ips:
        assert "root:" in cluster.curl(f"http://{ip}:8080/passwd")


def test_localhost_is_the_pods_own(cluster: Cluster) -> None:
    log = ""
    for _ in range(200):
        log = cluster.cli("logs", "sidecar", "-c", "app").stdout
        if "sidecar-reached" in log:
            break
    assert "sidecar-reached" in log
    # The neighbour serves its own 127.0.0.1:9000 (no EADDRINUSE), and from the
    # host neither pod's localhost listener is reachable.
    st = cluster.cli(
        "get", "pod", "neighbour", "-o", "jsonpath={.status.containerStatuses[0].ready}"
    ).stdout
    assert st == "true"
    assert cluster.curl("http://127.0.0.1:9000/") == ""
