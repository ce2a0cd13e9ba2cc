"""Request bodies in Kubernetes' protobuf encoding, turned into the JSON-shaped
objects the rest of the API server handles.

Why: kubectl's typed generators (`kubectl create deployment|service|configmap|
secret|namespace|job|cronjob|ingress`, `create job --from=cronjob/x`) send
`application/vnd.kubernetes.protobuf` and nothing else; the first command of
most Kubernetes tutorials is one of them. The body
is the `k8s\\x00` magic, then a `runtime.Unknown` envelope (typeMeta, raw
object bytes, content type); the raw object is the kind's message from
k8s.io/api's generated.proto.

Every kind svcnet serves from k8s.io/api is described (``messages()``: field
number -> JSON name, type, flags), generated from the Go types of k8s.io/api
and apimachinery 1.32 (their `protobuf:"..."` tags) into protobuf_fields.json
by scripts/gen_protobuf_fields.py. A field outside the tables (a newer
kubectl's) is refused by number and message, never dropped: better "use
kubectl apply -f" than an object that silently lost a field. Answers stay
JSON, which kubectl also accepts (it asks for protobuf or JSON).

The generated Go marshallers write every non-pointer field, zero or not;
JSON's `omitempty` leaves zeros out, so zeros are dropped here too (an unknown
field that is zero or empty included) except for fields that are pointers in
Go, where 0 means something (`replicas: 0`).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from svcnet.k8s import media
from svcnet.k8s.durations import go_duration
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
    pointer: bool = False
    """A pointer in Go: written only when set, so a zero there was set on purpose."""
    inline: bool = False
    """Embedded with an empty JSON name (Volume.VolumeSource): in JSON, its fields
    are the parent's."""


@functools.cache
def messages() -> dict[str, dict[int, F]]:
    """The message tables, generated from k8s.io/api's and apimachinery's Go types
    (scripts/gen_protobuf_fields.py): field number -> JSON name, type and flags."""
    data = json.loads((resources.files("svcnet.api") / "protobuf_fields.json").read_text())
    tables: dict[str, dict[int, F]] = {
        "Unknown": {
            1: F("typeMeta", "TypeMeta"),
            2: F("raw", "bytes"),
            3: F("contentEncoding", "string"),
            4: F("contentType", "string"),
        },
        "TypeMeta": {1: F("apiVersion", "string"), 2: F("kind", "string")},
    }
    for message, fields in data["messages"].items():
        tables[message] = {
            int(number): F(name, type_, "r" in flags, "p" in flags, "i" in flags)
            for number, (name, type_, flags) in fields.items()
        }
    return tables


@functools.cache
def top_level() -> frozenset[str]:
    """The kinds a body may hold: those svcnet serves from k8s.io/api."""
    data = json.loads((resources.files("svcnet.api") / "protobuf_fields.json").read_text())
    return frozenset(data["kinds"])


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
    table = messages()[message]
    out: Obj = {}
    inlined: list[Obj] = []
    pointers: set[str] = set()
    for number, wire, value in _fields(raw):
        f = table.get(number)
        if f is None:
            if value in (0, b""):
                # Go writes every non-pointer field, set or not: a zero here is
                # what JSON's omitempty leaves out, and carries nothing.
                continue
            raise ProtobufError(f"field {number} of {message} is not one svcnet decodes")
        where = f"{message}.{f.name}"
        if f.pointer:
            pointers.add(f.name)
        if f.type.startswith("map:"):
            if wire != 2:
                raise ProtobufError(f"{where}: expected a map entry")
            k, v = _map_entry(f.type[4:], bytes(value), where)
            out.setdefault(f.name, {})[k] = v
        elif f.repeated:
            out.setdefault(f.name, []).append(_scalar(f.type, wire, value, where))
        elif f.inline:
            inlined.append(_scalar(f.type, wire, value, where) or {})
        else:
            out[f.name] = _scalar(f.type, wire, value, where)
    obj = _to_json(message, out, pointers)
    for fields in inlined:
        obj.update(fields)
    return obj


def _to_json(message: str, out: Obj, pointers: set[str]) -> Any:
    """The JSON form: the special messages as JSON's scalars, zeros of non-pointer
    fields left out."""
    if message == "IntOrString":
        return out.get("strVal", "") if out.get("type") == 1 else out.get("intVal", 0)
    if message == "Quantity":
        return out.get("string", "")
    if message in ("Time", "MicroTime"):
        if not out.get("seconds"):
            return None  # the zero time: JSON's null, as creationTimestamp is sent
        t = dt.datetime.fromtimestamp(out["seconds"], dt.UTC)
        if message == "Time":
            return t.strftime("%Y-%m-%dT%H:%M:%SZ")
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(out.get('nanos') or 0) // 1000:06d}Z"
    if message == "Duration":
        return go_duration(int(out.get("duration") or 0) / 1e9)
    if message in ("RawExtension", "FieldsV1"):
        raw = base64.b64decode(out.get("raw") or out.get("Raw") or "")
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise ProtobufError(f"{message}: the embedded object is not JSON") from None
    for name in list(out):
        v = out[name]
        if v is None or (v in ("", 0, False) and name not in pointers):
            del out[name]
    return out


def decode(body: bytes) -> Obj:
    """A protobuf request body -> the object as JSON would have carried it."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic")
    envelope = decode_message("Unknown", body[len(MAGIC) :])
    tm = envelope.get("typeMeta") or {}
    kind = str(tm.get("kind") or "")
    if kind not in top_level():
        raise ProtobufError(f"kind {kind or '(none)'} is not one svcnet decodes from protobuf")
    raw = base64.b64decode(envelope.get("raw") or "")
    # A kind served in two versions has a message per version, named by both.
    versioned = f"{tm.get('apiVersion', '')}:{kind}"
    obj = decode_message(versioned if versioned in messages() else kind, raw)
    obj.pop("status", None)
    # The server sets these; a zero creationTimestamp is JSON's null, which
    # svcnet's registry takes as given.
    (obj.get("metadata") or {}).pop("creationTimestamp", None)
    return {"apiVersion": tm.get("apiVersion", ""), "kind": kind, **obj}
