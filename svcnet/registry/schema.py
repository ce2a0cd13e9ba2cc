"""Structural checks against the official Kubernetes OpenAPI schemas.

The schemas come from kubernetes-validate (the upstream OpenAPI converted to
JSON Schema, "strict" variant: unknown fields are errors), for the Kubernetes
version svcnet reports. Errors are translated to what the API server says when
it cannot decode a body: unknown fields become `strict decoding error: unknown
field "spec.ports[0].targetPrt"`, type mismatches a `json: cannot unmarshal`
message; both name the field path so the CLI can point at the file's line.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from importlib import resources
from typing import Any

import jsonschema
import jsonschema_rs
from referencing import Registry as RefRegistry
from referencing import Resource

from svcnet.k8s import version
from svcnet.k8s.kinds import Kind
from svcnet.registry.errors import ApiError, Cause

SCHEMA_VERSION = f"{version.GIT_VERSION}-local-strict"

_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "bool",
    int: "number",
    float: "number",
    type(None): "null",
}


def field_path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _go_type(schema: dict[str, Any], path: list[Any], kind: Kind) -> str:
    if path == ["metadata"]:
        return "v1.ObjectMeta"
    if path == ["spec"]:
        return f"v1.{kind.kind}Spec"
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "object")
    fmt = schema.get("format")
    if t == "integer":
        return str(fmt or "int")
    if t == "object":
        return "map[string]string" if "additionalProperties" in schema else "struct"
    if t == "array":
        return "[]" + _go_type(schema.get("items") or {}, [], kind)
    if t == "boolean":
        return "bool"
    return str(t or "string")


def _schema_dir() -> Any:
    return resources.files("kubernetes_validate") / "kubernetes-json-schema" / SCHEMA_VERSION


@functools.cache
def _definitions_json() -> dict[str, Any]:
    # 1.3 MB shared by every kind and by both validators: parse it once per process.
    defs: dict[str, Any] = json.loads((_schema_dir() / "_definitions.json").read_text())
    return defs


@functools.cache
def _definitions() -> Resource[Any]:
    return Resource.from_contents(_definitions_json())


@functools.cache
def _kind_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    """One kind's schema, read once for both validators (neither changes it)."""
    group_version = api_version.split("/")
    group = group_version[0].split(".")[0] if len(group_version) == 2 else ""
    version = group_version[-1]
    name = f"{kind.lower()}-{group + '-' if group else ''}{version}.json"
    try:
        schema: dict[str, Any] = json.loads((_schema_dir() / name).read_text())
    except FileNotFoundError:
        return None
    return schema


@functools.cache
def _validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    schema = _kind_schema(api_version, kind)
    if schema is None:
        return None
    reg: RefRegistry[Any] = _definitions() @ (Resource.from_contents(schema) @ RefRegistry())
    return jsonschema.Draft202012Validator(schema, registry=reg, format_checker=_FORMATS)


@functools.cache
def _fast_registry() -> jsonschema_rs.Registry:
    defs = _definitions_json()
    return jsonschema_rs.Registry([(defs["$id"], defs)])


@functools.cache
def _fast_validator(api_version: str, kind: str) -> jsonschema_rs.Draft202012Validator | None:
    schema = _kind_schema(api_version, kind)
    if schema is None:
        return None
    return jsonschema_rs.Draft202012Validator(
        schema,
        registry=_fast_registry(),
        validate_formats=True,
        formats={"byte": _is_byte},
    )


def _valid(obj: dict[str, Any], kind: Kind) -> bool:
    """The same schema, checked by jsonschema-rs: ~2 us for a pod where the Python
    validator takes ~260 (a thousand pods' writes and Events spent a fifth of the
    daemon's ramp there; benchmarks/README.md, "Scale"). Only a yes is taken from
    it: it is at least as strict (it also checks the formats it knows), so any
    other answer goes to the Python validator, which words the API server's errors."""
    fast = _fast_validator(kind.api_version, kind.kind)
    if fast is None:
        return False
    try:
        return bool(fast.is_valid(obj))
    except (ValueError, TypeError):  # what JSON cannot hold (a YAML date): the slow path
        return False


@functools.cache
def openapi_definitions() -> dict[str, Any]:
    """Every definition of the official OpenAPI document for SCHEMA_VERSION, by its
    name (`io.k8s.api.apps.v1.Deployment`), as kubernetes-validate converted it: the
    non-strict variant, whose objects keep the upstream descriptions, `required`
    and the x-kubernetes-* extensions (group-version-kind, patch strategy and merge
    key, list type) unchanged. The API server's /openapi documents are built from
    these (api/openapi.py), so the schemas kubectl reads are the ones svcnet checks.
    """
    base = SCHEMA_VERSION.removesuffix("-strict")
    path = resources.files("kubernetes_validate") / "kubernetes-json-schema" / base
    defs: dict[str, Any] = json.loads((path / "_definitions.json").read_text())["$defs"]
    return defs


