"""Jobs, CronJobs, StatefulSets and DaemonSets with their controllers and the
real agent: busybox commands as the Jobs' programs, pods as processes."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from svcnet.controllers import (
    CronJobController,
    DaemonSetController,
    JobController,
    StatefulSetController,
    VolumeController,
)
from svcnet.controllers.volumes import STANDARD_CLASS
from svcnet.k8s.objects import Obj, pod_ready
from tests.agent.conftest import wait_until
from tests.workloads.conftest import Cluster

BUSYBOX = "/bin/busybox"


class FastClock:
    """Real time moved forward to a second before the next whole minute, so a
    `* * * * *` CronJob fires within about a second of wall time."""

    def __init__(self) -> None:
        now = time.time()
        self.offset = (int(now) // 60 + 1) * 60 - 1.0 - now

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
async def sets(cluster: Cluster, tmp_path: Path) -> AsyncIterator[tuple[Cluster, Any]]:
    clock = FastClock()
    ctrls = [
        JobController(cluster.registry, backoff=(0.2, 1.0)),
        CronJobController(cluster.registry, clock=clock),
        StatefulSetController(cluster.registry),
        DaemonSetController(cluster.registry),
        VolumeController(cluster.registry, tmp_path / "volumes"),
    ]
    cluster.registry.create(dict(STANDARD_CLASS))
    for c in ctrls:
        c.start()
    try:
        yield cluster, clock
    finally:
        for c in ctrls:
            c.stop()


def job(name: str, script: str, restart: str = "Never", **spec: Any) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            **spec,
            "template": {
                "spec": {
                    "restartPolicy": restart,
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {"name": "c", "image": "busybox", "command": [BUSYBOX, "sh", "-c", script]}
                    ],
                }
            },
        },
    }


def condition(c: Cluster, kind: str, name: str, ctype: str) -> Obj | None:
    obj = c.store.get(kind, "default", name)
    for cond in ((obj or {}).get("status") or {}).get("conditions") or ():
        if cond["type"] == ctype and cond["status"] == "True":
            return obj
    return None


def pods_of_job(c: Cluster, name: str) -> list[Obj]:
    return [
        p
        for p in c.store.list("Pod", "default")
        if (p["metadata"].get("labels") or {}).get("batch.kubernetes.io/job-name") == name
    ]


async def test_job_runs_completions_at_most_parallelism_at_a_time(sets: Any) -> None:
    c, _ = sets
    most = 0

    def track(_ev: object) -> None:
        nonlocal most
        running = [
            p
            for p in pods_of_job(c, "three")
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        most = max(most, len(running))

    unsubscribe = c.store.subscribe(track)
    try:
        c.registry.create(job("three", "sleep 0.2; echo done", completions=3, parallelism=2))
        done = await wait_until(
            c.store, lambda: condition(c, "Job", "three", "Complete"), within=30
        )
    finally:
        unsubscribe()
    st = done["status"]
    assert st["succeeded"] == 3 and "failed" not in st and st["completionTime"]
    assert [x["type"] for x in st["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    assert most == 2
    pods = pods_of_job(c, "three")
    # Finished pods are kept, as a cluster keeps them, with the Job's labels.
    assert len(pods) == 3 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    labels = pods[0]["metadata"]["labels"]
    uid = done["metadata"]["uid"]
    assert labels["job-name"] == "three" and labels["controller-uid"] == uid
    assert done["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}


async def test_failing_job_stops_at_its_backoff_limit(sets: Any) -> None:
    c, _ = sets
    c.registry.create(job("fails", "exit 3", backoffLimit=1))
    failed = await wait_until(c.store, lambda: condition(c, "Job", "fails", "Failed"), within=30)
    cond = next(x for x in failed["status"]["conditions"] if x["type"] == "Failed")
    assert (cond["reason"], cond["message"]) == (
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    )
    assert failed["status"]["failed"] == 2  # the first try and one retry
    assert len(pods_of_job(c, "fails")) == 2


async def test_indexed_job_gives_each_pod_its_index(sets: Any, tmp_path: Path) -> None:
    c, _ = sets
    out = tmp_path / "indexes"
    out.mkdir()
    script = f'echo "$JOB_COMPLETION_INDEX $(hostname)" > {out}/$JOB_COMPLETION_INDEX'
    c.registry.create(job("idx", script, completions=3, parallelism=3, completionMode="Indexed"))
    done = await wait_until(c.store, lambda: condition(c, "Job", "idx", "Complete"), within=30)
    assert done["status"]["completedIndexes"] == "0-2"
    assert {f.read_text().strip() for f in out.iterdir()} == {"0 idx-0", "1 idx-1", "2 idx-2"}


async def test_deadline_fails_a_job_that_runs_too_long(sets: Any) -> None:
    c, _ = sets
    c.registry.create(job("slow", "sleep 30", activeDeadlineSeconds=1))
    failed = await wait_until(c.store, lambda: condition(c, "Job", "slow", "Failed"), within=20)
    cond = next(x for x in failed["status"]["conditions"] if x["type"] == "Failed")
    assert cond["reason"] == "DeadlineExceeded"


async def test_every_minute_cronjob_creates_a_job_that_completes(sets: Any) -> None:
    c, clock = sets
    spec = job("x", "echo tick")["spec"]
    c.registry.create(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "tick", "namespace": "default"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": spec}},
        }
    )
    name = f"tick-{(int(clock()) // 60) + 1}"
    done = await wait_until(c.store, lambda: condition(c, "Job", name, "Complete"), within=20)
    assert done["metadata"]["ownerReferences"][0]["name"] == "tick"

    def seen() -> Obj | None:
        cj = c.store.get("CronJob", "default", "tick")
        st = (cj or {}).get("status") or {}
        return cj if st.get("lastSuccessfulTime") and not st.get("active") else None

    cj = await wait_until(c.store, seen, within=10)
    assert cj["status"]["lastScheduleTime"]


async def test_statefulset_starts_pods_in_order_with_claims(sets: Any) -> None:
    c, _ = sets
    order: list[str] = []

    def track(ev: Any) -> None:
        if ev.kind == "Pod" and ev.type == "ADDED":
            order.append(ev.name)
            # OrderedReady: every lower ordinal is Running and Ready by now.
            for p in c.store.list("Pod", "default"):
                if p["metadata"]["name"] < ev.name and p["metadata"]["name"].startswith("db-"):
                    assert pod_ready(p), p["metadata"]["name"]

    unsubscribe = c.store.subscribe(track)
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {
            "serviceName": "db",
            "replicas": 3,
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {"name": "c", "image": "busybox", "command": [BUSYBOX, "sleep", "300"]}
                    ],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            ],
        },
    }
    try:
        c.registry.create(sts)

        def all_ready() -> Obj | None:
            s = c.store.get("StatefulSet", "default", "db")
            return s if (s or {}).get("status", {}).get("readyReplicas") == 3 else None

        ready = await wait_until(c.store, all_ready, within=30)
    finally:
        unsubscribe()
    assert order == ["db-0", "db-1", "db-2"]
    st = ready["status"]
    assert st["currentRevision"] == st["updateRevision"] and st["updatedReplicas"] == 3
    pod = c.store.get("Pod", "default", "db-1")
    assert pod["spec"]["hostname"] == "db-1" and pod["spec"]["subdomain"] == "db"
    labels = pod["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "db-1"
    assert labels["apps.kubernetes.io/pod-index"] == "1"
    assert labels["controller-revision-hash"] == st["updateRevision"]
    assert pod["spec"]["volumes"][0] == {
        "name": "data",
        "persistentVolumeClaim": {"claimName": "data-db-1"},
    }
    pvc = c.store.get("PersistentVolumeClaim", "default", "data-db-1")
    assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["storageClassName"] == "standard"
    pv = c.store.get("PersistentVolume", "", pvc["spec"]["volumeName"])
    assert await asyncio.to_thread(os.path.isdir, pv["spec"]["hostPath"]["path"])
    assert pv["spec"]["capacity"] == {"storage": "1Gi"}

    # Scale down: the highest ordinal goes first; claims are retained by default.
    def scale(o: Obj) -> None:
        o["spec"]["replicas"] = 1

    c.registry.modify("StatefulSet", "default", "db", scale)
    await wait_until(
        c.store,
        lambda: True if c.store.get("Pod", "default", "db-1") is None else None,
        within=30,
    )
    assert c.store.get("Pod", "default", "db-0") is not None
    assert c.store.get("PersistentVolumeClaim", "default", "data-db-2") is not None


async def test_daemonset_runs_one_pod_on_the_node_it_fits(sets: Any) -> None:
    c, _ = sets
    ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {"name": "c", "image": "busybox", "command": [BUSYBOX, "sleep", "300"]}
                    ],
                },
            },
        },
    }
    c.registry.create(ds)

    def available() -> Obj | None:
        d = c.store.get("DaemonSet", "default", "agent")
        return d if (d or {}).get("status", {}).get("numberAvailable") == 1 else None

    d = await wait_until(c.store, available, within=30)
    assert d["status"]["desiredNumberScheduled"] == 1
    pods = [p for p in c.store.list("Pod", "default") if p["metadata"]["name"].startswith("agent-")]
    assert len(pods) == 1

    # A nodeSelector the node does not match: no daemon pod, nothing desired.
    def elsewhere(o: Obj) -> None:
        o["spec"]["template"]["spec"]["nodeSelector"] = {"disktype": "ssd"}

    c.registry.modify("DaemonSet", "default", "agent", elsewhere)

    def gone() -> Obj | None:
        d = c.store.get("DaemonSet", "default", "agent")
        st = (d or {}).get("status") or {}
        live = [
            p for p in c.store.list("Pod", "default") if p["metadata"]["name"].startswith("agent-")
        ]
        return d if st.get("desiredNumberScheduled") == 0 and not live else None

    await wait_until(c.store, gone, within=30)
