"""The Deployment controller against a real store, registry and ReplicaSet
controller; a fake kubelet in the test decides when pods become ready and
finishes graceful deletions, so every step of a rollout can be inspected."""

from __future__ import annotations

import asyncio
import copy
import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from svcnet.config import Settings
from svcnet.controllers import DeploymentController, GarbageCollector, ReplicaSetController
from svcnet.controllers.rollout import compute_hash
from svcnet.k8s.kinds import BY_KIND
from svcnet.k8s.objects import Obj, pod_ready
from svcnet.k8s.owners import controller_uid
from svcnet.k8s.wellknown import POD_TEMPLATE_HASH as HASH_LABEL
from svcnet.k8s.wellknown import REVISION, REVISION_HISTORY
from svcnet.registry import ApiError, Registry
from svcnet.store import Event, Store


@dataclass
class Kubelet:
    """Runs nothing: pods become Running (not Ready) at once, Ready when told."""

    store: Store
    ip: int = 2
    pending: list[str] = field(default_factory=list)

    def on_event(self, ev: Event) -> None:
        if ev.kind != "Pod" or ev.type == "DELETED":
            return
        md = ev.obj["metadata"]
        if md.get("deletionTimestamp"):
            asyncio.get_running_loop().call_soon(self._finish, md["name"])
        elif not (ev.obj.get("status") or {}).get("podIP"):
            asyncio.get_running_loop().call_soon(self._schedule, md["name"])

    def _schedule(self, name: str) -> None:
        self.ip += 1
        ip = f"127.140.0.{self.ip}"

        def put(o: Obj) -> None:
            o["spec"]["nodeName"] = "svcnet"
            o["status"] = {
                "phase": "Running",
                "podIP": ip,
                "conditions": [{"type": "Ready", "status": "False"}],
            }

        if self.store.get("Pod", "default", name) is not None:
            self.store.mutate("Pod", "default", name, put)
            self.pending.append(name)

    def _finish(self, name: str) -> None:
        if self.store.get("Pod", "default", name) is not None:
            self.store.delete("Pod", "default", name)

    def ready_one(self) -> bool:
        while self.pending:
            name = self.pending.pop(0)
            if self.store.get("Pod", "default", name) is None:
                continue

            def put(o: Obj) -> None:
                o["status"]["conditions"] = [{"type": "Ready", "status": "True"}]

            self.store.mutate("Pod", "default", name, put)
            return True
        return False


@dataclass
class Env:
    store: Store
    reg: Registry
    kubelet: Kubelet


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    store = Store()
    reg = Registry(Settings(), store)
    reg.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    kubelet = Kubelet(store)
    unsubscribe = store.subscribe(kubelet.on_event)
    ctrls = [
        DeploymentController(reg),
        ReplicaSetController(reg),
        GarbageCollector(reg),
    ]
    for c in ctrls:
        c.start()
    yield Env(store, reg, kubelet)
    for c in ctrls:
        c.stop()
    unsubscribe()


async def settle() -> None:
    # Controllers and the fake kubelet react in loop callbacks; loop turns, no clock.
    for _ in range(30):
        await asyncio.sleep(0)


def deployment(replicas: int = 3, image: str = "gihyodocker/echo:v1", **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "echo", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "echo"}},
            "template": {
                "metadata": {"labels": {"app": "echo"}},
                "spec": {"containers": [{"name": "echo", "image": image}]},
            },
            **spec,
        },
    }


def live_pods(store: Store) -> list[Obj]:
    return [p for p in store.list("Pod", "default") if not p["metadata"].get("deletionTimestamp")]


def rs_of(store: Store, pod: Obj) -> Obj:
    uid = controller_uid(pod)
    return next(rs for rs in store.list("ReplicaSet", "default") if rs["metadata"]["uid"] == uid)


async def roll_out(env: Env, check: Any = None, limit: int = 60) -> None:
    """Make pods ready one at a time until nothing is pending, checking after each step."""
    await settle()
    for _ in range(limit):
        if check is not None:
            check()
        if not env.kubelet.ready_one():
            return
        await settle()
    raise AssertionError("rollout did not finish")


