"""The OpenAPI documents kube-apiserver serves: /openapi/v2 and /openapi/v3.

kubectl reads them for three things: `kubectl explain` (the v3 document of the
resource's group version: the operation that names its GroupVersionKind, then
the schema carrying the same x-kubernetes-group-version-kind), whether the
server validates fields itself (a PATCH operation listing `fieldValidation`,
cli-runtime's query_param_verifier_v3.go), and strategic merge patches
(x-kubernetes-patch-strategy and -merge-key). A kind no document names (`kind:
Foo`) is validated client-side against v2, which kubectl fetches only as
protobuf; when that fails the user gets "failed to download openapi" instead
of kubectl's "no matches for kind".

Nothing is written by hand: paths come from the Kind table (``KINDS``), so a kind
added there appears here with its schema, and schemas are the official ones of
the Kubernetes version svcnet reports (registry/schema.py's source, turned back
from JSON Schema into OpenAPI: `$ref` paths, single types, int-or-string).

Serving follows kube-openapi's handlers: documents as `json.Marshal` writes them
(keys sorted), the ETag is the upper-case hex SHA-512 of the JSON, the v3 root
lists each group version as `?hash=<etag>`; a request with the current hash is
`Cache-Control: public, immutable`, one with an old hash is redirected (301).
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
from dataclasses import dataclass
from typing import Any

from svcnet.k8s import media
from svcnet.k8s.kinds import KINDS, Kind
from svcnet.k8s.media import JSON
from svcnet.k8s.objects import Obj
from svcnet.registry.schema import SCHEMA_VERSION, openapi_definitions

V2_PROTOBUF = media.OPENAPI_V2_PROTOBUF

INFO = {"title": "Kubernetes", "version": SCHEMA_VERSION.split("-")[0]}

_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
# What every group version's operations answer or take besides its kinds.
_COMMON = (
    "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
    "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
    "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
)


@dataclass(frozen=True)
class Document:
    """One document as served: its JSON and the ETag derived from it."""

    json: bytes
    etag: str


def _document(doc: Obj) -> Document:
    body = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    return Document(body, hashlib.sha512(body).hexdigest().upper())


def gv_path(group: str, version: str) -> str:
    """`api/v1`, `apis/apps/v1`: the key kubectl looks up in /openapi/v3."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _group_versions() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for k in KINDS:
        if (k.group, k.version) not in out:
            out.append((k.group, k.version))
    return out


# ---------------------------------------------------------------------------
# Schemas


@functools.cache
def _by_gvk() -> dict[tuple[str, str, str], str]:
    out: dict[tuple[str, str, str], str] = {}
    for name, schema in openapi_definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            out.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
    return out


def schema_name(group: str, version: str, kind: str) -> str | None:
    """The definition of a kind (`io.k8s.api.apps.v1.Deployment`), None if the
    official document has none (metrics.k8s.io is metrics-server's)."""
    return _by_gvk().get((group, version, kind))


def _refs(schema: Any, into: set[str]) -> None:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            into.add(ref.rsplit("/", 1)[-1])
        for key, value in schema.items():
            if not key.startswith("x-kubernetes"):
                _refs(value, into)
    elif isinstance(schema, list):
        for item in schema:
            _refs(item, into)


def _closure(names: list[str]) -> list[str]:
    defs = openapi_definitions()
    seen: set[str] = set()
    todo = [n for n in names if n in defs]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        found: set[str] = set()
        _refs(defs[name], found)
        todo.extend(n for n in found if n in defs and n not in seen)
    return sorted(seen)


def _roots(kinds: list[Kind]) -> list[str]:
    names: list[str] = list(_COMMON)
    for k in kinds:
        for kind in (k.kind, f"{k.kind}List"):
            name = schema_name(k.group, k.version, kind)
            if name:
                names.append(name)
    return names


def _single_type(t: Any) -> Any:
    # kubernetes-validate makes every field nullable (["string", "null"]).
    if isinstance(t, list):
        rest = [x for x in t if x != "null"]
        return rest[0] if len(rest) == 1 else rest
    return t


