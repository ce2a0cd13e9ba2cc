"""svcnet.events: names that sort by time, repeats counted, old events aged out."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import pytest

from svcnet.events import EventReaper, expiry, record
from svcnet.k8s.objects import Obj
from svcnet.k8s.timestamps import parse_time, rfc3339
from svcnet.registry import Registry


def obj(name: str, uid: str) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "uid": uid},
    }


def test_names_sort_by_time_and_repeats_count_up(reg: Registry) -> None:
    store = reg.store
    d = obj("web", "u1")
    first = record(reg, d, "Normal", "ScalingReplicaSet", "a", "deployment-controller")
    second = record(reg, d, "Normal", "ScalingReplicaSet", "b", "deployment-controller")
    again = record(reg, d, "Normal", "ScalingReplicaSet", "a", "deployment-controller")
    assert again == first
    names = [e["metadata"]["name"] for e in store.list("Event", "default")]
    assert names == [first, second]  # the API's order (by name) is the order of events
    ev = store.get("Event", "default", first)
    assert ev is not None and ev["count"] == 2
    assert ev["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "namespace": "default",
        "name": "web",
        "uid": "u1",
        "resourceVersion": None,
    }


async def test_the_reaper_deletes_events_their_ttl_after_their_last_occurrence(
    reg: Registry,
) -> None:
    store = reg.store
    names = {
        age: record(reg, obj(f"o{age}", f"u{age}"), "Normal", "X", f"m{age}", "c")
        for age in (10, 3599, 3601, 7200)
    }

    def aged(seconds: int) -> Callable[[Obj], None]:
        def set_last(e: Obj) -> None:
            e["lastTimestamp"] = rfc3339(time.time() - seconds)

        return set_last

    for age, name in names.items():
        reg.modify("Event", "default", name, aged(age))
    reaper = EventReaper(reg)
    reaper.start()
    try:
        for _ in range(5):  # the timer for what is already due fires in the next turn
            await asyncio.sleep(0)
        left = {e["metadata"]["name"] for e in store.list("Event", "default")}
        assert left == {names[10], names[3599]}
        # A repeat of an old event moves its expiry: it stays.
        again = record(reg, obj("o3599", "u3599"), "Normal", "X", "m3599", "c")
        assert again == names[3599]
        assert len(reaper) == 2
    finally:
        reaper.stop()


@pytest.mark.parametrize("seed", range(5))
def test_recording_matches_a_brute_force_model(reg: Registry, seed: int) -> None:
    """The index finds the same repeat a scan of every Event would."""
    rng = random.Random(seed)
    store = reg.store
    objects = [obj(f"o{i}", f"u{i}") for i in range(4)]
    for _ in range(300):
        if rng.random() < 0.1 and store.list("Event", "default"):
            victim = rng.choice(store.list("Event", "default"))
            reg.delete("Event", "default", victim["metadata"]["name"])
            continue
        o = rng.choice(objects)
        reason, message, component = rng.choice("AB"), rng.choice("xyz"), rng.choice("cd")
        expected = [
            e["metadata"]["name"]
            for e in store.list("Event", "default")
            if e["involvedObject"]["uid"] == o["metadata"]["uid"]
            and (e["reason"], e["message"], e["source"]["component"])
            == (reason, message, component)
        ]
        counts = {e["metadata"]["name"]: e["count"] for e in store.list("Event", "default")}
        name = record(reg, o, "Normal", reason, message, component)
        got = store.get("Event", "default", name)
        assert got is not None
        if expected:
            assert name == expected[0]
            assert got["count"] == counts[name] + 1
        else:
            assert name not in counts and got["count"] == 1


@pytest.mark.parametrize("seed", range(4))
async def test_the_reaper_deletes_what_a_scan_of_every_events_time_would(
    reg: Registry, seed: int
) -> None:
    """The reaper's time-ordered queue (with the stale entries repeats and deletes
    leave, and its rebuild once they pile up) deletes exactly the Events that a
    scan of every Event's lastTimestamp finds past the TTL, and no other."""
    rng = random.Random(seed)
    store = reg.store
    ttl = 100
    reaper = EventReaper(reg, ttl=ttl)
    reaper.start()

    def age_of(seconds: float) -> Callable[[Obj], None]:
        def set_last(e: Obj) -> None:
            e["lastTimestamp"] = rfc3339(time.time() - seconds)

        return set_last

    def some_age() -> float:
        # Clear of the boundary by more than the timestamps' one-second grain.
        return rng.choice([rng.uniform(0, ttl - 5), rng.uniform(ttl + 5, 2 * ttl)])

    def expected() -> set[str]:
        now, left = time.time(), set()
        for e in store.list("Event", "default"):
            last = parse_time(e["lastTimestamp"])
            assert last is not None
            if last.timestamp() + ttl > now:
                left.add(e["metadata"]["name"])
        return left

    async def check() -> None:
        want = expected()
        for _ in range(5):  # the timer for what is already due fires in the next turn
            await asyncio.sleep(0)
        live = store.list("Event", "default")
        assert {e["metadata"]["name"] for e in live} == want
        assert len(reaper) == len(want)
        # And every Event left is queued at its expiry, to be deleted when it comes.
        queued = set(reaper._heap)
        assert all((expiry(e, ttl), "default", e["metadata"]["name"]) in queued for e in live)

    try:
        for step in range(600):
            events = store.list("Event", "default")
            r = rng.random()
            if r < 0.1 and events:
                reg.delete("Event", "default", rng.choice(events)["metadata"]["name"])
            elif r < 0.6 and events:
                name = rng.choice(events)["metadata"]["name"]
                reg.modify("Event", "default", name, age_of(some_age()))
            else:
                name = record(reg, obj(f"o{step}", f"u{step}"), "Normal", "X", "m", "c")
                reg.modify("Event", "default", name, age_of(some_age()))
            if step % 40 == 0:
                await check()
        await check()
        # Repeats of one Event pile stale entries up until the queue is rebuilt
        # (more of them than it keeps before a rebuild, so at least one happens);
        # the others must still be queued after it.
        names = [e["metadata"]["name"] for e in store.list("Event", "default")]
        assert len(names) > 2
        for _ in range(2 * len(reaper) + 1100):
            reg.modify("Event", "default", names[-1], age_of(rng.uniform(0, ttl - 5)))
        await check()
        reg.modify("Event", "default", names[-1], age_of(ttl + 10))
        await check()
    finally:
        reaper.stop()
