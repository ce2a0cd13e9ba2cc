"""PATCH semantics: RFC 7386, RFC 6902 and strategic merge (kubectl-api.md §7)."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.api import patch


def test_merge_patch_rfc7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    out = patch.merge_patch(target, {"a": "z", "c": {"f": None}, "l": [3]})
    assert out == {"a": "z", "c": {"d": "e"}, "l": [3]}
    assert target["c"] == {"d": "e", "f": "g"}  # input untouched


def test_json_patch_ops() -> None:
    doc: dict[str, Any] = {"spec": {"a": [1, 2], "b": "x"}, "m": {"k/1": "v"}}
    ops = [
        {"op": "add", "path": "/spec/a/-", "value": 3},
        {"op": "add", "path": "/spec/a/0", "value": 0},
        {"op": "replace", "path": "/spec/b", "value": "y"},
        {"op": "remove", "path": "/m/k~11"},
        {"op": "test", "path": "/spec/b", "value": "y"},
        {"op": "copy", "from": "/spec/b", "path": "/spec/c"},
        {"op": "move", "from": "/spec/c", "path": "/d"},
    ]
    assert patch.json_patch(doc, ops) == {"spec": {"a": [0, 1, 2, 3], "b": "y"}, "m": {}, "d": "y"}


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/a", "value": 2}],
        [{"op": "replace", "path": "/nope", "value": 1}],
        [{"op": "remove", "path": "/l/5"}],
        [{"op": "frob", "path": "/a"}],
        {"op": "add"},
    ],
)
def test_json_patch_errors(ops: Any) -> None:
    with pytest.raises(patch.PatchError):
        patch.json_patch({"a": 1, "l": []}, ops)


def deployment() -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"tier": "web", "app": "d"}},
        "spec": {
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "a",
                            "image": "busybox:1",
                            "args": ["sleep", "1"],
                            "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                            "ports": [{"containerPort": 80}, {"containerPort": 81}],
                        },
                        {"name": "b", "image": "busybox:1"},
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                }
            },
        },
    }


def test_strategic_merge_patch_kubectl_apply_example() -> None:
    p = {
        "metadata": {"labels": {"tier": None}},
        "spec": {
            "strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"},
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "a"}],
                    "$setElementOrder/volumes": [{"name": "data"}],
                    "containers": [
                        {
                            "$setElementOrder/env": [{"name": "Y"}],
                            "$setElementOrder/ports": [{"containerPort": 81}],
                            "args": ["sleep", "2"],
                            "env": [{"name": "Y", "value": "3"}, {"$patch": "delete", "name": "X"}],
                            "image": "busybox:2",
                            "name": "a",
                            "ports": [{"$patch": "delete", "containerPort": 80}],
                        },
                        {"$patch": "delete", "name": "b"},
                    ],
                    "volumes": [
                        {
                            "$retainKeys": ["hostPath", "name"],
                            "emptyDir": None,
                            "hostPath": {"path": "/tmp"},
                            "name": "data",
                        }
                    ],
                }
            },
        },
    }
    out = patch.strategic_merge_patch(deployment(), p, "Deployment")
    assert out["metadata"]["labels"] == {"app": "d"}
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    spec = out["spec"]["template"]["spec"]
    assert spec["containers"] == [
        {
            "name": "a",
            "image": "busybox:2",
            "args": ["sleep", "2"],
            "env": [{"name": "Y", "value": "3"}],
            "ports": [{"containerPort": 81}],
        }
    ]
    assert spec["volumes"] == [{"name": "data", "hostPath": {"path": "/tmp"}}]


def test_strategic_merge_patch_set_image_and_service_ports() -> None:
    p = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                    "containers": [{"image": "python:3.12", "name": "a"}],
                }
            }
        }
    }
    out = patch.strategic_merge_patch(deployment(), p, "Deployment")
    cs = out["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in cs] == ["b", "a"]
    assert cs[1]["image"] == "python:3.12" and cs[1]["args"] == ["sleep", "1"]

    svc = {"spec": {"ports": [{"port": 80, "targetPort": 8080, "name": "http"}]}}
    p2 = {
        "spec": {
            "$setElementOrder/ports": [{"port": 80}, {"port": 9100}],
            "ports": [{"port": 80, "targetPort": 9090}, {"name": "metrics", "port": 9100}],
        }
    }
    assert patch.strategic_merge_patch(svc, p2, "Service")["spec"]["ports"] == [
        {"port": 80, "targetPort": 9090, "name": "http"},
        {"name": "metrics", "port": 9100},
    ]


def test_strategic_merge_patch_replace_and_primitive_lists() -> None:
    obj = {
        "metadata": {"finalizers": ["a", "b"]},
        "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}},
    }
    p = {
        "metadata": {"finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]},
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "z", "image": "y"}, {"$patch": "replace"}]}
            }
        },
    }
    out = patch.strategic_merge_patch(obj, p, "Deployment")
    assert out["metadata"]["finalizers"] == ["b", "c"]
    assert out["spec"]["template"]["spec"]["containers"] == [{"name": "z", "image": "y"}]
    out2 = patch.strategic_merge_patch(obj, {"spec": {"$patch": "replace", "x": 1}}, "Deployment")
    assert out2["spec"] == {"x": 1}
    out3 = patch.strategic_merge_patch(obj, {"spec": {"$patch": "delete"}}, "Deployment")
    assert "spec" not in out3
    # Lists without a merge key (command, args) are replaced whole.
    pod = {"spec": {"containers": [{"name": "a", "command": ["x", "y"]}]}}
    p3 = {"spec": {"containers": [{"name": "a", "command": ["z"]}]}}
    assert patch.strategic_merge_patch(pod, p3, "Pod")["spec"]["containers"][0]["command"] == ["z"]
