from __future__ import annotations

import builtins
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from svcnet import _json
from svcnet.k8s import kinds, names
from svcnet.k8s.objects import Obj
from svcnet.k8s.timestamps import rfc3339
from svcnet.store.wal import Wal

logger = logging.getLogger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
Key = tuple[str, str, str]  # (kind, namespace or "", name)


class StoreError(Exception):
    """Raised for AlreadyExists / NotFound / Conflict; the API maps them to Status."""

    def __init__(self, reason: Literal["AlreadyExists", "NotFound", "Conflict"], key: Key):
        super().__init__(f"{reason}: {key}")
        self.reason = reason
        self.key = key


@dataclass(frozen=True)
class Event:
    type: EventType
    kind: str
    obj: Obj  # the new state; for DELETED the last state
    old: Obj | None
    rv: int
    memo: dict[str, object] = field(default_factory=dict, compare=False, repr=False)
    """What a reader derived from the event, for the readers after it: three
    controllers ask which Services a pod write concerns (selection.py)."""

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"].get("namespace", ""))

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])


IndexFunc = Callable[[Obj], Iterable[str]]
"""The values an object is filed under in a secondary index (client-go's IndexFunc)."""


@dataclass
class _Index:
    kind: str
    fn: IndexFunc
    keys: dict[str, set[Key]]
    """value -> the objects filed under it"""


def now_rfc3339() -> str:
    return rfc3339(time.time())


def key_of(obj: Obj) -> Key:
    md = obj["metadata"]
    return (str(obj["kind"]), str(md.get("namespace") or ""), str(md["name"]))


# Fields the server owns; a change limited to these is not a change of the object.
_VOLATILE = ("resourceVersion", "generation")


def _same(a: Obj, b: Obj) -> bool:
    """Whether an update changes nothing but the server's bookkeeping. Field by
    field, so that the usual write (a status change) stops at the first difference
    without copying either object."""
    if a.keys() - {"metadata"} != b.keys() - {"metadata"}:
        return False
    for k, v in a.items():
        if k != "metadata" and v != b[k]:
            return False
    ma: Obj = a.get("metadata") or {}
    mb: Obj = b.get("metadata") or {}
    for k in ma.keys() | mb.keys():
        if k not in _VOLATILE and k != "managedFields" and ma.get(k) != mb.get(k):
            return False
    fa, fb = ma.get("managedFields"), mb.get("managedFields")
    if fa == fb:
        return True
    if not isinstance(fa, list) or not isinstance(fb, list) or len(fa) != len(fb):
        return False
    # A re-apply that only refreshes managedFields' timestamps changes nothing,
    # but a change of which manager owns a field is a real change (SSA).
    return all(
        {k: v for k, v in x.items() if k != "time"} == {k: v for k, v in y.items() if k != "time"}
        for x, y in zip(fa, fb, strict=True)
    )


class ReadOnlyStore(Protocol):
    """What every component but the registry holds of the store: reads and
    subscriptions. Writes go through ``svcnet.registry.Registry``, which is the
    only holder of the whole ``Store`` (docs/architecture.md, "One writer")."""

    @property
    def resource_version(self) -> int: ...

    def get(self, kind: str, namespace: str, name: str) -> Obj | None: ...

    def list(self, kind: str, namespace: str | None = None) -> builtins.list[Obj]: ...

    def changes(self, kind: str, namespace: str) -> int: ...

    def __iter__(self) -> Iterator[Obj]: ...

    def index(self, name: str, kind: str, fn: IndexFunc) -> None: ...

    def by_index(self, name: str, value: str) -> builtins.list[Obj]: ...

    def events_since(self, rv: int) -> builtins.list[Event] | None: ...

    def subscribe(self, fn: Callable[[Event], None]) -> Callable[[], None]: ...