def _convert(schema: Any, ref_prefix: str, v3: bool, top: bool = False) -> Any:
    if not isinstance(schema, dict):
        return schema
    out: Obj = {}
    for key, value in schema.items():
        if key == "$ref":
            out[key] = ref_prefix + value.rsplit("/", 1)[-1]
        elif key == "type":
            out[key] = _single_type(value)
        elif key == "properties":
            out[key] = {name: _convert(sub, ref_prefix, v3) for name, sub in value.items()}
            if top:
                # The converter pins a kind's apiVersion and kind to one value
                # (an enum); the upstream document leaves them plain strings.
                for pinned in ("apiVersion", "kind"):
                    if isinstance(out[key].get(pinned), dict):
                        out[key][pinned].pop("enum", None)
        elif key in ("items", "additionalProperties"):
            out[key] = _convert(value, ref_prefix, v3)
        elif key == "oneOf":
            out[key] = [_convert(v, ref_prefix, v3) for v in value]
        else:
            out[key] = value
    if v3 and "$ref" in out and len(out) > 1:
        # kube-openapi's v3 builder wraps a reference that has siblings in allOf.
        out["allOf"] = [{"$ref": out.pop("$ref")}]
    return out


def _definition(name: str, v3: bool) -> Obj:
    schema = openapi_definitions()[name]
    if name == _INT_OR_STRING:
        # The converter's oneOf is the v3 form; v2 has only the format.
        return (
            {"format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]}
            if v3
            else {"format": "int-or-string", "type": "string"}
        )
    if name == _QUANTITY:
        return {"oneOf": [{"type": "string"}, {"type": "number"}]} if v3 else {"type": "string"}
    prefix = "#/components/schemas/" if v3 else "#/definitions/"
    out: Obj = _convert(schema, prefix, v3, top=True)
    if "oneOf" in out and not v3:
        out.pop("oneOf")
    return out


# ---------------------------------------------------------------------------
# Paths


_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")


def _param(name: str, v3: bool, where: str = "query") -> Obj:
    if v3:
        p: Obj = {"name": name, "in": where, "schema": {"type": "string", "uniqueItems": True}}
    else:
        p = {"name": name, "in": where, "type": "string", "uniqueItems": True}
    if where == "path":
        p["required"] = True
    return p


def _response(schema: str | None, v3: bool) -> Obj:
    if schema is None:
        return {"200": {"description": "OK"}}
    if v3:
        content = {"schema": {"$ref": f"#/components/schemas/{schema}"}}
        return {"200": {"description": "OK", "content": {JSON: content}}}
    return {"200": {"description": "OK", "schema": {"$ref": f"#/definitions/{schema}"}}}


def _operations(k: Kind, v3: bool) -> dict[str, Obj]:
    gvk = {"group": k.group, "version": k.version, "kind": k.kind}
    one = schema_name(k.group, k.version, k.kind)
    many = schema_name(k.group, k.version, f"{k.kind}List")
    status = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"

    def op(action: str, params: tuple[str, ...], answer: str | None) -> Obj:
        o: Obj = {
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
            "parameters": [_param(p, v3) for p in params],
            "responses": _response(answer, v3),
        }
        return o

    path_params = [_param("namespace", v3, "path")] if k.namespaced else []
    if k.review:
        # Create-only: kube-apiserver serves nothing but POST on the collection.
        base = k.collection_path("{namespace}" if k.namespaced else None)
        return {base: {"parameters": path_params, "post": op("post", _WRITE_PARAMS, one)}}
    collection: Obj = {"parameters": path_params, "get": op("list", ("watch",), many)}
    item: Obj = {
        "parameters": [_param("name", v3, "path"), *path_params],
        "get": op("get", (), one),
    }
    if k.stored:
        collection["post"] = op("post", _WRITE_PARAMS, one)
        if "deletecollection" in k.verbs:
            collection["delete"] = op("deletecollection", ("dryRun",), status)
        item["put"] = op("put", _WRITE_PARAMS, one)
        item["patch"] = op("patch", (*_WRITE_PARAMS, "force"), one)
        item["delete"] = op("delete", ("dryRun", "gracePeriodSeconds"), status)
    base = k.collection_path("{namespace}" if k.namespaced else None)
    return {base: collection, f"{base}/{{name}}": item}


# ---------------------------------------------------------------------------
# The documents


def _kinds_of(group: str, version: str) -> list[Kind]:
    return sorted(
        (k for k in KINDS if k.group == group and k.version == version), key=lambda k: k.plural
    )


@functools.cache
def v3_group_version(path: str) -> Document | None:
    """The v3 document of `api/v1` or `apis/apps/v1`, None for one svcnet does not serve."""
    for group, version in _group_versions():
        if gv_path(group, version) == path:
            kinds = _kinds_of(group, version)
            paths: Obj = {}
            for k in kinds:
                paths.update(_operations(k, v3=True))
            schemas = {name: _definition(name, v3=True) for name in _closure(_roots(kinds))}
            return _document(
                {
                    "openapi": "3.0.0",
                    "info": INFO,
                    "paths": paths,
                    "components": {"schemas": schemas},
                }
            )
    return None


@functools.cache
def v3_root() -> Document:
    paths: Obj = {}
    for group, version in _group_versions():
        path = gv_path(group, version)
        doc = v3_group_version(path)
        assert doc is not None
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={doc.etag}"}
    return _document({"paths": paths})


def _v2_object() -> Obj:
    paths: Obj = {}
    for k in KINDS:
        paths.update(_operations(k, v3=False))
    names = _closure(_roots(list(KINDS)))
    return {
        "swagger": "2.0",
        "info": INFO,
        "paths": paths,
        "definitions": {name: _definition(name, v3=False) for name in names},
    }


@functools.cache
def v2() -> Document:
    return _document(_v2_object())


@functools.cache
def v2_protobuf() -> bytes:
    """The v2 document as gnostic's openapi_v2.Document, which is the only form
    client-go's OpenAPISchema() (and so kubectl) accepts."""
    return _message("Document", _v2_object())


def negotiate(accept: str, offered: tuple[str, ...]) -> str | None:
    """The offered media type the Accept header prefers (goautoneg: by q, then
    in the header's order), or None: 406."""
    clauses: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept or "*/*").split(",")):
        fields = [f.strip() for f in part.split(";")]
        q = 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        if fields[0] and q > 0:
            clauses.append((-q, i, fields[0].lower()))
    for _, _, wanted in sorted(clauses):
        mtype, _, subtype = wanted.partition("/")
        for o in offered:
            otype, _, osub = o.partition("/")
            if mtype in (otype, "*") and subtype in (osub, "*"):
                return o
    return None


