"""Who containers run as: the invoking user through sudo, root with a container's
default capabilities otherwise, securityContext on top; exec likewise."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from svcnet.agent import Agent
from svcnet.agent.identity import (
    CAP_NUMBER,
    DEFAULT_CAPABILITIES,
    Identity,
    IdentityError,
    for_container,
    node_identity,
)
from svcnet.config import Settings
from svcnet.k8s.objects import Obj
from svcnet.registry import Registry
from svcnet.store import Store
from tests.agent.conftest import (
    container_status,
    follow_until,
    phase_is,
    pod_obj,
    read_logs,
    wait_pod,
)

ROOT = Identity(0, 0, (0,))
USER = Identity(1000, 1000, (27, 1000))

# containerd's default set as a CapBnd mask: what `grep CapBnd /proc/self/status` shows
# in a container started without securityContext.capabilities.
DEFAULT_MASK = 0x00000000A80425FB


def pod(sc: Obj | None = None, **container: Any) -> Obj:
    c = {"name": "app", "image": "x", **container}
    return {
        "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"},
        "spec": {"containers": [c], **({"securityContext": sc} if sc else {})},
    }


def ident(p: Obj, node: Identity = ROOT, root: bool = True) -> Identity:
    return for_container(p, p["spec"]["containers"][0], node, root=root)


def test_default_mask_is_the_runtime_default_set() -> None:
    assert sum(1 << c for c in DEFAULT_CAPABILITIES) == DEFAULT_MASK


def test_node_identity_is_sudos_caller_or_whoever_runs_svcnet() -> None:
    env = {"SUDO_UID": "1000", "SUDO_GID": "1000", "SUDO_USER": "nobody-here"}
    me = node_identity(env, 0, 0)
    assert (me.uid, me.gid) == (1000, 1000) and 1000 in me.groups
    assert node_identity({}, 0, 0) == ROOT
    # sudo to root from root is root; a non-root svcnet can only be itself.
    assert node_identity({"SUDO_UID": "0", "SUDO_GID": "0"}, 0, 0) == ROOT
    assert node_identity(env, 1234, 1234).uid == 1234


def test_security_context_container_over_pod() -> None:
    p = pod({"runAsUser": 1001, "runAsGroup": 2000, "supplementalGroups": [5], "fsGroup": 7})
    assert ident(p) == Identity(1001, 2000, (5, 7, 2000))
    p = pod({"runAsUser": 1001}, securityContext={"runAsUser": 1002})
    assert ident(p).uid == 1002
    # No runAsUser/runAsGroup: the node user's own groups come along.
    assert ident(pod(), USER) == USER


def test_run_as_non_root_refused_with_the_kubelets_words() -> None:
    with pytest.raises(IdentityError) as e:
        ident(pod({"runAsNonRoot": True}))
    assert str(e.value) == (
        'container has runAsNonRoot and image will run as root (pod: "web_shop(u-1)", '
        "container: app)"
    )
    with pytest.raises(IdentityError) as e:
        ident(pod({"runAsNonRoot": True, "runAsUser": 0}))
    assert str(e.value).startswith("container's runAsUser breaks non-root policy")
    assert ident(pod({"runAsNonRoot": True}), USER).uid == 1000
    assert ident(pod({"runAsNonRoot": True, "runAsUser": 1001})).uid == 1001


def test_capabilities_add_drop_privileged() -> None:
    p = pod(securityContext={"capabilities": {"add": ["NET_ADMIN"], "drop": ["NET_RAW"]}})
    caps = ident(p).capabilities
    assert CAP_NUMBER["NET_ADMIN"] in caps and CAP_NUMBER["NET_RAW"] not in caps
    assert ident(pod(securityContext={"capabilities": {"drop": ["ALL"]}})).capabilities == set()
    assert CAP_NUMBER["SYS_ADMIN"] in ident(pod(securityContext={"privileged": True})).capabilities
    assert ident(pod(securityContext={"allowPrivilegeEscalation": False})).no_new_privs


def test_without_root_the_node_user_is_kept_and_said() -> None:
    got = ident(pod({"runAsUser": 1001}), USER, root=False)
    assert got.uid == 1000 and "cannot switch users" in got.warnings[0]


# --- real processes (as root) -------------------------------------------------------

SHOW = [
    "sh",
    "-c",
    "echo uid=$(id -u) gid=$(id -g) groups=$(id -G | tr ' ' ,); grep -E '^Cap(Eff|Bnd)' "
    "/proc/self/status",
]


def caps(log: str, field: str) -> int:
    line = next(x for x in log.splitlines() if x.startswith(field + ":"))
    return int(line.split()[1], 16)


def owners(state: Path) -> set[tuple[int, int]]:
    """(uid, gid) of the pod's state directory and every file in it."""
    pod_dirs = list(state.glob("pods/default_bysudo_*"))
    assert pod_dirs, f"no pod directory under {state}"
    return {(f.stat().st_uid, f.stat().st_gid) for f in [pod_dirs[0], *pod_dirs[0].iterdir()]}


