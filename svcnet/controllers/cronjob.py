"""CronJob controller (k/k pkg/controller/cronjob, the v2 controller): a Job
per schedule time, named `<cronjob>-<scheduled time in minutes since the epoch>`.

Each sync finds the most recent schedule time not yet run (after
`status.lastScheduleTime`, or the CronJob's creation, and not before
`now - startingDeadlineSeconds`), skips it when it is already past its starting
deadline (MissSchedule), applies `concurrencyPolicy` (Forbid waits for the
running Job, Replace deletes it first), creates the Job from `jobTemplate`
with the `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation, and
comes back at the next schedule time. Finished Jobs beyond
`successfulJobsHistoryLimit` / `failedJobsHistoryLimit` are deleted, oldest
first. `suspend` stops new Jobs, not running ones.

Time comes from `clock` (seconds since the epoch), so tests need not wait for
the wall clock's minutes; the schedule arithmetic is the pure functions
`most_recent` and `job_name`.
"""

from __future__ import annotations

import copy
import datetime as dt
import time
from collections.abc import Callable, Iterable

from svcnet.controllers.base import Controller, Key
from svcnet.controllers.job import condition, finished
from svcnet.controllers.selection import controlled_by
from svcnet.events import record
from svcnet.k8s import cron
from svcnet.k8s.objects import Obj
from svcnet.k8s.owners import controller_of, controller_ref
from svcnet.k8s.timestamps import parse_time, rfc3339
from svcnet.k8s.wellknown import CRONJOB_SCHEDULED_TIMESTAMP
from svcnet.registry import ApiError, Registry
from svcnet.store import Event

TOO_MANY_MISSED = 100
_WINDOWS = (3600.0, 86400.0, 32 * 86400.0, 367 * 86400.0, 5 * 367 * 86400.0)
_WALK = 2000  # schedule steps tried per window: bounds the work of one sync


def most_recent(
    schedule: cron.Schedule, tz: dt.tzinfo, earliest: dt.datetime, now: dt.datetime
) -> tuple[dt.datetime | None, int]:
    """mostRecentScheduleTime: the latest schedule time in (earliest, now], and how
    many there were (counted up to TOO_MANY_MISSED + 1)."""
    for window in _WINDOWS:
        start = max(earliest, now - dt.timedelta(seconds=window))
        t = schedule.next(start, tz)
        last, count = None, 0
        steps = 0
        while t is not None and t <= now and steps < _WALK:
            last, count, steps = t, count + 1, steps + 1
            t = schedule.next(t, tz)
        if steps == _WALK:
            continue  # too many in this window for a walk: look at a shorter span's end
        if last is not None or start == earliest:
            missed = count if start == earliest else TOO_MANY_MISSED + 1
            return last, missed
    # Every window was too dense: the last minute still holds the latest time.
    t = schedule.next(now - dt.timedelta(minutes=1), tz)
    return (t if t is not None and t <= now else None), TOO_MANY_MISSED + 1


def job_name(cronjob_name: str, scheduled: dt.datetime) -> str:
    """getJobName: the scheduled time in minutes since the epoch."""
    return f"{cronjob_name}-{int(scheduled.timestamp()) // 60}"


def _ref(job: Obj) -> Obj:
    md = job["metadata"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": md["name"],
        "namespace": md["namespace"],
        "uid": md["uid"],
        "resourceVersion": md.get("resourceVersion"),
    }


