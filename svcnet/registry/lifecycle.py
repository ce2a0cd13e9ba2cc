"""How the API server deletes: deletion timestamps, finalizers and propagation.

As the generic registry's BeforeDelete and deletionFinalizersForGarbageCollection
(k8s.io/apiserver/pkg/registry/generic/registry/store.go):

- an object with finalizers is not removed by DELETE: it gets a
  ``deletionTimestamp`` (and ``deletionGracePeriodSeconds: 0``) and stays,
  Terminating, until an update leaves it without finalizers, which removes it;
- the propagation policy becomes a finalizer the garbage collector acts on:
  ``Orphan`` -> ``orphan`` (dependents lose their reference and stay),
  ``Foreground`` -> ``foregroundDeletion`` (dependents go first),
  ``Background`` -> neither (the owner goes now, dependents after it); no policy
  keeps whatever GC finalizer the object already has;
- no finalizer may be added once the deletion has begun.

Pods add a grace period on top (registry.Registry._delete_pod): the kubelet
stops the containers and then deletes with grace 0.
"""

from __future__ import annotations

from typing import Any

from svcnet.k8s.objects import Obj
from svcnet.k8s.wellknown import FOREGROUND_FINALIZER, ORPHAN_FINALIZER
from svcnet.registry.errors import Cause, bad_request
from svcnet.registry.validation import forbidden

POLICIES = ("Foreground", "Background", "Orphan")


def policy_of(options: Obj) -> str | None:
    """The propagation policy DeleteOptions ask for, from propagationPolicy or the
    older orphanDependents; None when neither is given."""
    policy = options.get("propagationPolicy")
    orphan = options.get("orphanDependents")
    if policy is not None and orphan is not None:
        raise bad_request("orphanDependents and deletionPropagation cannot be both set")
    if orphan is not None:
        return "Orphan" if orphan else "Background"
    return str(policy) if policy is not None else None


def finalizers_after_delete(obj: Obj, policy: str | None) -> list[str]:
    """The object's finalizers once a DELETE with this policy has been admitted."""
    current = [str(f) for f in obj["metadata"].get("finalizers") or ()]
    if policy is None:
        return current
    out = [f for f in current if f not in (ORPHAN_FINALIZER, FOREGROUND_FINALIZER)]
    if policy == "Orphan":
        out.append(ORPHAN_FINALIZER)
    elif policy == "Foreground":
        out.append(FOREGROUND_FINALIZER)
    return out


def _go_strings(values: list[str]) -> str:
    """Go's %#v of a []string."""
    return "[]string{" + ", ".join(f'"{v}"' for v in values) + "}"


def finalizer_errors(new: Obj, old: Obj) -> list[Cause]:
    """ValidateNoNewFinalizers, for an update of an object being deleted."""
    if not old["metadata"].get("deletionTimestamp"):
        return []
    before = set(old["metadata"].get("finalizers") or ())
    added = sorted({str(f) for f in new["metadata"].get("finalizers") or ()} - before)
    if not added:
        return []
    return [
        forbidden(
            "metadata.finalizers",
            "no new finalizers can be added if the object is being deleted, found new "
            f"finalizers {_go_strings(added)}",
        )
    ]


def done(md: dict[str, Any]) -> bool:
    """An object whose deletion has begun and that nothing holds any more: no
    finalizer, and (for a pod) the kubelet has finished with it (grace 0)."""
    return (
        bool(md.get("deletionTimestamp"))
        and not md.get("finalizers")
        and not md.get("deletionGracePeriodSeconds")
    )
