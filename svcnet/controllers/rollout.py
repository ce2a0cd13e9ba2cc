"""The Deployment controller's arithmetic, as pure functions over objects
(k/k pkg/controller/deployment/util): template hashes and ReplicaSet names,
maxSurge and maxUnavailable, how far a rolling update may scale each
ReplicaSet, proportional scaling, revisions and the Progressing condition.

Nothing here reads the store or writes anything; ``deployment.py`` holds the
controller that applies these decisions. Tests call these functions directly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from svcnet.k8s.names import safe_encode
from svcnet.k8s.objects import Obj
from svcnet.k8s.wellknown import POD_TEMPLATE_HASH, REVISION

# --- naming ---------------------------------------------------------------------


def fnv32a(data: bytes, h: int = 0x811C9DC5) -> int:
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def compute_hash(template: Obj, collision_count: int | None = None) -> str:
    """ComputeHash: FNV-32a over a dump of the template, then the collision count.

    Kubernetes dumps the Go struct with spew, which cannot be reproduced from
    JSON; svcnet dumps canonical JSON (sorted keys) instead, so the same
    template always gets the same hash here, but not the value a real cluster
    would compute.
    """
    dump = json.dumps(as_go(template), sort_keys=True, separators=(",", ":")).encode()
    h = fnv32a(dump)
    if collision_count is not None:
        h = fnv32a((collision_count & 0xFFFFFFFF).to_bytes(8, "little"), h)
    return safe_encode(str(h))


# --- rollout arithmetic ----------------------------------------------------------


def scaled_value(v: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(v, int):
        return v
    text = str(v)
    if text.endswith("%"):
        pct = int(text[:-1])
        exact = pct * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, replicas: int) -> tuple[int, int]:
    """ResolveFenceposts: surge rounds up, unavailable down; both 0 -> unavailable 1."""
    surge = scaled_value(max_surge if max_surge is not None else "25%", replicas, True)
    unavailable = scaled_value(
        max_unavailable if max_unavailable is not None else "25%", replicas, False
    )
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


@dataclass(frozen=True)
class Strategy:
    replicas: int
    rolling: bool
    max_surge: int
    max_unavailable: int

    @classmethod
    def of(cls, d: Obj) -> Strategy:
        spec = d.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        strat = spec.get("strategy") or {}
        if (strat.get("type") or "RollingUpdate") != "RollingUpdate":
            return cls(replicas, False, 0, 0)
        ru = strat.get("rollingUpdate") or {}
        surge, unavailable = resolve_fenceposts(
            ru.get("maxSurge"), ru.get("maxUnavailable"), replicas
        )
        # MaxUnavailable: never more than replicas.
        return cls(replicas, True, surge, min(unavailable, replicas))


@dataclass(frozen=True)
class RS:
    """What the arithmetic needs of a ReplicaSet."""

    name: str
    replicas: int  # spec
    available: int  # status


def new_rs_replicas(s: Strategy, all_rs: Sequence[RS], new: RS | None) -> int:
    """NewRSNewReplicas: how far the new RS may grow now."""
    cur = new.replicas if new is not None else 0
    if not s.rolling:
        return s.replicas
    total = sum(r.replicas for r in all_rs)
    max_total = s.replicas + s.max_surge
    if total >= max_total:
        return cur
    return cur + max(0, min(max_total - total, s.replicas - cur))


def old_rs_scale_down(s: Strategy, old: Sequence[RS], new: RS | None) -> dict[str, int]:
    """reconcileOldReplicaSets: new sizes for the old RSs (given oldest first).

    First unhealthy old replicas go (cleanupUnhealthyReplicas), then available
    ones while more than ``replicas - maxUnavailable`` pods stay available.
    """
    out: dict[str, int] = {}
    if sum(r.replicas for r in old) == 0:
        return out
    new_replicas = new.replicas if new is not None else 0
    new_available = new.available if new is not None else 0
    all_pods = sum(r.replicas for r in old) + new_replicas
    min_available = s.replicas - s.max_unavailable
    new_unavailable = new_replicas - new_available
    max_scaled_down = all_pods - min_available - new_unavailable
    if max_scaled_down <= 0:
        return out
    sizes = {r.name: r.replicas for r in old}
    cleaned = 0
    for r in old:
        if cleaned >= max_scaled_down:
            break
        if r.replicas == 0 or r.available >= r.replicas:
            continue
        n = min(max_scaled_down - cleaned, r.replicas - r.available)
        sizes[r.name] = r.replicas - n
        cleaned += n
    available = sum(min(r.available, sizes[r.name]) for r in old) + new_available
    if available > min_available:
        budget = available - min_available
        done = 0
        for r in old:
            if done >= budget:
                break
            if sizes[r.name] == 0:
                continue
            n = min(sizes[r.name], budget - done)
            sizes[r.name] -= n
            done += n
    return {r.name: sizes[r.name] for r in old if sizes[r.name] != r.replicas}


def proportions(
    s: Strategy, active: Sequence[RS], annotated_max: dict[str, int], new_name: str | None
) -> dict[str, int]:
    """Proportional scaling (DeploymentController.scale) for a scaling event mid-rollout.

    Returns new sizes. ``annotated_max`` is each RS's max-replicas annotation:
    the Deployment's replicas+surge when the RS was last sized.
    """
    allowed = s.replicas + s.max_surge
    to_add = allowed - sum(r.replicas for r in active)
    if to_add == 0:
        return {}
    # Scale up: biggest (newest on ties) first; scale down: biggest (oldest on ties) first.
    order = sorted(
        enumerate(active),
        key=lambda ir: (-ir[1].replicas, -ir[0] if to_add > 0 else ir[0]),
    )
    sizes = {r.name: r.replicas for r in active}
    added = 0
    for _, r in order:
        if r.replicas == 0 or added == to_add:
            continue
        ann = annotated_max.get(r.name) or allowed
        if s.replicas == 0:
            fraction = -r.replicas
        else:
            fraction = round(r.replicas * allowed / ann) - r.replicas
        left = to_add - added
        n = min(fraction, left) if to_add > 0 else max(fraction, left)
        sizes[r.name] += n
        added += n
    if added != to_add and order:
        first = order[0][1].name
        if new_name is not None and to_add > 0 and new_name in sizes:
            first = new_name
        sizes[first] = max(0, sizes[first] + to_add - added)
    return {r.name: sizes[r.name] for r in active if sizes[r.name] != r.replicas}


# --- helpers over objects ------------------------------------------------------------


def revision(obj: Obj) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def as_go(template: Obj) -> Obj:
    """The template as the Go struct sees it: `creationTimestamp: null` (which
    kubectl's rollout undo sends) and an absent one are the same zero value."""
    md = template.get("metadata")
    if isinstance(md, dict) and md.get("creationTimestamp", 0) is None:
        template = dict(template, metadata={k: v for k, v in md.items() if v is not None})
    return template


def strip_hash(template: Obj) -> Obj:
    """The template without its hash label, for comparing: a new outer dict, a new
    metadata and labels, the rest shared with `template` (not to be changed)."""
    t = as_go(template)
    md = t.get("metadata")
    if not isinstance(md, dict):
        return t
    lab = md.get("labels")
    if isinstance(lab, dict) and POD_TEMPLATE_HASH in lab:
        lab = {k: v for k, v in lab.items() if k != POD_TEMPLATE_HASH}
        t = dict(t, metadata=dict(md, labels=lab))
    return t


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    return strip_hash(a) == strip_hash(b)


def spec_replicas(rs: Obj) -> int:
    return int((rs.get("spec") or {}).get("replicas", 1))


def status_count(rs: Obj, field: str) -> int:
    return int((rs.get("status") or {}).get(field) or 0)


def view(rs: Obj) -> RS:
    return RS(rs["metadata"]["name"], spec_replicas(rs), status_count(rs, "availableReplicas"))


def created_order(rs: Obj) -> tuple[str, str]:
    return (str(rs["metadata"].get("creationTimestamp") or ""), rs["metadata"]["name"])


NO_DEADLINE = 2**31 - 1
"""progressDeadlineSeconds meaning "never" (math.MaxInt32, HasProgressDeadline)."""


def progressed(before: Obj, after: Obj) -> bool:
    """DeploymentProgressing: the new status shows any progress over the old one."""

    def n(st: Obj, f: str) -> int:
        return int(st.get(f) or 0)

    return (
        n(after, "updatedReplicas") > n(before, "updatedReplicas")
        or n(after, "replicas") - n(after, "updatedReplicas")
        < n(before, "replicas") - n(before, "updatedReplicas")
        or n(after, "readyReplicas") > n(before, "readyReplicas")
        or n(after, "availableReplicas") > n(before, "availableReplicas")
    )


def condition(d: Obj, ctype: str) -> Obj | None:
    for c in (d.get("status") or {}).get("conditions") or ():
        if c.get("type") == ctype:
            return dict(c)
    return None


def complete(d: Obj) -> bool:
    """DeploymentComplete, plus the generation check `rollout status` makes."""
    st = d.get("status") or {}
    want = int((d.get("spec") or {}).get("replicas", 1))
    return (
        int(st.get("updatedReplicas") or 0) == want
        and int(st.get("replicas") or 0) == want
        and int(st.get("availableReplicas") or 0) == want
        and int(st.get("observedGeneration") or 0) >= int(d["metadata"].get("generation") or 0)
    )