V3_OFFERED = (JSON,)
"""kube-openapi also offers the v3 documents as protobuf; kubectl and the Python
client ask for JSON, and a form svcnet does not produce is a 406, not a lie."""
V2_OFFERED = (JSON, media.OPENAPI_V2_PROTOBUF_DEPRECATED, V2_PROTOBUF)


# ---------------------------------------------------------------------------
# gnostic's openapi_v2 protobuf messages (google/gnostic openapiv2/OpenAPIv2.proto):
# field name -> (number, type). A type in _MESSAGES is a message; "any" is
# gnostic's Any (the value as YAML text; JSON is YAML); a list value is repeated.

_MESSAGES: dict[str, dict[str, tuple[int, str]]] = {
    "Document": {
        "swagger": (1, "string"),
        "info": (2, "Info"),
        "paths": (8, "Paths"),
        "definitions": (9, "Definitions"),
    },
    "Info": {"title": (1, "string"), "version": (2, "string")},
    "Schema": {
        "$ref": (1, "string"),
        "format": (2, "string"),
        "title": (3, "string"),
        "description": (4, "string"),
        "default": (5, "any"),
        "maximum": (7, "double"),
        "minimum": (9, "double"),
        "required": (19, "string"),
        "enum": (20, "any"),
        "additionalProperties": (21, "AdditionalPropertiesItem"),
        "type": (22, "TypeItem"),
        "items": (23, "ItemsItem"),
        "allOf": (24, "Schema"),
        "properties": (25, "Properties"),
        "readOnly": (27, "bool"),
        "example": (30, "any"),
    },
    "Operation": {
        "description": (3, "string"),
        "operationId": (5, "string"),
        "parameters": (8, "ParametersItem"),
        "responses": (9, "Responses"),
    },
    "PathItem": {
        "get": (2, "Operation"),
        "put": (3, "Operation"),
        "post": (4, "Operation"),
        "delete": (5, "Operation"),
        "patch": (8, "Operation"),
        "parameters": (9, "ParametersItem"),
    },
    "QueryParameterSubSchema": {
        "required": (1, "bool"),
        "in": (2, "string"),
        "description": (3, "string"),
        "name": (4, "string"),
        "type": (6, "string"),
        "uniqueItems": (20, "bool"),
    },
    "PathParameterSubSchema": {
        "required": (1, "bool"),
        "in": (2, "string"),
        "description": (3, "string"),
        "name": (4, "string"),
        "type": (5, "string"),
        "uniqueItems": (19, "bool"),
    },
    "Response": {"description": (1, "string"), "schema": (2, "SchemaItem")},
}
# Messages whose last field holds the x-* vendor extensions.
_EXTENSIONS = {
    "Document": 16,
    "Info": 7,
    "Schema": 31,
    "Operation": 13,
    "PathItem": 10,
    "QueryParameterSubSchema": 23,
    "PathParameterSubSchema": 22,
    "Response": 5,
}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _string(number: int, value: str) -> bytes:
    return _field(number, value.encode())