class Store:
    def __init__(self, history: int = 10000, wal: Wal | None = None) -> None:
        self._wal = wal
        """Where changes are kept across restarts (wal.py); None keeps them in memory only."""
        self._objects: dict[Key, Obj] = {}
        self._buckets: dict[str, dict[str, dict[str, Obj]]] = {}
        """kind -> namespace -> name -> object: a list reads only what it asks for."""
        self._order: dict[tuple[str, str], builtins.list[str]] = {}
        """(kind, namespace) -> its names sorted, kept until a create or delete there."""
        self._indexes: dict[str, _Index] = {}
        self._rv = 0
        self._history: deque[Event] = deque(maxlen=history)
        self._subscribers: list[Callable[[Event], None]] = []
        self._changes: dict[tuple[str, str], int] = {}

    # --- reads -------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self._objects.get((kind, namespace, name))

    def list(self, kind: str, namespace: str | None = None) -> builtins.list[Obj]:
        """Objects of a kind, in one namespace or (None) all, sorted by namespace/name.
        Costs what it returns: objects of other kinds and namespaces are not looked at,
        and the sorted order of a namespace is kept between creates and deletes."""
        by_ns = self._buckets.get(kind)
        if not by_ns:
            return []
        spaces = [namespace] if namespace is not None else sorted(by_ns)
        out: list[Obj] = []
        for ns in spaces:
            bucket = by_ns.get(ns)
            if not bucket:
                continue
            order = self._order.get((kind, ns))
            if order is None:
                order = self._order[(kind, ns)] = sorted(bucket)
            out.extend(bucket[n] for n in order)
        return out

    # --- secondary indexes ---------------------------------------------------

    def index(self, name: str, kind: str, fn: IndexFunc) -> None:
        """File every object of `kind` under the values fn gives, kept current by every
        write from now on (an informer's Indexer). Adding an index of a name that
        exists keeps the existing one."""
        if name in self._indexes:
            return
        idx = self._indexes[name] = _Index(kind, fn, {})
        for ns_bucket in self._buckets.get(kind, {}).values():
            for obj in ns_bucket.values():
                self._file(idx, obj)

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        """The objects filed under value in the index called name, by namespace/name."""
        keys = self._indexes[name].keys.get(value)
        if not keys:
            return []
        return [self._objects[k] for k in sorted(keys, key=lambda k: (k[1], k[2]))]

    @staticmethod
    def _file(idx: _Index, obj: Obj) -> None:
        key = key_of(obj)
        for value in idx.fn(obj):
            idx.keys.setdefault(value, set()).add(key)

    @staticmethod
    def _unfile(idx: _Index, obj: Obj) -> None:
        key = key_of(obj)
        for value in idx.fn(obj):
            keys = idx.keys.get(value)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del idx.keys[value]

    def _put(self, key: Key, obj: Obj, old: Obj | None) -> None:
        """Keep the buckets and indexes in step with one write."""
        kind, ns, name = key
        self._objects[key] = obj
        bucket = self._buckets.setdefault(kind, {}).setdefault(ns, {})
        if name not in bucket:
            self._order.pop((kind, ns), None)
        bucket[name] = obj
        for idx in self._indexes.values():
            if idx.kind == kind:
                if old is not None:
                    self._unfile(idx, old)
                self._file(idx, obj)

    def _drop(self, key: Key, old: Obj) -> None:
        kind, ns, name = key
        by_ns = self._buckets.get(kind, {})
        bucket = by_ns.get(ns, {})
        bucket.pop(name, None)
        if not bucket:
            by_ns.pop(ns, None)
        self._order.pop((kind, ns), None)
        for idx in self._indexes.values():
            if idx.kind == kind:
                self._unfile(idx, old)

    def __iter__(self) -> Iterator[Obj]:
        return iter(list(self._objects.values()))

    def events_since(self, rv: int) -> builtins.list[Event] | None:
        """Changes after rv, or None when history no longer reaches back that far."""
        if rv >= self._rv:
            return []
        if not self._history or self._history[0].rv > rv + 1:
            return None
        return [e for e in self._history if e.rv > rv]

    # --- subscriptions -----------------------------------------------------

    def subscribe(self, fn: Callable[[Event], None]) -> Callable[[], None]:
        """Call fn synchronously after every change; returns an unsubscribe function."""
        self._subscribers.append(fn)

        def unsubscribe() -> None:
            if fn in self._subscribers:
                self._subscribers.remove(fn)

        return unsubscribe

    def changes(self, kind: str, namespace: str) -> int:
        """How many writes the objects of `kind` in `namespace` have had: a reader that
        derives something from them (a namespace's Service links) knows at this cost
        whether to derive it again."""
        return self._changes.get((kind, namespace), 0)

    def _emit(self, ev: Event) -> None:
        key = (ev.kind, ev.namespace)
        self._changes[key] = self._changes.get(key, 0) + 1
        self._history.append(ev)
        if self._wal is not None:
            self._wal.record(ev.kind, ev.obj, ev.type == "DELETED")
        for fn in list(self._subscribers):
            try:
                fn(ev)
            except Exception:
                # One broken reader must not stop the others from seeing the change.
                logger.exception("store subscriber %r failed on %s", fn, ev.type)

    # --- writes ------------------------------------------------------------

    def create(self, obj: Obj, *, owned: bool = False) -> Obj:
        """Store a new object; returns it as stored. owned: as for update."""
        if not owned:
            obj = _json.copy(obj)
        self._name(obj)
        key = key_of(obj)
        if key in self._objects:
            raise StoreError("AlreadyExists", key)
        self._rv += 1
        self._fill_new(obj)
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._put(key, obj, None)
        self._emit(Event("ADDED", key[0], obj, None, self._rv))
        return obj

    def _name(self, obj: Obj) -> None:
        md = obj.setdefault("metadata", {})
        if not md.get("name") and md.get("generateName"):
            for _ in range(10):
                md["name"] = names.generate_name(md["generateName"])
                if key_of(obj) not in self._objects:
                    break

    @staticmethod
    def _fill_new(obj: Obj) -> None:
        md = obj["metadata"]
        # The registry may have chosen the uid already (a Job's selector is made of it).
        md["uid"] = md.get("uid") or str(uuid.uuid4())
        md.setdefault("creationTimestamp", now_rfc3339())
        kind = obj.get("kind")
        if ("spec" in obj and kind not in kinds.WITHOUT_GENERATION) or (
            kind in kinds.GENERATION_OF_BODY
        ):
            md["generation"] = 1

    @staticmethod
    def _carry(obj: Obj, old: Obj) -> None:
        """What an update keeps of the live object, and the generation it bumps."""
        md = obj["metadata"]
        for f in ("uid", "creationTimestamp"):
            md[f] = old["metadata"][f]
        if "generation" in old["metadata"]:
            md["generation"] = old["metadata"]["generation"]
            body = kinds.GENERATION_OF_BODY.get(str(obj.get("kind")))
            if body is not None:
                labels_now, labels_were = md.get("labels"), old["metadata"].get("labels")
                changed = labels_now != labels_were or any(obj.get(f) != old.get(f) for f in body)
            else:
                changed = obj.get("spec") != old.get("spec")
            if changed:
                md["generation"] += 1
        md["resourceVersion"] = old["metadata"]["resourceVersion"]

    def preview(self, obj: Obj) -> Obj:
        """What create (no live object by that name) or update would store, stored
        nowhere: the answer to a dryRun=All write. As the API server's dry-run
        storage does, a new object gets its name, uid, creationTimestamp and
        generation but no resourceVersion; an update keeps the live one."""
        obj = _json.copy(obj)
        self._name(obj)
        key = key_of(obj)
        old = self._objects.get(key)
        if old is None:
            self._fill_new(obj)
            obj["metadata"].pop("resourceVersion", None)
            return obj
        self._carry(obj, old)
        return _json.copy(old) if _same(obj, old) else obj

    def restore(self, obj: Obj) -> Obj:
        """Put back an object this store held before a restart (read from its log):
        it keeps its uid, creationTimestamp and generation, so owner references and
        ages still hold; it gets a new resourceVersion like any change."""
        obj = _json.copy(obj)
        md = obj["metadata"]
        key = key_of(obj)
        if key in self._objects or not md.get("uid"):
            raise StoreError("AlreadyExists", key)
        self._rv += 1
        md["resourceVersion"] = str(self._rv)
        md.setdefault("creationTimestamp", now_rfc3339())
        self._put(key, obj, None)
        self._emit(Event("ADDED", key[0], obj, None, self._rv))
        return obj

    def update(self, obj: Obj, *, check_rv: bool = False, owned: bool = False) -> Obj:
        """Replace an object. Returns the stored object; unchanged input is a no-op.
        owned: obj is the caller's own fresh copy, which the store may keep as it is."""
        if not owned:
            obj = _json.copy(obj)
        key = key_of(obj)
        old = self._objects.get(key)
        if old is None:
            raise StoreError("NotFound", key)
        md = obj["metadata"]
        if check_rv and md.get("resourceVersion") not in (None, old["metadata"]["resourceVersion"]):
            raise StoreError("Conflict", key)
        self._carry(obj, old)
        if _same(obj, old):
            return old
        self._rv += 1
        md["resourceVersion"] = str(self._rv)
        self._put(key, obj, old)
        self._emit(Event("MODIFIED", key[0], obj, old, self._rv))
        return obj

    def mutate(self, kind: str, namespace: str, name: str, fn: Callable[[Obj], None]) -> Obj:
        """Copy the live object, let fn change the copy, and store it."""
        cur = self._objects.get((kind, namespace, name))
        if cur is None:
            raise StoreError("NotFound", (kind, namespace, name))
        new = _json.copy(cur)
        fn(new)
        return self.update(new)

    def delete(self, kind: str, namespace: str, name: str) -> Obj:
        key = (kind, namespace, name)
        old = self._objects.pop(key, None)
        if old is None:
            raise StoreError("NotFound", key)
        self._drop(key, old)
        self._rv += 1
        last = _json.copy(old)
        last["metadata"]["resourceVersion"] = str(self._rv)
        self._emit(Event("DELETED", kind, last, old, self._rv))
        return last
