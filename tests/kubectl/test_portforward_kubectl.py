"""`kubectl port-forward` (and `svcnet port-forward`) against a whole svcnet: a pod
with python's http.server on the wildcard, one on localhost only (reached through
the pod's private loopback address), and the built-in nginx; pod/, deploy/ and
svc/ targets; curl through the forwarded ports; a port where nothing listens."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from svcnet.testing import free_port
from tests.kubectl.conftest import ROOT, SVCNET, Daemon, Kubectl, make_kubectl

pytestmark = pytest.mark.slow

APP = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: files
        image: python
        command: ["python3", "-m", "http.server", "8080"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
      - name: private
        image: python
        command: ["python3", "-m", "http.server", "9090", "--bind", "127.0.0.1"]
      - name: nginx
        image: nginx
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
"""


class Forwarder:
    """A port-forward process; stop() ends and reaps it."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        self.out = b""
        self.err = b""

    def _read(self, stream: str, needle: bytes, within: float) -> bytes:
        pipe = self.proc.stdout if stream == "out" else self.proc.stderr
        assert pipe is not None
        deadline = time.monotonic() + within
        while needle not in (self.out if stream == "out" else self.err):
            left = deadline - time.monotonic()
            assert left > 0, f"{needle!r} not seen: {self.out!r} {self.err!r}"
            r, _, _ = select.select([pipe], [], [], left)
            if r:
                chunk = os.read(pipe.fileno(), 65536)
                assert chunk, f"ended before {needle!r}: {self.out!r} {self.err!r}"
                if stream == "out":
                    self.out += chunk
                else:
                    self.err += chunk
        return self.out if stream == "out" else self.err

    def expect(self, needle: bytes, within: float = 30) -> bytes:
        return self._read("out", needle, within)

    def expect_err(self, needle: bytes, within: float = 30) -> bytes:
        return self._read("err", needle, within)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def curl(port: int, path: str = "/") -> str:
    r = subprocess.run(
        ["curl", "-sS", "--max-time", "20", f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def app(daemon: Daemon, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    from tests.kubectl.binaries import all_kubectls

    k = make_kubectl(daemon, all_kubectls()[0][1], "pf", tmp_path_factory.mktemp("pf"))
    r = k("apply", "-f", "-", input=APP)
    assert r.returncode == 0, r.stderr
    k.ok("rollout", "status", "deploy/web", "--timeout=60s")
    yield k


def _forward(k: Kubectl, *args: str, websockets: bool = True) -> Forwarder:
    env = {**k.env(), "KUBECTL_PORT_FORWARD_WEBSOCKETS": "true" if websockets else "false"}
    return Forwarder(k.argv("port-forward", *args), env, k.home)


@pytest.mark.parametrize("websockets", [False, True], ids=["spdy", "tunnel"])
def test_pod_ports(app: Kubectl, kubectl_bin: tuple[str, str], websockets: bool) -> None:
    k = Kubectl(kubectl_bin[1], app.kubeconfig, app.home)
    pod = app.ok("get", "pods", "-l", "app=web", "-o", "name").split()[0]
    a, b, c = free_port(), free_port(), free_port()
    pf = _forward(k, pod, f"{a}:8080", f"{b}:80", f"{c}:9090", websockets=websockets)
    try:
        for port, remote in ((a, 8080), (b, 80), (c, 9090)):
            pf.expect(f"Forwarding from 127.0.0.1:{port} -> {remote}".encode())
        assert "Directory listing" in curl(a)
        assert "Welcome to nginx!" in curl(b)
        assert "Directory listing" in curl(c)  # bound to the pod's localhost only
        pf.expect(f"Handling connection for {c}".encode())
        with ThreadPoolExecutor(8) as pool:
            pages = list(pool.map(lambda _: curl(a), range(24)))
        assert all("Directory listing" in p for p in pages)
        assert pf.proc.poll() is None
    finally:
        pf.stop()


def test_deploy_and_service(app: Kubectl) -> None:
    a, b = free_port(), free_port()
    deploy = _forward(app, "deploy/web", f"{a}:8080")
    svc = _forward(app, "svc/web", f"{b}:80")
    try:
        deploy.expect(f"Forwarding from 127.0.0.1:{a} -> 8080".encode())
        # kubectl turns the Service port into the pod's targetPort (named here).
        svc.expect(f"Forwarding from 127.0.0.1:{b} -> 8080".encode())
        assert "Directory listing" in curl(a)
        assert "Directory listing" in curl(b)
    finally:
        deploy.stop()
        svc.stop()


def test_nothing_listening(app: Kubectl) -> None:
    pod = app.ok("get", "pods", "-l", "app=web", "-o", "name").split()[0]
    uid = app.ok("get", pod, "-o", "jsonpath={.metadata.uid}")
    a = free_port()
    pf = _forward(app, pod, f"{a}:7777")
    try:
        pf.expect(b"Forwarding from")
        subprocess.run(
            ["curl", "-sS", "--max-time", "20", f"http://127.0.0.1:{a}/"],
            capture_output=True,
            timeout=30,
        )
        err = pf.expect_err(b"connection refused").decode()
    finally:
        pf.stop()
    assert re.search(
        rf"an error occurred forwarding {a} -> 7777: error forwarding port 7777 to pod "
        rf"{uid}, uid : dial tcp4 127\.0\.0\.1:7777: connect: connection refused",
        err,
    ), err


def test_svcnet_port_forward(app: Kubectl, daemon: Daemon) -> None:
    a, b = free_port(), free_port()
    env = dict(os.environ, HOME=str(daemon.home))
    pf = Forwarder(
        [*SVCNET, "port-forward", "-n", "pf", "--server", daemon.url, "svc/web", f"{a}:80"],
        env,
        ROOT,
    )
    pf2 = Forwarder(
        [*SVCNET, "port-forward", "-n", "pf", "--server", daemon.url, "deploy/web", f"{b}:7777"],
        env,
        ROOT,
    )
    try:
        pf.expect(f"Forwarding from 127.0.0.1:{a} -> 8080".encode())
        assert "Directory listing" in curl(a)
        pf.expect(f"Handling connection for {a}".encode())
        with ThreadPoolExecutor(8) as pool:
            pages = list(pool.map(lambda _: curl(a), range(16)))
        assert all("Directory listing" in p for p in pages)
        pf2.expect(f"Forwarding from 127.0.0.1:{b} -> 7777".encode())
        subprocess.run(
            ["curl", "-sS", "--max-time", "20", f"http://127.0.0.1:{b}/"],
            capture_output=True,
            timeout=30,
        )
        err = pf2.expect_err(b"connection refused").decode()
        assert re.search(rf"^E\d{{4}} .*an error occurred forwarding {b} -> 7777: ", err, re.M)
    finally:
        pf.stop()
        pf2.stop()
    assert pf.proc.returncode == 0
