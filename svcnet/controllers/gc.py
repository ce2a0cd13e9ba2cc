"""Garbage collector: background cascading deletion by ownerReferences."""

from __future__ import annotations

from collections.abc import Iterable

from svcnet.controllers.base import Controller, Key
from svcnet.k8s import kinds
from svcnet.k8s.owners import owner_refs
from svcnet.registry import ApiError
from svcnet.store import Event


class GarbageCollector(Controller):
    name = "garbage-collector"

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self._gone: set[str] = set()

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.type == "DELETED":
            self._gone.add(str(ev.obj["metadata"].get("uid")))
            return [("", "")]
        return ()

    def sync(self, key: Key) -> None:
        gone, self._gone = self._gone, set()
        for obj in list(self.store):
            refs = list(owner_refs(obj))
            if refs and all(r.get("uid") in gone for r in refs):
                kind = kinds.BY_KIND[obj["kind"]]
                md = obj["metadata"]
                try:
                    self.registry.delete(kind, md.get("namespace", ""), md["name"])
                except ApiError:
                    pass  # Already gone: nothing to collect.
