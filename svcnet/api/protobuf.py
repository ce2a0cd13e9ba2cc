"""Request bodies in Kubernetes' protobuf encoding, turned into the JSON-shaped
objects the rest of the API server handles.

Why: kubectl's typed generators (`kubectl create deployment|service|configmap|
secret|namespace`) send `application/vnd.kubernetes.protobuf` and nothing
else; the first command of most Kubernetes tutorials is one of them. The body
is the `k8s\\x00` magic, then a `runtime.Unknown` envelope (typeMeta, raw
object bytes, content type); the raw object is the kind's message from
k8s.io/api's generated.proto.

Only the messages those generators produce are described here (``MESSAGES``:
field number -> JSON name and type), with their field numbers from the
`protobuf:"..."` tags of k8s.io/api and apimachinery. A field outside the
table is refused by number and message, never dropped: better "use kubectl
apply -f" than an object that silently lost a field. Answers stay JSON, which
kubectl also accepts.

The generated Go marshallers write every non-pointer field, zero or not;
JSON's `omitempty` leaves zeros out, so zeros are dropped here too (an unknown
field that is zero or empty included) except for fields that are pointers in
Go (``KEEP_ZERO``), where 0 means something
(`replicas: 0`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from svcnet.k8s import media
from svcnet.k8s.objects import Obj

MAGIC = b"k8s\x00"
CONTENT_TYPE = media.PROTOBUF


class ProtobufError(ValueError):
    """The body cannot be decoded (or holds a field svcnet does not know)."""


@dataclass(frozen=True)
class F:
    name: str
    type: str
    """string, bytes, int, bool, a message name, or map:<value type>."""
    repeated: bool = False


# Field numbers: k8s.io/api {core,apps}/v1 and apimachinery meta/v1, runtime, intstr.
MESSAGES: dict[str, dict[int, F]] = {
    "Unknown": {
        1: F("typeMeta", "TypeMeta"),
        2: F("raw", "bytes"),
        3: F("contentEncoding", "string"),
        4: F("contentType", "string"),
    },
    "TypeMeta": {1: F("apiVersion", "string"), 2: F("kind", "string")},
    "ObjectMeta": {
        1: F("name", "string"),
        2: F("generateName", "string"),
        3: F("namespace", "string"),
        5: F("uid", "string"),
        6: F("resourceVersion", "string"),
        7: F("generation", "int"),
        8: F("creationTimestamp", "Time"),
        11: F("labels", "map:string"),
        12: F("annotations", "map:string"),
        14: F("finalizers", "string", repeated=True),
    },
    "Time": {1: F("seconds", "int"), 2: F("nanos", "int")},
    "LabelSelector": {
        1: F("matchLabels", "map:string"),
        2: F("matchExpressions", "LabelSelectorRequirement", repeated=True),
    },
    "LabelSelectorRequirement": {
        1: F("key", "string"),
        2: F("operator", "string"),
        3: F("values", "string", repeated=True),
    },
    "IntOrString": {1: F("type", "int"), 2: F("intVal", "int"), 3: F("strVal", "string")},
    "Quantity": {1: F("string", "string")},
    # apps/v1
    "Deployment": {
        1: F("metadata", "ObjectMeta"),
        2: F("spec", "DeploymentSpec"),
        3: F("status", "Ignored"),
    },
    "DeploymentSpec": {
        1: F("replicas", "int"),
        2: F("selector", "LabelSelector"),
        3: F("template", "PodTemplateSpec"),
        4: F("strategy", "DeploymentStrategy"),
        5: F("minReadySeconds", "int"),
        6: F("revisionHistoryLimit", "int"),
        7: F("paused", "bool"),
        9: F("progressDeadlineSeconds", "int"),
    },
    "DeploymentStrategy": {1: F("type", "string"), 2: F("rollingUpdate", "RollingUpdate")},
    "RollingUpdate": {1: F("maxUnavailable", "IntOrString"), 2: F("maxSurge", "IntOrString")},
    # core/v1
    "PodTemplateSpec": {1: F("metadata", "ObjectMeta"), 2: F("spec", "PodSpec")},
    "PodSpec": {
        2: F("containers", "Container", repeated=True),
        3: F("restartPolicy", "string"),
        4: F("terminationGracePeriodSeconds", "int"),
        6: F("dnsPolicy", "string"),
        16: F("hostname", "string"),
        20: F("initContainers", "Container", repeated=True),
    },
    "Container": {
        1: F("name", "string"),
        2: F("image", "string"),
        3: F("command", "string", repeated=True),
        4: F("args", "string", repeated=True),
        5: F("workingDir", "string"),
        6: F("ports", "ContainerPort", repeated=True),
        7: F("env", "EnvVar", repeated=True),
        8: F("resources", "ResourceRequirements"),
        13: F("terminationMessagePath", "string"),
        14: F("imagePullPolicy", "string"),
        16: F("stdin", "bool"),
        17: F("stdinOnce", "bool"),
        18: F("tty", "bool"),
        20: F("terminationMessagePolicy", "string"),
    },
    "ContainerPort": {
        1: F("name", "string"),
        2: F("hostPort", "int"),
        3: F("containerPort", "int"),
        4: F("protocol", "string"),
        5: F("hostIP", "string"),
    },
    "EnvVar": {1: F("name", "string"), 2: F("value", "string")},
    "ResourceRequirements": {1: F("limits", "map:Quantity"), 2: F("requests", "map:Quantity")},
    "Service": {
        1: F("metadata", "ObjectMeta"),
        2: F("spec", "ServiceSpec"),
        3: F("status", "Ignored"),
    },
    "ServiceSpec": {
        1: F("ports", "ServicePort", repeated=True),
        2: F("selector", "map:string"),
        3: F("clusterIP", "string"),
        4: F("type", "string"),
        5: F("externalIPs", "string", repeated=True),
        7: F("sessionAffinity", "string"),
        10: F("externalName", "string"),
        18: F("clusterIPs", "string", repeated=True),
    },
    "ServicePort": {
        1: F("name", "string"),
        2: F("protocol", "string"),
        3: F("port", "int"),
        4: F("targetPort", "IntOrString"),
        5: F("nodePort", "int"),
        6: F("appProtocol", "string"),
    },
    "ConfigMap": {
        1: F("metadata", "ObjectMeta"),
        2: F("data", "map:string"),
        3: F("binaryData", "map:bytes"),
        4: F("immutable", "bool"),
    },
    "Secret": {
        1: F("metadata", "ObjectMeta"),
        2: F("data", "map:bytes"),
        3: F("type", "string"),
        4: F("stringData", "map:string"),
        5: F("immutable", "bool"),
    },
    "Namespace": {
        1: F("metadata", "ObjectMeta"),
        2: F("spec", "NamespaceSpec"),
        3: F("status", "Ignored"),
    },
    "NamespaceSpec": {1: F("finalizers", "string", repeated=True)},
}

KEEP_ZERO = frozenset(
    {
        ("DeploymentSpec", "replicas"),
        ("DeploymentSpec", "revisionHistoryLimit"),
        ("DeploymentSpec", "progressDeadlineSeconds"),
        ("PodSpec", "terminationGracePeriodSeconds"),
        ("ConfigMap", "immutable"),
        ("Secret", "immutable"),
    }
)
"""Fields that are pointers in Go: a zero there was set on purpose."""

TOP_LEVEL = frozenset({"Deployment", "Service", "ConfigMap", "Secret", "Namespace"})


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value): an int for varints, bytes for the rest."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise ProtobufError("truncated field")
            value, pos = buf[pos : pos + n], pos + n
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _signed(v: int) -> int:
    """int32/int64 varints carry two's complement in 64 bits."""
    return v - (1 << 64) if v >= 1 << 63 else v


