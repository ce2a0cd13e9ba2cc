"""ControllerRevisions with real kubectl: `get controllerrevisions`, `rollout
history|undo` of a StatefulSet and a DaemonSet, a pod recreated below the
partition getting its old revision's template, and svcnet's own `rollout`
verbs printing what kubectl prints."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.kubectl.binaries import all_kubectls
from tests.kubectl.conftest import Daemon, Kubectl, make_kubectl

pytestmark = pytest.mark.slow

SETS = """apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 2
  podManagementPolicy: Parallel
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
      annotations: {v: "1"}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox
        command: ["/bin/busybox", "sleep", "3600"]
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox
        command: ["/bin/busybox", "sleep", "3600"]
"""


def table(out: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in out.strip().splitlines()]


def until(k: Kubectl, args: tuple[str, ...], check: str, timeout: float = 60) -> str:
    """kubectl's output once `check` (a regex) matches it."""
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        r = k(*args)
        out = r.stdout
        if r.returncode == 0 and re.search(check, out):
            return out
        time.sleep(0.2)
    raise AssertionError(f"kubectl {' '.join(args)}: {check!r} never matched; last:\n{out}")


def template_patch(v: str) -> str:
    return json.dumps({"spec": {"template": {"metadata": {"annotations": {"v": v}}}}})


def test_statefulset_and_daemonset_revisions(daemon: Daemon, tmp_path: Path) -> None:
    exe = all_kubectls()[0][1]
    ns = "revisions"
    k = make_kubectl(daemon, exe, ns, tmp_path)

    def ours(*args: str) -> str:
        return daemon.svcnet(*args, "-n", ns)

    r = k("apply", "-f", "-", input=SETS)
    assert r.returncode == 0, r.stderr
    k.ok("rollout", "status", "sts/web", "--timeout=60s", timeout=90)
    rows = table(k.ok("get", "controllerrevisions", "-l", "app=web"))
    assert rows[0] == ["NAME", "CONTROLLER", "REVISION", "AGE"]
    assert len(rows) == 2 and rows[1][1:3] == ["statefulset.apps/web", "1"], rows
    first = rows[1][0]
    sts = json.loads(k.ok("get", "sts", "web", "-o", "json"))
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"] == first
    pod = json.loads(k.ok("get", "pod", "web-0", "-o", "json"))
    assert pod["metadata"]["labels"]["controller-revision-hash"] == first

    # A change-cause annotation on the set goes into the next revision.
    k.ok("annotate", "sts", "web", "kubernetes.io/change-cause=v2")
    k.ok("patch", "sts", "web", "-p", template_patch("2"))
    k.ok("rollout", "status", "sts/web", "--timeout=60s", timeout=90)
    history = k.ok("rollout", "history", "sts/web")
    assert (
        history
        == "statefulset.apps/web \nREVISION  CHANGE-CAUSE\n1         <none>\n2         v2\n\n"
    )
    assert ours("rollout", "history", "sts/web") == history

    # Below the partition a recreated pod keeps the current revision's template.
    k.ok(
        "patch", "sts", "web", "-p", '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":1}}}}'
    )
    k.ok("patch", "sts", "web", "-p", template_patch("3"))
    done = "partitioned roll out complete: 1 new pods have been updated...\n"
    assert k.ok("rollout", "status", "sts/web", "--timeout=60s", timeout=90).endswith(done)
    assert ours("rollout", "status", "sts/web").endswith(done)
    sts = json.loads(k.ok("get", "sts", "web", "-o", "json"))
    current, update = sts["status"]["currentRevision"], sts["status"]["updateRevision"]
    assert current != update
    old_uid = json.loads(k.ok("get", "pod", "web-0", "-o", "json"))["metadata"]["uid"]
    k.ok("delete", "pod", "web-0", "--wait=false")
    deadline = time.monotonic() + 60
    while True:
        r = k("get", "pod", "web-0", "-o", "json")
        pod = json.loads(r.stdout) if r.returncode == 0 else None
        if pod and pod["metadata"]["uid"] != old_uid:
            break
        assert time.monotonic() < deadline, "web-0 was not recreated"
        time.sleep(0.2)
    assert pod["metadata"]["labels"]["controller-revision-hash"] == current
    assert pod["metadata"]["annotations"]["v"] == "2"
    web1 = json.loads(k.ok("get", "pod", "web-1", "-o", "json"))
    assert web1["metadata"]["labels"]["controller-revision-hash"] == update

    # Undo goes back to revision 2's template, which becomes revision 4.
    k.ok(
        "patch", "sts", "web", "-p", '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}'
    )
    assert k.ok("rollout", "undo", "sts/web") == "statefulset.apps/web rolled back\n"
    sts = json.loads(k.ok("get", "sts", "web", "-o", "json"))
    assert sts["spec"]["template"]["metadata"]["annotations"] == {"v": "2"}
    until(k, ("rollout", "history", "sts/web"), r"\n3 +v2\n4 +v2\n")
    rows = table(k.ok("get", "controllerrevisions", "-l", "app=web"))
    assert sorted(r[2] for r in rows[1:]) == ["1", "3", "4"]
    assert ours("rollout", "undo", "sts/web", "--to-revision=4") == (
        "statefulset.apps/web skipped rollback (current template already matches revision 4)\n"
    )
    assert ours("rollout", "restart", "sts/web") == "statefulset.apps/web restarted\n"

    # DaemonSets: the pods' label is the revision's hash.
    k.ok("rollout", "status", "ds/agent", "--timeout=60s", timeout=90)
    k.ok("patch", "ds", "agent", "-p", template_patch("2"))
    k.ok("rollout", "status", "ds/agent", "--timeout=60s", timeout=90)
    rows = table(k.ok("get", "controllerrevisions", "-l", "app=agent"))
    assert sorted((r[1], r[2]) for r in rows[1:]) == [
        ("daemonset.apps/agent", "1"),
        ("daemonset.apps/agent", "2"),
    ]
    crs = json.loads(k.ok("get", "controllerrevisions", "-l", "app=agent", "-o", "json"))
    newest = max(crs["items"], key=lambda cr: cr["revision"])
    h = newest["metadata"]["labels"]["controller-revision-hash"]
    assert newest["metadata"]["name"] == f"agent-{h}"
    pods = json.loads(k.ok("get", "pods", "-l", "app=agent", "-o", "json"))["items"]
    assert {p["metadata"]["labels"]["controller-revision-hash"] for p in pods} >= {h}
    history = k.ok("rollout", "history", "ds/agent")
    assert (
        history
        == "daemonset.apps/agent \nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>\n\n"
    )
    assert ours("rollout", "history", "ds/agent") == history
    assert k.ok("rollout", "undo", "ds/agent") == "daemonset.apps/agent rolled back\n"
    assert ours("rollout", "status", "ds/agent", "--timeout=60s").endswith(
        'daemon set "agent" successfully rolled out\n'
    )
    until(k, ("rollout", "history", "ds/agent"), r"\n2 +<none>\n3 +<none>\n")
