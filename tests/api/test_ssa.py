"""Field ownership and server-side apply (svcnet.registry.ssa), table-free unit tests."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.k8s.objects import Obj
from svcnet.registry import ssa


def svc(ports: list[Obj], **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "api"},
        "spec": {"selector": {"app": "api"}, "ports": ports, **spec},
    }


def test_fields_v1_round_trip_and_format() -> None:
    leaves = ssa.leaves(ssa.tracked(svc([{"port": 80, "targetPort": 9090}])))
    fields = ssa.encode(leaves)
    assert fields == {
        "f:spec": {
            "f:ports": {
                'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}, "f:targetPort": {}}
            },
            "f:selector": {"f:app": {}},
        }
    }
    assert ssa.decode(fields) == set(leaves)
    path = ("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}', "f:targetPort")
    assert ssa.format_path(path) == '.spec.ports[port=80,protocol="TCP"].targetPort'


def test_apply_conflicts_with_an_update_manager_unless_forced() -> None:
    live = svc([{"port": 80, "protocol": "TCP", "targetPort": 9090}], type="ClusterIP")
    live["metadata"]["managedFields"] = ssa.record_update(
        None, svc([{"port": 80, "targetPort": 9090}]), "kubectl-client-side-apply", "v1"
    )
    config = svc([{"port": 80, "targetPort": 8080}])
    with pytest.raises(ssa.ApplyConflict) as e:
        ssa.apply(live, config, "kubectl", "v1", force=False)
    assert e.value.message() == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: '
        '.spec.ports[port=80,protocol="TCP"].targetPort'
    )
    # Same values are shared, not conflicts.
    same, _ = ssa.apply(live, svc([{"port": 80, "targetPort": 9090}]), "kubectl", "v1", False)
    assert same["spec"]["ports"][0]["targetPort"] == 9090

    merged, managed = ssa.apply(live, config, "kubectl", "v1", force=True)
    assert merged["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 8080}]
    assert merged["spec"]["type"] == "ClusterIP"  # not ours: kept
    owners = {m["manager"]: ssa.decode(m["fieldsV1"]) for m in managed}
    tp = ("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}', "f:targetPort")
    assert tp in owners["kubectl"] and tp not in owners["kubectl-client-side-apply"]


def test_apply_removes_what_the_manager_stopped_applying() -> None:
    first = svc([{"port": 80}, {"port": 9100, "name": "metrics"}])
    obj, managed = ssa.apply(None, first, "me", "v1", False)
    obj["metadata"]["managedFields"] = managed
    obj["spec"]["ports"][0]["targetPort"] = 80  # a server default nobody owns
    obj["metadata"]["labels"] = {"team": "a"}
    obj["metadata"]["managedFields"] = (
        ssa.record_update(svc([]), {**obj, "spec": {}}, "labeller", "v1") + managed
    )
    second = svc([{"port": 9100, "name": "metrics"}])
    out, managed = ssa.apply(obj, second, "me", "v1", False)
    assert out["spec"]["ports"] == [{"port": 9100, "protocol": "TCP", "name": "metrics"}]
    assert out["metadata"]["labels"] == {"team": "a"}  # another manager's: kept
    assert {m["manager"] for m in managed} == {"me", "labeller"}


def test_record_update_moves_ownership_of_changed_fields() -> None:
    old = svc([{"port": 80}])
    old["metadata"]["managedFields"] = ssa.record_update(None, old, "a", "v1")
    new = svc([{"port": 80}], type="NodePort")
    new["spec"]["selector"] = {"app": "other"}
    managed = ssa.record_update(old, new, "b", "v1")
    owners = {m["manager"]: ssa.decode(m["fieldsV1"]) for m in managed}
    assert ("f:spec", "f:selector", "f:app") in owners["b"]
    assert ("f:spec", "f:type") in owners["b"]
    assert ("f:spec", "f:selector", "f:app") not in owners["a"]
    assert ("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}', "f:port") in owners["a"]
