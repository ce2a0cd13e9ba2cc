"""ControllerRevisions, the StatefulSet and DaemonSet controllers' history
(k/k pkg/controller/history, statefulset's stateful_set_utils.go and
daemon's update.go).

A revision holds the owner's pod template as the strategic merge patch that
restores it (`{"spec":{"template":{...,"$patch":"replace"}}}`, which `kubectl
rollout undo` sends back as it is), a revision number, the template's labels
and the owner's annotations (so `kubernetes.io/change-cause` shows in `rollout
history`). A template seen before gets its old revision back, renumbered as
the newest; revisions beyond `revisionHistoryLimit` that no pod runs are
deleted, oldest first.

Names: a StatefulSet's revision is `<sts>-<hash of the patch>` (FNV-1 over
the patch's JSON and the collision count, as history.HashControllerRevision),
and its pods' controller-revision-hash label is that name; a DaemonSet's is
`<ds>-<hash of the template>` (controller.ComputeHash) and its pods' label is
the hash alone.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from svcnet.controllers.rollout import as_go, compute_hash
from svcnet.controllers.selection import controlled_by
from svcnet.k8s.names import safe_encode
from svcnet.k8s.objects import Obj
from svcnet.k8s.owners import controller_ref
from svcnet.k8s.wellknown import CONTROLLER_REVISION_HASH
from svcnet.registry import ApiError, Registry
from svcnet.store import ReadOnlyStore

REVISION_HASH = "controller.kubernetes.io/hash"
"""history.ControllerRevisionHashLabel: a StatefulSet revision's hash."""

DEFAULT_HISTORY_LIMIT = 10


def go_json(value: Any) -> bytes:
    """encoding/json's bytes for a map: sorted keys, no spaces, HTML characters escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(ch, esc)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def fnv32(data: bytes, h: int = 0x811C9DC5) -> int:
    """FNV-1 (hash/fnv.New32), which HashControllerRevision uses."""
    for b in data:
        h = ((h * 0x01000193) & 0xFFFFFFFF) ^ b
    return h


def patch_of(owner: Obj) -> Obj:
    """getPatch: the strategic merge patch that puts the owner's template back."""
    template = copy.deepcopy(as_go((owner.get("spec") or {}).get("template") or {}))
    md = template.setdefault("metadata", {})
    md.setdefault("creationTimestamp", None)  # metav1.Time's zero value, as Go writes it
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def template_of(revision: Obj) -> Obj:
    """The pod template a revision holds (ApplyRevision)."""
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    md = template.get("metadata")
    if isinstance(md, dict) and md.get("creationTimestamp", 0) is None:
        del md["creationTimestamp"]
    return template


def revision_number(cr: Obj) -> int:
    return int(cr.get("revision") or 0)


def sort_key(cr: Obj) -> tuple[int, str, str]:
    """byRevision: revision, then creation time, then name."""
    md = cr["metadata"]
    return revision_number(cr), str(md.get("creationTimestamp") or ""), str(md["name"])


def history_limit(owner: Obj) -> int:
    limit = (owner.get("spec") or {}).get("revisionHistoryLimit")
    return DEFAULT_HISTORY_LIMIT if limit is None else int(limit)


class History:
    """One owner kind's revisions, read from the store and written through the registry."""

    def __init__(self, registry: Registry, store: ReadOnlyStore, daemonset: bool) -> None:
        self.registry = registry
        self.store = store
        self.daemonset = daemonset
        """DaemonSet naming (template hash, label = hash) rather than StatefulSet's."""

    def revisions_of(self, owner: Obj) -> list[Obj]:
        return sorted(controlled_by(self.store, "ControllerRevision", owner), key=sort_key)

    def label_of(self, revision: Obj) -> str:
        """The controller-revision-hash label value of this revision's pods."""
        if self.daemonset:
            return str((revision["metadata"].get("labels") or {}).get(CONTROLLER_REVISION_HASH))
        return str(revision["metadata"]["name"])

    def _name_and_hash(self, owner: Obj, data: Obj, collisions: int) -> tuple[str, str]:
        if self.daemonset:
            h = compute_hash(as_go(owner["spec"]["template"]), collisions)
        else:
            h = safe_encode(str(fnv32(go_json(data) + str(collisions).encode())))
        return f"{owner['metadata']['name'][:223]}-{h}", h

    def sync(self, owner: Obj, bump_collisions: Callable[[int], None]) -> tuple[Obj, list[Obj]]:
        """The update revision (created, or an equal older one renumbered as the
        newest), and every revision of the owner. `bump_collisions` records a new
        collisionCount in the owner's status when a name is taken."""
        revisions = self.revisions_of(owner)
        data = patch_of(owner)
        equal = [cr for cr in revisions if cr.get("data") == data]
        next_number = (revision_number(revisions[-1]) if revisions else 0) + 1
        if equal:
            update = equal[-1]
            if update is not revisions[-1] and revision_number(update) < next_number:
                update = self._renumber(update, next_number)
                revisions = self.revisions_of(owner)
            return update, revisions
        collisions = int((owner.get("status") or {}).get("collisionCount") or 0)
        md = owner["metadata"]
        while True:
            name, h = self._name_and_hash(owner, data, collisions)
            labels = dict(
                ((owner["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
            )
            labels[CONTROLLER_REVISION_HASH if self.daemonset else REVISION_HASH] = h
            cr_md: Obj = {
                "name": name,
                "namespace": md["namespace"],
                "labels": labels,
                "ownerReferences": [controller_ref(owner)],
            }
            if md.get("annotations"):
                cr_md["annotations"] = dict(md["annotations"])
            cr = {
                "apiVersion": "apps/v1",
                "kind": "ControllerRevision",
                "metadata": cr_md,
                "data": data,
                "revision": next_number,
            }
            try:
                created = self.registry.create(cr, namespace=md["namespace"])
            except ApiError as e:
                if e.code != 409:
                    raise
                taken = self.store.get("ControllerRevision", md["namespace"], name)
                if taken is not None and taken.get("data") == data:
                    return taken, self.revisions_of(owner)
                collisions += 1
                bump_collisions(collisions)
                continue
            return created, self.revisions_of(owner)

    def _renumber(self, cr: Obj, number: int) -> Obj:
        def put(o: Obj) -> None:
            o["revision"] = number

        md = cr["metadata"]
        return self.registry.modify("ControllerRevision", md["namespace"], md["name"], put)

    def truncate(self, owner: Obj, revisions: list[Obj], live: set[str]) -> None:
        """truncateHistory / cleanupHistory: keep revisionHistoryLimit revisions
        that nothing runs (`live`: revision names in use), deleting the oldest."""
        old = [cr for cr in revisions if cr["metadata"]["name"] not in live]
        excess = len(old) - history_limit(owner)
        for cr in old[: max(0, excess)]:
            md = cr["metadata"]
            try:
                self.registry.delete("ControllerRevision", md["namespace"], md["name"])
            except ApiError:
                pass  # gone already
