"""Deployment controller: ReplicaSets per pod template, rolled over by strategy
(k/k pkg/controller/deployment).

- Each distinct pod template gets a ReplicaSet ``<deploy>-<pod-template-hash>``;
  the hash label goes on the RS's labels, selector and template (``compute_hash``).
- A sync (``DeploymentController.sync``) follows ``syncDeployment``: a
  scaling event (the replicas changed, not the template) is handled by
  ``scale`` with proportional scaling; otherwise the strategy runs:
  ``Recreate`` scales every old RS to 0, waits until their pods are gone, then
  scales the new one up; ``RollingUpdate`` scales the new RS up to
  ``replicas + maxSurge`` pods in all and old ones down while at least
  ``replicas - maxUnavailable`` pods stay available.
- Revisions: the new RS gets ``deployment.kubernetes.io/revision`` = highest
  old revision + 1 (a reused old RS, as after ``rollout undo``, is bumped and
  remembers its former numbers in ``revision-history``); the Deployment carries
  the new RS's revision. Old RSs scaled to 0 beyond ``revisionHistoryLimit``
  are deleted, oldest revision first, once a rollout is complete.
- The rollout arithmetic is pure functions (``resolve_fenceposts``,
  ``new_rs_replicas``, ``old_rs_scale_down``, ``proportions``) that tests call
  directly.

The controller acts only on ReplicaSet status its RS controller has observed
(``status.observedGeneration == metadata.generation``), as the real one waits
on its expectations: a scale decision never rests on counts from before the
previous decision.

The Progressing condition follows ``syncRolloutStatus``: its lastUpdateTime
moves only when a rollout makes progress (more updated, ready or available
pods, fewer old ones), and a rollout without progress for
``progressDeadlineSeconds`` turns ``Progressing=False`` with reason
``ProgressDeadlineExceeded``, which ``rollout status`` reports as an error. A
timer brings the Deployment back at its deadline (``requeueStuckDeployment``),
since nothing else changes when a rollout is stuck. A paused Deployment is not
timed (``DeploymentPaused``, then ``DeploymentResumed`` restarts the clock).
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from svcnet.controllers.base import Controller, Key
from svcnet.events import record
from svcnet.k8s import labels
from svcnet.k8s.kinds import BY_KIND
from svcnet.k8s.names import safe_encode
from svcnet.k8s.objects import Obj
from svcnet.k8s.owners import controller_of, controller_ref, controller_uid
from svcnet.k8s.timestamps import parse_time, rfc3339
from svcnet.k8s.wellknown import (
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    POD_TEMPLATE_HASH,
    REPLICASET_SKIPPED_ANNOTATIONS,
    REVISION,
    REVISION_HISTORY,
)
from svcnet.registry import ApiError
from svcnet.store import Event

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
    dump = json.dumps(_as_go(template), sort_keys=True, separators=(",", ":")).encode()
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


def _as_go(template: Obj) -> Obj:
    """The template as the Go struct sees it: `creationTimestamp: null` (which
    kubectl's rollout undo sends) and an absent one are the same zero value."""
    md = template.get("metadata")
    if isinstance(md, dict) and md.get("creationTimestamp", 0) is None:
        template = dict(template, metadata={k: v for k, v in md.items() if v is not None})
    return template


def _strip_hash(template: Obj) -> Obj:
    t = copy.deepcopy(_as_go(template))
    lab = (t.get("metadata") or {}).get("labels")
    if isinstance(lab, dict):
        lab.pop(POD_TEMPLATE_HASH, None)
    return t


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    return _strip_hash(a) == _strip_hash(b)


def _spec_replicas(rs: Obj) -> int:
    return int((rs.get("spec") or {}).get("replicas", 1))


def _status(rs: Obj, field: str) -> int:
    return int((rs.get("status") or {}).get(field) or 0)


def _view(rs: Obj) -> RS:
    return RS(rs["metadata"]["name"], _spec_replicas(rs), _status(rs, "availableReplicas"))


def _created(rs: Obj) -> tuple[str, str]:
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


class DeploymentController(Controller):
    name = "deployment-controller"
    owns = "Deployment"

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.kind == "Deployment":
            return [(ev.namespace, ev.name)]
        if ev.kind == "ReplicaSet":
            return self._owners(ev.namespace, (ev.obj, ev.old))
        if ev.kind == "Pod" and ev.type == "DELETED":
            # Recreate waits for the old pods to be gone.
            uid = controller_uid(ev.obj)
            if uid is None:
                return ()
            for rs in self.store.list("ReplicaSet", ev.namespace):
                if rs["metadata"]["uid"] == uid:
                    return self._owners(ev.namespace, (rs,))
        return ()

    def _owners(self, ns: str, objs: Iterable[Obj | None]) -> list[Key]:
        out: list[Key] = []
        for o in objs:
            if o is None:
                continue
            ref = controller_of(o)
            if ref is not None and ref.get("kind") == "Deployment":
                out.append((ns, str(ref.get("name"))))
        return out

    # --- sync --------------------------------------------------------------------

    def sync(self, key: Key) -> None:
        ns, name = key
        d = self.store.get("Deployment", ns, name)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return
        rss = self._replicasets(d)
        if any(
            _status(rs, "observedGeneration") < int(rs["metadata"].get("generation") or 1)
            for rs in rss
        ):
            return  # the RS controller has not caught up; its status write brings us back
        spec = d["spec"]
        if spec.get("paused"):
            self._sync_status(d, self._split(d, rss)[0], rss)
            return
        new, old = self._split(d, rss)
        if self._is_scaling_event(d, rss):
            self._scale(d, new, old)
        elif (spec.get("strategy") or {}).get("type") == "Recreate":
            self._recreate(d, new, old)
        else:
            self._rolling(d, new, old)
        d = self.store.get("Deployment", ns, name) or d
        rss = self._replicasets(d)
        new, old = self._split(d, rss)
        self._sync_status(d, new, rss)
        d = self.store.get("Deployment", ns, name) or d
        if complete(d) and new is not None:
            self._cleanup(d, old)

    def _replicasets(self, d: Obj) -> list[Obj]:
        md = d["metadata"]
        sel = labels.from_label_selector(d["spec"].get("selector"))
        out = []
        for rs in self.store.list("ReplicaSet", md["namespace"]):
            owner = controller_uid(rs)
            if owner == md["uid"]:
                out.append(rs)
            elif (
                owner is None
                and not rs["metadata"].get("deletionTimestamp")
                and sel.matches(rs["metadata"].get("labels"))
            ):

                def adopt(o: Obj) -> None:
                    o["metadata"].setdefault("ownerReferences", []).append(controller_ref(d))

                out.append(
                    self.registry.modify(
                        "ReplicaSet", md["namespace"], rs["metadata"]["name"], adopt
                    )
                )
        out.sort(key=_created)
        return out

    def _split(self, d: Obj, rss: list[Obj]) -> tuple[Obj | None, list[Obj]]:
        tmpl = d["spec"]["template"]
        new = next((rs for rs in rss if equal_ignore_hash(rs["spec"]["template"], tmpl)), None)
        return new, [rs for rs in rss if rs is not new]

    def _is_scaling_event(self, d: Obj, rss: list[Obj]) -> bool:
        want = str(d["spec"].get("replicas", 1))
        for rs in rss:
            if _spec_replicas(rs) == 0:
                continue
            ann = (rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS)
            if ann is not None and ann != want:
                return True
        return False

    # --- strategies --------------------------------------------------------------------

    def _rolling(self, d: Obj, new: Obj | None, old: list[Obj]) -> None:
        s = Strategy.of(d)
        views = [_view(rs) for rs in old]
        if new is None:
            size = new_rs_replicas(s, views, None)
            new = self._create_new(d, old, size)
            if new is None:
                return
        else:
            new = self._sync_revision(d, new, old)
            size = new_rs_replicas(s, [*views, _view(new)], _view(new))
            if size != _spec_replicas(new) or self._annotations_stale(d, new):
                new = self._scale_rs(d, new, size)
        for rs_name, size in old_rs_scale_down(s, views, _view(new)).items():
            rs = next(r for r in old if r["metadata"]["name"] == rs_name)
            self._scale_rs(d, rs, size)

    def _recreate(self, d: Obj, new: Obj | None, old: list[Obj]) -> None:
        for rs in old:
            if _spec_replicas(rs) != 0:
                self._scale_rs(d, rs, 0)
        old_uids = {rs["metadata"]["uid"] for rs in old}
        running = [
            p
            for p in self.store.list("Pod", d["metadata"]["namespace"])
            if controller_uid(p) in old_uids
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        if running:
            return  # Recreate: the new pods start only once every old one is gone
        want = int(d["spec"].get("replicas", 1))
        if new is None:
            self._create_new(d, old, want)
            return
        new = self._sync_revision(d, new, old)
        if _spec_replicas(new) != want or self._annotations_stale(d, new):
            self._scale_rs(d, new, want)

    def _scale(self, d: Obj, new: Obj | None, old: list[Obj]) -> None:
        """A scaling event: the replicas changed, the template did not."""
        s = Strategy.of(d)
        active = [rs for rs in ([new] if new else []) + old if _spec_replicas(rs) > 0]
        if len(active) <= 1:
            target = active[0] if active else (new or (old[-1] if old else None))
            if target is not None:
                self._scale_rs(d, target, s.replicas)
            return
        if (
            new is not None
            and _spec_replicas(new) == s.replicas
            and _status(new, "availableReplicas") == s.replicas
        ):
            for rs in old:
                self._scale_rs(d, rs, 0)
            return
        if not s.rolling:
            return
        ordered = sorted(active, key=_created)
        annotated = {}
        for rs in ordered:
            ann = (rs["metadata"].get("annotations") or {}).get(MAX_REPLICAS)
            if ann is not None and ann.isdigit():
                annotated[rs["metadata"]["name"]] = int(ann)
        sizes = proportions(
            s,
            [_view(rs) for rs in ordered],
            annotated,
            new["metadata"]["name"] if new is not None else None,
        )
        for rs in ordered:
            self._scale_rs(d, rs, sizes.get(rs["metadata"]["name"], _spec_replicas(rs)))

    # --- writes --------------------------------------------------------------------------

    def _annotations_stale(self, d: Obj, rs: Obj) -> bool:
        s = Strategy.of(d)
        ann = rs["metadata"].get("annotations") or {}
        return ann.get(DESIRED_REPLICAS) != str(s.replicas) or ann.get(MAX_REPLICAS) != str(
            s.replicas + s.max_surge
        )

    def _scale_rs(self, d: Obj, rs: Obj, size: int) -> Obj:
        s = Strategy.of(d)
        old_size = _spec_replicas(rs)
        if size != old_size:
            self._scaling_event(d, rs["metadata"]["name"], old_size, size)

        def put(o: Obj) -> None:
            o["spec"]["replicas"] = size
            ann = o["metadata"].setdefault("annotations", {})
            ann[DESIRED_REPLICAS] = str(s.replicas)
            ann[MAX_REPLICAS] = str(s.replicas + s.max_surge)

        md = rs["metadata"]
        return self.registry.modify("ReplicaSet", md["namespace"], md["name"], put)

    def _scaling_event(self, d: Obj, rs_name: str, old_size: int, size: int) -> None:
        way = "up" if size > old_size else "down"
        message = f"Scaled {way} replica set {rs_name} from {old_size} to {size}"
        record(self.registry, d, "Normal", "ScalingReplicaSet", message, self.name)

    def _create_new(self, d: Obj, old: list[Obj], size: int) -> Obj | None:
        md, spec = d["metadata"], d["spec"]
        s = Strategy.of(d)
        collisions = (d.get("status") or {}).get("collisionCount")
        tmpl = copy.deepcopy(spec["template"])
        h = compute_hash(tmpl, collisions)
        tmpl.setdefault("metadata", {}).setdefault("labels", {})[POD_TEMPLATE_HASH] = h
        sel = copy.deepcopy(spec["selector"])
        sel.setdefault("matchLabels", {})[POD_TEMPLATE_HASH] = h
        rev = max((revision(rs) for rs in old), default=0) + 1
        ann = {
            k: v
            for k, v in (md.get("annotations") or {}).items()
            if k not in REPLICASET_SKIPPED_ANNOTATIONS
        }
        ann.update(
            {
                DESIRED_REPLICAS: str(s.replicas),
                MAX_REPLICAS: str(s.replicas + s.max_surge),
                REVISION: str(rev),
            }
        )
        rs_name = f"{md['name']}-{h}"
        body: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": md["namespace"],
                "labels": dict(tmpl["metadata"]["labels"]),
                "annotations": ann,
                "ownerReferences": [controller_ref(d)],
            },
            "spec": {
                "replicas": size,
                "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                "selector": sel,
                "template": tmpl,
            },
        }
        try:
            rs = self.registry.create(body, namespace=md["namespace"])
            if size > 0:
                self._scaling_event(d, rs_name, 0, size)
        except ApiError as e:
            existing = self.store.get("ReplicaSet", md["namespace"], rs_name)
            if e.code == 409 and existing is not None:
                if controller_uid(existing) == md["uid"] and equal_ignore_hash(
                    existing["spec"]["template"], spec["template"]
                ):
                    return existing

                # A hash collision: count it; the next sync hashes with the new count.
                def bump(o: Obj) -> None:
                    st = o.setdefault("status", {})
                    st["collisionCount"] = int(st.get("collisionCount") or 0) + 1

                self.registry.update_status("Deployment", md["namespace"], md["name"], bump)
                return None
            raise
        self._set_deployment_revision(d, rev)
        self._progressing(d, "NewReplicaSetCreated", f'Created new replica set "{rs_name}"')
        return rs

    def _sync_revision(self, d: Obj, new: Obj, old: list[Obj]) -> Obj:
        """The new RS must carry the highest revision (a reused RS is bumped)."""
        want = max((revision(rs) for rs in old), default=0) + 1
        have = revision(new)
        if have < want:
            md_d = d["metadata"]
            copied = {
                k: v
                for k, v in (md_d.get("annotations") or {}).items()
                if k not in REPLICASET_SKIPPED_ANNOTATIONS
            }

            def put(o: Obj) -> None:
                ann = o["metadata"].setdefault("annotations", {})
                ann.update(copied)
                if have:
                    hist = [h for h in ann.get(REVISION_HISTORY, "").split(",") if h]
                    ann[REVISION_HISTORY] = ",".join([*hist, str(have)])
                ann[REVISION] = str(want)

            md = new["metadata"]
            new = self.registry.modify("ReplicaSet", md["namespace"], md["name"], put)
        self._set_deployment_revision(d, revision(new))
        return new

    def _set_deployment_revision(self, d: Obj, rev: int) -> None:
        md = d["metadata"]
        live = self.store.get("Deployment", md["namespace"], md["name"])
        if live is None or (live["metadata"].get("annotations") or {}).get(REVISION) == str(rev):
            return

        def put(o: Obj) -> None:
            o["metadata"].setdefault("annotations", {})[REVISION] = str(rev)

        self.registry.modify("Deployment", md["namespace"], md["name"], put)

    def _progressing(
        self, d: Obj, reason: str, message: str, status: str = "True", touch: bool = False
    ) -> None:
        md = d["metadata"]
        self._conditions_put(
            md["namespace"], md["name"], "Progressing", status, reason, message, touch
        )

    def _conditions_put(
        self,
        ns: str,
        name: str,
        ctype: str,
        status: str | bool,
        reason: str,
        message: str,
        touch: bool = False,
    ) -> None:
        """Set a condition; lastUpdateTime moves when it says something new, or on touch."""
        now = rfc3339(time.time())
        if isinstance(status, bool):
            status = "True" if status else "False"

        def put(o: Obj) -> None:
            conds = o.setdefault("status", {}).setdefault("conditions", [])
            for c in conds:
                if c.get("type") == ctype:
                    if touch or (c.get("reason"), c.get("message")) != (reason, message):
                        c["lastUpdateTime"] = now
                    if c.get("status") != status:
                        c["lastTransitionTime"] = now
                    c.update(status=status, reason=reason, message=message)
                    return
            conds.append(
                {
                    "type": ctype,
                    "status": status,
                    "lastUpdateTime": now,
                    "lastTransitionTime": now,
                    "reason": reason,
                    "message": message,
                }
            )

        try:
            self.registry.update_status("Deployment", ns, name, put)
        except ApiError:
            pass

    def _sync_status(self, d: Obj, new: Obj | None, rss: list[Obj]) -> None:
        md = d["metadata"]
        s = Strategy.of(d)
        available = sum(_status(rs, "availableReplicas") for rs in rss)
        status: Obj = {
            "observedGeneration": int(md.get("generation") or 1),
            "replicas": sum(_status(rs, "replicas") for rs in rss),
            "updatedReplicas": _status(new, "replicas") if new is not None else 0,
            "readyReplicas": sum(_status(rs, "readyReplicas") for rs in rss),
            "availableReplicas": available,
            "unavailableReplicas": max(s.replicas - available, 0),
        }
        # omitempty, as the API serves it
        status = {k: v for k, v in status.items() if v}
        old_status = d.get("status") or {}
        if old_status.get("collisionCount"):
            status["collisionCount"] = old_status["collisionCount"]
        min_available = s.replicas - s.max_unavailable
        ok = available >= min_available
        before = d.get("status") or {}
        self._put_status(d, status)
        self._conditions_put(
            md["namespace"],
            md["name"],
            "Available",
            ok,
            "MinimumReplicasAvailable" if ok else "MinimumReplicasUnavailable",
            "Deployment has minimum availability."
            if ok
            else "Deployment does not have minimum availability.",
        )
        live = self.store.get("Deployment", md["namespace"], md["name"])
        if live is None:
            return
        if self._paused_condition(live):
            return
        if new is not None:
            self._sync_progress(live, new, before, status)

    def _paused_condition(self, d: Obj) -> bool:
        """checkPausedConditions; True while paused, when no progress is estimated."""
        cond = condition(d, "Progressing")
        if cond is not None and cond.get("reason") == "ProgressDeadlineExceeded":
            return bool(d["spec"].get("paused"))
        was_paused = cond is not None and cond.get("reason") == "DeploymentPaused"
        if d["spec"].get("paused"):
            if not was_paused:
                self._progressing(d, "DeploymentPaused", "Deployment is paused", "Unknown")
            return True
        if was_paused:
            # Resuming restarts the deadline's clock.
            self._progressing(d, "DeploymentResumed", "Deployment is resumed", "Unknown")
        return False

    def _sync_progress(self, d: Obj, new: Obj, before: Obj, after: Obj) -> None:
        """syncRolloutStatus: the Progressing condition, and the deadline's timer."""
        md = d["metadata"]
        deadline = d["spec"].get("progressDeadlineSeconds")
        cond = condition(d, "Progressing")
        if deadline is None or int(deadline) == NO_DEADLINE:
            if cond is not None:
                self._conditions_drop(md["namespace"], md["name"], "Progressing")
            return
        rs_name = new["metadata"]["name"]
        finished = (
            cond is not None
            and cond.get("reason") == "NewReplicaSetAvailable"
            and int(after.get("replicas") or 0) == int(after.get("updatedReplicas") or 0)
        )
        if finished:
            return  # a pod lost after a finished rollout is not a rollout to time
        if complete(d):
            self._progressing(
                d, "NewReplicaSetAvailable", f'ReplicaSet "{rs_name}" has successfully progressed.'
            )
            return
        if progressed(before, after):
            self._progressing(
                d, "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.', touch=True
            )
            cond = condition(
                self.store.get("Deployment", md["namespace"], md["name"]) or d, "Progressing"
            )
        if cond is None or cond.get("reason") == "ProgressDeadlineExceeded":
            return
        since = parse_time(cond.get("lastUpdateTime"))
        if since is None:
            return
        left = since.timestamp() + int(deadline) - time.time()
        if left < 0:
            self._progressing(
                d,
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
                "False",
            )
            return
        # Nothing else happens to a stuck rollout: come back at its deadline.
        # lastUpdateTime has whole seconds, hence the second more.
        self.enqueue_after((md["namespace"], md["name"]), left + 1.0)

    def _conditions_drop(self, ns: str, name: str, ctype: str) -> None:
        def drop(o: Obj) -> None:
            st = o.get("status") or {}
            st["conditions"] = [c for c in st.get("conditions") or () if c.get("type") != ctype]

        try:
            self.registry.update_status("Deployment", ns, name, drop)
        except ApiError:
            pass

    def _put_status(self, d: Obj, status: Obj) -> None:
        md = d["metadata"]
        live = self.store.get("Deployment", md["namespace"], md["name"])
        if live is None:
            return
        cur = dict(live.get("status") or {})
        conds = cur.pop("conditions", None)
        if cur == status:
            return

        def put(o: Obj) -> None:
            o["status"] = dict(status)
            if conds is not None:
                o["status"]["conditions"] = conds

        self.registry.update_status("Deployment", md["namespace"], md["name"], put)

    def _cleanup(self, d: Obj, old: list[Obj]) -> None:
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        dead = [
            rs
            for rs in old
            if _spec_replicas(rs) == 0
            and _status(rs, "replicas") == 0
            and not rs["metadata"].get("deletionTimestamp")
        ]
        extra = len(dead) - int(limit)
        if extra <= 0:
            return
        dead.sort(key=lambda rs: (revision(rs), _created(rs)))
        for rs in dead[:extra]:
            md = rs["metadata"]
            try:
                self.registry.delete(BY_KIND["ReplicaSet"], md["namespace"], md["name"])
            except ApiError:
                pass
