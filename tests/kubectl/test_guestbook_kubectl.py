"""The Kubernetes website's guestbook tutorial, followed as its reader does: its six
manifests (tests/kubectl/manifests/guestbook, unmodified) applied one by one with real
kubectl into the default namespace, `kubectl get pods` and `get service frontend`,
then entries added and read back through the frontend's ClusterIP (the tutorial's
port-forward target), the reads coming from a Redis follower that replicated them."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.kubectl.binaries import all_kubectls
from tests.kubectl.conftest import MANIFESTS, Daemon, Kubectl, make_kubectl

pytestmark = pytest.mark.slow

HERE = MANIFESTS / "guestbook"
ORDER = [
    ("redis-leader-deployment.yaml", "deployment.apps/redis-leader created"),
    ("redis-leader-service.yaml", "service/redis-leader created"),
    ("redis-follower-deployment.yaml", "deployment.apps/redis-follower created"),
    ("redis-follower-service.yaml", "service/redis-follower created"),
    ("frontend-deployment.yaml", "deployment.apps/frontend created"),
    ("frontend-service.yaml", "service/frontend created"),
]


def table(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()]


def curl(url: str, *extra: str) -> str:
    out = subprocess.run(
        ["curl", "-s", "--max-time", "10", *extra, url], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, f"curl {url}: rc={out.returncode} {out.stderr}"
    return out.stdout


def resp(host: str, *argv: str) -> bytes:
    """One command in RESP, as redis-cli sends it; the raw reply."""
    with socket.create_connection((host, 6379), timeout=10) as s:
        s.sendall(
            b"*%d\r\n" % len(argv)
            + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in argv)
        )
        reply = b""
        while not reply.endswith(b"\r\n"):
            data = s.recv(65536)
            assert data, f"connection closed after {reply!r}"
            reply += data
        if reply.startswith(b"$") and not reply.startswith(b"$-1"):
            size = int(reply[1 : reply.index(b"\r\n")])
            while len(reply) < reply.index(b"\r\n") + 2 + size + 2:
                reply += s.recv(65536)
        return reply


def cluster_ip(k: Kubectl, service: str) -> str:
    return k.ok("get", "service", service, "-o", "jsonpath={.spec.clusterIP}")


def test_the_guestbook_tutorial(daemon: Daemon, tmp_path: Path) -> None:
    # One kubectl (the machine's v1.32 when present): the tutorial's names live in the
    # default namespace, which two kubectls could not share.
    k = make_kubectl(daemon, all_kubectls()[0][1], "default", tmp_path)
    for name, created in ORDER:
        assert k.ok("apply", "-f", str(HERE / name)) == created + "\n"
    k.ok("wait", "--for=condition=Available", "deploy", "--all", "--timeout=60s")
    k.ok("wait", "--for=condition=Ready", "pod", "--all", "--timeout=60s")

    rows = table(k.ok("get", "pods"))
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    names = sorted(r[0].rsplit("-", 2)[0] for r in rows[1:])
    assert names == ["frontend"] * 3 + ["redis-follower"] * 2 + ["redis-leader"]
    assert {(r[1], r[2], r[3]) for r in rows[1:]} == {("1/1", "Running", "0")}
    assert len(table(k.ok("get", "pods", "-l", "app=guestbook", "-l", "tier=frontend"))) == 4

    rows = table(k.ok("get", "service", "frontend"))
    assert rows[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    frontend = cluster_ip(k, "frontend")
    assert rows[1][:5] == ["frontend", "ClusterIP", frontend, "<none>", "80/TCP"]
    leader, follower = cluster_ip(k, "redis-leader"), cluster_ip(k, "redis-follower")

    # The cluster's DNS has the leader's name, which the followers resolved to find it.
    dig = subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(daemon.dns_port),
         "redis-leader.default.svc.cluster.local", "+short", "+time=2", "+tries=2"],
        capture_output=True, text=True, timeout=20, check=True,
    )  # fmt: skip
    assert dig.stdout.split() == [leader]

    # The page, then the guestbook's JSON interface as the page's script calls it.
    page = curl(f"http://{frontend}/")
    assert "<title>Guestbook</title>" in page and "controllers.js" in page
    assert "guestbook.php?cmd=get" in curl(f"http://{frontend}/controllers.js")
    # (curl's output is read as text: its CRLFs come as newlines)
    head = curl(f"http://{frontend}/guestbook.php?cmd=set&key=messages&value=hello", "-i")
    assert head.startswith("HTTP/1.1 200 OK\n")
    assert "\nContent-Type: application/json\n" in head
    assert head.endswith('\n\n{"message": "Updated"}')
    # Apache's answers to what the page does not have, and its bound on a request line.
    assert "404" in curl(f"http://{frontend}/nope", "-o", "/dev/null", "-w", "%{http_code}")
    long_url = f"http://{frontend}/guestbook.php?cmd=set&value={'x' * 9000}"
    assert curl(long_url, "-o", "/dev/null", "-w", "%{http_code}") == "414"
    value = "hello,from svcnet"
    set_url = f"http://{frontend}/guestbook.php?cmd=set&value=hello%2Cfrom+svcnet"
    assert curl(set_url) == '{"message": "Updated"}'
    # Reads go to the followers, which get the write through replication.
    deadline = time.monotonic() + 15
    while (got := curl(f"http://{frontend}/guestbook.php?cmd=get")) != f'{{"data": "{value}"}}':
        assert time.monotonic() < deadline, f"the followers never showed the entry: {got!r}"
        time.sleep(0.1)
    for pod in json.loads(k.ok("get", "pods", "-l", "role=follower", "-o", "json"))["items"]:
        ip = pod["status"]["podIP"]
        deadline = time.monotonic() + 15
        while resp(ip, "GET", "guestbook") != b"$17\r\n" + value.encode() + b"\r\n":
            assert time.monotonic() < deadline, f"follower {ip} has no entry"
            time.sleep(0.1)
        info = resp(ip, "INFO", "replication").decode()
        assert "role:slave" in info and "master_host:redis-leader" in info
        assert "master_link_status:up" in info
    assert resp(leader, "GET", "guestbook") == b"$17\r\nhello,from svcnet\r\n"
    # A follower refuses writes, as a read-only replica does.
    assert resp(follower, "SET", "guestbook", "x") == (
        b"-READONLY You can't write against a read only replica.\r\n"
    )
    # (Not `logs deploy/redis-leader`: both Redis Deployments select app=redis, so
    # kubectl may pick a follower, on svcnet as on any cluster.)
    logs = k.ok("logs", "-l", "role=leader")
    assert logs.count("Synchronization with replica") == 2, logs
    access = k.ok("logs", "-l", "app=guestbook", "--prefix")
    assert '"GET /guestbook.php?cmd=get HTTP/1.1" 200' in access, access

    # The tutorial's clean-up.
    assert k.ok("delete", "deployment", "-l", "app=redis").splitlines() == [
        'deployment.apps "redis-follower" deleted',
        'deployment.apps "redis-leader" deleted',
    ]
    assert k.ok("delete", "service", "-l", "app=redis").splitlines() == [
        'service "redis-follower" deleted',
        'service "redis-leader" deleted',
    ]
    k.ok("delete", "deployment", "frontend")
    k.ok("delete", "service", "frontend")
