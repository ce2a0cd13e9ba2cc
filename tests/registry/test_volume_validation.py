"""Pod volumes and volumeMounts in the registry: the API server's defaults and messages."""

from __future__ import annotations

import pytest

from svcnet.k8s.objects import Obj
from svcnet.registry import ApiError, Registry


def pod(volumes: list[Obj], mounts: list[Obj] | None = None) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "c", "image": "busybox", "volumeMounts": mounts or []}],
            "volumes": volumes,
        },
    }


def causes(reg: Registry, obj: Obj) -> list[str]:
    with pytest.raises(ApiError) as e:
        reg.create(obj)
    assert e.value.code == 422
    return [f"{c['field']}: {c['message']}" for c in e.value.status()["details"]["causes"]]


def test_volume_defaults_as_the_api_server_fills_them(reg: Registry) -> None:
    got = reg.create(
        pod(
            [
                {"name": "a", "configMap": {"name": "cm"}},
                {"name": "b", "secret": {"secretName": "s"}},
                {"name": "c", "hostPath": {"path": "/srv"}},
                {
                    "name": "d",
                    "downwardAPI": {
                        "items": [{"path": "l", "fieldRef": {"fieldPath": "metadata.labels"}}]
                    },
                },
            ],
            [{"name": "a", "mountPath": "/a"}],
        )
    )
    vols = {v["name"]: v for v in got["spec"]["volumes"]}
    assert vols["a"]["configMap"]["defaultMode"] == 420
    assert vols["b"]["secret"]["defaultMode"] == 420
    assert vols["c"]["hostPath"]["type"] == ""
    d = vols["d"]["downwardAPI"]
    assert d["defaultMode"] == 420 and d["items"][0]["fieldRef"]["apiVersion"] == "v1"


def test_volumes_are_named_once_with_exactly_one_source(reg: Registry) -> None:
    got = causes(
        reg,
        pod(
            [
                {"name": "a", "emptyDir": {}},
                {"name": "a", "emptyDir": {}, "configMap": {"name": "x"}},
                {"name": "Bad_Name", "hostPath": {"path": "/a/../b", "type": "Dir"}},
                {"name": "none"},
                {
                    "name": "s",
                    "secret": {"defaultMode": 1000, "items": [{"key": "k", "path": "../x"}]},
                },
            ]
        ),
    )
    assert got == [
        "spec.volumes[1].configMap: Forbidden: may not specify more than 1 volume type",
        'spec.volumes[1].name: Duplicate value: "a"',
        "spec.volumes[2].hostPath.path: Invalid value: \"/a/../b\": must not contain '..'",
        'spec.volumes[2].hostPath.type: Unsupported value: "Dir": supported values: "", '
        '"BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", '
        '"FileOrCreate", "Socket"',
        'spec.volumes[2].name: Invalid value: "Bad_Name": a lowercase RFC 1123 label must '
        "consist of lower case alphanumeric characters or '-', and must start and end with an "
        "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        "spec.volumes[3]: Required value: must specify a volume type",
        "spec.volumes[4].secret.secretName: Required value",
        "spec.volumes[4].secret.defaultMode: Invalid value: 1000: must be a number between 0 "
        "and 0777 (octal), both inclusive",
        "spec.volumes[4].secret.items[0].path: Invalid value: \"../x\": must not contain '..'",
        "spec.volumes[4].secret.items[0].path: Invalid value: \"../x\": must not start with '..'",
    ]


def test_mounts_name_a_volume_and_unique_paths(reg: Registry) -> None:
    got = causes(
        reg,
        pod(
            [{"name": "data", "emptyDir": {}}],
            [
                {"name": "data", "mountPath": "/d"},
                {"name": "nope", "mountPath": "/d"},
                {"name": "data", "mountPath": "/e", "subPath": "/abs", "subPathExpr": "x"},
            ],
        ),
    )
    assert got == [
        'spec.containers[0].volumeMounts[1].name: Not found: "nope"',
        'spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/d": must be unique',
        'spec.containers[0].volumeMounts.subPath: Invalid value: "/abs": must be a relative path',
        'spec.containers[0].volumeMounts[2].subPathExpr: Invalid value: "x": subPathExpr and '
        "subPath are mutually exclusive",
    ]
