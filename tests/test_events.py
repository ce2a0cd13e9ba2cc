"""svcnet.events: names that sort by time, repeats counted, old events aged out."""

from __future__ import annotations

from svcnet.events import record
from svcnet.k8s.objects import Obj
from svcnet.registry import Registry


def obj(name: str, uid: str) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "uid": uid},
    }


def test_names_sort_by_time_and_repeats_count_up(reg: Registry) -> None:
    store = reg.store
    d = obj("web", "u1")
    first = record(reg, d, "Normal", "ScalingReplicaSet", "a", "deployment-controller")
    second = record(reg, d, "Normal", "ScalingReplicaSet", "b", "deployment-controller")
    again = record(reg, d, "Normal", "ScalingReplicaSet", "a", "deployment-controller")
    assert again == first
    names = [e["metadata"]["name"] for e in store.list("Event", "default")]
    assert names == [first, second]  # the API's order (by name) is the order of events
    ev = store.get("Event", "default", first)
    assert ev is not None and ev["count"] == 2
    assert ev["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "namespace": "default",
        "name": "web",
        "uid": "u1",
        "resourceVersion": None,
    }


def test_events_older_than_the_ttl_go_when_the_namespace_records_another(reg: Registry) -> None:
    store = reg.store
    old = record(reg, obj("web", "u1"), "Normal", "X", "old", "c")

    def age(e: Obj) -> None:
        e["lastTimestamp"] = "2000-01-01T00:00:00Z"

    reg.modify("Event", "default", old, age)
    new = record(reg, obj("db", "u2"), "Normal", "X", "new", "c")
    assert [e["metadata"]["name"] for e in store.list("Event", "default")] == [new]
