"""The protobuf request decoder on hand-built bodies: the envelope, maps, int-or-string,
zeros, and refusals. Real kubectl bodies are in tests/kubectl/test_create_generators.py."""

from __future__ import annotations

import pytest

from svcnet.api.protobuf import MAGIC, ProtobufError, decode


def varint(n: int) -> bytes:
    out = b""
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def vint(field: int, n: int) -> bytes:
    return varint(field << 3) + varint(n)


def ld(field: int, data: bytes | str) -> bytes:
    raw = data.encode() if isinstance(data, str) else data
    return varint(field << 3 | 2) + varint(len(raw)) + raw


def entry(field: int, key: str, value: bytes | str) -> bytes:
    return ld(field, ld(1, key) + ld(2, value))


def body(api_version: str, kind: str, raw: bytes) -> bytes:
    return MAGIC + ld(1, ld(1, api_version) + ld(2, kind)) + ld(2, raw) + ld(3, "") + ld(4, "")


def test_service_with_named_target_port_zeros_and_maps() -> None:
    meta = ld(1, "web") + ld(2, "") + ld(3, "") + ld(4, "") + vint(7, 0) + entry(11, "app", "web")
    port = (
        ld(1, "http") + ld(2, "TCP") + vint(3, 80) + ld(4, vint(1, 1) + ld(3, "http")) + vint(5, 0)
    )
    spec = ld(1, port) + entry(2, "app", "web") + ld(3, "") + ld(4, "NodePort")
    obj = decode(body("v1", "Service", ld(1, meta) + ld(2, spec) + ld(3, b"")))
    assert obj == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"}],
            "selector": {"app": "web"},
            "type": "NodePort",
        },
    }


def test_deployment_keeps_zero_replicas_and_secret_bytes_are_base64() -> None:
    d = decode(body("apps/v1", "Deployment", ld(1, ld(1, "d")) + ld(2, vint(1, 0))))
    assert d["spec"] == {"replicas": 0}
    s = decode(
        body("v1", "Secret", ld(1, ld(1, "s")) + entry(2, "p", b"\x00\xff") + ld(3, "Opaque"))
    )
    assert s["data"] == {"p": "AP8="} and s["type"] == "Opaque"


def test_unknown_field_with_a_value_is_refused_by_number() -> None:
    with pytest.raises(ProtobufError, match="field 99 of Container is not one svcnet decodes"):
        container = ld(1, "c") + ld(99, "something")
        pod_spec = ld(2, container)
        spec = ld(3, ld(2, pod_spec))
        decode(body("apps/v1", "Deployment", ld(1, ld(1, "d")) + ld(2, spec)))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{}", "magic"),
        (MAGIC + b"\x0a\x05ab", "truncated"),
        (body("rbac.authorization.k8s.io/v1", "Role", b""), "kind Role is not one svcnet decodes"),
    ],
)
def test_bad_bodies(raw: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message):
        decode(raw)


def test_generated_tables_inline_embedded_structs_and_keep_pointer_zeros() -> None:
    """Job (from the generated tables): `parallelism: 0` is a pointer set on purpose,
    `Volume.VolumeSource` is inlined into the volume as JSON has it, and the
    non-pointer zeros Go writes (`medium: ""`) are left out."""
    empty_dir = ld(2, ld(1, "") + ld(2, ld(1, "64Mi")))
    volume = ld(1, "scratch") + ld(2, empty_dir)
    pod_spec = ld(1, volume) + ld(3, "Never")
    spec = vint(1, 0) + ld(6, ld(1, b"") + ld(2, pod_spec))
    job = decode(body("batch/v1", "Job", ld(1, ld(1, "j")) + ld(2, spec) + ld(3, b"")))
    assert job == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {
            "parallelism": 0,
            "template": {
                "metadata": {},
                "spec": {
                    "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "64Mi"}}],
                    "restartPolicy": "Never",
                },
            },
        },
    }
