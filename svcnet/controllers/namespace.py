"""Namespace controller: a Terminating namespace goes once nothing is left in it.

Deleting a namespace (registry.py) marks it Terminating and deletes its
contents; pods take their grace period to stop. Each time something in a
Terminating namespace disappears, this finishes the deletion if it was the
last object, as kube-controller-manager's namespace controller removes the
``kubernetes`` finalizer. At start-up it also finishes namespaces a previous
run left Terminating.
"""

from __future__ import annotations

from collections.abc import Iterable

from svcnet.controllers.base import Controller, Key
from svcnet.registry import ApiError
from svcnet.store import Event


class NamespaceController(Controller):
    name = "namespace-controller"
    owns = "Namespace"

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.kind == "Namespace":
            return [("", ev.name)] if ev.type != "DELETED" else ()
        if ev.type == "DELETED" and ev.namespace:
            return [("", ev.namespace)]
        return ()

    def sync(self, key: Key) -> None:
        ns = self.store.get("Namespace", "", key[1])
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        try:
            self.registry.delete("Namespace", "", key[1])
        except ApiError:
            pass  # finished by a concurrent delete
