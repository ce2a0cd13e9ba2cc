"""Garbage collector: cascading deletion by ownerReferences, in the three
propagation policies (pkg/controller/garbagecollector).

- Background: once an owner is gone, a dependent whose owners are all gone is
  deleted; one that still has a live owner only loses the dangling reference.
- Orphan: an owner being deleted with the ``orphan`` finalizer has its
  reference removed from every dependent, then loses the finalizer (and so
  goes); the dependents stay.
- Foreground: an owner being deleted with ``foregroundDeletion`` has its
  dependents deleted (in the foreground too, so a Deployment waits for its
  ReplicaSets, which wait for their pods' grace periods); it loses the
  finalizer once no dependent whose reference has ``blockOwnerDeletion`` is
  left. Dependents without it do not hold the owner and go after it.

Keys are ``("", "")`` for a sweep after deletions and ``(kind, "ns/name")``
for an owner whose deletion waits on the collector.
"""

from __future__ import annotations

from collections.abc import Iterable

from svcnet.controllers.base import Controller, Key
from svcnet.k8s import kinds
from svcnet.k8s.objects import Obj
from svcnet.k8s.owners import owner_refs
from svcnet.k8s.wellknown import FOREGROUND_FINALIZER, ORPHAN_FINALIZER
from svcnet.registry import ApiError
from svcnet.store import Event

_SWEEP: Key = ("", "")
_GC_FINALIZERS = (ORPHAN_FINALIZER, FOREGROUND_FINALIZER)


_OWNER_INDEX = "gc.owner."


def _owner_uids(obj: Obj) -> list[str]:
    return [str(r.get("uid")) for r in owner_refs(obj)]


def _ident(obj: Obj) -> tuple[str, str, str]:
    md = obj["metadata"]
    return str(obj["kind"]), str(md.get("namespace") or ""), str(md["name"])


