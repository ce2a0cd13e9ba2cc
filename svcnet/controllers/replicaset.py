"""ReplicaSet controller: keep `spec.replicas` pods that match the template.

Pods are created through the registry with `generateName: <rs>-` (so names get
the API server's 5-character suffix) and a controller ownerReference; extra
pods are deleted gracefully, least valuable first (not ready before ready,
newest before oldest), as k/k's ActivePodsWithRanks orders them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from svcnet.controllers.base import Controller, Key
from svcnet.controllers.selection import controlled_by, orphans
from svcnet.events import record
from svcnet.k8s import labels
from svcnet.k8s.kinds import BY_KIND
from svcnet.k8s.objects import Obj, is_terminal, pod_ready
from svcnet.k8s.owners import controller_of, controller_ref
from svcnet.store import Event


def _status_view(pod: Obj) -> tuple[object, ...]:
    """What of a pod a ReplicaSet's sync reads: whether it counts (ended, being
    deleted), is ready, is selected and whose it is."""
    md = pod["metadata"]
    return (
        md.get("labels"),
        md.get("ownerReferences"),
        md.get("deletionTimestamp"),
        is_terminal(pod),
        pod_ready(pod),
    )


def is_active(pod: Obj) -> bool:
    return not is_terminal(pod) and not pod["metadata"].get("deletionTimestamp")


class ReplicaSetController(Controller):
    name = "replicaset-controller"
    owns = "ReplicaSet"

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.kind == "ReplicaSet":
            return [(ev.namespace, ev.name)]
        if ev.kind == "Pod":
            if ev.old is not None and ev.type == "MODIFIED":
                # Most of a starting pod's writes (binding, container states) change
                # no count of its ReplicaSet's.
                if _status_view(ev.old) == _status_view(ev.obj):
                    return ()
            out: list[Key] = []
            for o in (ev.obj, ev.old):
                if o is None:
                    continue
                ref = controller_of(o)
                if ref is not None:
                    # The reference names its controller: no need to look at the others.
                    if ref.get("kind") == "ReplicaSet":
                        out.append((ev.namespace, str(ref.get("name"))))
                    continue
                for rs in self.store.list("ReplicaSet", ev.namespace):
                    sel = labels.from_label_selector(rs["spec"].get("selector"))
                    if sel.matches(o["metadata"].get("labels")):
                        out.append((ev.namespace, rs["metadata"]["name"]))
            return out
        return ()

    def sync(self, key: Key) -> None:
        ns, name = key
        rs = self.store.get("ReplicaSet", ns, name)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        sel = labels.from_label_selector(rs["spec"].get("selector"))
        owned = controlled_by(self.store, "Pod", rs)
        for pod in orphans(self.store, "Pod", ns):
            if is_active(pod) and sel.matches(pod["metadata"].get("labels")):
                owned.append(self._adopt(pod, rs))
        active = [p for p in owned if is_active(p)]
        want = int(rs["spec"].get("replicas", 1))
        if len(active) < want:
            for _ in range(want - len(active)):
                pod = self.registry.create(self._new_pod(rs), namespace=ns)
                created = f"Created pod: {pod['metadata']['name']}"
                record(self.registry, rs, "Normal", "SuccessfulCreate", created, self.name)
        elif len(active) > want:
            for pod in sorted(active, key=_rank)[: len(active) - want]:
                self.registry.delete(BY_KIND["Pod"], ns, pod["metadata"]["name"])
                deleted = f"Deleted pod: {pod['metadata']['name']}"
                record(self.registry, rs, "Normal", "SuccessfulDelete", deleted, self.name)
        self._update_status(rs)

    def _adopt(self, pod: Obj, rs: Obj) -> Obj:
        def add(o: Obj) -> None:
            o["metadata"].setdefault("ownerReferences", []).append(controller_ref(rs))

        md = pod["metadata"]
        return self.registry.modify("Pod", md["namespace"], md["name"], add)

    def _new_pod(self, rs: Obj) -> Obj:
        tmpl = copy.deepcopy(rs["spec"]["template"])
        md = tmpl.get("metadata") or {}
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": rs["metadata"]["name"] + "-",
                "namespace": rs["metadata"]["namespace"],
                "labels": dict(md.get("labels") or {}),
                **({"annotations": dict(md["annotations"])} if md.get("annotations") else {}),
                # As controller.GetPodFromTemplate: the template's finalizers too.
                **({"finalizers": list(md["finalizers"])} if md.get("finalizers") else {}),
                "ownerReferences": [controller_ref(rs)],
            },
            "spec": tmpl.get("spec") or {},
        }

    def _update_status(self, rs: Obj) -> None:
        md = rs["metadata"]
        pods = [p for p in controlled_by(self.store, "Pod", rs) if is_active(p)]
        sel = labels.from_label_selector(rs["spec"].get("selector"))
        ready = sum(1 for p in pods if pod_ready(p))
        status: Obj = {
            "replicas": len(pods),
            "fullyLabeledReplicas": sum(
                1 for p in pods if sel.matches(p["metadata"].get("labels"))
            ),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": md.get("generation", 1),
        }
        # Kubernetes omits zero counts from status (omitempty).
        status = {k: v for k, v in status.items() if v or k == "replicas"}
        if rs.get("status") != status:

            def put(o: Obj) -> None:
                o["status"] = status

            self.registry.update_status("ReplicaSet", md["namespace"], md["name"], put)


def _rank(pod: Obj) -> tuple[int, int, int, str]:
    """Deletion order: unscheduled, pending, not ready first; then newest first."""
    st = pod.get("status") or {}
    created = pod["metadata"].get("creationTimestamp", "")
    return (
        1 if pod["spec"].get("nodeName") else 0,
        1 if st.get("phase") == "Running" else 0,
        1 if pod_ready(pod) else 0,
        "".join(chr(255 - ord(c)) for c in created),
    )
