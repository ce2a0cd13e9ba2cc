"""Job controller (k/k pkg/controller/job): pods until `completions` of them
succeed, at most `parallelism` at a time.

- NonIndexed: any pod's success counts; Indexed: each index 0..completions-1
  must succeed once, and its pod carries the index as the annotation and label
  `batch.kubernetes.io/job-completion-index`, the env var JOB_COMPLETION_INDEX
  and the hostname `<job>-<index>`.
- Failures: failed pods (restartPolicy Never) and container restarts
  (OnFailure) count against `backoffLimit`; a replacement pod waits the
  controller's back-off (10s doubling to 6m, as kube-controller-manager's).
  Past the limit, or past `activeDeadlineSeconds`, the Job gets FailureTarget
  (BackoffLimitExceeded / DeadlineExceeded), its running pods are deleted, then
  Failed once they are gone. Success gets SuccessCriteriaMet, then Complete
  with completionTime.
- Finished pods are kept, as a real cluster keeps them, until the Job goes;
  `ttlSecondsAfterFinished` deletes a finished Job that long after it finished
  (the TTL-after-finished controller's role), and the garbage collector its pods.

Time comes from `clock` (seconds since the epoch), so tests can set it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from svcnet.controllers.base import Key
from svcnet.controllers.workload import (
    OwnerController,
    is_terminating,
    pod_from_template,
)
from svcnet.events import record
from svcnet.k8s.objects import Obj, is_terminal, pod_ready
from svcnet.k8s.timestamps import parse_time, rfc3339
from svcnet.k8s.wellknown import JOB_COMPLETION_INDEX
from svcnet.registry import ApiError, Registry

BACKOFF = (10.0, 360.0)
"""DefaultJobPodFailureBackOff and MaxJobPodFailureBackOff."""

COMPLETED = ("CompletionsReached", "Reached expected number of succeeded pods")
BACKOFF_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")


def condition(job: Obj, ctype: str) -> Obj | None:
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") == ctype and c.get("status") == "True":
            return dict(c)
    return None


def finished(job: Obj) -> bool:
    return condition(job, "Complete") is not None or condition(job, "Failed") is not None


def index_of(pod: Obj) -> int | None:
    value = (pod["metadata"].get("annotations") or {}).get(JOB_COMPLETION_INDEX)
    return int(value) if value is not None and str(value).isdigit() else None


def format_indexes(indexes: set[int]) -> str:
    """completedIndexes: sorted, consecutive runs as `a-b` (`0-2,4`)."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(indexes):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [i]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(out)


def _restarts(pod: Obj) -> int:
    st = pod.get("status") or {}
    return sum(
        int(cs.get("restartCount") or 0)
        for cs in [*(st.get("initContainerStatuses") or ()), *(st.get("containerStatuses") or ())]
    )


