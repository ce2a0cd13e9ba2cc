"""Mutating admission that needs more than the object itself (kube-apiserver's
default admission plugins), run by the registry on the objects it admits."""

from __future__ import annotations

from collections.abc import Iterable

from svcnet.k8s.objects import Obj
from svcnet.k8s.timestamps import parse_time
from svcnet.k8s.wellknown import DEFAULT_INGRESS_CLASS, INGRESS_CLASS_ANNOTATION


def default_ingress_class(ingress: Obj, classes: Iterable[Obj]) -> None:
    """The DefaultIngressClass plugin, on create: an Ingress naming no class (neither
    spec.ingressClassName nor the old annotation) gets the default IngressClass, the
    newest one when several are marked default."""
    annotations = (ingress.get("metadata") or {}).get("annotations") or {}
    spec = ingress.setdefault("spec", {})
    if INGRESS_CLASS_ANNOTATION in annotations or spec.get("ingressClassName") is not None:
        return
    defaults = [
        c
        for c in classes
        if ((c.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_INGRESS_CLASS) == "true"
    ]
    if not defaults:
        return

    def newest_first(c: Obj) -> tuple[float, str]:
        t = parse_time(c["metadata"].get("creationTimestamp"))
        return (-(t.timestamp() if t else 0.0), str(c["metadata"]["name"]))

    spec["ingressClassName"] = min(defaults, key=newest_first)["metadata"]["name"]
