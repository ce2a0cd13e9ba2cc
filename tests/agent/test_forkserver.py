"""Built-in images forked by the agent's fork server (agent/forkserver.py, zygote.py):
everything a Popen'd container has must hold for a forked one."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp

from svcnet.agent import Agent
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

ECHO: Obj = {"name": "echo", "image": "gihyodocker/echo:latest"}


def pid_of(pod: Obj, container: str) -> int:
    return int(container_status(pod, container)["containerID"].removeprefix("svcnet://"))


def ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def dead(pid: int) -> bool:
    """Gone, or a zombie (an orphan waits for init to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def status_field(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} in /proc/{pid}/status")


async def exec_output(agent: Agent, pod: str, container: str, command: list[str]) -> str:
    session = await agent.exec("default", pod, container, command, stdin=False, tty=False)
    out = b""

    async def read() -> None:
        nonlocal out
        async for _stream, data in session.output():
            out += data

    await asyncio.wait_for(read(), 10)
    assert await asyncio.wait_for(session.wait(), 10) == 0, out
    return out.decode()


async def test_a_forked_echo_pod_serves_logs_and_takes_exec(agent: Agent, store: Store) -> None:
    assert agent.forkserver.available, agent.forkserver.problem
    echo = {**ECHO, "env": [{"name": "GREETING", "value": "from the pod spec"}]}
    store.create(pod_obj("forked", [echo]))
    pod = await wait_pod(store, "forked", running_ready)
    pid = pid_of(pod, "echo")
    # Forked, not exec'd: the zygote is its parent and it runs the zygote's program.
    assert ppid(pid) == agent.forkserver.pid
    assert cmdline(pid) == cmdline(agent.forkserver.pid)
    # Its own session and process group, as start_new_session gives a Popen'd one.
    assert os.getpgid(pid) == pid and os.getsid(pid) == pid
    # The pod's sandbox: its own mount and UTS namespaces.
    for ns in ("mnt", "uts"):
        assert os.stat(f"/proc/{pid}/ns/{ns}").st_ino != os.stat(f"/proc/self/ns/{ns}").st_ino
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://{pod['status']['podIP']}:8080/") as resp:
            assert await resp.text() == "Hello Docker!!"
    log = await follow_until(agent, "forked", "echo", "received request")
    assert "start server\n" in log
    # exec sees the container's environment (not the zygote's /proc/PID/environ),
    # its hostname and its resolv.conf.
    out = await exec_output(
        agent, "forked", "echo", ["sh", "-c", 'echo "$GREETING"; hostname; echo "$POD_IP"']
    )
    assert out.splitlines() == ["from the pod spec", "forked", pod["status"]["podIP"]]


async def test_forked_containers_run_as_their_user(agent: Agent, store: Store) -> None:
    echo = {**ECHO, "securityContext": {"runAsUser": 1234, "runAsGroup": 2345}}
    store.create(pod_obj("user", [echo]))
    pod = await wait_pod(store, "user", running_ready)
    pid = pid_of(pod, "echo")
    assert ppid(pid) == agent.forkserver.pid
    assert status_field(pid, "Uid").split() == ["1234"] * 4
    assert status_field(pid, "Gid").split() == ["2345"] * 4
    assert status_field(pid, "CapEff") == "0000000000000000"


async def test_exit_codes_and_restart_policy(agent: Agent, store: Store) -> None:
    # The redis image's entrypoint runs any other command: forked, then exec'd.
    failing = {"name": "c", "image": "redis", "args": ["sh", "-c", "echo once; exit 3"]}
    store.create(pod_obj("fails", [failing], restartPolicy="OnFailure"))

    def restarted(p: Obj) -> bool:
        cs = container_status(p, "c")
        return cs["restartCount"] >= 1 and "terminated" in cs["lastState"]

    pod = await wait_pod(store, "fails", restarted)
    term = container_status(pod, "c")["lastState"]["terminated"]
    assert term["exitCode"] == 3 and term["reason"] == "Error"
    assert "once" in await read_logs(agent, "fails", "c")

    # A Python-level exit of the image's own code: redis-server refusing its options.
    bad = {"name": "c", "image": "redis", "args": ["--port", "nope"]}
    store.create(pod_obj("badconf", [bad], restartPolicy="Never"))
    pod = await wait_pod(store, "badconf", phase_is("Failed", "Succeeded"))
    term = container_status(pod, "c")["state"]["terminated"]
    assert pod["status"]["phase"] == "Failed" and term["exitCode"] == 1, term
    assert "FATAL CONFIG FILE ERROR" in await read_logs(agent, "badconf", "c")

    ok = {"name": "c", "image": "redis", "args": ["true"]}
    store.create(pod_obj("succeeds", [ok], restartPolicy="OnFailure"))
    pod = await wait_pod(store, "succeeds", phase_is("Failed", "Succeeded"))
    assert pod["status"]["phase"] == "Succeeded"
    assert container_status(pod, "c")["state"]["terminated"]["reason"] == "Completed"


async def test_sigterm_then_sigkill_after_the_grace_period(agent: Agent, store: Store) -> None:
    store.create(pod_obj("polite", [ECHO]))
    stubborn = {
        "name": "s",
        "image": "redis",
        "args": ["sh", "-c", "trap '' TERM; echo armed; while :; do sleep 1; done"],
    }
    store.create(pod_obj("stubborn", [stubborn], terminationGracePeriodSeconds=1))
    await wait_pod(store, "polite", running_ready)
    await wait_pod(store, "stubborn", running_ready)
    await follow_until(agent, "stubborn", "s", "armed")
    polite = agent._workers[("default", "polite")].runners[0].proc
    hard = agent._workers[("default", "stubborn")].runners[0].proc
    assert polite is not None and hard is not None and polite.forked and hard.forked

    def mark(obj: Obj) -> None:
        obj["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"

    started = time.monotonic()
    store.mutate("Pod", "default", "polite", mark)
    store.mutate("Pod", "default", "stubborn", mark)
    assert await asyncio.wait_for(polite.done, 5) == 128 + signal.SIGTERM
    assert await asyncio.wait_for(hard.done, 5) == 128 + signal.SIGKILL
    assert time.monotonic() - started >= 1.0  # the grace period was given
    assert dead(polite.pid) and dead(hard.pid)


async def test_start_errors_read_as_with_popen(agent: Agent, store: Store) -> None:
    forked = {**ECHO, "workingDir": "/nonexistent"}
    popend = {"name": "echo", "image": "x", "command": ["true"], "workingDir": "/nonexistent"}
    store.create(pod_obj("fork-err", [forked], restartPolicy="Never"))
    store.create(pod_obj("popen-err", [popend], restartPolicy="Never"))
    terms = []
    for name in ("fork-err", "popen-err"):
        pod = await wait_pod(store, name, phase_is("Failed", "Succeeded"))
        terms.append(container_status(pod, "echo")["state"]["terminated"])
    assert terms[0]["reason"] == terms[1]["reason"] == "StartError"
    assert terms[0]["message"] == terms[1]["message"]
    assert 'chdir to cwd ("/nonexistent") failed' in terms[0]["message"]


async def test_a_dead_zygote_takes_its_containers_and_pods_come_back(
    agent: Agent, store: Store
) -> None:
    store.create(pod_obj("survivor", [ECHO]))
    pod = await wait_pod(store, "survivor", running_ready)
    pid = pid_of(pod, "echo")
    zygote = agent.forkserver.pid
    assert zygote is not None
    os.kill(zygote, signal.SIGKILL)

    def restarted(p: Obj) -> bool:
        cs = container_status(p, "echo")
        return cs["restartCount"] == 1 and running_ready(p)

    pod = await wait_pod(store, "survivor", restarted)
    assert dead(pid)  # the parent-death signal
    assert container_status(pod, "echo")["lastState"]["terminated"]["exitCode"] == 137
    # Started the old way now, and serving.
    assert not agent.forkserver.available
    assert ppid(pid_of(pod, "echo")) == os.getpid()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://{pod['status']['podIP']}:8080/") as resp:
            assert await resp.text() == "Hello Docker!!"


async def test_many_pods_start_at_once(agent: Agent, store: Store) -> None:
    names = [f"many-{i}" for i in range(20)]
    for name in names:
        store.create(pod_obj(name, [ECHO]))
    pods = [await wait_pod(store, n, running_ready, within=30) for n in names]
    assert len({p["status"]["podIP"] for p in pods}) == 20
    assert all(ppid(pid_of(p, "echo")) == agent.forkserver.pid for p in pods)


async def test_a_forked_container_has_exactly_its_environment(agent: Agent, store: Store) -> None:
    # Forked, then exec'd by the redis image's entrypoint: what `env` prints is
    # the C library's environ that the zygote's child set (zygote._set_environ).
    env = [
        {"name": "GREETING", "value": "héllo = wörld"},
        {"name": "EMPTY", "value": ""},
    ]
    c = {"name": "c", "image": "redis", "args": ["env"], "env": env}
    store.create(pod_obj("environ", [c], restartPolicy="Never"))
    pod = await wait_pod(store, "environ", phase_is("Failed", "Succeeded"))
    assert pod["status"]["phase"] == "Succeeded"
    lines = (await read_logs(agent, "environ", "c")).splitlines()
    assert "GREETING=héllo = wörld" in lines and "EMPTY=" in lines
    assert f"POD_IP={pod['status']['podIP']}" in lines
    assert "HOSTNAME=environ" in lines
    names = [line.partition("=")[0] for line in lines]
    assert len(names) == len(set(names)), "a variable twice"
    # Nothing of the zygote's own environment (the daemon's) leaks in.
    assert not set(names) & (set(os.environ) - {"PATH", "HOME", "HOSTNAME", "TMPDIR"})
