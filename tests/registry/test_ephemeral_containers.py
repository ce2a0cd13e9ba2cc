"""pods/ephemeralcontainers in the registry: only spec.ephemeralContainers is taken,
defaulted as containers, validated with the API server's messages, and only added."""

from __future__ import annotations

import copy

import pytest

from svcnet.k8s.objects import Obj
from svcnet.registry import ApiError, Registry


def pod(reg: Registry) -> Obj:
    return reg.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "containers": [{"name": "web", "image": "nginx"}],
                "initContainers": [{"name": "init", "image": "busybox"}],
                "volumes": [{"name": "data", "emptyDir": {}}],
            },
        }
    )


def with_ephemeral(live: Obj, *containers: Obj) -> Obj:
    new = copy.deepcopy(live)
    new["spec"].setdefault("ephemeralContainers", []).extend(containers)
    return new


def refused(reg: Registry, body: Obj) -> list[str]:
    with pytest.raises(ApiError) as e:
        reg.update_ephemeral_containers(body, "default", "web")
    assert e.value.code == 422 and e.value.reason == "Invalid"
    return [f"{c.field}: {c.message}" for c in e.value.causes]


def test_added_defaulted_and_nothing_else_taken(reg: Registry) -> None:
    live = pod(reg)
    body = with_ephemeral(live, {"name": "dbg", "image": "busybox", "resources": {}})
    body["metadata"]["labels"] = {"app": "changed"}
    body["spec"]["containers"][0]["image"] = "other"
    got = reg.update_ephemeral_containers(body, "default", "web", field_manager="kubectl-debug")
    assert got["spec"]["ephemeralContainers"] == [
        {
            "name": "dbg",
            "image": "busybox",
            "imagePullPolicy": "Always",
            "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }
    ]
    assert got["metadata"]["labels"] == {"app": "web"}
    assert got["spec"]["containers"][0]["image"] == "nginx"
    managers = [(m["manager"], m.get("subresource")) for m in got["metadata"]["managedFields"]]
    assert ("kubectl-debug", "ephemeralcontainers") in managers


def test_forbidden_fields_names_and_targets(reg: Registry) -> None:
    live = pod(reg)
    body = with_ephemeral(
        live,
        {
            "name": "init",
            "image": "busybox",
            "ports": [{"containerPort": 80}],
            "resources": {"limits": {"cpu": "1"}},
            "readinessProbe": {"exec": {"command": ["true"]}},
            "lifecycle": {},
            "targetContainerName": "nope",
            "volumeMounts": [{"name": "data", "mountPath": "/d", "subPath": "x"}],
        },
        {"name": "x2"},
    )
    p = "spec.ephemeralContainers"
    assert refused(reg, body) == [
        f'{p}[0].name: Duplicate value: "init"',
        f'{p}[0].targetContainerName: Not found: "nope"',
        f"{p}[0].ports: Forbidden: cannot be set for an Ephemeral Container",
        f"{p}[0].resources: Forbidden: cannot be set for an Ephemeral Container",
        f"{p}[0].readinessProbe: Forbidden: cannot be set for an Ephemeral Container",
        f"{p}[0].lifecycle: Forbidden: cannot be set for an Ephemeral Container",
        f"{p}[0].volumeMounts[0].subPath: Forbidden: cannot be set for an Ephemeral Container",
        f"{p}[1].image: Required value",
    ]
    stored = reg.store.get("Pod", "default", "web")
    assert stored is not None  # and unchanged: nothing half-applied
    assert stored["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]


def test_existing_ones_may_not_change_or_go(reg: Registry) -> None:
    live = pod(reg)
    live = reg.update_ephemeral_containers(
        with_ephemeral(live, {"name": "dbg", "image": "busybox"}), "default", "web"
    )
    changed = copy.deepcopy(live)
    changed["spec"]["ephemeralContainers"][0]["image"] = "nginx"
    (msg,) = refused(reg, changed)
    assert msg.startswith(
        'spec.ephemeralContainers: Forbidden: existing ephemeral containers "dbg" may not be '
        'changed\n  image: - "busybox"\n  image: + "nginx"'
    )
    gone = copy.deepcopy(live)
    gone["spec"]["ephemeralContainers"] = []
    assert refused(reg, gone) == [
        'spec.ephemeralContainers: Forbidden: existing ephemeral containers "dbg" may not be '
        "removed\n"
    ]
    stale = with_ephemeral(live, {"name": "two", "image": "busybox"})
    reg.update_ephemeral_containers(
        with_ephemeral(live, {"name": "one", "image": "busybox"}), "default", "web"
    )
    with pytest.raises(ApiError) as e:
        reg.update_ephemeral_containers(stale, "default", "web")
    assert e.value.code == 409


def test_not_in_templates(reg: Registry) -> None:
    with pytest.raises(ApiError) as e:
        reg.create(
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {"name": "rs"},
                "spec": {
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": {
                        "metadata": {"labels": {"a": "b"}},
                        "spec": {
                            "containers": [{"name": "c", "image": "nginx"}],
                            "ephemeralContainers": [{"name": "e", "image": "busybox"}],
                        },
                    },
                },
            }
        )
    assert [f"{c.field}: {c.message}" for c in e.value.causes] == [
        "spec.template.spec.ephemeralContainers: Forbidden: ephemeral containers not allowed in "
        "pod template"
    ]
