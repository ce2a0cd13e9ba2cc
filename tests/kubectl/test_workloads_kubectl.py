"""StatefulSets, Jobs, DaemonSets and CronJobs with real kubectl against `svcnet
up`: the Kubernetes website's StatefulSet tutorial manifests (web.yaml)
applied unmodified, its pods' DNS names answered, kubectl's tables, rollout
status and wait on Jobs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from svcnet import images
from tests.kubectl.binaries import all_kubectls
from tests.kubectl.conftest import Daemon, make_kubectl

pytestmark = pytest.mark.slow

NGINX = Path(images.__file__).resolve().parent / "nginx.py"

# What a user writes to run the tutorial's nginx-slim as svcnet's built-in nginx.
IMAGES = f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: svcnet-images
  namespace: kube-system
data:
  images.yaml: |
    registry.k8s.io/nginx-slim: {json.dumps([sys.executable, "-I", "-S", str(NGINX), "--welcome"])}
"""

JOBS = """apiVersion: batch/v1
kind: Job
metadata:
  name: three
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox
        command: ["/bin/busybox", "sh", "-c", "echo done"]
---
apiVersion: batch/v1
kind: Job
metadata:
  name: fails
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox
        command: ["/bin/busybox", "sh", "-c", "exit 3"]
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
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: c
            image: busybox
            command: ["/bin/busybox", "true"]
"""


def table(out: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in out.strip().splitlines()]


def test_statefulset_tutorial_and_batch_workloads(daemon: Daemon, tmp_path: Path) -> None:
    exe = all_kubectls()[0][1]
    ns = "workloads"
    k = make_kubectl(daemon, exe, ns, tmp_path)
    r = k("apply", "-f", "-", input=IMAGES)
    assert r.returncode == 0, r.stderr

    out = k.ok("apply", "-f", "web.yaml")
    assert out == "service/nginx created\nstatefulset.apps/web created\n"
    out = k.ok("rollout", "status", "sts/web", "--timeout=60s", timeout=90)
    assert out.splitlines()[-1] == "partitioned roll out complete: 2 new pods have been updated..."

    rows = table(k.ok("get", "sts"))
    assert rows[0] == ["NAME", "READY", "AGE"] and rows[1][:2] == ["web", "2/2"]
    rows = table(k.ok("get", "pods", "-l", "app=nginx"))
    assert [r[:3] for r in rows[1:]] == [["web-0", "1/1", "Running"], ["web-1", "1/1", "Running"]]
    rows = table(k.ok("get", "pvc"))
    assert rows[0] == [
        "NAME",
        "STATUS",
        "VOLUME",
        "CAPACITY",
        "ACCESS MODES",
        "STORAGECLASS",
        "VOLUMEATTRIBUTESCLASS",
        "AGE",
    ]
    assert [(r[0], r[1], r[3], r[4], r[5]) for r in rows[1:]] == [
        ("www-web-0", "Bound", "1Gi", "RWO", "standard"),
        ("www-web-1", "Bound", "1Gi", "RWO", "standard"),
    ]
    rows = table(k.ok("get", "sts", "-o", "wide"))
    assert rows[0] == ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]
    assert rows[1][3:] == ["nginx", "registry.k8s.io/nginx-slim:0.7"]

    # The headless Service publishes each pod under its hostname.
    web0 = json.loads(k.ok("get", "pod", "web-0", "-o", "json"))["status"]["podIP"]
    dig = subprocess.run(
        [
            "dig",
            "@127.0.0.1",
            "-p",
            str(daemon.dns_port),
            f"web-0.nginx.{ns}.svc.cluster.local",
            "+short",
            "+time=2",
            "+tries=2",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    assert dig.stdout.split() == [web0]

    r = k("apply", "-f", "-", input=JOBS)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "job.batch/three created",
        "job.batch/fails created",
        "daemonset.apps/agent created",
        "cronjob.batch/nightly created",
    ]
    k.ok("wait", "--for=condition=complete", "job/three", "--timeout=60s", timeout=90)
    k.ok("wait", "--for=condition=failed", "job/fails", "--timeout=60s", timeout=90)
    out = k.ok("rollout", "status", "ds/agent", "--timeout=60s", timeout=90)
    assert out.splitlines()[-1] == 'daemon set "agent" successfully rolled out'

    rows = table(k.ok("get", "jobs"))
    assert rows[0] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert sorted(r[:3] for r in rows[1:]) == [
        ["fails", "Failed", "0/1"],
        ["three", "Complete", "3/3"],
    ]
    rows = table(k.ok("get", "pods", "-l", "batch.kubernetes.io/job-name"))
    statuses = sorted(r[2] for r in rows[1:])
    assert statuses == ["Completed", "Completed", "Completed", "Error"]
    rows = table(k.ok("get", "ds"))
    assert rows[0] == [
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "NODE SELECTOR",
        "AGE",
    ]
    assert rows[1][:7] == ["agent", "1", "1", "1", "1", "1", "<none>"]
    rows = table(k.ok("get", "cj"))
    assert rows[0] == [
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST SCHEDULE",
        "AGE",
    ]
    assert rows[1][:6] == ["nightly", "@daily", "<none>", "False", "0", "<none>"]

    # `get all` in kubectl's order: the kinds as discovery lists them.
    kinds = [
        line.split()[0].split("/")[0]
        for line in k.ok("get", "all").splitlines()
        if line.strip() and "/" in line.split()[0]
    ]
    seen = list(dict.fromkeys(kinds))
    assert seen == [
        "pod",
        "service",
        "daemonset.apps",
        "statefulset.apps",
        "cronjob.batch",
        "job.batch",
    ]

    out = k.ok("describe", "job", "fails")
    assert re.search(
        r"Warning\s+BackoffLimitExceeded\s+\S+\s+job-controller\s+"
        r"Job has reached the specified backoff limit",
        out,
    ), out
