"""StatefulSet controller (k/k pkg/controller/statefulset): pods with stable
names `<sts>-<ordinal>`, made and removed in order.

- OrderedReady (the default) creates one pod at a time, in ascending ordinal
  order, each only once every lower one is Running and Ready; it scales down
  from the highest ordinal, one at a time, again only while the rest are
  healthy. Parallel creates and deletes without waiting.
- Each pod gets `spec.hostname` = its name and `spec.subdomain` =
  `spec.serviceName` (so the Endpoints controller publishes
  `web-0.nginx.<ns>.svc.<domain>`), the labels
  `statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index` and
  `controller-revision-hash`, and a volume per volumeClaimTemplate naming its
  claim `<template>-<sts>-<ordinal>`, which is created before the pod (owned by
  the StatefulSet when `persistentVolumeClaimRetentionPolicy.whenDeleted` is
  Delete, otherwise kept; deleted on scale-down when `whenScaled` is Delete).
- RollingUpdate replaces pods whose revision is not the template's, from the
  highest ordinal down to `partition`, one at a time, each once the others are
  Running and Ready; OnDelete replaces a pod only when the user deletes it.

Revisions are ControllerRevisions (controllers/history.py) named
`<sts>-<hash>`, the pods' controller-revision-hash label; status carries the
current and update revisions' names. A pod recreated below the partition gets
the current revision's template, as in Kubernetes.
"""

from __future__ import annotations

import copy
import re

from svcnet.controllers.base import Key
from svcnet.controllers.history import History, template_of
from svcnet.controllers.workload import (
    OwnerController,
    is_running,
    is_terminating,
    pod_from_template,
)
from svcnet.events import record
from svcnet.k8s.objects import Obj, is_terminal, pod_ready
from svcnet.k8s.owners import controller_ref
from svcnet.k8s.wellknown import CONTROLLER_REVISION_HASH, POD_INDEX, STS_POD_NAME
from svcnet.registry import ApiError, Registry

_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


def ordinal_of(sts_name: str, pod: Obj) -> int | None:
    m = _ORDINAL.match(pod["metadata"]["name"])
    if m is None or m[1] != sts_name:
        return None
    return int(m[2])


def claim_name(template_name: str, sts_name: str, ordinal: int) -> str:
    return f"{template_name}-{sts_name}-{ordinal}"


def _healthy(pod: Obj) -> bool:
    return is_running(pod) and pod_ready(pod) and not is_terminating(pod)


