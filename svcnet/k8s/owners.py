"""Owner references: how one object says another controls it.

The ReplicaSet controller owns pods, the Deployment controller owns
ReplicaSets, the EndpointSlice controller's slices are owned by their Service;
the garbage collector, `describe` ("Controlled By") and `rollout` read the same
fields. One builder and one reader here keep them agreeing.
"""

from __future__ import annotations

from collections.abc import Iterator

from svcnet.k8s.objects import Obj


def controller_ref(owner: Obj) -> Obj:
    """The ownerReference a controller puts on what it creates
    (metav1.NewControllerRef: controller and blockOwnerDeletion true)."""
    md = owner["metadata"]
    return {
        "apiVersion": owner.get("apiVersion", "v1"),
        "kind": owner["kind"],
        "name": md["name"],
        "uid": md.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owner_refs(obj: Obj) -> Iterator[Obj]:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if isinstance(ref, dict):
            yield ref


def controller_of(obj: Obj) -> Obj | None:
    """metav1.GetControllerOf: the reference with controller true, if any."""
    # Without owner_refs' generator: every controller asks this of every pod event.
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def is_owned_by(obj: Obj, owner: Obj) -> bool:
    """Whether any of obj's ownerReferences points at owner's uid."""
    uid = (owner.get("metadata") or {}).get("uid")
    return uid is not None and any(r.get("uid") == uid for r in owner_refs(obj))


def controller_uid(obj: Obj) -> str | None:
    ref = controller_of(obj)
    return None if ref is None else str(ref.get("uid"))
