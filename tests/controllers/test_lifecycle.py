"""Deletion as the API server and the garbage collector do it: finalizers,
deletion timestamps, the three propagation policies, blockOwnerDeletion and
pod grace periods (registry/lifecycle.py, controllers/gc.py)."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from svcnet.k8s.kinds import BY_KIND
from svcnet.k8s.objects import Obj
from svcnet.registry import ApiError
from svcnet.store import Store
from tests.controllers.test_controllers import RS, env, settle

__all__ = ["env"]  # the fixture, shared with test_controllers


def configmap(name: str, **md: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **md}}


def pods(store: Store) -> list[Obj]:
    return store.list("Pod", "default")


def schedule_all(store: Store) -> None:
    """What the kubelet does first: bind the pods (so their deletion is graceful)."""
    for p in pods(store):
        store.mutate(
            "Pod", "default", p["metadata"]["name"], lambda o: o["spec"].update(nodeName="svcnet")
        )


def kubelet_finishes(store: Store, reg: Any) -> None:
    """The kubelet's last word on each terminating pod: delete with grace 0."""
    for p in pods(store):
        if p["metadata"].get("deletionTimestamp"):
            reg.delete(BY_KIND["Pod"], "default", p["metadata"]["name"], grace_period_seconds=0)


async def test_a_finalizer_holds_an_object_until_it_is_removed(env: Any) -> None:
    store, reg = env
    reg.create(configmap("held", finalizers=["example.com/hold"]))
    out = reg.delete(BY_KIND["ConfigMap"], "default", "held")
    md = out["metadata"]
    assert md["deletionTimestamp"] and md["deletionGracePeriodSeconds"] == 0
    assert store.get("ConfigMap", "default", "held") is not None
    # Deleting again changes nothing; adding a finalizer now is refused.
    assert reg.delete(BY_KIND["ConfigMap"], "default", "held")["metadata"] == md
    live = copy.deepcopy(store.get("ConfigMap", "default", "held"))
    live["metadata"]["finalizers"] = ["example.com/hold", "example.com/more"]
    with pytest.raises(ApiError) as e:
        reg.update(live)
    assert e.value.code == 422
    assert e.value.message == (
        'ConfigMap "held" is invalid: metadata.finalizers: Forbidden: no new finalizers can '
        'be added if the object is being deleted, found new finalizers []string{"example.com/more"}'
    )
    # The last finalizer going completes the deletion.
    reg.modify("ConfigMap", "default", "held", lambda o: o["metadata"].pop("finalizers"))
    assert store.get("ConfigMap", "default", "held") is None


async def test_orphan_leaves_the_dependents_without_their_owner(env: Any) -> None:
    store, reg = env
    reg.create(RS)
    await settle()
    assert len(pods(store)) == 2
    reg.delete(BY_KIND["ReplicaSet"], "default", "echo-summer", propagation_policy="Orphan")
    await settle()
    assert store.get("ReplicaSet", "default", "echo-summer") is None
    left = pods(store)
    assert len(left) == 2
    assert all(not p["metadata"].get("ownerReferences") for p in left)
    assert all(not p["metadata"].get("deletionTimestamp") for p in left)
    # The ReplicaSet applied again adopts its orphans instead of starting new pods.
    rs = reg.create(RS)
    await settle()
    adopted = pods(store)
    assert sorted(p["metadata"]["name"] for p in adopted) == sorted(
        p["metadata"]["name"] for p in left
    )
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"] for p in adopted)


async def test_foreground_deletes_dependents_first(env: Any) -> None:
    store, reg = env
    reg.create(RS)
    await settle()
    schedule_all(store)
    reg.delete(BY_KIND["ReplicaSet"], "default", "echo-summer", propagation_policy="Foreground")
    await settle()
    rs = store.get("ReplicaSet", "default", "echo-summer")
    assert rs is not None and rs["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert rs["metadata"]["deletionTimestamp"]
    # The pods terminate with their grace period; nothing replaces them.
    assert len(pods(store)) == 2
    assert all(p["metadata"].get("deletionTimestamp") for p in pods(store))
    kubelet_finishes(store, reg)
    await settle()
    assert pods(store) == []
    assert store.get("ReplicaSet", "default", "echo-summer") is None


async def test_only_block_owner_deletion_holds_a_foreground_owner(env: Any) -> None:
    store, reg = env
    owner = reg.create(configmap("owner"))
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    reg.create(configmap("loose", ownerReferences=[ref], finalizers=["example.com/slow"]))
    reg.delete(BY_KIND["ConfigMap"], "default", "owner", propagation_policy="Foreground")
    await settle()
    # The dependent is being deleted (held by its own finalizer) but does not block.
    assert store.get("ConfigMap", "default", "loose")["metadata"]["deletionTimestamp"]
    assert store.get("ConfigMap", "default", "owner") is None

    owner = reg.create(configmap("owner2"))
    ref = {**ref, "name": "owner2", "uid": owner["metadata"]["uid"], "blockOwnerDeletion": True}
    reg.create(configmap("tight", ownerReferences=[ref], finalizers=["example.com/slow"]))
    reg.delete(BY_KIND["ConfigMap"], "default", "owner2", propagation_policy="Foreground")
    await settle()
    assert store.get("ConfigMap", "default", "owner2") is not None  # waits for "tight"
    reg.modify("ConfigMap", "default", "tight", lambda o: o["metadata"].pop("finalizers"))
    await settle()
    assert store.get("ConfigMap", "default", "tight") is None
    assert store.get("ConfigMap", "default", "owner2") is None


async def test_background_removes_the_owner_at_once_and_a_live_owner_keeps_a_dependent(
    env: Any,
) -> None:
    store, reg = env
    a = reg.create(configmap("a"))
    b = reg.create(configmap("b"))
    refs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": n, "uid": o["metadata"]["uid"]}
        for n, o in (("a", a), ("b", b))
    ]
    reg.create(configmap("shared", ownerReferences=refs))
    reg.delete(BY_KIND["ConfigMap"], "default", "a", propagation_policy="Background")
    assert store.get("ConfigMap", "default", "a") is None
    await settle()
    shared = store.get("ConfigMap", "default", "shared")
    assert [r["name"] for r in shared["metadata"]["ownerReferences"]] == ["b"]
    reg.delete(BY_KIND["ConfigMap"], "default", "b")
    await settle()
    assert store.get("ConfigMap", "default", "shared") is None


async def test_a_pods_grace_period_only_gets_shorter(env: Any) -> None:
    store, reg = env
    reg.create(RS)
    await settle()
    schedule_all(store)
    name = pods(store)[0]["metadata"]["name"]
    pod_kind = BY_KIND["Pod"]

    def stamp() -> tuple[dt.datetime, int]:
        md = store.get("Pod", "default", name)["metadata"]
        when = dt.datetime.strptime(md["deletionTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
        return when, md["deletionGracePeriodSeconds"]

    reg.delete(pod_kind, "default", name)
    first, grace = stamp()
    assert grace == 30
    reg.delete(pod_kind, "default", name, grace_period_seconds=60)
    assert stamp() == (first, 30)
    reg.delete(pod_kind, "default", name, grace_period_seconds=5)
    assert stamp() == (first - dt.timedelta(seconds=25), 5)
    # grace 0 (kubectl delete --force --grace-period=0) removes it at once.
    reg.delete(pod_kind, "default", name, grace_period_seconds=0)
    assert store.get("Pod", "default", name) is None
