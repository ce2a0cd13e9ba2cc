"""Init containers against real processes: order, gating, failure, retry, sidecars."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from svcnet.agent import Agent
from svcnet.api.tables import table
from svcnet.k8s.objects import Obj
from svcnet.store import Store
from tests.agent.conftest import (
    container_status,
    follow_until,
    phase_is,
    pod_obj,
    read_logs,
    running_ready,
    wait_pod,
)


def sh(name: str, script: str, **extra: Any) -> Obj:
    return {"name": name, "image": "busybox", "command": ["sh", "-c", script], **extra}


def init_status(pod: Obj, name: str) -> Obj:
    return next(c for c in pod["status"]["initContainerStatuses"] if c["name"] == name)


def columns(pod: Obj) -> dict[str, Any]:
    """The pod's row as `get pods` prints it."""
    t = table("Pod", [pod], dt.datetime.now(dt.UTC))
    names = [c["name"] for c in t["columnDefinitions"]]
    return dict(zip(names, t["rows"][0]["cells"], strict=False))


def condition(pod: Obj, ctype: str) -> Obj:
    return next(c for c in pod["status"]["conditions"] if c["type"] == ctype)


def terminated(cs: Obj) -> Obj | None:
    t: Obj | None = (cs.get("state") or {}).get("terminated")
    return t


async def test_init_containers_run_in_order_before_the_containers(
    agent: Agent, store: Store, tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    gate = tmp_path / "gate"
    store.create(
        pod_obj(
            "ordered",
            [sh("app", f"echo app >> {trace}; cat {trace}; exec sleep 60")],
            initContainers=[
                sh("first", f"echo first >> {trace}"),
                # Waits for the test, like a wait-for-service init container.
                sh("second", f"until [ -e {gate} ]; do sleep 0.02; done; echo second >> {trace}"),
            ],
        )
    )

    def second_running(pod: Obj) -> bool:
        st: list[Obj] = (pod.get("status") or {}).get("initContainerStatuses") or []
        # Started too: a running init container is still not done.
        return len(st) == 2 and "running" in (st[1].get("state") or {}) and st[1]["started"]

    pod = await wait_pod(store, "ordered", second_running)
    first = init_status(pod, "first")
    assert terminated(first) is not None and terminated(first)["reason"] == "Completed"  # type: ignore[index]
    assert first["ready"] is True
    assert container_status(pod, "app")["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert pod["status"]["phase"] == "Pending"
    init = condition(pod, "Initialized")
    assert (init["status"], init["reason"], init["message"]) == (
        "False",
        "ContainersNotInitialized",
        "containers with incomplete status: [second]",
    )
    assert (columns(pod)["Status"], columns(pod)["Ready"]) == ("Init:1/2", "0/1")
    assert not trace.read_text().count("app")

    gate.touch()
    pod = await wait_pod(store, "ordered", running_ready)
    # The app prints the trace once it has added its own line.
    assert await follow_until(agent, "ordered", "app", "app\n") == "first\nsecond\napp\n"
    assert condition(pod, "Initialized")["status"] == "True"
    for name in ("first", "second"):
        cs = init_status(pod, name)
        assert cs["ready"] and cs["restartCount"] == 0
        assert terminated(cs) == {**(terminated(cs) or {}), "exitCode": 0, "reason": "Completed"}
    assert columns(pod)["Status"] == "Running"


async def test_failed_init_container_fails_a_never_pod(agent: Agent, store: Store) -> None:
    store.create(
        pod_obj(
            "broken",
            [sh("app", "exec sleep 60")],
            initContainers=[sh("setup", "echo cannot; exit 3")],
            restartPolicy="Never",
        )
    )
    pod = await wait_pod(store, "broken", phase_is("Failed"))
    cs = init_status(pod, "setup")
    assert (terminated(cs) or {})["exitCode"] == 3 and cs["ready"] is False
    # The containers never ran.
    assert container_status(pod, "app")["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert columns(pod)["Status"] == "Init:Error"
    assert condition(pod, "Initialized")["message"] == "containers with incomplete status: [setup]"
    assert await read_logs(agent, "broken", "setup") == "cannot\n"


async def test_failed_init_container_is_retried_then_the_pod_starts(
    agent: Agent, store: Store, tmp_path: Path
) -> None:
    once = tmp_path / "once"
    store.create(
        pod_obj(
            "retry",
            [sh("app", "exec sleep 60")],
            # Fails the first time only; the agent fixture's back-off starts at 0.2 s.
            initContainers=[sh("setup", f"[ -e {once} ] || {{ touch {once}; exit 1; }}")],
        )
    )
    pod = await wait_pod(store, "retry", running_ready)
    cs = init_status(pod, "setup")
    assert cs["restartCount"] == 1
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert (terminated(cs) or {})["exitCode"] == 0
    # kubectl counts init restarts only while initializing (printPod), so 0 now.
    assert columns(pod)["Restarts"] == "0"


async def test_sidecar_init_container_runs_beside_the_containers(
    agent: Agent, store: Store
) -> None:
    store.create(
        pod_obj(
            "sided",
            [sh("app", "exec sleep 60")],
            initContainers=[sh("proxy", "exec sleep 60", restartPolicy="Always")],
        )
    )
    pod = await wait_pod(store, "sided", running_ready)
    cs = init_status(pod, "proxy")
    assert "running" in cs["state"] and cs["started"] and cs["ready"]
    assert "running" in container_status(pod, "app")["state"]
    assert (columns(pod)["Ready"], columns(pod)["Status"]) == ("2/2", "Running")
