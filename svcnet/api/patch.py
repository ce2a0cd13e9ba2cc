"""PATCH bodies: JSON merge patch, JSON patch and strategic merge patch.

All three are pure functions from (live object, patch) to a new object; the
server reads the live object through the registry, applies one of these and
writes the result back with ``registry.update``, as kube-apiserver's patcher
does.

Strategic merge patch needs to know, per field, whether a list is merged by a
key or replaced. Kubernetes reads that from struct tags of the Go types; here
``SCHEMAS`` is a small hand-written copy of the tags of the fields svcnet's
kinds use (kubectl-api.md section 7). A list not listed there is replaced
whole, which is also what SMP does for lists without a merge key.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from svcnet.k8s.objects import Obj


class PatchError(ValueError):
    """The patch cannot be applied; the message is shown to the client (422)."""


# ---------------------------------------------------------------------------
# RFC 7386 JSON merge patch


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out: Obj = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# ---------------------------------------------------------------------------
# RFC 6902 JSON patch


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'invalid JSON pointer "{path}": must start with "/"')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, *, insert: bool) -> int:
    if insert and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f'invalid array index "{token}"')
    i = int(token)
    if i > len(container) or (not insert and i == len(container)):
        raise PatchError(f"array index {i} out of bounds")
    return i


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    cur = doc
    for t in tokens[:-1]:
        if isinstance(cur, dict):
            if t not in cur:
                raise PatchError(f'doc is missing path: "{path}"')
            cur = cur[t]
        elif isinstance(cur, list):
            cur = cur[_index(cur, t, insert=False)]
        else:
            raise PatchError(f'doc is missing path: "{path}"')
    return cur


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'doc is missing path: "{path}"')
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, insert=False)]
    raise PatchError(f'doc is missing path: "{path}"')


def _remove(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"unable to remove nonexistent key: {last}: missing value")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, insert=False))
    raise PatchError(f'doc is missing path: "{path}"')


def _add(doc: Any, path: str, value: Any, *, replace: bool) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f'doc is missing key: "{path}": missing value')
        parent[last] = value
    elif isinstance(parent, list):
        if replace:
            parent[_index(parent, last, insert=False)] = value
        else:
            parent.insert(_index(parent, last, insert=True), value)
    else:
        raise PatchError(f'doc is missing path: "{path}"')
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation: {op!r}")
        kind, path = op["op"], str(op["path"])
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f'operation "{kind}" on "{path}" needs a value')
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]), replace=False)
        elif kind == "replace":
            doc = _add(doc, path, copy.deepcopy(op["value"]), replace=True)
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
        elif kind in ("move", "copy"):
            src = str(op.get("from", ""))
            value = _remove(doc, src) if kind == "move" else copy.deepcopy(_get(doc, src))
            doc = _add(doc, path, value, replace=False)
        else:
            raise PatchError(f'unexpected kind of operation: "{kind}"')
    return doc


# ---------------------------------------------------------------------------
# Strategic merge patch


@dataclass(frozen=True)
class Field:
    """The patch strategy of one field (the Go struct tags)."""

    merge_key: str | None = None  # lists of maps merged by this key
    struct: str | None = None  # the schema of the value, or of list items
    primitive_set: bool = False  # a list of scalars merged as a set (finalizers)
    retain_keys: bool = False


@dataclass(frozen=True)
class Schema:
    fields: Mapping[str, Field] = field(default_factory=dict)


_META = Field(struct="ObjectMeta")
_CONDITIONS = Field(merge_key="type")

SCHEMAS: dict[str, Schema] = {
    "ObjectMeta": Schema(
        {
            "ownerReferences": Field(merge_key="uid"),
            "finalizers": Field(primitive_set=True),
        }
    ),
    "Pod": Schema(
        {"metadata": _META, "spec": Field(struct="PodSpec"), "status": Field(struct="PodStatus")}
    ),
    "PodTemplateSpec": Schema({"metadata": _META, "spec": Field(struct="PodSpec")}),
    "PodSpec": Schema(
        {
            "containers": Field(merge_key="name", struct="Container"),
            "initContainers": Field(merge_key="name", struct="Container"),
            "ephemeralContainers": Field(merge_key="name", struct="Container"),
            "volumes": Field(merge_key="name", retain_keys=True),
            "imagePullSecrets": Field(merge_key="name"),
            "hostAliases": Field(merge_key="ip"),
            "topologySpreadConstraints": Field(merge_key="topologyKey"),
        }
    ),
    "Container": Schema(
        {
            "ports": Field(merge_key="containerPort"),
            "env": Field(merge_key="name"),
            "volumeMounts": Field(merge_key="mountPath"),
            "volumeDevices": Field(merge_key="devicePath"),
        }
    ),
    "PodStatus": Schema(
        {
            "conditions": _CONDITIONS,
            "podIPs": Field(merge_key="ip"),
            "hostIPs": Field(merge_key="ip"),
        }
    ),
    "Service": Schema({"metadata": _META, "spec": Field(struct="ServiceSpec")}),
    "ServiceSpec": Schema({"ports": Field(merge_key="port")}),
    "Endpoints": Schema({"metadata": _META}),
    "EndpointSlice": Schema({"metadata": _META}),
    "Namespace": Schema({"metadata": _META, "spec": Field(struct="NamespaceSpec")}),
    "NamespaceSpec": Schema({"finalizers": Field(primitive_set=True)}),
    "Event": Schema({"metadata": _META}),
    "Deployment": Schema(
        {
            "metadata": _META,
            "spec": Field(struct="DeploymentSpec"),
            "status": Field(struct="WorkloadStatus"),
        }
    ),
    "DeploymentSpec": Schema(
        {
            "template": Field(struct="PodTemplateSpec"),
            "strategy": Field(retain_keys=True),
        }
    ),
    "ReplicaSet": Schema(
        {
            "metadata": _META,
            "spec": Field(struct="ReplicaSetSpec"),
            "status": Field(struct="WorkloadStatus"),
        }
    ),
    "ReplicaSetSpec": Schema({"template": Field(struct="PodTemplateSpec")}),
    "WorkloadStatus": Schema({"conditions": _CONDITIONS}),
}

_EMPTY = Schema()
_DELETE = object()  # a `$patch: delete` map: remove it from its parent


def _schema(name: str | None) -> Schema:
    return SCHEMAS.get(name or "", _EMPTY)


def _strip(value: Any) -> Any:
    """A patch value with its directives removed, for places with nothing to merge into."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [
            _strip(v) for v in value if not (isinstance(v, dict) and v.get("$patch") == "delete")
        ]
    return value


