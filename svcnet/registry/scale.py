"""The scale subresource (autoscaling/v1 Scale), as kube-apiserver's ScaleREST
serves it for Deployments, ReplicaSets and StatefulSets: one view and one check,
shared by the API (`kubectl scale`) and the HorizontalPodAutoscaler controller,
which scale through the same `Registry.update_scale`."""

from __future__ import annotations

import json
from typing import Any

from svcnet.k8s import labels
from svcnet.k8s.objects import Obj
from svcnet.registry.errors import ApiError

SCALABLE = frozenset({"Deployment", "ReplicaSet", "StatefulSet"})
"""Kinds with a scale subresource."""


def scale_of(obj: Obj) -> Obj:
    """The autoscaling/v1 Scale view of a Deployment, ReplicaSet or StatefulSet."""
    md = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: md[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in md
        },
        "spec": {"replicas": int(spec.get("replicas", 1))},
        "status": {
            "replicas": int((obj.get("status") or {}).get("replicas") or 0),
            "selector": str(labels.from_label_selector(selector)) if selector else "",
        },
    }


def check_replicas(name: str, replicas: Any) -> None:
    """ValidateScale's spec.replicas check."""
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise ApiError(
            422,
            "Invalid",
            f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
            f"{json.dumps(replicas)}: must be greater than or equal to 0",
        )
