"""Field ownership (``metadata.managedFields``) and server-side apply.

A small structured-merge-diff: an object is flattened into *leaf paths*
(field names, and for lists with map semantics the item's key, e.g.
``spec.ports[port=80,protocol="TCP"].targetPort``); atomic lists and scalars
are leaves. Every write that names a field manager records which leaves that
manager set:

- ``Update`` (create, PUT, PATCH): the manager takes the leaves whose value it
  changed (all of them on create); other managers lose those leaves.
- ``Apply`` (server-side apply): the manager's set becomes exactly the leaves
  of its applied configuration. A leaf whose live value differs from the
  applied one and that another manager owns is a conflict (409 with the
  apiserver's message) unless ``force``, which moves ownership. Leaves the
  manager applied before and no longer applies are removed from the object
  unless another manager still owns them. The applied leaves are then set.

The sets are stored in ``metadata.managedFields`` in the ``FieldsV1`` format
the apiserver uses (``{"f:spec":{"f:ports":{"k:{\\"port\\":80,...}":{...}}}}``),
so kubectl's ``--show-managed-fields`` and client libraries read them as usual.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from svcnet.k8s.objects import Obj
from svcnet.k8s.wellknown import LAST_APPLIED

Elem = str  # "f:name" or 'k:{"name":"a"}'
Path = tuple[Elem, ...]

# Lists merged per item (listType=map), by field name; ports pick their key
# from what the items hold (container ports vs. Service ports).
_LIST_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "imagePullSecrets": ("name",),
    "hostAliases": ("ip",),
    "ownerReferences": ("uid",),
    "conditions": ("type",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
}
_DEFAULTED_KEYS = {"protocol": "TCP"}

# The manager `kubectl apply --server-side` uses; the API server treats it
# specially when the object was client-side applied before (see apply()).
KUBECTL = "kubectl"
_MAX_LAST_APPLIED = 1 << 20
_MAX_ENTRIES = 1000
_MAX_DEPTH = 100
# Go's json.Encoder escapes these inside strings (they appear nowhere else).
_GO_HTML_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)

# Server-owned or identity fields never tracked.
_SKIP_TOP = ("apiVersion", "kind", "status")
_TRACKED_METADATA = ("labels", "annotations", "ownerReferences", "finalizers")


def _list_key(name: str, items: list[Any]) -> tuple[str, ...] | None:
    if not items or not all(isinstance(i, dict) for i in items):
        return _LIST_KEYS.get(name)
    if name == "ports":
        if all("containerPort" in i for i in items):
            return ("containerPort", "protocol")
        if all("port" in i for i in items):
            return ("port", "protocol")
        return None
    key = _LIST_KEYS.get(name)
    if key and all(key[0] in i for i in items):
        return key
    return None


def _key_elem(item: Obj, key: tuple[str, ...]) -> Elem:
    values = {k: item.get(k, _DEFAULTED_KEYS.get(k)) for k in key}
    values = {k: v for k, v in values.items() if v is not None}
    return "k:" + json.dumps(values, sort_keys=True, separators=(",", ":"))


def tracked(obj: Obj) -> Obj:
    """The part of an object field ownership covers."""
    out = {k: v for k, v in obj.items() if k not in _SKIP_TOP and k != "metadata"}
    md = obj.get("metadata") or {}
    meta = {k: md[k] for k in _TRACKED_METADATA if k in md}
    if meta:
        out["metadata"] = meta
    return out


def leaves(obj: Any, path: Path = ()) -> dict[Path, Any]:
    """Leaf path -> value for everything in `obj` (call with tracked(obj))."""
    out: dict[Path, Any] = {}
    if isinstance(obj, dict):
        if not obj and path:
            out[path] = {}
        for k, v in obj.items():
            if isinstance(k, str) and k.startswith("$"):
                continue
            elem = f"f:{k}"
            if isinstance(v, list):
                key = _list_key(k, v)
                if key is not None and v:
                    for item in v:
                        item_path = (*path, elem, _key_elem(item, key))
                        # The item itself is owned too (FieldsV1's "."), so that
                        # dropping it from an apply removes it whole.
                        out[item_path] = ITEM
                        out.update(leaves(item, item_path))
                    continue
            if isinstance(v, dict) and v:
                out.update(leaves(v, (*path, elem)))
            else:
                out[(*path, elem)] = copy.deepcopy(v)
    return out


def _find(items: list[Any], elem: Elem) -> int | None:
    want = json.loads(elem[2:])
    for i, item in enumerate(items):
        if isinstance(item, dict) and all(
            item.get(k, _DEFAULTED_KEYS.get(k)) == v for k, v in want.items()
        ):
            return i
    return None


_MISSING = object()


class _Item:
    """Marker value of a list item's own path."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Item)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "ITEM"


