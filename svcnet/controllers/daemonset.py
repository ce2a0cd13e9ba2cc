"""DaemonSet controller (k/k pkg/controller/daemon) for a one-node cluster: a
pod on the node when the node fits the template (its `nodeSelector`, and
tolerations for the node's NoSchedule/NoExecute taints), none otherwise.

Pods are named `<ds>-<5 chars>`, carry `controller-revision-hash` and
`pod-template-generation`, the node affinity and the tolerations the real
controller adds; the label is the hash of the template's revision
(ControllerRevision `<ds>-<hash>`, controllers/history.py). RollingUpdate
(maxSurge 0) deletes a pod of an older revision and makes the new one once it
is gone; OnDelete waits for the user to delete
it. Status follows the one node: desired, current, ready, updated, available,
misscheduled.
"""

from __future__ import annotations

from svcnet.controllers.base import Key
from svcnet.controllers.history import History
from svcnet.controllers.workload import (
    OwnerController,
    is_terminating,
    pod_from_template,
)
from svcnet.events import record
from svcnet.k8s.objects import Obj, is_terminal, pod_ready
from svcnet.k8s.wellknown import CONTROLLER_REVISION_HASH
from svcnet.registry import ApiError, Registry
from svcnet.store import Event

TEMPLATE_GENERATION = "pod-template-generation"

# AddOrUpdateDaemonPodTolerations: a daemon pod stays through these node conditions.
_DAEMON_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)


def tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    for t in tolerations:
        effect = t.get("effect")
        if effect and effect != taint.get("effect"):
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t.get("key") == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and (t.get("value") or "") == (
            taint.get("value") or ""
        ):
            return True
    return False


def should_run(ds: Obj, node: Obj) -> bool:
    """nodeShouldRunDaemonPod, as far as one node's labels and taints decide it."""
    pspec = (ds["spec"].get("template") or {}).get("spec") or {}
    node_labels = node["metadata"].get("labels") or {}
    for k, v in (pspec.get("nodeSelector") or {}).items():
        if node_labels.get(k) != v:
            return False
    tolerations = list(pspec.get("tolerations") or [])
    tolerations += [{"key": k, "operator": "Exists", "effect": e} for k, e in _DAEMON_TOLERATIONS]
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return False
    return True


class DaemonSetController(OwnerController):
    name = "daemonset-controller"
    owns = "DaemonSet"

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self.history = History(registry, registry.store, daemonset=True)

    def keys_for(self, ev: Event) -> list[Key]:
        if ev.kind == "Node":
            return [
                (ds["metadata"]["namespace"], ds["metadata"]["name"])
                for ds in self.store.list("DaemonSet")
            ]
        return list(super().keys_for(ev))

    def sync(self, key: Key) -> None:
        ns, name = key
        ds = self.store.get("DaemonSet", ns, name)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return
        nodes = self.store.list("Node")
        node = nodes[0] if nodes else None
        run = node is not None and should_run(ds, node)
        owner = ds
        update, revisions = self.history.sync(ds, lambda n: self._set_collisions(owner, n))
        rev = self.history.label_of(update)
        pods = self.pods_of(ds)
        live = [p for p in pods if not is_terminating(p)]
        if not run:
            for p in live:
                self._delete(ds, p)
        elif not pods:
            self._create(ds, node, rev)
        else:
            for p in live[1:]:
                self._delete(ds, p)  # one daemon pod per node
            if live and is_terminal(live[0]):
                self._delete(ds, live[0])  # a failed daemon pod is replaced
            elif live and self._stale(ds, live[0], rev):
                self._delete(ds, live[0])
        ds = self.store.get("DaemonSet", ns, name) or ds
        self._update_status(ds, run, rev)
        # cleanupHistory: revisions that a pod still runs are kept.
        used = {
            str((p["metadata"].get("labels") or {}).get(CONTROLLER_REVISION_HASH)) for p in pods
        }
        in_use = {update["metadata"]["name"]} | {
            cr["metadata"]["name"] for cr in revisions if self.history.label_of(cr) in used
        }
        self.history.truncate(ds, revisions, in_use)

    def _set_collisions(self, ds: Obj, n: int) -> None:
        md = ds["metadata"]

        def put(o: Obj) -> None:
            o.setdefault("status", {})["collisionCount"] = n

        try:
            self.registry.update_status("DaemonSet", md["namespace"], md["name"], put)
        except ApiError:
            pass

    def _stale(self, ds: Obj, pod: Obj, rev: str) -> bool:
        strategy = ds["spec"].get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return False
        return (pod["metadata"].get("labels") or {}).get(CONTROLLER_REVISION_HASH) != rev

    def _create(self, ds: Obj, node: Obj | None, rev: str) -> None:
        pod = pod_from_template(ds, ds["spec"]["template"])
        md = pod["metadata"]
        md["generateName"] = ds["metadata"]["name"] + "-"
        md["labels"][CONTROLLER_REVISION_HASH] = rev
        md["labels"][TEMPLATE_GENERATION] = str(ds["metadata"].get("generation") or 1)
        spec = pod["spec"]
        tolerations = list(spec.get("tolerations") or [])
        for key, effect in _DAEMON_TOLERATIONS:
            if not any(t.get("key") == key and t.get("effect") == effect for t in tolerations):
                tolerations.append({"key": key, "operator": "Exists", "effect": effect})
        spec["tolerations"] = tolerations
        if node is not None:
            term = {
                "matchFields": [
                    {
                        "key": "metadata.name",
                        "operator": "In",
                        "values": [node["metadata"]["name"]],
                    }
                ]
            }
            spec.setdefault("affinity", {})["nodeAffinity"] = {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
            }
        try:
            created = self.registry.create(pod, namespace=ds["metadata"]["namespace"])
        except ApiError as e:
            record(
                self.registry,
                ds,
                "Warning",
                "FailedCreate",
                f"Error creating: {e.message}",
                self.name,
            )
            return
        message = f"Created pod: {created['metadata']['name']}"
        record(self.registry, ds, "Normal", "SuccessfulCreate", message, self.name)

    def _delete(self, ds: Obj, pod: Obj) -> None:
        if self.delete_pod(pod):
            message = f"Deleted pod: {pod['metadata']['name']}"
            record(self.registry, ds, "Normal", "SuccessfulDelete", message, self.name)

    def _update_status(self, ds: Obj, run: bool, rev: str) -> None:
        pods = [p for p in self.pods_of(ds) if not is_terminating(p) and not is_terminal(p)]
        on_node = 1 if pods else 0
        ready = 1 if any(pod_ready(p) for p in pods) else 0
        updated = (
            1
            if any(
                (p["metadata"].get("labels") or {}).get(CONTROLLER_REVISION_HASH) == rev
                for p in pods
            )
            else 0
        )
        desired = 1 if run else 0
        status: Obj = {
            "currentNumberScheduled": on_node if run else 0,
            "numberMisscheduled": 0 if run else on_node,
            "desiredNumberScheduled": desired,
            "numberReady": ready if run else 0,
            "observedGeneration": int(ds["metadata"].get("generation") or 1),
            "updatedNumberScheduled": updated if run else 0,
            "numberAvailable": ready if run else 0,
            "numberUnavailable": desired - (ready if run else 0),
        }
        # omitempty for the optional counts, as the API serves them
        for k in ("updatedNumberScheduled", "numberAvailable", "numberUnavailable"):
            if not status[k]:
                del status[k]
        self.put_status(ds, status)
