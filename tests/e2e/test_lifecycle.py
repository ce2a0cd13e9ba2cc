# The kubernetes package is only partly typed (untyped helpers, Optional model fields).
# mypy: disable-error-code="no-untyped-call,arg-type,union-attr,attr-defined"
"""Deleting as in a cluster, with kubectl and the Python client against a whole
svcnet: --cascade and propagationPolicy, finalizers, pods Terminating for their
grace period with their preStop hooks run first, --grace-period and --force."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from kubernetes import client, config

from svcnet.testing import Namespace

pytestmark = pytest.mark.slow


def deployment(name: str, replicas: int = 2) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: main
        image: gihyodocker/fundamental:0.1.0
        command: ["sleep", "300"]
"""


def test_cascade_orphan_keeps_the_replicaset_and_pods(svcnet_namespace: Namespace) -> None:
    ns = svcnet_namespace
    ns.apply(deployment("keep"))
    ns.wait_ready("deploy/keep")
    out = ns.kubectl("delete", "deployment", "keep", "--cascade=orphan").stdout
    assert out == f'deployment.apps "keep" deleted from {ns.name} namespace\n'
    [rs] = ns.client.get(f"/apis/apps/v1/namespaces/{ns.name}/replicasets")["items"]
    assert not rs["metadata"].get("ownerReferences")
    pods = ns.pods("app=keep")
    assert len(pods) == 2 and not any(p["metadata"].get("deletionTimestamp") for p in pods)
    assert all(p["metadata"]["ownerReferences"][0]["name"] == rs["metadata"]["name"] for p in pods)


def test_foreground_with_the_python_client(svcnet_namespace: Namespace) -> None:
    ns = svcnet_namespace
    # The pods carry the template's finalizer (as the ReplicaSet controller copies
    # it), so the Deployment is held for as long as the test wants to look.
    ns.apply(
        deployment("front").replace(
            "      labels: {app: front}",
            "      labels: {app: front}\n      finalizers: [example.com/hold]",
        )
    )
    ns.wait_ready("deploy/front")
    apps = client.AppsV1Api(config.new_client_from_config(config_file=str(ns.kubeconfig)))
    apps.delete_namespaced_deployment(
        "front", ns.name, body=client.V1DeleteOptions(propagation_policy="Foreground")
    )
    # Still there, waiting for its dependents, as `kubectl get` shows it.
    held = apps.read_namespaced_deployment("front", ns.name)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.finalizers == ["foregroundDeletion"]
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(ns.kubeconfig)))
    for pod in core.list_namespaced_pod(ns.name, label_selector="app=front").items:
        assert pod.metadata.finalizers == ["example.com/hold"]
        core.patch_namespaced_pod(pod.metadata.name, ns.name, {"metadata": {"finalizers": None}})
    ns.kubectl("wait", "--for=delete", "deployment/front", "--timeout=30s")
    assert ns.pods("app=front") == []
    assert ns.client.get(f"/apis/apps/v1/namespaces/{ns.name}/replicasets")["items"] == []


def test_a_finalizer_holds_until_patched_away(svcnet_namespace: Namespace) -> None:
    ns = svcnet_namespace
    ns.apply(
        """
apiVersion: v1
kind: ConfigMap
metadata:
  name: held
  finalizers: ["example.com/hold"]
"""
    )
    ns.kubectl("delete", "configmap", "held", "--wait=false")
    live = ns.get("configmap/held")
    assert live["metadata"]["deletionTimestamp"]
    added = ns.kubectl(
        "patch",
        "configmap",
        "held",
        "--type=json",
        '-p=[{"op":"add","path":"/metadata/finalizers/-","value":"example.com/more"}]',
        check=False,
    )
    assert "no new finalizers can be added if the object is being deleted" in added.stderr
    ns.kubectl("patch", "configmap", "held", "--type=merge", '-p={"metadata":{"finalizers":null}}')
    gone = ns.kubectl("get", "configmap", "held", check=False)
    assert 'configmaps "held" not found' in gone.stderr


TERM_RECORDER = r"""
import http.server, os, signal, sys, time
out = os.environ["OUT"]
def note(what):
    with open(out, "a") as f:
        f.write(what + "\n")
def term(*_):
    note("sigterm")
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/prestop":
            note("prestop-http")
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer((os.environ["POD_IP"], 8080), H).serve_forever()
"""


def test_prestop_hooks_run_before_sigterm_while_the_pod_is_terminating(
    svcnet_namespace: Namespace, tmp_path: Path
) -> None:
    ns = svcnet_namespace
    out = tmp_path / "order"
    out.touch(mode=0o666)
    ns.apply(
        f"""
apiVersion: v1
kind: Pod
metadata:
  name: hooked
spec:
  terminationGracePeriodSeconds: 20
  containers:
  - name: web
    image: term-recorder
    command: [{json.dumps(sys.executable)}, "-c", {json.dumps(TERM_RECORDER)}]
    env:
    - {{name: OUT, value: {json.dumps(str(out))}}}
    - name: POD_IP
      valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}
    ports: [{{containerPort: 8080}}]
    readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
    lifecycle:
      preStop:
        httpGet: {{path: /prestop, port: 8080}}
  - name: side
    image: busybox
    command: ["/bin/busybox", "sleep", "300"]
    lifecycle:
      preStop:
        exec:
          command: ["/bin/busybox", "sh", "-c", "echo prestop-exec >> {out}; sleep 2"]
"""
    )
    ns.wait_ready("pod/hooked")
    ns.kubectl("delete", "pod", "hooked", "--wait=false")
    # The exec hook sleeps: meanwhile the pod is listed as Terminating.
    table = ns.kubectl("get", "pod", "hooked").stdout.split("\n")
    assert table[1].split()[2] == "Terminating", table
    ns.kubectl("wait", "--for=delete", "pod/hooked", "--timeout=30s")
    lines = out.read_text().split()
    assert sorted(lines[:2]) == ["prestop-exec", "prestop-http"], lines
    assert lines[2:] == ["sigterm"], lines


STUBBORN = r"""
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(os.path.join(os.environ["TMPDIR"], "armed"), "w").close()
while True:
    time.sleep(60)
"""
ARMED = ["sh", "-c", 'test -f "$TMPDIR/armed"']
"""The readiness probe: Ready once SIGTERM is ignored (a SIGTERM before that,
while the interpreter starts, would end the container at once)."""


def test_grace_period_shortens_and_force_deletes_at_once(svcnet_namespace: Namespace) -> None:
    ns = svcnet_namespace
    for name in ("slow", "forced"):
        ns.apply(
            f"""
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 120
  containers:
  - name: main
    image: stubborn
    command: [{json.dumps(sys.executable)}, "-c", {json.dumps(STUBBORN)}]
    readinessProbe:
      exec:
        command: {json.dumps(ARMED)}
      periodSeconds: 1
"""
        )
        ns.wait_ready(f"pod/{name}")
    ns.kubectl("delete", "pod", "slow", "--wait=false")
    pod = ns.get("pod/slow")
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 120
    t0 = time.monotonic()
    ns.kubectl("delete", "pod", "slow", "--grace-period=1")  # waits until it is gone
    assert time.monotonic() - t0 < 15
    t0 = time.monotonic()
    forced = ns.kubectl("delete", "pod", "forced", "--force", "--grace-period=0")
    assert "Immediate deletion does not wait for confirmation" in forced.stderr
    assert forced.stdout == f'pod "forced" force deleted from {ns.name} namespace\n'
    assert time.monotonic() - t0 < 10