class GarbageCollector(Controller):
    name = "garbage-collector"

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self._gone: set[str] = set()
        for k in kinds.KINDS:
            if k.stored and not k.storage_version:
                # Dependents by their owners' uids: nothing scans the store.
                self.store.index(_OWNER_INDEX + k.kind, k.kind, _owner_uids)

    def initial_keys(self) -> Iterable[Key]:
        # Owners a previous run left waiting (their finalizers were kept).
        return [
            self._owner_key(*_ident(o))
            for o in self.store
            if o["metadata"].get("deletionTimestamp")
            and set(o["metadata"].get("finalizers") or ()) & set(_GC_FINALIZERS)
        ]

    @staticmethod
    def _owner_key(kind: str, ns: str, name: str) -> Key:
        return (kind, f"{ns}/{name}")

    def keys_for(self, ev: Event) -> Iterable[Key]:
        out: list[Key] = []
        md = ev.obj["metadata"]
        ns = str(md.get("namespace") or "")
        if ev.type == "DELETED":
            self._gone.add(str(md.get("uid")))
            out.append(_SWEEP)
            # An owner in the foreground waits for exactly this.
            for ref in owner_refs(ev.obj):
                owner = kinds.BY_KIND.get(str(ref.get("kind")))
                if owner is not None:
                    where = ns if owner.namespaced else ""
                    out.append(self._owner_key(owner.kind, where, str(ref.get("name"))))
        elif md.get("deletionTimestamp") and set(md.get("finalizers") or ()) & set(_GC_FINALIZERS):
            out.append(self._owner_key(*_ident(ev.obj)))
        return out

    def sync(self, key: Key) -> None:
        if key == _SWEEP:
            self._sweep()
            return
        kind, where = key
        ns, _, name = where.partition("/")
        owner = self.store.get(kind, ns, name)
        if owner is None or not owner["metadata"].get("deletionTimestamp"):
            return
        finalizers = owner["metadata"].get("finalizers") or ()
        if ORPHAN_FINALIZER in finalizers:
            self._orphan(owner)
        elif FOREGROUND_FINALIZER in finalizers:
            self._foreground(owner)

    def _owned_by(self, uid: str) -> list[Obj]:
        return [
            o
            for k in kinds.KINDS
            if k.stored and not k.storage_version
            for o in self.store.by_index(_OWNER_INDEX + k.kind, uid)
        ]

    def _dependents(self, owner: Obj) -> list[tuple[Obj, Obj]]:
        """(dependent, its reference to owner) for every object owner owns."""
        uid = str(owner["metadata"].get("uid"))
        ns = owner["metadata"].get("namespace")
        out = []
        for obj in self._owned_by(uid):
            if ns and obj["metadata"].get("namespace") != ns:
                continue
            ref = next(r for r in owner_refs(obj) if str(r.get("uid")) == uid)
            out.append((obj, ref))
        return out

    def _alive(self, ref: Obj, ns: str) -> bool:
        kind = kinds.BY_KIND.get(str(ref.get("kind")))
        if kind is None:
            return True  # a kind svcnet does not serve: not ours to judge (nor to collect)
        owner = self.store.get(kind.kind, ns if kind.namespaced else "", str(ref.get("name")))
        return owner is not None and owner["metadata"].get("uid") == ref.get("uid")

    def _drop_finalizer(self, owner: Obj, finalizer: str) -> None:
        kind, ns, name = _ident(owner)

        def drop(o: Obj) -> None:
            left = [f for f in o["metadata"].get("finalizers") or () if f != finalizer]
            if left:
                o["metadata"]["finalizers"] = left
            else:
                o["metadata"].pop("finalizers", None)

        try:
            self.registry.modify(kind, ns, name, drop)
        except ApiError:
            pass  # gone meanwhile

    def _orphan(self, owner: Obj) -> None:
        uid = owner["metadata"].get("uid")
        for dep, _ in self._dependents(owner):
            kind, ns, name = _ident(dep)

            def unown(o: Obj) -> None:
                refs = [r for r in owner_refs(o) if r.get("uid") != uid]
                if refs:
                    o["metadata"]["ownerReferences"] = refs
                else:
                    o["metadata"].pop("ownerReferences", None)

            try:
                self.registry.modify(kind, ns, name, unown)
            except ApiError:
                pass  # gone meanwhile: nothing left to orphan
        self._drop_finalizer(owner, ORPHAN_FINALIZER)

    def _foreground(self, owner: Obj) -> None:
        blocking = 0
        for dep, ref in self._dependents(owner):
            if ref.get("blockOwnerDeletion"):
                blocking += 1
            if dep["metadata"].get("deletionTimestamp"):
                continue
            kind, ns, name = _ident(dep)
            try:
                self.registry.delete(kind, ns, name, propagation_policy="Foreground")
            except ApiError:
                pass  # gone meanwhile
        if not blocking:
            self._drop_finalizer(owner, FOREGROUND_FINALIZER)

    def _sweep(self) -> None:
        gone, self._gone = self._gone, set()
        # Only dependents of owners deleted since the last sweep are looked at: a
        # dependent restored before its owner, say, is not collected at start.
        seen: set[tuple[str, str, str]] = set()
        candidates = []
        for uid in sorted(gone):
            for obj in self._owned_by(uid):
                if _ident(obj) not in seen:
                    seen.add(_ident(obj))
                    candidates.append(obj)
        for obj in candidates:
            kind, ns, name = _ident(obj)
            refs = list(owner_refs(obj))
            absent = [r for r in refs if not self._alive(r, ns)]
            if not absent:
                continue
            try:
                if len(absent) == len(refs):
                    if not obj["metadata"].get("deletionTimestamp"):
                        self.registry.delete(kind, ns, name, propagation_policy="Background")
                else:
                    dangling = {str(r.get("uid")) for r in absent}

                    def prune(o: Obj, dangling: set[str] = dangling) -> None:
                        o["metadata"]["ownerReferences"] = [
                            r for r in owner_refs(o) if str(r.get("uid")) not in dangling
                        ]

                    self.registry.modify(kind, ns, name, prune)
            except ApiError:
                pass  # already gone: nothing to collect