async def test_deployment_creates_hashed_replicaset_and_completes(env: Env) -> None:
    env.reg.create(deployment())
    await roll_out(env)
    d = env.store.get("Deployment", "default", "echo")
    assert d is not None
    [rs] = env.store.list("ReplicaSet", "default")
    h = compute_hash(d["spec"]["template"])
    assert re.fullmatch(r"[4-9bcdf]+", h)
    assert rs["metadata"]["name"] == f"echo-{h}"
    assert rs["metadata"]["labels"][HASH_LABEL] == h
    assert rs["spec"]["selector"]["matchLabels"][HASH_LABEL] == h
    assert rs["spec"]["template"]["metadata"]["labels"][HASH_LABEL] == h
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert rs["metadata"]["annotations"][REVISION] == "1"
    assert d["metadata"]["annotations"][REVISION] == "1"
    pods = live_pods(env.store)
    assert len(pods) == 3 and all(p["metadata"]["name"].startswith(f"echo-{h}-") for p in pods)
    st = d["status"]
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"]) == (3, 3, 3)
    assert st["availableReplicas"] == 3 and "unavailableReplicas" not in st
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Available"]["status"] == "True"
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    # The events `describe` lists, in kubectl's words.
    said = [(e["reason"], e["message"]) for e in env.store.list("Event", "default")]
    assert ("ScalingReplicaSet", f"Scaled up replica set echo-{h} from 0 to 3") in said
    created = [m for r, m in said if r == "SuccessfulCreate"]
    assert sorted(created) == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)


async def test_each_status_write_carries_its_counts_and_conditions_together(env: Env) -> None:
    """One write per sync, as calculateStatus and syncRolloutStatus make one
    UpdateStatus: no version says 3 available under a stale Available=False,
    or differs from the one before in its conditions alone (but for
    NewReplicaSetCreated, which getNewReplicaSet writes on its own)."""
    versions: list[Obj] = []

    def keep(ev: Event) -> None:
        if ev.kind == "Deployment":
            versions.append(copy.deepcopy(ev.obj))

    unsubscribe = env.store.subscribe(keep)
    env.reg.create(deployment(replicas=3))
    await roll_out(env)
    env.reg.apply(deployment(replicas=3, image="gihyodocker/echo:v2"))
    await roll_out(env)
    unsubscribe()
    statuses = [v.get("status") or {} for v in versions]
    for before, st in itertools.pairwise(statuses):
        counts = {k: v for k, v in st.items() if k != "conditions"}
        reasons = {c["reason"] for c in st.get("conditions") or ()}
        if before != st and "NewReplicaSetCreated" not in reasons:
            assert counts != {k: v for k, v in before.items() if k != "conditions"}, st
    for st in statuses:
        conds = {c["type"]: c for c in st.get("conditions") or ()}
        if "Available" in conds:
            # maxUnavailable 25% of 3 rounds down to 0: available means all 3.
            want = "True" if int(st.get("availableReplicas") or 0) >= 3 else "False"
            assert conds["Available"]["status"] == want, st
    assert statuses[-1]["availableReplicas"] == 3
    assert {c["reason"] for c in statuses[-1]["conditions"]} == {
        "MinimumReplicasAvailable",
        "NewReplicaSetAvailable",
    }


async def test_rolling_update_keeps_availability_within_surge(env: Env) -> None:
    env.reg.create(deployment(replicas=4))
    await roll_out(env)
    env.reg.apply(deployment(replicas=4, image="gihyodocker/echo:v2"))
    # 4 replicas, 25%/25%: surge 1, unavailable 1 -> at most 5 pods, at least 3 ready.
    seen_old_and_new = False

    def check() -> None:
        nonlocal seen_old_and_new
        pods = live_pods(env.store)
        assert len(pods) <= 5, len(pods)
        assert sum(1 for p in pods if pod_ready(p)) >= 3
        names = {rs_of(env.store, p)["metadata"]["name"] for p in pods}
        seen_old_and_new = seen_old_and_new or len(names) == 2

    await roll_out(env, check)
    assert seen_old_and_new
    d = env.store.get("Deployment", "default", "echo")
    assert d is not None and d["metadata"]["annotations"][REVISION] == "2"
    rss = {rs["metadata"]["annotations"][REVISION]: rs for rs in env.store.list("ReplicaSet")}
    assert rss["1"]["spec"]["replicas"] == 0 and rss["2"]["spec"]["replicas"] == 4
    assert all("echo:v2" in p["spec"]["containers"][0]["image"] for p in live_pods(env.store))
    assert d["status"]["updatedReplicas"] == 4 and d["status"]["availableReplicas"] == 4