def require_root() -> None:
    assert os.geteuid() == 0, "these tests start pods as other users: run them as root"


async def test_root_without_sudo_runs_pods_as_root_with_default_caps_only(
    agent: Agent, store: Store
) -> None:
    require_root()
    store.create(
        pod_obj("asroot", [{"name": "c", "image": "x", "command": SHOW}], restartPolicy="Never")
    )
    await wait_pod(store, "asroot", phase_is("Succeeded"))
    log = await read_logs(agent, "asroot")
    assert "uid=0 gid=0" in log
    assert caps(log, "CapBnd") == DEFAULT_MASK
    assert caps(log, "CapEff") == DEFAULT_MASK


async def test_run_as_user_drops_every_capability(agent: Agent, store: Store) -> None:
    require_root()
    store.create(
        pod_obj(
            "asuser",
            [{"name": "c", "image": "x", "command": SHOW}],
            restartPolicy="Never",
            securityContext={"runAsUser": 1001, "runAsGroup": 1002, "supplementalGroups": [44]},
        )
    )
    await wait_pod(store, "asuser", phase_is("Succeeded"))
    log = await read_logs(agent, "asuser")
    assert "uid=1001 gid=1002 groups=1002,44" in log
    assert caps(log, "CapEff") == 0 and caps(log, "CapBnd") == DEFAULT_MASK


async def test_run_as_non_root_waits_with_the_kubelets_message(agent: Agent, store: Store) -> None:
    require_root()
    store.create(
        pod_obj(
            "nonroot",
            [{"name": "c", "image": "x", "command": ["true"]}],
            securityContext={"runAsNonRoot": True},
        )
    )

    def waiting(p: Obj) -> bool:
        st = container_status(p, "c")["state"]
        return (st.get("waiting") or {}).get("reason") == "CreateContainerConfigError"

    p = await wait_pod(store, "nonroot", waiting)
    message = container_status(p, "c")["state"]["waiting"]["message"]
    assert message.startswith("container has runAsNonRoot and image will run as root (pod: ")


async def test_through_sudo_pods_and_exec_run_as_the_caller(
    settings: Settings, registry: Registry, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `sudo svcnet up` passes: SUDO_UID/SUDO_GID/SUDO_USER of the caller."""
    require_root()
    monkeypatch.setenv("SUDO_UID", "4321")
    monkeypatch.setenv("SUDO_GID", "4322")
    monkeypatch.setenv("SUDO_USER", "svcnet-no-such-user")
    a = Agent(settings, registry)
    await a.start()
    try:
        store.create(pod_obj("bysudo", [{"name": "c", "image": "x", "command": ["sleep", "30"]}]))
        await wait_pod(store, "bysudo", lambda p: container_status(p, "c").get("started") is True)
        session = await a.exec("default", "bysudo", "c", SHOW, stdin=False, tty=False)
        assert await asyncio.wait_for(session.wait(), 10) == 0
        out = b""
        async for _stream, data in session.output():
            out += data
            if b"CapBnd" in out:
                break
        text = out.decode()
        assert "uid=4321 gid=4322" in text and caps(text, "CapEff") == 0
        assert owners(Path(settings.state_dir)) == {(4321, 4322)}
    finally:
        await a.stop()


# --- the pod's cgroup (as root) ---------------------------------------------------------


async def test_a_memory_limit_oom_kill_shows_as_oomkilled(agent: Agent, store: Store) -> None:
    require_root()
    hog = "b = bytearray(256 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
    store.create(
        pod_obj(
            "hog",
            [
                {
                    "name": "c",
                    "image": "x",
                    "command": [sys.executable, "-c", hog],
                    "resources": {"limits": {"memory": "64Mi"}},
                }
            ],
            restartPolicy="Never",
        )
    )
    pod = await wait_pod(store, "hog", phase_is("Failed"), within=30)
    term = container_status(pod, "c")["state"]["terminated"]
    assert (term["reason"], term["exitCode"]) == ("OOMKilled", 137)


async def test_what_a_pod_detached_dies_with_it(agent: Agent, store: Store) -> None:
    require_root()
    store.create(
        pod_obj(
            "detach",
            [{"name": "c", "image": "x", "command": ["sh", "-c", DETACH]}],
        )
    )
    await wait_pod(store, "detach", lambda p: container_status(p, "c").get("started") is True)
    await follow_until(agent, "detach", "c", "forked")
    worker = agent._workers[("default", "detach")]
    assert worker.cgroup is not None
    pids = worker.cgroup.pids()
    assert len(pids) == 3  # sh's exec'd sleep, a setsid sleep and a double-forked one
    gone = [exited(pid) for pid in pids]
    store.delete("Pod", "default", "detach")
    await asyncio.wait_for(asyncio.gather(*gone), 10)


def exited(pid: int) -> asyncio.Future[None]:
    """Resolves when the process exits (its pidfd becomes readable): no polling."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    fd = os.pidfd_open(pid)

    def done() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, done)
    return fut


DETACH = "setsid sleep 1000 & (sleep 1000 &) ; echo forked; exec sleep 1000"
