"""Field selectors (`?fieldSelector=metadata.name=web,status.phase!=Running`).

Kubernetes supports only a few fields per kind (each resource's
``GetAttrs``/``SelectableFields``); others answer 400
``field label not supported: X``. The table below is that list for svcnet's
kinds. Lists (the registry) and watches (the API) filter with
``FieldSelector.matches``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_COMMON = ("metadata.name", "metadata.namespace")

SUPPORTED: dict[str, tuple[str, ...]] = {
    "Pod": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Event": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "Service": ("spec.clusterIP", "spec.type"),
    "ReplicaSet": ("status.replicas",),
    "Namespace": ("status.phase",),
}


class FieldSelectorError(ValueError):
    pass


@dataclass(frozen=True)
class Requirement:
    field: str
    value: str
    equal: bool


def field_value(obj: Mapping[str, Any], path: str) -> str:
    if path == "source":  # events: `source` selects on source.component
        path = "source.component"
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all((field_value(obj, r.field) == r.value) == r.equal for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(f"{r.field}{'=' if r.equal else '!='}{r.value}" for r in self.requirements)


def parse(text: str | None, kind: str | None = None) -> FieldSelector:
    """Parse and, given a kind, check that every field is one it supports."""
    if not text:
        return FieldSelector()
    reqs: list[Requirement] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "!=" in part:
            f, _, v = part.partition("!=")
            equal = False
        elif "==" in part:
            f, _, v = part.partition("==")
            equal = True
        elif "=" in part:
            f, _, v = part.partition("=")
            equal = True
        else:
            raise FieldSelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        f = f.strip()
        if kind is not None and f not in _COMMON and f not in SUPPORTED.get(kind, ()):
            raise FieldSelectorError(f"field label not supported: {f}")
        reqs.append(Requirement(f, v.strip(), equal))
    return FieldSelector(tuple(reqs))
