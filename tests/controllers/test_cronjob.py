"""CronJob scheduling against an injected clock: the cron parser, the most
recent missed time, Job names, concurrency policies, suspend and the starting
deadline, with a real store and registry and no wall-clock wait."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import pytest

from svcnet.config import Settings
from svcnet.controllers import CronJobController
from svcnet.controllers.cronjob import job_name as cron_job_name
from svcnet.controllers.cronjob import most_recent
from svcnet.k8s import cron
from svcnet.k8s.objects import Obj
from svcnet.k8s.timestamps import rfc3339
from svcnet.registry import ApiError, Registry
from svcnet.store import Store

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "after", "expected"),
    [
        ("* * * * *", "2025-01-04T12:00:30", "2025-01-04T12:01:00"),
        ("*/15 9-17 * * mon-fri", "2025-01-04T12:00:00", "2025-01-06T09:00:00"),
        ("0 0 29 feb *", "2025-03-01T00:00:00", "2028-02-29T00:00:00"),
        ("@hourly", "2025-01-04T12:59:00", "2025-01-04T13:00:00"),
        ("@weekly", "2025-01-04T12:00:00", "2025-01-05T00:00:00"),
        ("0 12 1 * 1", "2025-01-04T12:00:00", "2025-01-06T12:00:00"),  # dom OR dow
        ("5 4 * JAN,jul ?", "2025-01-31T05:00:00", "2025-07-01T04:05:00"),
    ],
)
def test_next_activation(spec: str, after: str, expected: str) -> None:
    assert cron.parse(spec).next(at(after), UTC) == at(expected)


def test_next_activation_in_a_time_zone() -> None:
    tokyo = cron.time_zone("Asia/Tokyo")
    got = cron.parse("0 9 * * *").next(at("2025-01-04T01:00:00"), tokyo)
    assert got is not None and got.astimezone(UTC) == at("2025-01-05T00:00:00")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("foo", "expected exactly 5 fields, found 1: [foo]"),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("60 * * * *", "end of range (60) above maximum (59): 60"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
        ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
        ("@fortnightly", "unrecognized descriptor: @fortnightly"),
        ("TZ=UTC * * * * *", "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
    ],
)
def test_parse_errors_are_robfigs(spec: str, message: str) -> None:
    with pytest.raises(cron.CronError) as e:
        cron.parse(spec)
    assert str(e.value) == message


def test_most_recent_counts_missed_times() -> None:
    every = cron.parse("* * * * *")
    last, missed = most_recent(every, UTC, at("2025-01-04T12:00:00"), at("2025-01-04T12:03:10"))
    assert (last, missed) == (at("2025-01-04T12:03:00"), 3)
    assert most_recent(every, UTC, at("2025-01-04T12:00:00"), at("2025-01-04T12:00:59")) == (
        None,
        0,
    )
    # Months of missed minutes: bounded work, still the latest time, reported as too many.
    last, missed = most_recent(every, UTC, at("2024-01-01T00:00:00"), at("2025-01-04T12:03:10"))
    assert last == at("2025-01-04T12:03:00") and missed > 100


def test_job_name_is_minutes_since_the_epoch() -> None:
    assert cron_job_name("hello", at("2025-01-04T12:03:00")) == "hello-28933203"


class Clock:
    """The controller's time, set by the test: minute N after the first whole
    minute after now (objects get the real creationTimestamp, so the fake time
    must not be earlier)."""

    def __init__(self) -> None:
        self.base = (int(time.time()) // 60 + 1) * 60
        self.now = float(self.base - 60)

    def __call__(self) -> float:
        return self.now

    def set(self, minute: int, second: int = 0) -> None:
        self.now = float(self.base + minute * 60 + second)

    def job(self, minute: int) -> str:
        return f"tick-{self.base // 60 + minute}"

    def stamp(self, minute: int, second: int = 0) -> str:
        return rfc3339(self.base + minute * 60 + second)


@pytest.fixture
async def env() -> Any:
    store = Store()
    reg = Registry(Settings(), store)
    reg.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    clock = Clock()
    ctrl = CronJobController(reg, clock=clock)
    ctrl.start()
    yield store, reg, clock, ctrl
    ctrl.stop()


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def cronjob(**spec: Any) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "tick"},
        "spec": {
            "schedule": "* * * * *",
            "jobTemplate": {
                "metadata": {"labels": {"app": "tick"}},
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "c", "image": "busybox"}],
                        }
                    }
                },
            },
            **spec,
        },
    }


def finish(reg: Registry, name: str, ctype: str = "Complete", done: str = "") -> None:
    def put(o: Obj) -> None:
        o["status"] = {"conditions": [{"type": ctype, "status": "True"}]}
        if done:
            o["status"]["completionTime"] = done

    reg.update_status("Job", "default", name, put)


def jobs(store: Store) -> list[str]:
    return sorted(j["metadata"]["name"] for j in store.list("Job", "default"))


async def resync(ctrl: CronJobController) -> None:
    ctrl._enqueue([("default", "tick")])
    await settle()


async def test_a_job_per_schedule_time_named_by_its_minute(env: Any) -> None:
    store, reg, clock, ctrl = env
    clock.set(-1)
    reg.create(cronjob())
    await settle()
    assert jobs(store) == []
    clock.set(1, 10)
    await resync(ctrl)
    assert jobs(store) == [clock.job(1)]
    job = store.get("Job", "default", clock.job(1))
    assert job["metadata"]["labels"]["app"] == "tick"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert job["metadata"]["annotations"][
        "batch.kubernetes.io/cronjob-scheduled-timestamp"
    ] == clock.stamp(1)
    cj = store.get("CronJob", "default", "tick")
    assert cj["status"]["lastScheduleTime"] == clock.stamp(1)
    assert [a["name"] for a in cj["status"]["active"]] == [clock.job(1)]
    # The same minute again does nothing; the next one (Allow) runs beside it.
    await resync(ctrl)
    assert jobs(store) == [clock.job(1)]
    clock.set(2, 1)
    await resync(ctrl)
    assert jobs(store) == [clock.job(1), clock.job(2)]
    # A finished Job leaves status.active and is remembered as the last success.
    finish(reg, clock.job(1), done=clock.stamp(1, 5))
    await settle()
    cj = store.get("CronJob", "default", "tick")
    assert [a["name"] for a in cj["status"]["active"]] == [clock.job(2)]
    assert cj["status"]["lastSuccessfulTime"] == clock.stamp(1, 5)


async def test_forbid_waits_and_replace_deletes(env: Any) -> None:
    store, reg, clock, ctrl = env
    clock.set(-1)
    reg.create(cronjob(concurrencyPolicy="Forbid"))
    clock.set(1)
    await resync(ctrl)
    clock.set(2)
    await resync(ctrl)
    assert jobs(store) == [clock.job(1)]  # the first still runs
    reasons = [e["reason"] for e in store.list("Event", "default")]
    assert "JobAlreadyActive" in reasons

    def replace(o: Obj) -> None:
        o["spec"]["concurrencyPolicy"] = "Replace"

    reg.modify("CronJob", "default", "tick", replace)
    clock.set(3)
    await resync(ctrl)
    assert jobs(store) == [clock.job(3)]


async def test_suspend_and_starting_deadline(env: Any) -> None:
    store, reg, clock, ctrl = env
    clock.set(-1)
    reg.create(cronjob(suspend=True, startingDeadlineSeconds=30))
    clock.set(1, 5)
    await resync(ctrl)
    assert jobs(store) == []

    def resume(o: Obj) -> None:
        o["spec"]["suspend"] = False

    # Resumed 50s after 12:01: that time is past its 30s starting deadline.
    clock.set(1, 50)
    reg.modify("CronJob", "default", "tick", resume)
    await settle()
    assert jobs(store) == []
    clock.set(2, 10)
    await resync(ctrl)
    assert jobs(store) == [clock.job(2)]


async def test_history_limits_delete_the_oldest_finished_jobs(env: Any) -> None:
    store, reg, clock, ctrl = env
    clock.set(-1)
    reg.create(cronjob(successfulJobsHistoryLimit=1, failedJobsHistoryLimit=0))
    for minute, ctype in ((1, "Complete"), (2, "Complete"), (3, "Failed")):
        clock.set(minute)
        await resync(ctrl)
        finish(reg, clock.job(minute), ctype)
        await settle()
    assert jobs(store) == [clock.job(2)]


async def test_schedule_and_time_zone_are_validated(env: Any) -> None:
    _, reg, _, _ = env
    with pytest.raises(ApiError) as e:
        reg.create(cronjob(schedule="61 * * * *", timeZone="Mars/Olympus"))
    causes = {c.field: c.message for c in e.value.causes}
    assert causes["spec.schedule"] == (
        'Invalid value: "61 * * * *": end of range (61) above maximum (59): 61'
    )
    tz = causes["spec.timeZone"]
    assert tz == 'Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus'