ITEM = _Item()


def get(obj: Any, path: Path) -> Any:
    cur = obj
    for elem in path:
        if elem.startswith("f:") and isinstance(cur, dict):
            cur = cur.get(elem[2:], _MISSING)
        elif elem.startswith("k:") and isinstance(cur, list):
            i = _find(cur, elem)
            cur = _MISSING if i is None else cur[i]
        else:
            return _MISSING
        if cur is _MISSING:
            return _MISSING
    return cur


def put(obj: Obj, path: Path, value: Any) -> None:
    cur: Any = obj
    for n, elem in enumerate(path):
        last = n == len(path) - 1
        if elem.startswith("f:"):
            name = elem[2:]
            if last:
                cur[name] = copy.deepcopy(value)
                return
            nxt = path[n + 1]
            if not isinstance(cur.get(name), list if nxt.startswith("k:") else dict):
                cur[name] = [] if nxt.startswith("k:") else {}
            cur = cur[name]
        else:
            i = _find(cur, elem)
            if i is None:
                cur.append(dict(json.loads(elem[2:])))
                i = len(cur) - 1
            cur = cur[i]


def put_item(obj: Obj, path: Path) -> None:
    """Make sure the list item at `path` (ending in its key) exists."""
    parent = get(obj, path[:-1])
    if parent is _MISSING:
        put(obj, path[:-1], [])
        parent = get(obj, path[:-1])
    if isinstance(parent, list) and _find(parent, path[-1]) is None:
        parent.append(dict(json.loads(path[-1][2:])))


def remove(obj: Obj, path: Path) -> None:
    """Delete the leaf; drop list items and maps emptied by it."""
    trail: list[tuple[Any, Any]] = []
    cur: Any = obj
    for elem in path:
        if elem.startswith("f:") and isinstance(cur, dict) and elem[2:] in cur:
            trail.append((cur, elem[2:]))
            cur = cur[elem[2:]]
        elif elem.startswith("k:") and isinstance(cur, list):
            i = _find(cur, elem)
            if i is None:
                return
            trail.append((cur, i))
            cur = cur[i]
        else:
            return
    parent, key = trail.pop()
    del parent[key]
    while trail:
        container, k = trail.pop()
        child = container[k]
        if isinstance(child, dict) and isinstance(container, list):
            # An item left with only its key fields is gone.
            if not child or set(child) <= set(_DEFAULTED_KEYS) | _key_fields(child):
                del container[k]
                continue
        elif isinstance(child, dict | list) and not child:
            del container[k]
            continue
        break


def _key_fields(item: Obj) -> set[str]:
    for key in (*_LIST_KEYS.values(), ("containerPort", "protocol"), ("port", "protocol")):
        if key[0] in item:
            return set(key)
    return set()


# --- FieldsV1 ---------------------------------------------------------------


def encode(paths: Iterable[Path]) -> Obj:
    paths = list(paths)
    root: Obj = {}
    for p in paths:
        cur = root
        for elem in p:
            cur = cur.setdefault(elem, {})
    # "." marks a member that also has members below it (a list item owned whole);
    # an item that only had a field changed is not itself in the set.
    for p in paths:
        node = root
        for elem in p:
            node = node[elem]
        if node and "." not in node:
            below = dict(node)
            node.clear()
            node["."] = {}
            node.update(below)
    return root


def decode(fields: Obj, path: Path = ()) -> set[Path]:
    """The leaf paths of a FieldsV1 set; ValueError if it is not one."""
    if not isinstance(fields, dict) or len(path) > _MAX_DEPTH:
        raise ValueError("not a FieldsV1 set")
    out: set[Path] = set()
    for elem, sub in fields.items():
        if elem == ".":
            continue
        if not isinstance(elem, str) or not elem.startswith(("f:", "k:", "v:", "i:")):
            raise ValueError(f"bad FieldsV1 element {elem!r}")
        if sub is not None and not isinstance(sub, dict):
            raise ValueError("not a FieldsV1 set")
        p = (*path, elem)
        children = {k: v for k, v in (sub or {}).items() if k != "."}
        if children:
            out |= decode(children, p)
        if not children or "." in (sub or {}):
            out.add(p)
    return out


