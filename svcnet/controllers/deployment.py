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
- The rollout arithmetic is pure functions in ``rollout.py``
  (``resolve_fenceposts``, ``new_rs_replicas``, ``old_rs_scale_down``,
  ``proportions``, ``compute_hash``...); this module decides when to apply them
  and writes the results.

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
import time
from collections.abc import Callable, Iterable

from svcnet import _json
from svcnet.controllers.base import Controller, Key
from svcnet.controllers.rollout import (
    NO_DEADLINE,
    Strategy,
    complete,
    compute_hash,
    condition,
    created_order,
    equal_ignore_hash,
    new_rs_replicas,
    old_rs_scale_down,
    progressed,
    proportions,
    revision,
    spec_replicas,
    status_count,
    view,
)
from svcnet.controllers.selection import controlled_by, orphans
from svcnet.events import record
from svcnet.k8s import labels
from svcnet.k8s.kinds import BY_KIND
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


def _key_of(d: Obj) -> tuple[str, str]:
    return str(d["metadata"].get("namespace") or ""), str(d["metadata"]["name"])


class DeploymentController(Controller):
    name = "deployment-controller"
    owns = "Deployment"
    _draft: Obj | None = None
    """The Deployment whose status _sync_status is making (written once at its end)."""

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.kind == "Deployment":
            return [(ev.namespace, ev.name)]
        if ev.kind == "ReplicaSet":
            return self._owners(ev.namespace, (ev.obj, ev.old))
        if ev.kind == "Pod" and ev.type == "DELETED":
            # Recreate waits for the old pods to be gone.
            ref = controller_of(ev.obj)
            if ref is None or ref.get("kind") != "ReplicaSet":
                return ()
            rs = self.store.get("ReplicaSet", ev.namespace, str(ref.get("name")))
            if rs is not None and rs["metadata"]["uid"] == ref.get("uid"):
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
            status_count(rs, "observedGeneration") < int(rs["metadata"].get("generation") or 1)
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
        out = controlled_by(self.store, "ReplicaSet", d)
        for rs in orphans(self.store, "ReplicaSet", md["namespace"]):
            if not rs["metadata"].get("deletionTimestamp") and sel.matches(
                rs["metadata"].get("labels")
            ):

                def adopt(o: Obj) -> None:
                    o["metadata"].setdefault("ownerReferences", []).append(controller_ref(d))

                out.append(
                    self.registry.modify(
                        "ReplicaSet", md["namespace"], rs["metadata"]["name"], adopt
                    )
                )
        out.sort(key=created_order)
        return out

    def _split(self, d: Obj, rss: list[Obj]) -> tuple[Obj | None, list[Obj]]:
        tmpl = d["spec"]["template"]
        new = next((rs for rs in rss if equal_ignore_hash(rs["spec"]["template"], tmpl)), None)
        return new, [rs for rs in rss if rs is not new]

    def _is_scaling_event(self, d: Obj, rss: list[Obj]) -> bool:
        want = str(d["spec"].get("replicas", 1))
        for rs in rss:
            if spec_replicas(rs) == 0:
                continue
            ann = (rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS)
            if ann is not None and ann != want:
                return True
        return False

    # --- strategies --------------------------------------------------------------------

    def _rolling(self, d: Obj, new: Obj | None, old: list[Obj]) -> None:
        s = Strategy.of(d)
        views = [view(rs) for rs in old]
        if new is None:
            size = new_rs_replicas(s, views, None)
            new = self._create_new(d, old, size)
            if new is None:
                return
        else:
            new = self._sync_revision(d, new, old)
            size = new_rs_replicas(s, [*views, view(new)], view(new))
            if size != spec_replicas(new) or self._annotations_stale(d, new):
                new = self._scale_rs(d, new, size)
        for rs_name, size in old_rs_scale_down(s, views, view(new)).items():
            rs = next(r for r in old if r["metadata"]["name"] == rs_name)
            self._scale_rs(d, rs, size)

    def _recreate(self, d: Obj, new: Obj | None, old: list[Obj]) -> None:
        for rs in old:
            if spec_replicas(rs) != 0:
                self._scale_rs(d, rs, 0)
        running = [
            p
            for rs in old
            for p in controlled_by(self.store, "Pod", rs)
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        if running:
            return  # Recreate: the new pods start only once every old one is gone
        want = int(d["spec"].get("replicas", 1))
        if new is None:
            self._create_new(d, old, want)
            return
        new = self._sync_revision(d, new, old)
        if spec_replicas(new) != want or self._annotations_stale(d, new):
            self._scale_rs(d, new, want)

    def _scale(self, d: Obj, new: Obj | None, old: list[Obj]) -> None:
        """A scaling event: the replicas changed, the template did not."""
        s = Strategy.of(d)
        active = [rs for rs in ([new] if new else []) + old if spec_replicas(rs) > 0]
        if len(active) <= 1:
            target = active[0] if active else (new or (old[-1] if old else None))
            if target is not None:
                self._scale_rs(d, target, s.replicas)
            return
        if (
            new is not None
            and spec_replicas(new) == s.replicas
            and status_count(new, "availableReplicas") == s.replicas
        ):
            for rs in old:
                self._scale_rs(d, rs, 0)
            return
        if not s.rolling:
            return
        ordered = sorted(active, key=created_order)
        annotated = {}
        for rs in ordered:
            ann = (rs["metadata"].get("annotations") or {}).get(MAX_REPLICAS)
            if ann is not None and ann.isdigit():
                annotated[rs["metadata"]["name"]] = int(ann)
        sizes = proportions(
            s,
            [view(rs) for rs in ordered],
            annotated,
            new["metadata"]["name"] if new is not None else None,
        )
        for rs in ordered:
            self._scale_rs(d, rs, sizes.get(rs["metadata"]["name"], spec_replicas(rs)))

    # --- writes --------------------------------------------------------------------------

    def _annotations_stale(self, d: Obj, rs: Obj) -> bool:
        s = Strategy.of(d)
        ann = rs["metadata"].get("annotations") or {}
        return ann.get(DESIRED_REPLICAS) != str(s.replicas) or ann.get(MAX_REPLICAS) != str(
            s.replicas + s.max_surge
        )

    def _scale_rs(self, d: Obj, rs: Obj, size: int) -> Obj:
        s = Strategy.of(d)
        old_size = spec_replicas(rs)
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

        self._status_put(ns, name, put)

    def _status_put(self, ns: str, name: str, fn: Callable[[Obj], None]) -> None:
        """Change the Deployment's status: in the draft while _sync_status makes one,
        else at once."""
        draft = self._draft
        if draft is not None and (ns, name) == _key_of(draft):
            fn(draft)
            return
        try:
            self.registry.update_status("Deployment", ns, name, fn)
        except ApiError:
            pass

    def _current(self, ns: str, name: str) -> Obj | None:
        """The Deployment as the status being made says it is."""
        draft = self._draft
        if draft is not None and (ns, name) == _key_of(draft):
            return draft
        return self.store.get("Deployment", ns, name)

    def _sync_status(self, d: Obj, new: Obj | None, rss: list[Obj]) -> None:
        """calculateStatus and syncRolloutStatus: counts and conditions in one status
        write, as the real controller's one UpdateStatus (a write per part had made
        a Deployment's status change a dozen times while its pods started)."""
        md = d["metadata"]
        live = self.store.get("Deployment", md["namespace"], md["name"])
        if live is None:
            return
        draft = {**live, "status": _json.copy(live.get("status") or {})}
        self._draft = draft
        try:
            self._make_status(d, new, rss)
        finally:
            self._draft = None
        status = draft["status"]
        if status == (live.get("status") or {}):
            return

        def put(o: Obj) -> None:
            o["status"] = status

        self._status_put(md["namespace"], md["name"], put)

    def _make_status(self, d: Obj, new: Obj | None, rss: list[Obj]) -> None:
        md = d["metadata"]
        s = Strategy.of(d)
        available = sum(status_count(rs, "availableReplicas") for rs in rss)
        status: Obj = {
            "observedGeneration": int(md.get("generation") or 1),
            "replicas": sum(status_count(rs, "replicas") for rs in rss),
            "updatedReplicas": status_count(new, "replicas") if new is not None else 0,
            "readyReplicas": sum(status_count(rs, "readyReplicas") for rs in rss),
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
        live = self._current(md["namespace"], md["name"])
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
            cond = condition(self._current(md["namespace"], md["name"]) or d, "Progressing")
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

        self._status_put(ns, name, drop)

    def _put_status(self, d: Obj, status: Obj) -> None:
        md = d["metadata"]
        live = self._current(md["namespace"], md["name"])
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

        self._status_put(md["namespace"], md["name"], put)

    def _cleanup(self, d: Obj, old: list[Obj]) -> None:
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        dead = [
            rs
            for rs in old
            if spec_replicas(rs) == 0
            and status_count(rs, "replicas") == 0
            and not rs["metadata"].get("deletionTimestamp")
        ]
        extra = len(dead) - int(limit)
        if extra <= 0:
            return
        dead.sort(key=lambda rs: (revision(rs), created_order(rs)))
        for rs in dead[:extra]:
            md = rs["metadata"]
            try:
                self.registry.delete(BY_KIND["ReplicaSet"], md["namespace"], md["name"])
            except ApiError:
                pass
