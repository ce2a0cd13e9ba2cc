"""The dev loop: `svcnet apply -f DIR --watch` re-applies changed manifests,
restarts the pods whose mapped program changed, says one line per change, and
keeps the running objects when a file breaks."""

from __future__ import annotations

import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import SVCNET, Cluster

pytestmark = pytest.mark.slow

SERVER = """
import http.server, os
MESSAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "message.txt")
VERSION = "v1"

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(MESSAGE, "rb") as f:
            body = VERSION.encode() + b" " + f.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
"""

APP = """
apiVersion: v1
kind: ConfigMap
metadata: {{name: app-settings}}
data: {{level: "{level}"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {{app: app}}}}
    spec:
      containers:
      - name: app
        image: example/app:dev
        readinessProbe:
          httpGet: {{path: /, port: 8080}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: app}}
spec:
  selector: {{app: app}}
  ports: [{{port: 80, targetPort: 8080}}]
"""

CONFIG = """
apiVersion: svcnet.dev/v1alpha1
kind: SvcnetConfiguration
agent:
  images:
    example/app: [python3, server.py]
"""


class Watcher:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    def line(self, stream: str = "stdout", timeout: float = 10) -> str:
        """The next line the watcher prints there, within `timeout` seconds."""
        pipe = getattr(self.proc, stream)
        ready, _, _ = select.select([pipe], [], [], timeout)
        assert ready, f"no line on {stream} within {timeout}s"
        return str(pipe.readline()).rstrip("\n")


@pytest.fixture
def app(tmp_path: Path) -> Path:
    d = tmp_path / "app"
    d.mkdir()
    (d / "server.py").write_text(SERVER)
    (d / "message.txt").write_text("hello")
    (d / "svcnet.yaml").write_text(CONFIG)
    (d / "app.yaml").write_text(APP.format(level="info"))
    return d


@pytest.fixture
def watcher(cluster: Cluster, app: Path) -> Iterator[Watcher]:
    proc = subprocess.Popen(
        [*SVCNET, "apply", "-f", str(app), "--watch"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster.env,
    )  # fmt: skip
    w = Watcher(proc)
    try:
        yield w
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


def served(cluster: Cluster, ip: str, want: str, within: float = 10) -> str:
    """What the Service answers, once it is `want` (or the last answer after `within`)."""
    deadline = time.monotonic() + within
    got = ""
    while time.monotonic() < deadline:
        got = cluster.curl(f"http://{ip}/")
        if got == want:
            break
    return got


def test_the_dev_loop(cluster: Cluster, app: Path, watcher: Watcher) -> None:
    assert watcher.line() == "configmap/svcnet-images created"
    assert [watcher.line() for _ in range(3)] == [
        "configmap/app-settings created",
        "deployment.apps/app created",
        "service/app created",
    ]
    assert watcher.line("stderr").startswith("svcnet: watching 2 manifest file(s) and 1 program")
    status = cluster.cli("rollout", "status", "deploy/app", "--timeout=60s")
    assert status.returncode == 0, status.stderr
    ip = cluster.cli("get", "svc", "app", "-o", "jsonpath={.spec.clusterIP}").stdout
    assert served(cluster, ip, "v1 hello") == "v1 hello"

    # A served file: the program reads it at each request, nothing restarts.
    t0 = time.monotonic()
    (app / "message.txt").write_text("world")
    assert served(cluster, ip, "v1 world") == "v1 world"
    assert time.monotonic() - t0 < 2

    # A manifest and the mapped program, saved together: the manifest is
    # applied again (one line for what changed), and the program's Deployment
    # rolls; an edit made while the other is handled is not lost.
    t0 = time.monotonic()
    (app / "app.yaml").write_text(APP.format(level="debug"))
    (app / "server.py").write_text(SERVER.replace('VERSION = "v1"', 'VERSION = "v2"'))
    assert watcher.line(timeout=2) == "configmap/app-settings configured"
    assert watcher.line(timeout=2) == "deployment.apps/app restarted (server.py changed)"
    assert time.monotonic() - t0 < 2
    assert served(cluster, ip, "v2 world", within=30) == "v2 world"

    # A broken file: apply's error, and the objects keep serving.
    (app / "app.yaml").write_text(APP.format(level="x") + "  bad: [\n")
    error = watcher.line("stderr", timeout=2)
    assert error.startswith("error: error parsing ") and "app.yaml" in error, error
    assert cluster.curl(f"http://{ip}/") == "v2 world"
    level = cluster.cli("get", "cm", "app-settings", "-o", "jsonpath={.data.level}").stdout
    assert level == "debug"