async def test_recreate_stops_every_old_pod_before_starting_new_ones(env: Env) -> None:
    env.reg.create(deployment(strategy={"type": "Recreate"}))
    await roll_out(env)
    old_rs = env.store.list("ReplicaSet", "default")[0]["metadata"]["name"]
    env.reg.apply(deployment(image="gihyodocker/echo:v2", strategy={"type": "Recreate"}))

    def check() -> None:
        owners = {rs_of(env.store, p)["metadata"]["name"] for p in env.store.list("Pod")}
        assert len(owners) <= 1  # never old and new pods at once

    await roll_out(env, check)
    pods = live_pods(env.store)
    assert len(pods) == 3 and all(rs_of(env.store, p)["metadata"]["name"] != old_rs for p in pods)


async def test_scale_changes_only_the_replica_count(env: Env) -> None:
    env.reg.create(deployment())
    await roll_out(env)
    env.reg.apply(deployment(replicas=5))
    await roll_out(env)
    [rs] = env.store.list("ReplicaSet", "default")
    assert rs["spec"]["replicas"] == 5 and len(live_pods(env.store)) == 5
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "5"
    env.reg.apply(deployment(replicas=1))
    await roll_out(env)
    assert len(live_pods(env.store)) == 1


async def test_undo_reuses_the_old_replicaset_with_a_new_revision(env: Env) -> None:
    env.reg.create(deployment())
    await roll_out(env)
    first = env.store.list("ReplicaSet", "default")[0]["metadata"]["name"]
    env.reg.apply(deployment(image="gihyodocker/echo:v2"))
    await roll_out(env)
    env.reg.apply(deployment())  # what `rollout undo` patches in: revision 1's template
    await roll_out(env)
    rs = env.store.get("ReplicaSet", "default", first)
    assert rs is not None and rs["spec"]["replicas"] == 3
    assert rs["metadata"]["annotations"][REVISION] == "3"
    assert rs["metadata"]["annotations"][REVISION_HISTORY] == "1"
    d = env.store.get("Deployment", "default", "echo")
    assert d is not None and d["metadata"]["annotations"][REVISION] == "3"
    assert len(env.store.list("ReplicaSet", "default")) == 2


async def test_revision_history_limit_deletes_oldest_scaled_down(env: Env) -> None:
    env.reg.create(deployment(revisionHistoryLimit=1))
    await roll_out(env)
    for tag in ("v2", "v3", "v4"):
        env.reg.apply(deployment(image=f"gihyodocker/echo:{tag}", revisionHistoryLimit=1))
        await roll_out(env)
    revs = sorted(
        int(rs["metadata"]["annotations"][REVISION]) for rs in env.store.list("ReplicaSet")
    )
    assert revs == [3, 4]


@pytest.mark.parametrize(
    ("ru", "message"),
    [
        (
            {"maxSurge": 0, "maxUnavailable": 0},
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: "
            "may not be 0 when `maxSurge` is 0",
        ),
        (
            {"maxSurge": "1x"},
            'spec.strategy.rollingUpdate.maxSurge: Invalid value: "1x": a valid percent string',
        ),
        (
            {"maxUnavailable": "150%"},
            'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "150%": '
            "must not be greater than 100%",
        ),
        (
            {"maxSurge": -1},
            "spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: "
            "must be greater than or equal to 0",
        ),
    ],
)
def test_rolling_update_parameters_are_validated(ru: Obj, message: str) -> None:
    store = Store()
    reg = Registry(Settings(), store)
    reg.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    with pytest.raises(ApiError) as e:
        reg.create(deployment(strategy={"type": "RollingUpdate", "rollingUpdate": ru}))
    assert e.value.code == 422
    assert message in e.value.message