def format_path(path: Path) -> str:
    """`.spec.ports[port=80,protocol="TCP"].targetPort`, as the apiserver prints it."""
    out = []
    for elem in path:
        if elem.startswith("f:"):
            out.append("." + elem[2:])
        else:
            kv = json.loads(elem[2:])
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in kv.items()) + "]")
    return "".join(out)


# --- managers ---------------------------------------------------------------


@dataclass
class Manager:
    manager: str
    operation: str
    api_version: str
    time: str
    paths: set[Path]
    subresource: str = ""

    def entry(self) -> Obj:
        out: Obj = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": encode(sorted(self.paths)),
        }
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def managers_of(obj: Obj | None) -> list[Manager]:
    return parse_entries(((obj or {}).get("metadata") or {}).get("managedFields")) or []


def parse_entries(entries: Any) -> list[Manager] | None:
    """managedFields entries as Managers; None when they cannot be read, which the
    API server treats as if the request had sent none (DecodeManagedFields)."""
    if not isinstance(entries, list) or len(entries) > _MAX_ENTRIES:
        return None
    out = []
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("manager") or "", str):
            return None
        try:
            paths = decode(e.get("fieldsV1") or {})
        except (ValueError, RecursionError):
            return None
        out.append(
            Manager(
                str(e.get("manager") or ""),
                str(e.get("operation") or "Update"),
                str(e.get("apiVersion") or ""),
                str(e.get("time") or ""),
                paths,
                str(e.get("subresource") or ""),
            )
        )
    return out


def is_reset(entries: Any) -> bool:
    """`managedFields: []` (or one empty entry) in a write clears them all."""
    return bool(entries == [] or entries == [{}])


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _store(managers: list[Manager]) -> list[Obj]:
    return [m.entry() for m in managers if m.paths]


def record_update(
    old: Obj | None,
    new: Obj,
    manager: str,
    api_version: str,
    *,
    subresource: str = "",
    base: list[Manager] | None = None,
) -> list[Obj]:
    """managedFields after an Update by `manager` (create when old is None), on top
    of `base` (the entries the request carried) or else the old object's."""
    managers = managers_of(old) if base is None else base
    new_leaves = leaves(tracked(new))
    if old is None:
        changed = set(new_leaves)
    else:
        old_leaves = leaves(tracked(old))
        changed = {p for p, v in new_leaves.items() if old_leaves.get(p, _MISSING) != v}
    gone = set() if old is None else set(leaves(tracked(old))) - set(new_leaves)
    mine: Manager | None = None
    for m in managers:
        m.paths -= gone
        # An Update manager is known by its name, apiVersion and subresource.
        if (m.manager, m.operation, m.api_version, m.subresource) == (
            manager,
            "Update",
            api_version,
            subresource,
        ):
            mine = m
        else:
            m.paths -= changed
    if changed:
        if mine is None:
            mine = Manager(manager, "Update", api_version, _now(), set(), subresource)
            managers.append(mine)
        mine.paths |= changed
        mine.time = _now()
    return _store(managers)


def _identity(m: Manager) -> str:
    """How the API server names a manager in a conflict (managedfields' printManager):
    an Update manager with its apiVersion, an Apply manager by name alone."""
    out = json.dumps(m.manager)
    if m.subresource:
        out += f" with subresource {json.dumps(m.subresource)}"
    if m.operation == "Update":
        out += f" using {m.api_version}"
    return out


def _identity_key(m: Manager) -> tuple[str, str, str, str]:
    # The API server sorts managers by their JSON identifier: name, operation,
    # apiVersion (Update only), subresource.
    return (m.manager, m.operation, m.api_version if m.operation == "Update" else "", m.subresource)


