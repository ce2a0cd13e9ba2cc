"""`svcnet describe` of StatefulSets, DaemonSets, Jobs, CronJobs, claims, volumes
and StorageClasses prints what kubectl 1.32's describe prints (up to the
events' ages)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.kubectl.binaries import all_kubectls
from tests.kubectl.conftest import Daemon, make_kubectl

pytestmark = pytest.mark.slow

OBJECTS = """apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  annotations: {team: data}
spec:
  serviceName: db
  replicas: 1
  selector:
    matchLabels: {app: db}
  updateStrategy:
    rollingUpdate: {partition: 0}
  template:
    metadata:
      labels: {app: db}
      annotations: {v: "1"}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox
        command: ["/bin/busybox", "sleep", "3600"]
        volumeMounts: [{name: www, mountPath: /www}]
  volumeClaimTemplates:
  - metadata:
      name: www
      labels: {tier: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  labels: {role: agent}
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
kind: Job
metadata:
  name: twice
spec:
  completions: 2
  ttlSecondsAfterFinished: 600
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox
        command: ["/bin/busybox", "sh", "-c", "echo done"]
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: "@daily"
  startingDeadlineSeconds: 30
  jobTemplate:
    spec:
      parallelism: 1
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: c
            image: busybox
            command: ["/bin/busybox", "true"]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: spare
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 2Gi}}
"""


def before_ages(described: str) -> str:
    """A describe output up to its Events' rows, whose ages move between two runs."""
    return described.split("  ----    ------")[0]


def test_describe_matches_kubectl(daemon: Daemon, tmp_path: Path) -> None:
    exe = all_kubectls()[0][1]
    ns = "described"
    k = make_kubectl(daemon, exe, ns, tmp_path)
    r = k("apply", "-f", "-", input=OBJECTS)
    assert r.returncode == 0, r.stderr
    k.ok("rollout", "status", "sts/db", "--timeout=60s", timeout=90)
    k.ok("rollout", "status", "ds/agent", "--timeout=60s", timeout=90)
    k.ok("wait", "--for=condition=complete", "job/twice", "--timeout=60s", timeout=90)
    claim = json.loads(k.ok("get", "pvc", "www-db-0", "-o", "json"))
    volume = claim["spec"]["volumeName"]
    for what in (
        ("statefulset", "db"),
        ("daemonset", "agent"),
        ("job", "twice"),
        ("cronjob", "nightly"),
        ("pvc", "www-db-0"),
        ("pvc", "spare"),
        ("pv", volume),
        ("storageclass", "standard"),
    ):
        theirs = k.ok("describe", *what)
        ours = daemon.svcnet("describe", *what, "-n", ns)
        assert before_ages(ours) == before_ages(theirs), (what, ours, theirs)
    described = k.ok("describe", "pvc", "www-db-0")
    assert "\nUsed By:       db-0\n" in described, described
    assert "\nVolume Claims:\n  Name:          www\n" in k.ok("describe", "sts", "db")
