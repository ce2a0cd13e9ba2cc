"""The store: resourceVersion, change events, history, generateName."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from svcnet.k8s.objects import Obj
from svcnet.store import Event, Store, StoreError
from svcnet.store.store import _VOLATILE, _same


def _svc(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": []},
    }


def test_generation_is_kept_for_kinds_whose_strategy_keeps_one() -> None:
    s = Store()
    svc = s.create(_svc("a"))
    assert "generation" not in svc["metadata"]  # as the API server stores a Service
    d = s.create(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {}}
    )
    assert d["metadata"]["generation"] == 1
    d = s.mutate("Deployment", "", "d", lambda o: o["spec"].update(replicas=2))
    assert d["metadata"]["generation"] == 2
    d = s.mutate("Deployment", "", "d", lambda o: o["metadata"].update(labels={"a": "b"}))
    assert d["metadata"]["generation"] == 2


def test_an_endpointslice_generation_counts_changes_to_its_body_and_labels() -> None:
    # As the API server's EndpointSlice strategy keeps it, though a slice has no spec.
    s = Store()
    es = s.create(
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": "e", "namespace": "default", "labels": {"a": "1"}},
            "addressType": "IPv4",
            "endpoints": [],
            "ports": [],
        }
    )
    assert es["metadata"]["generation"] == 1

    def gen_after(fn: Any) -> int:
        return int(s.mutate("EndpointSlice", "default", "e", fn)["metadata"]["generation"])

    assert gen_after(lambda o: o["endpoints"].append({"addresses": ["127.0.0.5"]})) == 2
    assert gen_after(lambda o: o["metadata"]["labels"].update(a="2")) == 3
    assert gen_after(lambda o: o["metadata"].update(annotations={"x": "y"})) == 3
    assert gen_after(lambda o: o["ports"].append({"port": 80})) == 4
    assert gen_after(lambda o: o.update(addressType="IPv6")) == 5


def test_store_rv_events_and_history() -> None:
    s = Store()
    seen: list[Event] = []
    s.subscribe(seen.append)
    a = s.create(_svc("a"))
    assert a["metadata"]["resourceVersion"] == "1"
    same = s.update(dict(a))
    assert same is a and len(seen) == 1  # an unchanged update is not an event
    b = s.mutate("Service", "default", "a", lambda o: o["spec"].update(type="NodePort"))
    assert b["metadata"]["resourceVersion"] == "2"
    assert b["metadata"]["uid"] == a["metadata"]["uid"]
    s.delete("Service", "default", "a")
    assert [e.type for e in seen] == ["ADDED", "MODIFIED", "DELETED"]
    assert [e.rv for e in s.events_since(1) or []] == [2, 3]
    assert s.events_since(3) == []
    with pytest.raises(StoreError):
        s.delete("Service", "default", "a")


def test_store_generate_name_and_conflict() -> None:
    s = Store()
    o = s.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"generateName": "p-", "namespace": "default"},
            "spec": {},
        }
    )
    assert o["metadata"]["name"].startswith("p-")
    with pytest.raises(StoreError):
        s.create(o)


def test_history_expiry() -> None:
    s = Store(history=2)
    for n in "abcd":
        s.create(_svc(n))
    assert s.events_since(0) is None
    assert [e.rv for e in s.events_since(2) or []] == [3, 4]


@pytest.mark.parametrize("seed", range(5))
def test_lists_and_indexes_match_a_brute_force_model(seed: int) -> None:
    """Buckets, the kept sort order and secondary indexes against a plain dict."""
    rng = random.Random(seed)
    s = Store()
    model: dict[tuple[str, str, str], dict[str, Any]] = {}

    def owner_of(o: dict[str, Any]) -> list[str]:
        return [str(o.get("owner"))] if o.get("owner") else []

    s.index("by-owner", "Pod", owner_of)
    for _ in range(400):
        kind = rng.choice(["Pod", "Service"])
        ns = rng.choice(["a", "b", "c"])
        name = rng.choice("pqrstuvw")
        key = (kind, ns, name)
        op = rng.random()
        if key in model and op < 0.3:
            s.delete(kind, ns, name)
            del model[key]
        elif key in model:
            new = copy.deepcopy(s.get(kind, ns, name))
            assert new is not None
            new["owner"] = rng.choice(["x", "y", None])
            model[key] = s.update(new)
        else:
            obj: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": kind,
                "metadata": {"name": name, "namespace": ns},
                "owner": rng.choice(["x", "y", None]),
            }
            model[key] = s.create(obj)
        for k in ("Pod", "Service"):
            for space in ("a", "b", "c", None):
                want = [
                    model[key]
                    for key in sorted(model)
                    if key[0] == k and (space is None or key[1] == space)
                ]
                assert s.list(k, space) == want
        for owner in ("x", "y"):
            want = [
                model[key]
                for key in sorted(model)
                if key[0] == "Pod" and model[key].get("owner") == owner
            ]
            assert s.by_index("by-owner", owner) == want


def _same_by_copies(a: Obj, b: Obj) -> bool:
    """The plain definition store._same must agree with: both objects without the
    server's bookkeeping (resourceVersion, generation, managedFields' times)."""

    def strip(o: Obj) -> Obj:
        o = dict(o)
        md = {k: v for k, v in (o.get("metadata") or {}).items() if k not in _VOLATILE}
        if "managedFields" in md:
            md["managedFields"] = [
                {k: v for k, v in e.items() if k != "time"} for e in md["managedFields"]
            ]
        o["metadata"] = md
        return o

    return strip(a) == strip(b)


def test_no_op_detection_agrees_with_comparing_stripped_copies() -> None:
    rng = random.Random(5)

    def variant() -> Obj:
        md: Obj = {"name": "a", "resourceVersion": str(rng.randrange(3))}
        if rng.random() < 0.5:
            md["labels"] = {"x": rng.choice(["1", "2"])}
        if rng.random() < 0.3:
            md["generation"] = rng.randrange(3)
        if rng.random() < 0.7:
            md["managedFields"] = [
                {"manager": rng.choice(["a", "b"]), "time": str(rng.randrange(3))}
                for _ in range(rng.randrange(1, 3))
            ]
        o: Obj = {"kind": "Pod", "metadata": md}
        if rng.random() < 0.8:
            o["spec"] = {"n": rng.randrange(2)}
        if rng.random() < 0.5:
            o["status"] = {"phase": rng.choice(["Pending", "Running"])}
        return o

    outcomes = set()
    for _ in range(3000):
        a, b = variant(), variant()
        assert _same(a, b) == _same_by_copies(a, b), (a, b)
        outcomes.add(_same(a, b))
    assert outcomes == {True, False}