def _any(value: Any) -> bytes:
    return _string(2, json.dumps(value, sort_keys=True))


def _named(number: int, name: str, payload: bytes) -> bytes:
    return _field(number, _string(1, name) + _field(2, payload))


def _scalar(number: int, type_: str, value: Any) -> bytes:
    if type_ == "string":
        return _string(number, str(value))
    if type_ == "bool":
        # proto3 leaves false out.
        return _varint(number << 3) + b"\x01" if value else b""
    if type_ == "double":
        return _varint(number << 3 | 1) + struct.pack("<d", float(value))
    return _field(number, _any(value))


def _message(name: str, obj: Any) -> bytes:
    if name == "Paths":
        return b"".join(_named(2, p, _message("PathItem", item)) for p, item in obj.items())
    if name in ("Definitions", "Properties"):
        return b"".join(_named(1, n, _message("Schema", s)) for n, s in obj.items())
    if name == "Responses":
        return b"".join(
            _named(1, code, _field(1, _message("Response", r))) for code, r in obj.items()
        )
    if name == "ParametersItem":
        if obj.get("in") == "body":
            raise ValueError("body parameters are not served")
        # ParametersItem.parameter -> Parameter.non_body_parameter -> the sub-schema.
        if obj["in"] == "query":
            number, sub = 3, "QueryParameterSubSchema"
        else:
            number, sub = 4, "PathParameterSubSchema"
        return _field(1, _field(2, _field(number, _message(sub, obj))))
    if name == "SchemaItem":
        return _field(1, _message("Schema", obj))
    if name == "AdditionalPropertiesItem":
        if isinstance(obj, bool):
            return _varint(2 << 3) + _varint(int(obj))
        return _field(1, _message("Schema", obj))
    if name == "TypeItem":
        types = obj if isinstance(obj, list) else [obj]
        return b"".join(_string(1, t) for t in types)
    if name == "ItemsItem":
        return _field(1, _message("Schema", obj))
    fields = _MESSAGES[name]
    out = bytearray()
    extensions = bytearray()
    for key, value in obj.items():
        if key.startswith("x-"):
            extensions += _named(_EXTENSIONS[name], key, _any(value))
            continue
        if key not in fields:
            continue  # oneOf and the like have no v2 form
        number, type_ = fields[key]
        values = value if isinstance(value, list) and type_ != "TypeItem" else [value]
        for v in values:
            if type_ in _MESSAGES or type_ in _SPECIAL:
                out += _field(number, _message(type_, v))
            else:
                out += _scalar(number, type_, v)
    return bytes(out + extensions)


_SPECIAL = frozenset(
    {
        "Paths",
        "Definitions",
        "Properties",
        "Responses",
        "ParametersItem",
        "SchemaItem",
        "AdditionalPropertiesItem",
        "TypeItem",
        "ItemsItem",
    }
)