class ApplyConflict(Exception):
    def __init__(self, conflicts: list[tuple[Manager, Path]]) -> None:
        self.conflicts = conflicts
        super().__init__(self.message())

    def message(self) -> str:
        n = len(self.conflicts)
        if n == 1:
            who, p = self.conflicts[0]
            return f"Apply failed with 1 conflict: conflict with {_identity(who)}: {format_path(p)}"
        by: dict[tuple[str, str, str, str], tuple[Manager, list[Path]]] = {}
        for who, p in self.conflicts:
            by.setdefault(_identity_key(who), (who, []))[1].append(p)
        lines = []
        for key in sorted(by):
            who, paths = by[key]
            lines.append(f"conflicts with {_identity(who)}:")
            lines += [f"- {format_path(p)}" for p in paths]
        return f"Apply failed with {n} conflicts: " + "\n".join(lines)

    def causes(self) -> list[tuple[str, str, str]]:
        return [
            ("FieldManagerConflict", f"conflict with {_identity(who)}", format_path(p))
            for who, p in self.conflicts
        ]


def apply(
    live: Obj | None, config: Obj, manager: str, api_version: str, force: bool
) -> tuple[Obj, list[Obj]]:
    """The object after `manager` applies `config`, and its managedFields.
    Raises ApplyConflict."""
    managers = managers_of(live)
    applied = leaves(tracked(config))
    base: Obj = copy.deepcopy(live) if live is not None else {}
    conflicts: list[tuple[Manager, Path]] = []
    for p, v in applied.items():
        if v is ITEM or (live is not None and get(live, p) == v):
            continue
        for m in managers:
            if m.manager == manager and m.operation == "Apply":
                continue
            if p in m.paths:
                conflicts.append((m, p))
    if conflicts and not force:
        allowed = _allowed_by_last_applied(live, manager)
        left = [c for c in conflicts if c[1] not in allowed]
        if left:
            raise ApplyConflict(sorted(left, key=lambda c: (_identity_key(c[0]), c[1])))
        # Every conflict is a field client-side apply set to what is live: kubectl
        # moving to server-side apply takes them over (the API server's
        # lastAppliedManager forces the apply).
        force = True
    mine: Manager | None = None
    for m in managers:
        if m.manager == manager and m.operation == "Apply":
            mine = m
        elif force:
            m.paths -= {p for _, p in conflicts if p in m.paths}
    previous = set() if mine is None else set(mine.paths)
    others = set().union(*(m.paths for m in managers if m is not mine))
    # Shortest first: a whole list item goes before its fields are looked for.
    for p in sorted(previous - set(applied), key=len):
        if p not in others:
            remove(base, p)
    for p, v in applied.items():
        if v is ITEM:
            if get(base, p) is _MISSING:
                put_item(base, p)
        else:
            put(base, p, v)
    for k in ("apiVersion", "kind"):
        if k in config:
            base[k] = config[k]
    md = base.setdefault("metadata", {})
    cmd = config.get("metadata") or {}
    for k in ("name", "namespace", "generateName"):
        if k in cmd and k not in md:
            md[k] = cmd[k]
    if mine is None:
        mine = Manager(manager, "Apply", api_version, _now(), set())
        managers.append(mine)
    mine.paths = set(applied)
    mine.time = _now()
    mine.api_version = api_version
    annotations = md.get("annotations")
    if manager == KUBECTL and isinstance(annotations, dict) and LAST_APPLIED in annotations:
        # lastAppliedUpdater: kubectl's server-side applies keep the client-side
        # annotation in step, so a later client-side apply merges from the right base.
        annotations[LAST_APPLIED] = _last_applied_text(config)
    return base, _store(managers)


def _last_applied(live: Obj | None) -> Obj | None:
    annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
    text = annotations.get(LAST_APPLIED) if isinstance(annotations, dict) else None
    if not isinstance(text, str) or len(text) > _MAX_LAST_APPLIED:
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _allowed_by_last_applied(live: Obj | None, manager: str) -> set[Path]:
    """lastAppliedManager's allowedConflictsFromLastApplied: for manager "kubectl",
    the fields of the last-applied-configuration annotation whose live value is
    still the annotated one; those were set by client-side apply and are not
    conflicts when the same user switches to `kubectl apply --server-side`."""
    last = _last_applied(live) if manager == KUBECTL else None
    if last is None:
        return set()
    out = set()
    for p, v in leaves(tracked(last)).items():
        current = get(live, p)
        if current is not _MISSING and (v is ITEM or current == v):
            out.add(p)
    return out


def _last_applied_text(config: Obj) -> str:
    """buildLastApplied: the applied object without the annotation itself, encoded
    as Go's json.Encoder does (sorted keys, HTML-safe escapes, a newline)."""
    obj = copy.deepcopy(config)
    annotations = (obj.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in _GO_HTML_ESCAPES:
        text = text.replace(ch, esc)
    return text + "\n"