_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def base64_error_at(text: str) -> int | None:
    """Where Go's StdEncoding stops on text ([]byte's JSON form), or None if it decodes."""
    raw = text.encode()
    body = raw.rstrip(b"=")
    for i, c in enumerate(body):
        if c not in _B64:
            return i
    pad = len(raw) - len(body)
    if len(raw) % 4 or pad > 2 or (pad and len(body) % 4 in (0, 1)):
        return len(raw) - len(raw) % 4 if len(raw) % 4 else len(body)
    try:
        base64.b64decode(raw, validate=True)
    except binascii.Error:
        return len(body)
    return None


_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("byte")
def _is_byte(value: object) -> bool:
    # Only strings reach here as byte-format; other types fail the type check first.
    return not isinstance(value, str) or base64_error_at(value) is None


_REQUIRED_BY_VALIDATION = frozenset(
    {("Ingress", "pathType"), ("NetworkPolicy", "podSelector")}
    | {
        # Go structs and ints that decode as zero: validation says what is wrong.
        ("HorizontalPodAutoscaler", f)
        for f in (
            "scaleTargetRef",
            "kind",
            "name",
            "maxReplicas",
            "type",
            "target",
            "value",
            "periodSeconds",
        )
    }
)
"""Fields the OpenAPI schema marks required whose absence the API server's validation
reports in words of its own ("pathType must be specified"), or, being a Go struct
and no pointer, decodes as its zero value (a NetworkPolicy's podSelector: every
pod): left to validation.py and defaults.py."""


def unknown_fields(obj: dict[str, Any], kind: Kind) -> list[list[Any]]:
    """The paths of the fields the kind's schema does not know, in the order the
    API server's decoder reports them (what fieldValidation=Warn warns about and
    Ignore drops)."""
    if _valid(obj, kind):
        return []
    v = _validator(kind.api_version, kind.kind)
    if v is None:
        return []
    out: list[list[Any]] = []
    for e in sorted(v.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        if e.validator == "additionalProperties" and isinstance(e.instance, dict):
            sch: dict[str, Any] = e.schema if isinstance(e.schema, dict) else {}
            known = set(sch.get("properties") or {})
            out.extend([*e.absolute_path, x] for x in sorted(set(e.instance) - known))
    return out


def check(obj: dict[str, Any], kind: Kind, *, strict: bool = True) -> None:
    """Raise ApiError (400 BadRequest, or 422 for missing required fields)."""
    if _valid(obj, kind):
        return
    v = _validator(kind.api_version, kind.kind)
    if v is None:
        return
    unknown: list[str] = []
    decode: list[Cause] = []
    required: list[Cause] = []
    for e in sorted(v.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        path = list(e.absolute_path)
        where = field_path(path)
        sch: dict[str, Any] = e.schema if isinstance(e.schema, dict) else {}
        instance: Any = e.instance
        if e.validator == "additionalProperties":
            extra = sorted(set(instance) - set(sch.get("properties") or {}))
            unknown.extend(field_path([*path, x]) for x in extra)
        elif e.validator == "required":
            missing = str(e.message).split("'")[1]
            if (kind.kind, missing) in _REQUIRED_BY_VALIDATION:
                continue
            required.append(
                Cause(field_path([*path, missing]), "FieldValueRequired", "Required value")
            )
        elif e.validator in ("type", "oneOf", "anyOf"):
            got = _JSON_TYPES.get(type(e.instance), "value")
            go_field = ".".join([kind.kind, *(str(p) for p in path if not isinstance(p, int))])
            decode.append(
                Cause(
                    where,
                    "FieldValueTypeInvalid",
                    f"json: cannot unmarshal {got} into Go struct field {go_field} of type "
                    f"{_go_type(sch, path, kind)}",
                )
            )
        elif e.validator == "format" and sch.get("format") == "byte":
            # []byte fields (Secret data, ConfigMap binaryData) fail in the JSON decoder.
            at = base64_error_at(str(e.instance))
            decode.append(
                Cause(where, "FieldValueInvalid", f"illegal base64 data at input byte {at}")
            )
        elif e.validator == "enum":
            allowed = ", ".join(f'"{x}"' for x in sch.get("enum") or [])
            required.append(
                Cause(
                    where,
                    "FieldValueNotSupported",
                    f'Unsupported value: "{e.instance}": supported values: {allowed}',
                )
            )
        else:
            decode.append(Cause(where, "FieldValueInvalid", str(e.message)))
    prefix = f'{kind.kind} in version "{kind.version}" cannot be handled as a {kind.kind}: '
    if decode:
        # The real decoder stops at the first type error it meets.
        c = decode[0]
        raise ApiError(400, "BadRequest", prefix + c.message, {}, [c])
    if unknown and strict:
        msg = "strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown)
        causes = [Cause(u, "FieldValueInvalid", f'unknown field "{u}"') for u in unknown]
        raise ApiError(400, "BadRequest", prefix + msg, {}, causes)
    if required:
        name = ""
        md = obj.get("metadata")
        if isinstance(md, dict):
            name = str(md.get("name") or "")
        from svcnet.registry.errors import invalid

        raise invalid(kind, name, required)