class CronJobController(Controller):
    name = "cronjob-controller"
    owns = "CronJob"

    def __init__(self, registry: Registry, clock: Callable[[], float] = time.time) -> None:
        super().__init__(registry)
        self.clock = clock

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.kind == "CronJob":
            return [(ev.namespace, ev.name)]
        if ev.kind == "Job":
            out = []
            for o in (ev.obj, ev.old):
                ref = controller_of(o) if o is not None else None
                if ref is not None and ref.get("kind") == "CronJob":
                    out.append((ev.namespace, str(ref.get("name"))))
            return out
        return ()

    def sync(self, key: Key) -> None:
        ns, name = key
        cj = self.store.get("CronJob", ns, name)
        if cj is None or cj["metadata"].get("deletionTimestamp"):
            return
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        md, spec = cj["metadata"], cj["spec"]
        status = copy.deepcopy(cj.get("status") or {})
        jobs = controlled_by(self.store, "Job", cj)
        self._track(cj, status, jobs)
        self._cleanup(cj, jobs)
        if spec.get("suspend"):
            self._put(cj, status)
            return
        try:
            schedule = cron.parse(str(spec.get("schedule") or ""))
            tz = cron.time_zone(spec.get("timeZone"))
        except cron.CronError as e:
            message = f"unparseable schedule: {spec.get('schedule')!r} : {e}"
            record(self.registry, cj, "Warning", "UnparseableSchedule", message, self.name)
            self._put(cj, status)
            return
        earliest = parse_time(status.get("lastScheduleTime")) or parse_time(
            md.get("creationTimestamp")
        )
        if earliest is None:
            earliest = now
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None:
            earliest = max(earliest, now - dt.timedelta(seconds=int(deadline)))
        scheduled, missed = most_recent(schedule, tz, earliest, now)
        if missed > TOO_MANY_MISSED:
            record(
                self.registry,
                cj,
                "Warning",
                "TooManyMissedTimes",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                "or check clock skew",
                self.name,
            )
        if scheduled is not None:
            self._start_job(cj, status, jobs, scheduled, now, tz)
        self._put(cj, status)
        nxt = schedule.next(now, tz)
        if nxt is not None:
            # The workqueue's AddAfter with the real controller's small margin.
            self.enqueue_after(key, (nxt - now).total_seconds() + 0.1)

    def _start_job(
        self,
        cj: Obj,
        status: Obj,
        jobs: list[Obj],
        scheduled: dt.datetime,
        now: dt.datetime,
        tz: dt.tzinfo,
    ) -> None:
        md, spec = cj["metadata"], cj["spec"]
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and scheduled + dt.timedelta(seconds=int(deadline)) < now:
            stamp = scheduled.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            message = f"Missed scheduled time to start a job: {stamp}"
            record(self.registry, cj, "Warning", "MissSchedule", message, self.name)
            return
        name = job_name(md["name"], scheduled)
        if any(j["metadata"]["name"] == name for j in jobs):
            return  # this time was run already (a restart, or a resync)
        active = status.get("active") or []
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and active:
            message = (
                "Not starting job because prior execution is running and concurrency "
                "policy is Forbid"
            )
            record(self.registry, cj, "Normal", "JobAlreadyActive", message, self.name)
            return
        if policy == "Replace":
            for ref in list(active):
                try:
                    self.registry.delete("Job", md["namespace"], str(ref.get("name")))
                except ApiError:
                    pass
                else:
                    message = f"Deleted job {ref.get('name')}"
                    record(self.registry, cj, "Normal", "SuccessfulDelete", message, self.name)
            status["active"] = active = []
        tmpl = copy.deepcopy(spec.get("jobTemplate") or {})
        tmd = tmpl.get("metadata") or {}
        annotations = dict(tmd.get("annotations") or {})
        annotations[CRONJOB_SCHEDULED_TIMESTAMP] = scheduled.astimezone(tz).isoformat()
        if annotations[CRONJOB_SCHEDULED_TIMESTAMP].endswith("+00:00"):
            annotations[CRONJOB_SCHEDULED_TIMESTAMP] = (
                annotations[CRONJOB_SCHEDULED_TIMESTAMP][:-6] + "Z"
            )
        job: Obj = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": md["namespace"],
                "labels": dict(tmd.get("labels") or {}),
                "annotations": annotations,
                "ownerReferences": [controller_ref(cj)],
            },
            "spec": tmpl.get("spec") or {},
        }
        try:
            created = self.registry.create(job, namespace=md["namespace"])
        except ApiError as e:
            message = f"Error creating job: {e.message}"
            record(self.registry, cj, "Warning", "FailedCreate", message, self.name)
            return
        record(self.registry, cj, "Normal", "SuccessfulCreate", f"Created job {name}", self.name)
        status["active"] = [*active, _ref(created)]
        status["lastScheduleTime"] = rfc3339(scheduled.timestamp())

    def _track(self, cj: Obj, status: Obj, jobs: list[Obj]) -> None:
        """Keep status.active to the unfinished Jobs; note the ones that finished."""
        by_uid = {j["metadata"]["uid"]: j for j in jobs}
        active = []
        for ref in status.get("active") or []:
            job = by_uid.get(ref.get("uid"))
            if job is None:
                message = f"Active job went missing: {ref.get('name')}"
                record(self.registry, cj, "Normal", "MissingJob", message, self.name)
                continue
            if finished(job):
                kind = "Complete" if condition(job, "Complete") else "Failed"
                message = f"Saw completed job: {job['metadata']['name']}, condition: {kind}"
                record(self.registry, cj, "Normal", "SawCompletedJob", message, self.name)
                done = (job.get("status") or {}).get("completionTime")
                if kind == "Complete" and done:
                    status["lastSuccessfulTime"] = done
                continue
            active.append(ref)
        known = {r["uid"] for r in active}
        for job in jobs:
            if not finished(job) and job["metadata"]["uid"] not in known:
                active.append(_ref(job))
        if active:
            status["active"] = active
        else:
            status.pop("active", None)

    def _cleanup(self, cj: Obj, jobs: list[Obj]) -> None:
        """cleanupFinishedJobs: keep the newest N successful and M failed."""
        spec = cj["spec"]
        for ctype, limit in (
            ("Complete", spec.get("successfulJobsHistoryLimit")),
            ("Failed", spec.get("failedJobsHistoryLimit")),
        ):
            if limit is None:
                continue
            done = [
                j
                for j in jobs
                if condition(j, ctype) is not None and not j["metadata"].get("deletionTimestamp")
            ]
            done.sort(
                key=lambda j: str(
                    (j.get("status") or {}).get("startTime") or j["metadata"]["creationTimestamp"]
                )
            )
            for j in done[: max(len(done) - int(limit), 0)]:
                try:
                    self.registry.delete("Job", j["metadata"]["namespace"], j["metadata"]["name"])
                except ApiError:
                    continue
                message = f"Deleted job {j['metadata']['name']}"
                record(self.registry, cj, "Normal", "SuccessfulDelete", message, self.name)

    def _put(self, cj: Obj, status: Obj) -> None:
        if (cj.get("status") or {}) == status:
            return
        md = cj["metadata"]

        def put(o: Obj) -> None:
            o["status"] = copy.deepcopy(status)

        try:
            self.registry.update_status("CronJob", md["namespace"], md["name"], put)
        except ApiError:
            pass