def test_recreate_with_rolling_parameters_is_forbidden() -> None:
    store = Store()
    reg = Registry(Settings(), store)
    reg.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    bad = deployment(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}})
    with pytest.raises(ApiError) as e:
        reg.create(copy.deepcopy(bad))
    assert e.value.message == (
        'Deployment "echo" is invalid: spec.strategy.rollingUpdate: Forbidden: '
        "may not be specified when strategy `type` is 'Recreate'"
    )
    assert BY_KIND["Deployment"].plural == "deployments"


def test_undo_template_with_null_creation_timestamp_matches_its_replicaset() -> None:
    # kubectl rollout undo sends the old ReplicaSet's template with
    # `metadata.creationTimestamp: null`; the Go struct cannot tell it from
    # an absent one, so the hash and the match must not either.
    from svcnet.controllers.rollout import compute_hash, equal_ignore_hash

    plain = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }
    undone = {
        "metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }
    assert compute_hash(plain) == compute_hash(undone)
    assert equal_ignore_hash(plain, undone)
    other = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "j"}]},
    }
    assert compute_hash(plain) != compute_hash(other)


async def _until(env: Env, pred: Any, within: float) -> Obj:
    """The Deployment once pred(deployment) holds, re-checked on every store change."""
    fut: asyncio.Future[Obj] = asyncio.get_running_loop().create_future()

    def check(_ev: object = None) -> None:
        d = env.store.get("Deployment", "default", "echo")
        if d is not None and not fut.done() and pred(d):
            fut.set_result(d)

    unsubscribe = env.store.subscribe(check)
    try:
        check()
        return await asyncio.wait_for(fut, within)
    finally:
        unsubscribe()


def _progressing(d: Obj) -> Obj:
    conds = (d.get("status") or {}).get("conditions") or ()
    return next((c for c in conds if c["type"] == "Progressing"), {})


async def test_stuck_rollout_exceeds_its_progress_deadline_then_recovers(env: Env) -> None:
    env.reg.create(deployment(replicas=2, progressDeadlineSeconds=1))
    await settle()
    d = env.store.get("Deployment", "default", "echo")
    assert d is not None
    rs = f"echo-{compute_hash(d['spec']['template'])}"
    # No pod ever turns ready and nothing else changes: only the deadline's timer
    # can bring the controller back (lastUpdateTime has whole seconds: 1-2 s).
    d = await _until(
        env, lambda d: _progressing(d).get("reason") == "ProgressDeadlineExceeded", within=5
    )
    cond = _progressing(d)
    assert cond["status"] == "False"
    assert cond["message"] == f'ReplicaSet "{rs}" has timed out progressing.'
    # Pods that turn ready late still complete the rollout, as on a cluster.
    await roll_out(env)
    d = await _until(
        env, lambda d: _progressing(d).get("reason") == "NewReplicaSetAvailable", within=5
    )
    assert _progressing(d)["status"] == "True"


async def test_progress_keeps_a_rollout_within_its_deadline(env: Env) -> None:
    env.reg.create(deployment(replicas=3, progressDeadlineSeconds=2))
    await settle()
    before = _progressing(env.store.get("Deployment", "default", "echo") or {})
    # Each pod that turns ready is progress, which moves lastUpdateTime on.
    assert env.kubelet.ready_one()
    await settle()
    d = env.store.get("Deployment", "default", "echo")
    assert d is not None
    cond = _progressing(d)
    assert (cond["reason"], cond["status"]) == ("ReplicaSetUpdated", "True")
    assert cond["lastUpdateTime"] >= before["lastUpdateTime"]


async def test_paused_deployment_is_not_timed(env: Env) -> None:
    env.reg.create(deployment(replicas=2, progressDeadlineSeconds=1, paused=True))
    d = await _until(env, lambda d: _progressing(d).get("reason") == "DeploymentPaused", within=5)
    assert (_progressing(d)["status"], _progressing(d)["message"]) == (
        "Unknown",
        "Deployment is paused",
    )
    env.reg.apply(deployment(replicas=2, progressDeadlineSeconds=1, paused=False))
    d = await _until(
        env,
        lambda d: _progressing(d).get("reason") in ("DeploymentResumed", "ReplicaSetUpdated"),
        within=5,
    )
    await roll_out(env)
    d = await _until(
        env, lambda d: _progressing(d).get("reason") == "NewReplicaSetAvailable", within=5
    )
