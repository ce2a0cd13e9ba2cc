"""Pods' files and cgroups made in the preparer's helper process (agent/prepare.py),
and on the agent's thread when the helper is gone."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from svcnet.agent.identity import Identity
from svcnet.agent.prepare import MAX_FRAME, Made, Plan, Preparer, prepare
from svcnet.agent.sandbox import Libc
from tests.agent.test_forkserver import dead

ME = Identity(os.getuid(), os.getgid(), ())


def plan_for(root: Path, name: str, hosts: Any = "127.0.0.1\tlocalhost\n") -> Plan:
    return Plan(
        dir=root / name,
        resolv="nameserver 127.0.0.53\n",
        hosts=hosts,
        owner=None,
        cgroups=None,
        uid=f"uid-{name}",
        limits=(None, None),
        containers=[("app", ME, False), ("side", ME, True)],
    )


class CountingThread(concurrent.futures.ThreadPoolExecutor):
    """The fallback thread, counting what it was given."""

    def __init__(self) -> None:
        super().__init__(1)
        self.given = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.given += 1
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
async def preparer() -> AsyncIterator[Preparer]:
    p = Preparer(CountingThread(), Libc().prctl)
    await p.start()
    assert p.problem == "", p.problem
    try:
        yield p
    finally:
        await p.stop()
        p.thread.shutdown(wait=True)


def assert_made(made: Made, plan: Plan) -> None:
    assert made.files_error is None
    assert made.resolv is not None and made.resolv.read_text() == plan.resolv
    assert made.hosts is not None and made.hosts.read_text() == plan.hosts
    assert made.dirs == {("app", ME.uid, ME.gid), ("side", ME.uid, ME.gid)}
    base = plan.dir / "containers"
    for c in ("app", "side"):
        assert (base / c / "home").is_dir() and (base / c / "work").is_dir()
        assert (base / c / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert (base / "side" / "mnt").is_dir() and not (base / "app" / "mnt").exists()


async def test_the_helper_makes_each_pods_files_in_order_of_asking(
    preparer: Preparer, tmp_path: Path
) -> None:
    helper = preparer.pid
    assert helper is not None and helper != os.getpid()
    plans = [plan_for(tmp_path, f"pod{i}") for i in range(20)]
    made = await asyncio.gather(*(preparer.submit(p) for p in plans))
    for m, p in zip(made, plans, strict=True):
        assert_made(m, p)
    assert isinstance(preparer.thread, CountingThread)
    assert preparer.thread.given == 0  # all of it in the helper
    # What prepare makes on the thread is the same, from the same plan.
    again = await asyncio.get_running_loop().run_in_executor(None, prepare, plans[0])
    assert_made(again, plans[0])


async def test_a_dead_helpers_unanswered_plans_and_the_later_ones_go_to_the_thread(
    preparer: Preparer, tmp_path: Path
) -> None:
    helper = preparer.pid
    assert helper is not None
    os.kill(helper, signal.SIGSTOP)  # the plans below stay unanswered
    waiting = [preparer.submit(plan_for(tmp_path, f"w{i}")) for i in range(3)]
    os.kill(helper, signal.SIGKILL)
    made = await asyncio.wait_for(asyncio.gather(*waiting), 10)
    for i, m in enumerate(made):
        assert_made(m, plan_for(tmp_path, f"w{i}"))
    assert "the helper stopped" in preparer.problem
    later = plan_for(tmp_path, "later")
    assert_made(await preparer.submit(later), later)
    assert isinstance(preparer.thread, CountingThread)
    assert preparer.thread.given == 4


async def test_what_prepare_raises_in_the_helper_is_raised_to_the_caller(
    preparer: Preparer, tmp_path: Path
) -> None:
    with pytest.raises(AttributeError, match="encode"):
        await preparer.submit(plan_for(tmp_path, "bad", hosts=12))
    # A bug in one plan stops neither the helper nor the plans after it.
    good = plan_for(tmp_path, "good")
    assert_made(await preparer.submit(good), good)
    assert preparer.problem == ""


async def test_a_plan_too_big_for_a_message_is_made_on_the_thread(
    preparer: Preparer, tmp_path: Path
) -> None:
    big = plan_for(tmp_path, "big", hosts="127.0.0.9\t" + "a" * MAX_FRAME + "\n")
    assert_made(await preparer.submit(big), big)
    assert isinstance(preparer.thread, CountingThread)
    assert preparer.thread.given == 1
    assert preparer.problem == ""


async def test_stop_leaves_no_helper_behind(tmp_path: Path) -> None:
    p = Preparer(CountingThread(), Libc().prctl)
    await p.start()
    helper = p.pid
    assert helper is not None
    assert_made(await p.submit(plan_for(tmp_path, "one")), plan_for(tmp_path, "one"))
    await p.stop()
    assert dead(helper) and p.pid is None
    # Stopped, it still answers, on the thread: a pod stopping late is not stranded.
    late = plan_for(tmp_path, "late")
    assert_made(await p.submit(late), late)
    p.thread.shutdown(wait=True)


async def test_a_helper_that_cannot_start_leaves_the_plans_to_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its interpreter finds no svcnet to import, and exits before its hello.
    monkeypatch.setattr("svcnet.agent.forkserver.ROOT", str(tmp_path / "nowhere"))
    p = Preparer(CountingThread(), Libc().prctl)
    await p.start()
    try:
        assert p.problem.startswith("the helper did not start"), p.problem
        assert p.pid is None
        plan = plan_for(tmp_path, "pod")
        assert_made(await p.submit(plan), plan)
        assert isinstance(p.thread, CountingThread)
        assert p.thread.given == 1
    finally:
        await p.stop()
        p.thread.shutdown(wait=True)