def _merge_map(orig: Obj, patch: Obj, schema: Schema) -> Any:
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip({k: v for k, v in patch.items() if k != "$patch"})
    if directive == "delete":
        return _DELETE
    if directive is not None:
        raise PatchError(f"Unknown patch type: {directive}")
    out = copy.deepcopy(orig)
    for key, pv in patch.items():
        if key.startswith("$"):
            continue
        if pv is None:
            out.pop(key, None)
            continue
        f = schema.fields.get(key, Field())
        ov = out.get(key)
        if isinstance(pv, dict):
            merged = _merge_map(ov if isinstance(ov, dict) else {}, pv, _schema(f.struct))
            if merged is _DELETE:
                out.pop(key, None)
            else:
                out[key] = merged
        elif isinstance(pv, list):
            out[key] = _merge_list(ov if isinstance(ov, list) else [], pv, f)
        else:
            out[key] = pv
    for key, pv in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            if isinstance(out.get(name), list) and isinstance(pv, list):
                out[name] = [v for v in out[name] if v not in pv]
    for key, pv in patch.items():
        if key.startswith("$setElementOrder/"):
            name = key.split("/", 1)[1]
            f = schema.fields.get(name, Field())
            if isinstance(out.get(name), list) and isinstance(pv, list):
                out[name] = _reorder(out[name], pv, f.merge_key)
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_list(orig: list[Any], patch: list[Any], f: Field) -> list[Any]:
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [_strip(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    if f.primitive_set:
        out = list(orig)
        out.extend(v for v in patch if v not in out)
        return out
    key = f.merge_key
    if key is None or not all(isinstance(p, dict) for p in patch):
        return [_strip(p) for p in patch]
    out = copy.deepcopy(orig)
    item_schema = _schema(f.struct)
    for item in patch:
        if key not in item:
            if item.get("$patch") == "delete" and len(item) == 1:
                out = []  # `[{"$patch": "delete"}]` deletes the whole list
                continue
            raise PatchError(f"map: {item} does not contain declared merge key: {key}")
        idx = next(
            (i for i, o in enumerate(out) if isinstance(o, dict) and o.get(key) == item[key]),
            None,
        )
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        merged = _merge_map(out[idx] if idx is not None else {}, item, item_schema)
        if merged is _DELETE:
            if idx is not None:
                out.pop(idx)
        elif idx is not None:
            out[idx] = merged
        else:
            out.append(merged)
    return out


def _reorder(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    """`$setElementOrder`: the listed items first in that order, the rest after."""

    def ident(v: Any) -> Any:
        return v.get(key) if key is not None and isinstance(v, dict) else v

    wanted = [ident(o) for o in order]
    placed = [next(i for i in items if ident(i) == w) for w in wanted if w in map(ident, items)]
    rest = [i for i in items if ident(i) not in wanted]
    return placed + rest


def strategic_merge_patch(target: Obj, patch: Any, kind: str) -> Obj:
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    merged = _merge_map(target, patch, _schema(kind))
    if merged is _DELETE:
        raise PatchError("a strategic merge patch cannot delete the object")
    assert isinstance(merged, dict)
    return merged