def _scalar(type_: str, wire: int, value: Any, where: str) -> Any:
    if type_ in ("int", "bool"):
        if wire != 0:
            raise ProtobufError(f"{where}: expected a varint")
        return bool(value) if type_ == "bool" else _signed(value)
    if wire != 2:
        raise ProtobufError(f"{where}: expected length-delimited bytes")
    if type_ == "bytes":
        return base64.b64encode(value).decode()
    if type_ == "string":
        try:
            return bytes(value).decode()
        except UnicodeDecodeError:
            raise ProtobufError(f"{where}: invalid UTF-8") from None
    return decode_message(type_, bytes(value))


def _map_entry(value_type: str, raw: bytes, where: str) -> tuple[str, Any]:
    key = ""
    val: Any = None
    for number, wire, v in _fields(raw):
        if number == 1:
            key = _scalar("string", wire, v, where)
        elif number == 2:
            val = _scalar(value_type, wire, v, f"{where}[{key}]")
    if val is None:
        val = "" if value_type in ("string", "bytes") else {}
    return key, val


def decode_message(message: str, raw: bytes) -> Any:
    if message == "Ignored":
        return None
    table = MESSAGES[message]
    out: Obj = {}
    for number, wire, value in _fields(raw):
        f = table.get(number)
        if f is None:
            if value in (0, b""):
                # Go writes every non-pointer field, set or not: a zero here is
                # what JSON's omitempty leaves out, and carries nothing.
                continue
            raise ProtobufError(f"field {number} of {message} is not one svcnet decodes")
        where = f"{message}.{f.name}"
        if f.type.startswith("map:"):
            if wire != 2:
                raise ProtobufError(f"{where}: expected a map entry")
            k, v = _map_entry(f.type[4:], bytes(value), where)
            out.setdefault(f.name, {})[k] = v
        elif f.repeated:
            out.setdefault(f.name, []).append(_scalar(f.type, wire, value, where))
        else:
            out[f.name] = _scalar(f.type, wire, value, where)
    return _to_json(message, out)


def _to_json(message: str, out: Obj) -> Any:
    """The JSON form: intstr and Quantity flattened, zeros and server fields left out."""
    if message == "IntOrString":
        return out.get("strVal", "") if out.get("type") == 1 else out.get("intVal", 0)
    if message == "Quantity":
        return out.get("string", "")
    if message == "Time":
        return None  # creationTimestamp and the like are the server's to set
    for name in list(out):
        v = out[name]
        if v is None or (v in ("", 0, False) and (message, name) not in KEEP_ZERO):
            del out[name]
    return out


def decode(body: bytes) -> Obj:
    """A protobuf request body -> the object as JSON would have carried it."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic")
    envelope = decode_message("Unknown", body[len(MAGIC) :])
    tm = envelope.get("typeMeta") or {}
    kind = str(tm.get("kind") or "")
    if kind not in TOP_LEVEL:
        raise ProtobufError(f"kind {kind or '(none)'} is not one svcnet decodes from protobuf")
    raw = base64.b64decode(envelope.get("raw") or "")
    obj = decode_message(kind, raw)
    obj.pop("status", None)
    return {"apiVersion": tm.get("apiVersion", ""), "kind": kind, **obj}
