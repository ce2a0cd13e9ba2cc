"""Pod volumes through real kubectl: a mounted ConfigMap that follows updates (read
with `kubectl exec`, which enters the container's own mount namespace), and a pod
whose Secret is missing: ContainerCreating, FailedMount in `kubectl describe`, then
Running once the Secret is created."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.kubectl.binaries import all_kubectls
from tests.kubectl.conftest import Daemon, Kubectl, make_kubectl

pytestmark = pytest.mark.slow

APP = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: app}
data: {greeting: hello}
---
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  containers:
  - name: app
    image: busybox
    command: ["sleep", "600"]
    volumeMounts:
    - {name: cfg, mountPath: /config}
  volumes:
  - name: cfg
    configMap: {name: app}
"""

NEEDS_SECRET = """\
apiVersion: v1
kind: Pod
metadata: {name: waiter}
spec:
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "cat /run/creds/token; exec sleep 600"]
    volumeMounts:
    - {name: creds, mountPath: /run/creds, readOnly: true}
  volumes:
  - name: creds
    secret: {secretName: api}
"""


def until(k: Kubectl, args: tuple[str, ...], pattern: str, within: float = 20) -> str:
    """Run kubectl until its output matches (each run is a round trip; no sleeps)."""
    deadline = time.monotonic() + within
    out = ""
    while time.monotonic() < deadline:
        r = k(*args)
        out = r.stdout + r.stderr
        if re.search(pattern, out, re.M):
            return out
    raise AssertionError(f"kubectl {' '.join(args)} never matched {pattern!r}: {out}")


def volumes_block(described: str) -> str:
    return described[described.index("\nVolumes:") : described.index("\nQoS Class:")]


def test_configmap_volume_and_missing_secret(daemon: Daemon, tmp_path: Path) -> None:
    k = make_kubectl(daemon, dict(all_kubectls())["system"], "volumes", tmp_path)
    (tmp_path / "app.yaml").write_text(APP)
    k.ok("apply", "-f", str(tmp_path / "app.yaml"))
    k.ok("wait", "--for=condition=Ready", "pod/reader", "--timeout=30s")
    assert k.ok("exec", "reader", "--", "cat", "/config/greeting") == "hello"
    ours = daemon.svcnet("describe", "pod", "reader", "-n", "volumes")
    assert volumes_block(ours) == volumes_block(k.ok("describe", "pod", "reader")), ours
    (tmp_path / "app.yaml").write_text(APP.replace("greeting: hello", "greeting: bonjour"))
    k.ok("apply", "-f", str(tmp_path / "app.yaml"))
    until(k, ("exec", "reader", "--", "cat", "/config/greeting"), r"^bonjour$")

    (tmp_path / "waiter.yaml").write_text(NEEDS_SECRET)
    k.ok("apply", "-f", str(tmp_path / "waiter.yaml"))
    until(k, ("get", "pod", "waiter"), r"^waiter +0/1 +ContainerCreating +0 ")
    described = until(k, ("describe", "pod", "waiter"), r"FailedMount")
    assert re.search(
        r'Warning +FailedMount +\S+ +kubelet +MountVolume\.SetUp failed for volume "creds" : '
        r'secret "api" not found',
        described,
    ), described
    assert re.search(r"creds:\n +Type: +Secret", described), described
    # svcnet describe shows the volumes as kubectl does.
    ours = daemon.svcnet("describe", "pod", "waiter", "-n", "volumes")
    assert volumes_block(ours) == volumes_block(described), ours
    k.ok("create", "secret", "generic", "api", "--from-literal=token=s3cret")
    k.ok("wait", "--for=condition=Ready", "pod/waiter", "--timeout=30s")
    assert k.ok("logs", "waiter") == "s3cret"
    k.ok("delete", "pod", "reader", "waiter", "--grace-period=0", "--force")
