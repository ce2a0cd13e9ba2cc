"""What the StatefulSet, DaemonSet and Job controllers share: finding the pods
an owner controls, building a pod from a template (k/k controller_utils'
GetPodFromTemplate), and writing status only when it changed."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from svcnet.controllers.base import Controller, Key
from svcnet.controllers.selection import controlled_by
from svcnet.k8s.objects import Obj
from svcnet.k8s.owners import controller_of, controller_ref
from svcnet.registry import ApiError
from svcnet.store import Event


def is_terminating(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def is_running(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running"


def pod_from_template(owner: Obj, template: Obj) -> Obj:
    """GetPodFromTemplate: the template's labels, annotations and spec, owned by owner."""
    tmpl = copy.deepcopy(template)
    md = tmpl.get("metadata") or {}
    pod_md: Obj = {
        "namespace": owner["metadata"]["namespace"],
        "labels": dict(md.get("labels") or {}),
        "ownerReferences": [controller_ref(owner)],
    }
    if md.get("annotations"):
        pod_md["annotations"] = dict(md["annotations"])
    if md.get("finalizers"):
        pod_md["finalizers"] = list(md["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_md, "spec": tmpl.get("spec") or {}}


class OwnerController(Controller):
    """A controller of `owns` objects that run pods: synced when the object or one
    of its pods changes."""

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.kind == self.owns:
            return [(ev.namespace, ev.name)]
        if ev.kind == "Pod":
            out: list[Key] = []
            for o in (ev.obj, ev.old):
                ref = controller_of(o) if o is not None else None
                if ref is not None and ref.get("kind") == self.owns:
                    out.append((ev.namespace, str(ref.get("name"))))
            return out
        return ()

    def pods_of(self, owner: Obj) -> list[Obj]:
        return controlled_by(self.store, "Pod", owner)

    def delete_pod(self, pod: Obj) -> bool:
        md = pod["metadata"]
        try:
            self.registry.delete("Pod", md["namespace"], md["name"])
        except ApiError:
            return False
        return True

    def put_status(self, owner: Obj, status: Obj) -> None:
        """Replace status if it differs (conditions included)."""
        if (owner.get("status") or {}) == status:
            return
        md = owner["metadata"]

        def put(o: Obj) -> None:
            o["status"] = copy.deepcopy(status)

        try:
            self.registry.update_status(self.owns, md["namespace"], md["name"], put)
        except ApiError:
            pass  # deleted meanwhile: nothing to report
