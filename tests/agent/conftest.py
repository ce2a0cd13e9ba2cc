"""Fixtures for the agent tests: a fresh store, an Agent on 127.13.0.0/24, and
helpers that wait on store changes (never on the clock)."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from svcnet.agent import Agent
from svcnet.config import Settings
from svcnet.k8s.objects import Obj
from svcnet.registry import Registry
from svcnet.store import Store

T = TypeVar("T")

POD_CIDR = "127.13.0.0/24"
SERVICE_CIDR = "127.13.128.0/17"
DNS_IP = "127.13.128.10"


def children() -> set[int]:
    """Live child processes of this test process, from /proc (every thread's list)."""
    out: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            out.update(int(p) for p in (task / "children").read_text().split())
        except FileNotFoundError:
            continue
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(autouse=True)
def no_leaked_children() -> Iterator[None]:
    before = children()
    yield
    leaked = children() - before
    assert not leaked, f"child processes left behind: {sorted(leaked)}"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings()
    s.network.pod_cidr = POD_CIDR
    s.network.service_cidr = SERVICE_CIDR
    s.state_dir = str(tmp_path / "state")
    return s


@pytest.fixture
def store() -> Store:
    st = Store()
    st.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    return st


@pytest.fixture
def registry(settings: Settings, store: Store) -> Registry:
    """The agent's writer. The tests themselves put pods straight into the store,
    as etcd would hold them, to see the agent alone."""
    return Registry(settings, store)


@pytest.fixture
async def agent(settings: Settings, registry: Registry) -> AsyncIterator[Agent]:
    a = Agent(settings, registry, backoff=(0.2, 1.0))
    await a.start()
    try:
        yield a
    finally:
        await a.stop()


async def wait_until(store: Store, probe: Callable[[], T | None], within: float = 10.0) -> T:
    """Wait until probe() returns something other than None, re-checking on every
    store change."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def check(_ev: object = None) -> None:
        if fut.done():
            return
        value = probe()
        if value is not None:
            fut.set_result(value)

    unsubscribe = store.subscribe(check)
    try:
        check()
        return await asyncio.wait_for(fut, within)
    finally:
        unsubscribe()


async def wait_pod(
    store: Store, name: str, pred: Callable[[Obj], bool], within: float = 10.0
) -> Obj:
    def probe() -> Obj | None:
        pod = store.get("Pod", "default", name)
        return pod if pod is not None and pred(pod) else None

    return await wait_until(store, probe, within)


def container_status(pod: Obj, name: str) -> Obj:
    """The container's status; before the agent wrote one, an empty not-ready one."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or ():
        if cs["name"] == name:
            return dict(cs)
    return {"name": name, "ready": False, "restartCount": -1, "state": {}, "lastState": {}}


def running_ready(pod: Obj) -> bool:
    st = pod.get("status") or {}
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions") or ())
    return st.get("phase") == "Running" and ready


def phase_is(*phases: str) -> Callable[[Obj], bool]:
    return lambda pod: (pod.get("status") or {}).get("phase") in phases


def pod_obj(name: str, containers: list[Obj], **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {"containers": containers, **spec},
    }


async def read_logs(agent: Agent, pod: str, container: str = "", **kw: Any) -> str:
    chunks = [c async for c in agent.logs("default", pod, container, **kw)]
    return b"".join(chunks).decode()


async def follow_until(
    agent: Agent, pod: str, container: str, needle: str, within: float = 10.0
) -> str:
    """Follow a container's log until `needle` shows up; returns what was read."""
    seen = ""

    async def run() -> str:
        nonlocal seen
        async for chunk in agent.logs("default", pod, container, follow=True):
            seen += chunk.decode()
            if needle in seen:
                return seen
        raise AssertionError(f"log ended without {needle!r}: {seen!r}")

    return await asyncio.wait_for(run(), within)


def configmap(name: str, data: dict[str, str]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": data,
    }


def secret(name: str, data: dict[str, str]) -> Obj:
    enc = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "default"},
        "type": "Opaque",
        "data": enc,
    }