class JobController(OwnerController):
    name = "job-controller"
    owns = "Job"

    def __init__(
        self,
        registry: Registry,
        clock: Callable[[], float] = time.time,
        backoff: tuple[float, float] = BACKOFF,
    ) -> None:
        super().__init__(registry)
        self.clock = clock
        self.backoff = backoff
        self._failures: dict[str, tuple[int, float]] = {}
        """Job uid -> (failures seen, when the count last grew): the back-off's clock."""

    def sync(self, key: Key) -> None:
        ns, name = key
        job = self.store.get("Job", ns, name)
        if job is None:
            live = {j["metadata"]["uid"] for j in self.store.list("Job")}
            self._failures = {u: v for u, v in self._failures.items() if u in live}
            return
        if job["metadata"].get("deletionTimestamp"):
            return
        now = self.clock()
        if finished(job):
            self._expire(job, now)
            return
        self._sync(job, now)

    def _sync(self, job: Obj, now: float) -> None:
        md, spec = job["metadata"], job["spec"]
        old = job.get("status") or {}
        status: Obj = {k: v for k, v in old.items()}
        conditions: list[Obj] = [dict(c) for c in old.get("conditions") or ()]
        if spec.get("suspend"):
            for p in self.pods_of(job):
                if not is_terminal(p) and not is_terminating(p):
                    self._delete(job, p)
            self._write(job, status, conditions, self.pods_of(job))
            return
        if not status.get("startTime"):
            status["startTime"] = rfc3339(now)
        start = parse_time(status["startTime"])
        pods = self.pods_of(job)
        active = [p for p in pods if not is_terminal(p) and not is_terminating(p)]
        terminating = [p for p in pods if is_terminating(p) and not is_terminal(p)]
        succeeded = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"]
        failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
        on_failure = (spec["template"].get("spec") or {}).get("restartPolicy") == "OnFailure"
        restarts = sum(_restarts(p) for p in active) if on_failure else 0
        failures = len(failed) + restarts
        limit = int(spec.get("backoffLimit", 6))
        indexed = spec.get("completionMode") == "Indexed"
        completions = spec.get("completions")
        done_indexes = {i for p in succeeded if (i := index_of(p)) is not None}

        target = next(
            (c for c in conditions if c["type"] == "FailureTarget" and c["status"] == "True"),
            None,
        )
        criteria_met = any(
            c["type"] == "SuccessCriteriaMet" and c["status"] == "True" for c in conditions
        )
        if target is None and not criteria_met:
            why: tuple[str, str] | None = None
            if failed and len(failed) > limit:
                why = BACKOFF_EXCEEDED
            elif on_failure and (restarts > 0 if limit == 0 else restarts >= limit) and restarts:
                why = BACKOFF_EXCEEDED
            ads = spec.get("activeDeadlineSeconds")
            if why is None and ads is not None and start is not None:
                left = start.timestamp() + int(ads) - now
                if left <= 0:
                    why = DEADLINE_EXCEEDED
                else:
                    self.enqueue_after((md["namespace"], md["name"]), left)
            if why is not None:
                target = self._condition(conditions, "FailureTarget", why, now)
                record(self.registry, job, "Warning", why[0], why[1], self.name)
        if target is not None:
            for p in active:
                self._delete(job, p)
            if not active and not terminating:
                why = (str(target.get("reason")), str(target.get("message")))
                self._condition(conditions, "Failed", why, now)
            self._write(
                job, status, conditions, self.pods_of(job), done_indexes if indexed else None
            )
            return

        if indexed:
            complete = completions is not None and len(done_indexes) >= int(completions)
        elif completions is not None:
            complete = len(succeeded) >= int(completions)
        else:
            complete = bool(succeeded) and not active
        if complete or criteria_met:
            if not criteria_met:
                self._condition(conditions, "SuccessCriteriaMet", COMPLETED, now)
            for p in active:
                self._delete(job, p)
            if not active and not terminating:
                self._condition(conditions, "Complete", COMPLETED, now)
                status["completionTime"] = rfc3339(now)
                record(self.registry, job, "Normal", "Completed", "Job completed", self.name)
            self._write(
                job, status, conditions, self.pods_of(job), done_indexes if indexed else None
            )
            return

        self._create_pods(job, active, succeeded, done_indexes, failures, now)
        self._write(job, status, conditions, self.pods_of(job), done_indexes if indexed else None)

    def _create_pods(
        self,
        job: Obj,
        active: list[Obj],
        succeeded: list[Obj],
        done_indexes: set[int],
        failures: int,
        now: float,
    ) -> None:
        md, spec = job["metadata"], job["spec"]
        seen, since = self._failures.get(md["uid"], (0, now))
        if failures != seen:
            seen, since = failures, now
            self._failures[md["uid"]] = (seen, since)
        if failures:
            base, cap = self.backoff
            wait = min(base * 2 ** (failures - 1), cap) - (now - since)
            if wait > 0:
                self.enqueue_after((md["namespace"], md["name"]), wait)
                return
        parallelism = int(spec.get("parallelism", 1))
        completions = spec.get("completions")
        if spec.get("completionMode") == "Indexed" and completions is not None:
            busy = {i for p in active if (i := index_of(p)) is not None}
            todo = [i for i in range(int(completions)) if i not in done_indexes and i not in busy]
            for i in todo[: max(parallelism - len(active), 0)]:
                self._create(job, i)
            return
        if completions is None:
            want = 0 if succeeded else parallelism
        else:
            want = min(parallelism, int(completions) - len(succeeded))
        for _ in range(want - len(active)):
            self._create(job, None)

    def _create(self, job: Obj, index: int | None) -> None:
        name = job["metadata"]["name"]
        pod = pod_from_template(job, job["spec"]["template"])
        pmd = pod["metadata"]
        pmd["generateName"] = f"{name}-" if index is None else f"{name}-{index}-"
        if index is not None:
            pmd.setdefault("annotations", {})[JOB_COMPLETION_INDEX] = str(index)
            pmd["labels"][JOB_COMPLETION_INDEX] = str(index)
            spec = pod["spec"]
            spec["hostname"] = f"{name}-{index}"
            ref = {
                "fieldRef": {
                    "apiVersion": "v1",
                    "fieldPath": f"metadata.annotations['{JOB_COMPLETION_INDEX}']",
                }
            }
            for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
                env = [e for e in c.get("env") or [] if e.get("name") != "JOB_COMPLETION_INDEX"]
                c["env"] = [*env, {"name": "JOB_COMPLETION_INDEX", "valueFrom": ref}]
        try:
            created = self.registry.create(pod, namespace=job["metadata"]["namespace"])
        except ApiError as e:
            message = f"Error creating: {e.message}"
            record(self.registry, job, "Warning", "FailedCreate", message, self.name)
            return
        message = f"Created pod: {created['metadata']['name']}"
        record(self.registry, job, "Normal", "SuccessfulCreate", message, self.name)

    def _delete(self, job: Obj, pod: Obj) -> None:
        if self.delete_pod(pod):
            message = f"Deleted pod: {pod['metadata']['name']}"
            record(self.registry, job, "Normal", "SuccessfulDelete", message, self.name)

    def _condition(
        self, conditions: list[Obj], ctype: str, why: tuple[str, str], now: float
    ) -> Obj:
        ts = rfc3339(now)
        c = {
            "type": ctype,
            "status": "True",
            "lastProbeTime": ts,
            "lastTransitionTime": ts,
            "reason": why[0],
            "message": why[1],
        }
        conditions[:] = [x for x in conditions if x.get("type") != ctype] + [c]
        return c

    def _write(
        self,
        job: Obj,
        status: Obj,
        conditions: list[Obj],
        pods: list[Obj],
        done_indexes: set[int] | None = None,
    ) -> None:
        active = [p for p in pods if not is_terminal(p) and not is_terminating(p)]
        counts: Obj = {
            "active": len(active),
            "succeeded": sum(
                1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"
            ),
            "failed": sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Failed"),
        }
        for k, v in counts.items():
            if v:
                status[k] = v
            else:
                status.pop(k, None)
        status["ready"] = sum(1 for p in active if pod_ready(p))
        status["terminating"] = sum(1 for p in pods if is_terminating(p) and not is_terminal(p))
        status["uncountedTerminatedPods"] = {}
        if done_indexes:
            status["completedIndexes"] = format_indexes(done_indexes)
        if conditions:
            status["conditions"] = conditions
        self.put_status(job, status)

    def _expire(self, job: Obj, now: float) -> None:
        """The TTL-after-finished controller: delete a finished Job after its TTL."""
        ttl = job["spec"].get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        cond = condition(job, "Complete") or condition(job, "Failed") or {}
        at = parse_time((job.get("status") or {}).get("completionTime")) or parse_time(
            cond.get("lastTransitionTime")
        )
        if at is None:
            return
        md = job["metadata"]
        left = at.timestamp() + int(ttl) - now
        if left > 0:
            self.enqueue_after((md["namespace"], md["name"]), left)
            return
        try:
            self.registry.delete("Job", md["namespace"], md["name"])
        except ApiError:
            pass