class StatefulSetController(OwnerController):
    name = "statefulset-controller"
    owns = "StatefulSet"

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self.history = History(registry, registry.store, daemonset=False)

    def sync(self, key: Key) -> None:
        ns, name = key
        sts = self.store.get("StatefulSet", ns, name)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        owner = sts
        update, revisions = self.history.sync(sts, lambda n: self._set_collisions(owner, n))
        wanted = str((sts.get("status") or {}).get("currentRevision") or "")
        current = next((r for r in revisions if r["metadata"]["name"] == wanted), update)
        self._reconcile(sts, current, update)
        sts = self.store.get("StatefulSet", ns, name) or sts
        self._update_status(sts, current["metadata"]["name"], update["metadata"]["name"])
        sts = self.store.get("StatefulSet", ns, name) or sts
        st = sts.get("status") or {}
        live = {str(st.get("currentRevision")), str(st.get("updateRevision"))}
        live |= {
            str((p["metadata"].get("labels") or {}).get(CONTROLLER_REVISION_HASH))
            for p in self.pods_of(sts)
        }
        self.history.truncate(sts, revisions, live)

    def _set_collisions(self, sts: Obj, n: int) -> None:
        md = sts["metadata"]

        def put(o: Obj) -> None:
            o.setdefault("status", {})["collisionCount"] = n

        try:
            self.registry.update_status("StatefulSet", md["namespace"], md["name"], put)
        except ApiError:
            pass

    # --- pods --------------------------------------------------------------------

    def _reconcile(self, sts: Obj, current: Obj, update: Obj) -> None:
        spec = sts["spec"]
        name = sts["metadata"]["name"]
        replicas = int(spec.get("replicas", 1))
        start = int((spec.get("ordinals") or {}).get("start") or 0)
        monotonic = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        update_rev = update["metadata"]["name"]
        strategy = spec.get("updateStrategy") or {}
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        pods: dict[int, Obj] = {}
        for p in self.pods_of(sts):
            i = ordinal_of(name, p)
            if i is not None:
                pods[i] = p
        wanted = range(start, start + replicas)
        for i in wanted:
            pod = pods.get(i)
            if pod is None:
                # newVersionedStatefulSetPod: below the partition, the current revision.
                rev = current if rolling and i - start < partition else update
                self._create(sts, i, rev["metadata"]["name"], template_of(rev))
                if monotonic:
                    return
                continue
            if is_terminal(pod) and not is_terminating(pod):
                # A failed or finished pod is replaced under the same name.
                self._delete(sts, pod)
                if monotonic:
                    return
                continue
            if monotonic and not _healthy(pod):
                return
        condemned = sorted((i for i in pods if i not in wanted), reverse=True)
        for i in condemned:
            pod = pods[i]
            if is_terminating(pod):
                if monotonic:
                    return
                continue
            self._delete(sts, pod)
            if spec.get("persistentVolumeClaimRetentionPolicy", {}).get("whenScaled") == "Delete":
                self._delete_claims(sts, i)
            if monotonic:
                return
        if not rolling:
            return
        if any(not _healthy(pods[i]) for i in wanted if i in pods):
            return  # one pod at a time: wait until the last replaced one is ready
        for i in reversed(wanted):
            if i - start < partition:
                break
            pod = pods.get(i)
            if pod is None:
                return
            if (pod["metadata"].get("labels") or {}).get(CONTROLLER_REVISION_HASH) != update_rev:
                self._delete(sts, pod)
                return

    def _create(self, sts: Obj, ordinal: int, revision: str, template: Obj) -> None:
        spec = sts["spec"]
        sts_name = sts["metadata"]["name"]
        pod_name = f"{sts_name}-{ordinal}"
        for vct in spec.get("volumeClaimTemplates") or []:
            if not self._ensure_claim(sts, vct, ordinal, pod_name):
                return
        pod = pod_from_template(sts, template)
        pod["metadata"]["name"] = pod_name
        pod["metadata"]["labels"].update(
            {
                CONTROLLER_REVISION_HASH: revision,
                STS_POD_NAME: pod_name,
                POD_INDEX: str(ordinal),
            }
        )
        pspec = pod["spec"]
        pspec["hostname"] = pod_name
        if spec.get("serviceName"):
            pspec["subdomain"] = spec["serviceName"]
        claims = [
            {
                "name": vct["metadata"]["name"],
                "persistentVolumeClaim": {
                    "claimName": claim_name(vct["metadata"]["name"], sts_name, ordinal)
                },
            }
            for vct in spec.get("volumeClaimTemplates") or []
        ]
        if claims:
            names = {c["name"] for c in claims}
            pspec["volumes"] = claims + [
                v for v in pspec.get("volumes") or [] if v.get("name") not in names
            ]
        try:
            self.registry.create(pod, namespace=sts["metadata"]["namespace"])
        except ApiError as e:
            message = f"create Pod {pod_name} in StatefulSet {sts_name} failed error: {e.message}"
            record(self.registry, sts, "Warning", "FailedCreate", message, self.name)
            return
        message = f"create Pod {pod_name} in StatefulSet {sts_name} successful"
        record(self.registry, sts, "Normal", "SuccessfulCreate", message, self.name)

    def _ensure_claim(self, sts: Obj, vct: Obj, ordinal: int, pod_name: str) -> bool:
        md = sts["metadata"]
        tmpl_md = vct.get("metadata") or {}
        name = claim_name(tmpl_md["name"], md["name"], ordinal)
        if self.store.get("PersistentVolumeClaim", md["namespace"], name) is not None:
            return True
        claim_labels = dict(tmpl_md.get("labels") or {})
        claim_labels.update((sts["spec"].get("selector") or {}).get("matchLabels") or {})
        claim_md: Obj = {"name": name, "namespace": md["namespace"], "labels": claim_labels}
        if tmpl_md.get("annotations"):
            claim_md["annotations"] = dict(tmpl_md["annotations"])
        policy = sts["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
        if policy.get("whenDeleted") == "Delete":
            claim_md["ownerReferences"] = [controller_ref(sts)]
        claim = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": claim_md,
            "spec": copy.deepcopy(vct.get("spec") or {}),
        }
        try:
            self.registry.create(claim, namespace=md["namespace"])
        except ApiError as e:
            message = (
                f"create Claim {name} for Pod {pod_name} in StatefulSet {md['name']} "
                f"failed error: {e.message}"
            )
            record(self.registry, sts, "Warning", "FailedCreate", message, self.name)
            return False
        message = f"create Claim {name} Pod {pod_name} in StatefulSet {md['name']} success"
        record(self.registry, sts, "Normal", "SuccessfulCreate", message, self.name)
        return True

    def _delete_claims(self, sts: Obj, ordinal: int) -> None:
        md = sts["metadata"]
        for vct in sts["spec"].get("volumeClaimTemplates") or []:
            name = claim_name(vct["metadata"]["name"], md["name"], ordinal)
            try:
                self.registry.delete("PersistentVolumeClaim", md["namespace"], name)
            except ApiError:
                pass

    def _delete(self, sts: Obj, pod: Obj) -> None:
        if self.delete_pod(pod):
            message = (
                f"delete Pod {pod['metadata']['name']} in StatefulSet "
                f"{sts['metadata']['name']} successful"
            )
            record(self.registry, sts, "Normal", "SuccessfulDelete", message, self.name)

    # --- status ------------------------------------------------------------------

    def _update_status(self, sts: Obj, current_rev: str, update_rev: str) -> None:
        md = sts["metadata"]
        old = sts.get("status") or {}
        pods = [p for p in self.pods_of(sts) if not is_terminal(p)]
        replicas = int(sts["spec"].get("replicas", 1))

        def rev(p: Obj) -> str:
            return str((p["metadata"].get("labels") or {}).get(CONTROLLER_REVISION_HASH))

        ready = sum(1 for p in pods if _healthy(p))
        updated = sum(1 for p in pods if rev(p) == update_rev)
        if updated == replicas == len(pods) and ready == replicas:
            current_rev = update_rev  # the rolling update is complete
        current = sum(1 for p in pods if rev(p) == current_rev)
        status: Obj = {
            "observedGeneration": int(md.get("generation") or 1),
            "replicas": len(pods),
            "readyReplicas": ready,
            "currentReplicas": current,
            "updatedReplicas": updated,
            "currentRevision": current_rev,
            "updateRevision": update_rev,
            "collisionCount": int(old.get("collisionCount") or 0),
            "availableReplicas": ready,
        }
        # omitempty, as the API serves it (availableReplicas and collisionCount are not)
        status = {
            k: v
            for k, v in status.items()
            if v or k in ("replicas", "availableReplicas", "collisionCount")
        }
        self.put_status(sts, status)
