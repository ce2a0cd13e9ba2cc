"""PersistentVolumeClaims bound to local directories: the persistent-volume
controller's binding and kind's local-path provisioner (rancher.io/local-path)
in one.

A claim of a StorageClass whose provisioner is `rancher.io/local-path` gets a
PersistentVolume `pvc-<claim uid>` with `spec.hostPath.path` a directory of its
own under the cluster's state directory (`volumes/pvc-<uid>_<ns>_<claim>`,
made 0777 as local-path-provisioner makes it), the claim's access modes, its
requested storage as capacity, the class's reclaim policy, and a claimRef; then
the volume is Bound and the claim Bound to it (`spec.volumeName`,
`status.capacity`). With `volumeBindingMode: WaitForFirstConsumer` (the
`standard` class, as kind ships it) provisioning waits until a pod uses the
claim. When a claim is deleted its volume is Released, and deleted with its
directory when the reclaim policy is Delete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from svcnet.controllers.base import Controller, Key
from svcnet.events import record
from svcnet.k8s.objects import Obj
from svcnet.k8s.wellknown import (
    BIND_COMPLETED,
    BOUND_BY_CONTROLLER,
    PROVISIONED_BY,
    SELECTED_NODE,
    STORAGE_PROVISIONER,
)
from svcnet.registry import ApiError, Registry
from svcnet.store import Event

PROVISIONER = "rancher.io/local-path"
STANDARD_CLASS: Obj = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {
        "name": "standard",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    },
    "provisioner": PROVISIONER,
    "reclaimPolicy": "Delete",
    "volumeBindingMode": "WaitForFirstConsumer",
}
"""The default StorageClass of a kind cluster."""


def claims_of(pod: Obj) -> list[str]:
    return [
        str(v["persistentVolumeClaim"].get("claimName"))
        for v in (pod.get("spec") or {}).get("volumes") or []
        if isinstance(v, dict) and isinstance(v.get("persistentVolumeClaim"), dict)
    ]


class VolumeController(Controller):
    name = "persistentvolume-controller"
    owns = "PersistentVolumeClaim"

    def __init__(self, registry: Registry, root: Path) -> None:
        super().__init__(registry)
        self.root = root
        """Where provisioned volumes' directories live (under the state directory)."""

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.kind == "PersistentVolumeClaim":
            return [(ev.namespace, ev.name)]
        if ev.kind == "Pod" and ev.type == "ADDED":
            return [(ev.namespace, c) for c in claims_of(ev.obj)]
        if ev.kind == "PersistentVolume":
            ref = (ev.obj.get("spec") or {}).get("claimRef") or {}
            if ref.get("name"):
                return [(str(ref.get("namespace") or ""), str(ref["name"]))]
        return ()

    def sync(self, key: Key) -> None:
        ns, name = key
        pvc = self.store.get("PersistentVolumeClaim", ns, name)
        if pvc is None or pvc["metadata"].get("deletionTimestamp"):
            self._release(ns, name, pvc)
            return
        spec = pvc.get("spec") or {}
        if spec.get("volumeName"):
            self._finish_binding(pvc)
            return
        cls_name = spec.get("storageClassName")
        sc = self.store.get("StorageClass", "", str(cls_name)) if cls_name else None
        if sc is None or sc.get("provisioner") != PROVISIONER:
            return  # a class svcnet does not provision (or none): stays Pending
        if sc.get("volumeBindingMode") == "WaitForFirstConsumer":
            users = [p for p in self.store.list("Pod", ns) if name in claims_of(p)]
            if not users:
                record(
                    self.registry,
                    pvc,
                    "Normal",
                    "WaitForFirstConsumer",
                    "waiting for first consumer to be created before binding",
                    self.name,
                )
                return
        self._provision(pvc, sc)

    def _provision(self, pvc: Obj, sc: Obj) -> None:
        md, spec = pvc["metadata"], pvc["spec"]
        pv_name = f"pvc-{md['uid']}"
        path = self.root / f"{pv_name}_{md['namespace']}_{md['name']}"
        where = f"{md['namespace']}/{md['name']}"
        record(
            self.registry,
            pvc,
            "Normal",
            "Provisioning",
            f'External provisioner is provisioning volume for claim "{where}"',
            PROVISIONER,
        )
        try:
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o777)  # what local-path gives: pods run as another user
        except OSError as e:
            message = (
                f"failed to provision volume with StorageClass {sc['metadata']['name']!r}: {e}"
            )
            record(self.registry, pvc, "Warning", "ProvisioningFailed", message, PROVISIONER)
            return
        nodes = self.store.list("Node")
        node = nodes[0]["metadata"]["name"] if nodes else ""
        pv: Obj = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": pv_name,
                "annotations": {
                    PROVISIONED_BY: PROVISIONER,
                    "local.path.provisioner/selected-node": node,
                },
            },
            "spec": {
                "accessModes": list(spec.get("accessModes") or []),
                "capacity": {"storage": str(spec["resources"]["requests"]["storage"])},
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "name": md["name"],
                    "namespace": md["namespace"],
                    "uid": md["uid"],
                    "resourceVersion": md.get("resourceVersion"),
                },
                "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
                "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
                "storageClassName": sc["metadata"]["name"],
                "volumeMode": spec.get("volumeMode") or "Filesystem",
            },
        }
        if node:
            term = {
                "matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
                ]
            }
            pv["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": [term]}}
        try:
            if self.store.get("PersistentVolume", "", pv_name) is None:
                self.registry.create(pv)
        except ApiError as e:
            message = f"failed to provision volume: {e.message}"
            record(self.registry, pvc, "Warning", "ProvisioningFailed", message, PROVISIONER)
            return

        def bound_pv(o: Obj) -> None:
            o["status"] = {"phase": "Bound"}

        self.registry.update_status("PersistentVolume", "", pv_name, bound_pv)

        def claim(o: Obj) -> None:
            o["spec"]["volumeName"] = pv_name
            ann = o["metadata"].setdefault("annotations", {})
            ann[BIND_COMPLETED] = "yes"
            ann[BOUND_BY_CONTROLLER] = "yes"
            ann[STORAGE_PROVISIONER] = PROVISIONER
            ann["volume.beta.kubernetes.io/storage-provisioner"] = PROVISIONER
            if node and sc.get("volumeBindingMode") == "WaitForFirstConsumer":
                ann[SELECTED_NODE] = node

        self.registry.modify("PersistentVolumeClaim", md["namespace"], md["name"], claim)
        record(
            self.registry,
            pvc,
            "Normal",
            "ProvisioningSucceeded",
            f"Successfully provisioned volume {pv_name}",
            PROVISIONER,
        )

    def _finish_binding(self, pvc: Obj) -> None:
        md, spec = pvc["metadata"], pvc["spec"]
        pv = self.store.get("PersistentVolume", "", str(spec["volumeName"]))
        if pv is None:
            return
        want = {
            "phase": "Bound",
            "accessModes": list((pv.get("spec") or {}).get("accessModes") or []),
            "capacity": dict((pv.get("spec") or {}).get("capacity") or {}),
        }
        if pvc.get("status") == want:
            return

        def put(o: Obj) -> None:
            o["status"] = want

        with contextlib.suppress(ApiError):
            self.registry.update_status("PersistentVolumeClaim", md["namespace"], md["name"], put)

    def _release(self, ns: str, name: str, pvc: Obj | None) -> None:
        """The claim is gone: its volume is Released, and reclaimed by its policy."""
        if pvc is not None:
            return  # still going (svcnet keeps no finalizers): the DELETED event comes back
        for pv in self.store.list("PersistentVolume"):
            ref = (pv.get("spec") or {}).get("claimRef") or {}
            if ref.get("namespace") == ns and ref.get("name") == name:
                self._reclaim(pv)

    def _reclaim(self, pv: Obj) -> None:
        name = pv["metadata"]["name"]
        policy = (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy")
        if policy != "Delete":
            if (pv.get("status") or {}).get("phase") != "Released":

                def released(o: Obj) -> None:
                    o["status"] = {"phase": "Released"}

                with contextlib.suppress(ApiError):
                    self.registry.update_status("PersistentVolume", "", name, released)
            return
        path = Path(str(((pv.get("spec") or {}).get("hostPath") or {}).get("path") or ""))
        if (pv["metadata"].get("annotations") or {}).get(PROVISIONED_BY) == PROVISIONER and (
            path.parent == self.root
        ):
            shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(ApiError):
            self.registry.delete("PersistentVolume", "", name)
