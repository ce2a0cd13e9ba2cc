"""The agent against real processes and sockets on 127.13.0.0/24."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from svcnet.agent import Agent
from svcnet.agent.sandbox import ChildSetup, Libc
from svcnet.agent.status import SANDBOX_CONDITION
from svcnet.k8s.objects import Obj
from svcnet.nodeapi import NODE_NAME, NodeApiError
from svcnet.registry import Registry
from svcnet.store import Store
from tests.agent.conftest import (
    DNS_IP,
    alive,
    container_status,
    follow_until,
    phase_is,
    pod_obj,
    read_logs,
    running_ready,
    wait_pod,
    wait_until,
)

SEED_CONTAINERS: list[Obj] = [
    {
        "name": "nginx",
        "image": "gihyodocker/nginx:latest",
        "env": [{"name": "BACKEND_HOST", "value": "localhost:8080"}],
        "ports": [{"containerPort": 80}],
    },
    {"name": "echo", "image": "gihyodocker/echo:latest", "ports": [{"containerPort": 8080}]},
]


def pid_of(pod: Obj, container: str) -> int:
    return int(container_status(pod, container)["containerID"].removeprefix("svcnet://"))


def can_bind(ip: str, port: int) -> bool:
    with socket.socket() as s:
        # As any server would: TIME_WAIT leftovers of finished connections don't count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ip, port))
        except OSError:
            return False
    return True


async def test_seed_pod_serves_through_nginx_and_echo(agent: Agent, store: Store) -> None:
    store.create(pod_obj("echo-summer-2xj8q", SEED_CONTAINERS))
    pod = await wait_pod(store, "echo-summer-2xj8q", running_ready)
    st = pod["status"]
    assert pod["spec"]["nodeName"] == NODE_NAME
    assert st["podIP"] == "127.13.0.2" and st["podIPs"] == [{"ip": "127.13.0.2"}]
    assert st["hostIP"] == "127.0.0.1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", st["startTime"])
    types = {c["type"]: c["status"] for c in st["conditions"]}
    assert types["PodScheduled"] == types["Initialized"] == types["ContainersReady"] == "True"
    assert all(c["lastTransitionTime"] for c in st["conditions"])
    assert SANDBOX_CONDITION not in types
    for name in ("nginx", "echo"):
        cs = container_status(pod, name)
        assert cs["ready"] and cs["started"] and cs["restartCount"] == 0
        assert "running" in cs["state"] and cs["lastState"] == {}
        assert cs["image"].startswith("gihyodocker/") and cs["imageID"]
        assert alive(pid_of(pod, name))

    ip = st["podIP"]
    async with aiohttp.ClientSession() as http:
        for _ in range(20):  # many sequential requests over keep-alive, both ports
            for port in (80, 8080):
                async with http.get(f"http://{ip}:{port}/") as resp:
                    assert resp.status == 200
                    assert await resp.text() == "Hello Docker!!"
                    assert resp.headers["Content-Type"].startswith("text/plain")

    echo_log = await follow_until(agent, "echo-summer-2xj8q", "echo", "received request")
    assert re.match(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d start server\n", echo_log)
    nginx_log = await follow_until(agent, "echo-summer-2xj8q", "nginx", '"GET / HTTP/1.1" 200 14')
    assert re.search(
        r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET / HTTP/1\.1" 200 14 '
        r'"-" "Python/[^"]*aiohttp[^"]*" "-"$',
        nginx_log,
        re.M,
    )
    # Every proxied request reached echo: 20 direct + 20 through nginx.
    full = await read_logs(agent, "echo-summer-2xj8q", "echo")
    assert full.count("received request") == 40


async def test_official_nginx_image_serves_its_welcome_page(agent: Agent, store: Store) -> None:
    # The container spec every Kubernetes tutorial starts from, tag and all.
    nginx = {"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}
    store.create(pod_obj("web", [nginx]))
    pod = await wait_pod(store, "web", running_ready)
    ip = pod["status"]["podIP"]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://{ip}/") as resp:
            assert resp.status == 200
            assert resp.headers["Server"] == "nginx"
            assert resp.headers["Content-Type"] == "text/html"
            body = await resp.text()
            assert "<title>Welcome to nginx!</title>" in body and len(body) == 615
        async with http.head(f"http://{ip}/index.html") as resp:
            assert resp.status == 200 and resp.headers["Content-Length"] == "615"
        async with http.get(f"http://{ip}/nope") as resp:
            assert resp.status == 404 and "<h1>404 Not Found</h1>" in await resp.text()
        async with http.post(f"http://{ip}/", data=b"x") as resp:
            assert resp.status == 405 and "<h1>405 Not Allowed</h1>" in await resp.text()
    log = await follow_until(agent, "web", "nginx", '"POST / HTTP/1.1" 405')
    assert re.search(r'"GET / HTTP/1\.1" 200 615 "-" "Python/[^"]*aiohttp[^"]*" "-"$', log, re.M)
    assert '"GET /nope HTTP/1.1" 404' in log


async def test_log_follow_streams_new_lines(agent: Agent, store: Store) -> None:
    store.create(
        pod_obj("ticker", [{"name": "t", "image": "busybox", "command": ["cat"], "stdin": True}])
    )
    await wait_pod(store, "ticker", running_ready)
    att = await agent.attach("default", "ticker", "t", tty=False)
    text = ""

    async def follow() -> None:
        nonlocal text
        sent_two = False
        async for chunk in agent.logs("default", "ticker", "t", follow=True, timestamps=True):
            text += chunk.decode()
            if "one\n" in text and not sent_two:
                # Written only after the follower has seen the first line.
                att.write_stdin(b"two\n")
                sent_two = True
            if "two\n" in text:
                return

    att.write_stdin(b"one\n")
    await asyncio.wait_for(follow(), 10)
    lines = text.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["one", "two"]
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ", line) for line in lines)
    att.detach()


async def test_killed_container_is_restarted(agent: Agent, store: Store) -> None:
    store.create(pod_obj("echo-spring-5dprx", SEED_CONTAINERS))
    pod = await wait_pod(store, "echo-spring-5dprx", running_ready)
    old_pid = pid_of(pod, "echo")
    os.kill(old_pid, signal.SIGKILL)

    def restarted(p: Obj) -> bool:
        cs = container_status(p, "echo")
        return cs["restartCount"] == 1 and cs["ready"] and running_ready(p)

    pod = await wait_pod(store, "echo-spring-5dprx", restarted)
    cs = container_status(pod, "echo")
    assert cs["lastState"]["terminated"]["exitCode"] == 137
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    assert pid_of(pod, "echo") != old_pid and not alive(old_pid)
    assert container_status(pod, "nginx")["restartCount"] == 0
    previous = await read_logs(agent, "echo-spring-5dprx", "echo", previous=True)
    assert "start server" in previous
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://{pod['status']['podIP']}/") as resp:
            assert await resp.text() == "Hello Docker!!"


async def test_crash_loop_back_off(agent: Agent, store: Store) -> None:
    store.create(pod_obj("crash", [{"name": "c", "image": "x", "command": ["sh", "-c", "exit 1"]}]))

    def backing_off(p: Obj) -> bool:
        cs = container_status(p, "c")
        return (cs["state"].get("waiting") or {}).get("reason") == "CrashLoopBackOff"

    pod = await wait_pod(store, "crash", backing_off)
    cs = container_status(pod, "c")
    assert cs["restartCount"] >= 1 and not cs["ready"]
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert "back-off" in cs["state"]["waiting"]["message"]
    assert pod["status"]["phase"] == "Running"
    assert not running_ready(pod)


async def test_restart_never_nonzero_exit_fails(agent: Agent, store: Store) -> None:
    store.create(
        pod_obj(
            "fail",
            [{"name": "c", "image": "x", "command": ["sh", "-c", "exit 3"]}],
            restartPolicy="Never",
        )
    )
    pod = await wait_pod(store, "fail", phase_is("Failed", "Succeeded"))
    assert pod["status"]["phase"] == "Failed"
    term = container_status(pod, "c")["state"]["terminated"]
    assert term["exitCode"] == 3 and term["reason"] == "Error"
    assert term["startedAt"] and term["finishedAt"]
    ready = {c["type"]: c for c in pod["status"]["conditions"]}["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "PodCompleted"


async def test_on_failure_success_completes(agent: Agent, store: Store) -> None:
    store.create(
        pod_obj(
            "job",
            [
                {
                    "name": "c",
                    "image": "x",
                    "command": ["sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done"],
                }
            ],
            restartPolicy="OnFailure",
        )
    )
    pod = await wait_pod(store, "job", phase_is("Failed", "Succeeded"))
    assert pod["status"]["phase"] == "Succeeded"
    assert container_status(pod, "c")["state"]["terminated"]["reason"] == "Completed"
    assert await read_logs(agent, "job", "c", tail_lines=2) == "line4\nline5\n"
    assert await read_logs(agent, "job") == "".join(f"line{i}\n" for i in range(1, 6))
    stamped = (await read_logs(agent, "job", timestamps=True, tail_lines=1)).strip()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line5", stamped)


async def test_pod_sees_cluster_dns_and_service_env(agent: Agent, store: Store) -> None:
    host_resolv = Path("/etc/resolv.conf").read_text()  # noqa: ASYNC240 - tiny local file
    store.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "echo-svc", "namespace": "default"},
            "spec": {
                "clusterIP": "127.13.128.20",
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            },
        }
    )
    script = (
        "cat /etc/resolv.conf; echo host=$(hostname); grep -w dnscheck /etc/hosts;"
        " echo env=$ECHO_SVC_SERVICE_HOST:$ECHO_SVC_SERVICE_PORT:$ECHO_SVC_SERVICE_PORT_HTTP"
        " $ECHO_SVC_PORT $HOSTNAME $POD_IP $MY_NS $GREETING"
    )
    env = [
        {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "GREETING", "value": "hi-$(MY_NS)"},
    ]
    store.create(
        pod_obj(
            "dnscheck",
            [
                {
                    "name": "c",
                    "image": "gihyodocker/fundamental:0.1.0",
                    "args": ["sh", "-c", script],
                    "env": env,
                }
            ],
            restartPolicy="Never",
        )
    )
    pod = await wait_pod(store, "dnscheck", phase_is("Failed", "Succeeded"))
    assert pod["status"]["phase"] == "Succeeded"
    assert SANDBOX_CONDITION not in {c["type"] for c in pod["status"]["conditions"]}
    out = await read_logs(agent, "dnscheck")
    ip = pod["status"]["podIP"]
    assert f"nameserver {DNS_IP}\n" in out
    assert "search default.svc.cluster.local svc.cluster.local cluster.local\n" in out
    assert "options ndots:5\n" in out
    assert "host=dnscheck\n" in out
    assert f"{ip}\tdnscheck\n" in out
    assert (
        f"env=127.13.128.20:80:80 tcp://127.13.128.20:80 dnscheck {ip} default hi-default\n" in out
    )
    # The bind mount stayed inside the pod's mount namespace.
    assert Path("/etc/resolv.conf").read_text() == host_resolv  # noqa: ASYNC240
    assert socket.gethostname() != "dnscheck"


async def test_service_links_follow_the_services_when_each_pod_starts(
    agent: Agent, store: Store
) -> None:
    """The namespace's links are shared between pods (envvars.ServiceLinks) but each
    container gets them as they were when it started: a Service made or changed
    later shows in the next pod only, and enableServiceLinks: false gets none."""

    def service(name: str, ip: str) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"clusterIP": ip, "ports": [{"port": 80, "protocol": "TCP"}]},
        }

    def printer(name: str, **spec: Any) -> Obj:
        script = "echo a=$ALPHA_SERVICE_HOST b=$BETA_SERVICE_HOST"
        c = {"name": "c", "image": "busybox", "command": ["sh", "-c", script]}
        return pod_obj(name, [c], restartPolicy="Never", **spec)

    async def printed(name: str) -> str:
        await wait_pod(store, name, phase_is("Succeeded"))
        return await read_logs(agent, name)

    store.create(service("alpha", "127.13.128.31"))
    store.create(printer("first"))
    assert await printed("first") == "a=127.13.128.31 b=\n"
    store.create(service("beta", "127.13.128.32"))
    store.create(printer("second"))
    store.create(printer("none", enableServiceLinks=False))
    assert await printed("second") == "a=127.13.128.31 b=127.13.128.32\n"
    assert await printed("none") == "a= b=\n"
    store.mutate(
        "Service", "default", "alpha", lambda s: s["spec"].update(clusterIP="127.13.128.33")
    )
    store.create(printer("third"))
    assert await printed("third") == "a=127.13.128.33 b=127.13.128.32\n"


async def test_unknown_image_waits_and_agent_keeps_serving(agent: Agent, store: Store) -> None:
    store.create(pod_obj("mystery", [{"name": "m", "image": "docker.io/foo/bar:1"}]))

    def pulling(p: Obj) -> bool:
        return "waiting" in (container_status(p, "m").get("state") or {}) and bool(
            container_status(p, "m")["state"]["waiting"].get("message")
        )

    pod = await wait_pod(store, "mystery", pulling)
    waiting = container_status(pod, "m")["state"]["waiting"]
    assert waiting["reason"] == "ErrImagePull"
    assert 'no built-in image "docker.io/foo/bar:1"' in waiting["message"]
    assert "agent.images" in waiting["message"]
    assert pod["status"]["phase"] == "Pending"
    # Then the kubelet's back-off before the next try.
    pod = await wait_pod(
        store,
        "mystery",
        lambda p: (
            (container_status(p, "m").get("state") or {}).get("waiting", {}).get("reason")
            == "ImagePullBackOff"
        ),
    )
    message = container_status(pod, "m")["state"]["waiting"]["message"]
    assert message.startswith(
        'Back-off pulling image "docker.io/foo/bar:1": ErrImagePull: svcnet has no built-in image'
    )
    with pytest.raises(NodeApiError, match=r'container "m" in pod "mystery" is waiting to start'):
        agent.logs("default", "mystery", "m")

    store.create(
        pod_obj("after", [{"name": "a", "image": "x", "command": ["true"]}], restartPolicy="Never")
    )
    pod = await wait_pod(store, "after", phase_is("Succeeded", "Failed"))
    assert pod["status"]["phase"] == "Succeeded"


async def test_mapped_image_runs_its_command(
    settings: Any, store: Store, registry: Registry
) -> None:
    settings.agent.images = {"myorg/greeter": ["sh", "-c", "echo greetings from $HOSTNAME"]}
    a = Agent(settings, registry)
    await a.start()
    try:
        store.create(
            pod_obj(
                "greeter",
                [{"name": "g", "image": "registry.example:5000/myorg/greeter:v2"}],
                restartPolicy="Never",
            )
        )
        await wait_pod(store, "greeter", phase_is("Succeeded", "Failed"))
        assert await read_logs(a, "greeter") == "greetings from greeter\n"
    finally:
        await a.stop()


async def test_log_errors_use_kubectl_wording(agent: Agent, store: Store) -> None:
    store.create(pod_obj("two", SEED_CONTAINERS))
    await wait_pod(store, "two", running_ready)
    with pytest.raises(
        NodeApiError,
        match=r"^a container name must be specified for pod two, choose one of: \[nginx echo\]$",
    ):
        agent.logs("default", "two", "")
    with pytest.raises(NodeApiError, match=r"^container x is not valid for pod two$"):
        agent.logs("default", "two", "x")
    with pytest.raises(
        NodeApiError, match=r'^previous terminated container "echo" in pod "two" not found$'
    ):
        agent.logs("default", "two", "echo", previous=True)
    with pytest.raises(NodeApiError) as info:
        agent.logs("default", "nope", "")
    assert info.value.code == 404


async def test_graceful_deletion_terminates_and_removes(agent: Agent, store: Store) -> None:
    store.create(pod_obj("sleeper", [{"name": "s", "image": "x", "command": ["sleep", "1000"]}]))
    pod = await wait_pod(store, "sleeper", running_ready)
    pid = pid_of(pod, "s")
    ip = pod["status"]["podIP"]

    def mark(obj: Obj) -> None:
        obj["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"
        obj["metadata"]["deletionGracePeriodSeconds"] = 30

    started = time.monotonic()
    store.mutate("Pod", "default", "sleeper", mark)
    await wait_until(
        store, lambda: True if store.get("Pod", "default", "sleeper") is None else None
    )
    assert time.monotonic() - started < 5  # SIGTERM sufficed; nobody waited out the 30 s
    assert not alive(pid)
    # The IP went back to the pool: the next pod gets it.
    store.create(
        pod_obj("next", [{"name": "n", "image": "x", "command": ["true"]}], restartPolicy="Never")
    )
    pod = await wait_pod(store, "next", lambda p: bool((p.get("status") or {}).get("podIP")))
    assert pod["status"]["podIP"] == ip


async def test_grace_period_ends_in_sigkill(agent: Agent, store: Store) -> None:
    cmd = ["sh", "-c", "trap '' TERM; echo armed; while :; do sleep 1; done"]
    store.create(
        pod_obj(
            "stubborn",
            [{"name": "s", "image": "x", "command": cmd}],
            terminationGracePeriodSeconds=1,
        )
    )
    pod = await wait_pod(store, "stubborn", running_ready)
    await follow_until(agent, "stubborn", "s", "armed")
    pid = pid_of(pod, "s")
    store.mutate(
        "Pod",
        "default",
        "stubborn",
        lambda o: o["metadata"].update(deletionTimestamp="2030-01-01T00:00:00Z"),
    )
    gone = await wait_until(
        store, lambda: True if store.get("Pod", "default", "stubborn") is None else None
    )
    assert gone and not alive(pid)


async def test_store_delete_kills_at_once(agent: Agent, store: Store) -> None:
    store.create(pod_obj("victim", [{"name": "v", "image": "x", "command": ["sleep", "1000"]}]))
    pod = await wait_pod(store, "victim", running_ready)
    proc = agent._workers[("default", "victim")].runners[0].proc
    assert proc is not None
    store.delete("Pod", "default", "victim")
    assert await asyncio.wait_for(proc.done, 5) == 137
    assert not alive(pid_of(pod, "v"))


async def test_completed_pod_deleted_at_once(agent: Agent, store: Store) -> None:
    store.create(
        pod_obj("done", [{"name": "d", "image": "x", "command": ["true"]}], restartPolicy="Never")
    )
    await wait_pod(store, "done", phase_is("Succeeded"))
    store.mutate(
        "Pod",
        "default",
        "done",
        lambda o: o["metadata"].update(deletionTimestamp="2030-01-01T00:00:00Z"),
    )
    await wait_until(
        store, lambda: True if store.get("Pod", "default", "done") is None else None, within=2
    )


async def test_attach_to_stdin_cat_echoes(agent: Agent, store: Store) -> None:
    store.create(
        pod_obj(
            "cat",
            [{"name": "cat", "image": "x", "command": ["cat"], "stdin": True}],
            restartPolicy="Never",
        )
    )
    await wait_pod(store, "cat", running_ready)
    att = await agent.attach("default", "cat", "cat", tty=False)
    att.write_stdin(b"hello svcnet\n")
    seen = b""

    async def read() -> None:
        nonlocal seen
        async for stream, data in att.output():
            assert stream == 1
            seen += data
            if b"hello svcnet\n" in seen:
                return

    await asyncio.wait_for(read(), 10)
    att.close_stdin()
    assert await asyncio.wait_for(att.wait(), 10) == 0
    pod = await wait_pod(store, "cat", phase_is("Succeeded", "Failed"))
    assert pod["status"]["phase"] == "Succeeded"


async def test_attach_replays_output_of_short_lived_container(agent: Agent, store: Store) -> None:
    store.create(
        pod_obj(
            "quick",
            [
                {
                    "name": "q",
                    "image": "x",
                    "command": ["sh", "-c", "echo early; echo err >&2; exit 4"],
                }
            ],
            restartPolicy="Never",
        )
    )
    await wait_pod(store, "quick", phase_is("Failed"))
    att = await agent.attach("default", "quick", "q", tty=False)
    got = [item async for item in att.output()]
    assert (1, b"early\n") in got and (2, b"err\n") in got
    assert await att.wait() == 4


async def test_tty_attach_runs_an_interactive_shell(agent: Agent, store: Store) -> None:
    store.create(
        pod_obj(
            "debug",
            [
                {
                    "name": "debug",
                    "image": "gihyodocker/fundamental:0.1.0",
                    "args": ["sh"],
                    "stdin": True,
                    "stdinOnce": True,
                    "tty": True,
                }
            ],
            restartPolicy="Never",
        )
    )
    await wait_pod(store, "debug", running_ready)
    att = await agent.attach("default", "debug", "debug", tty=True)
    att.resize(100, 30)
    att.write_stdin(b"stty size; echo sum=$((40+2))\r")
    seen = b""

    async def read(needle: bytes) -> None:
        nonlocal seen
        async for _, data in att.output():
            seen += data
            if needle in seen:
                return

    await asyncio.wait_for(read(b"sum=42"), 10)
    assert b"30 100" in seen
    att.write_stdin(b"exit 7\r")
    assert await asyncio.wait_for(att.wait(), 10) == 7
    pod = await wait_pod(store, "debug", phase_is("Failed"))
    assert container_status(pod, "debug")["state"]["terminated"]["exitCode"] == 7


async def test_stop_leaves_no_process_and_no_port(
    settings: Any, store: Store, registry: Registry
) -> None:
    a = Agent(settings, registry)
    await a.start()
    for name in ("echo-summer-2xj8q", "echo-summer-vjv9j", "echo-spring-5dprx"):
        store.create(pod_obj(name, SEED_CONTAINERS))
    pods = [
        await wait_pod(store, n, running_ready)
        for n in ("echo-summer-2xj8q", "echo-summer-vjv9j", "echo-spring-5dprx")
    ]
    store.create(
        pod_obj(
            "stubborn",
            [
                {
                    "name": "s",
                    "image": "x",
                    "command": ["sh", "-c", "trap '' TERM; echo armed; sleep 1000"],
                }
            ],
        )
    )
    await wait_pod(store, "stubborn", running_ready)
    await follow_until(a, "stubborn", "s", "armed")
    pids = [pid_of(p, c) for p in pods for c in ("nginx", "echo")]
    ips = [p["status"]["podIP"] for p in pods]
    assert not any(can_bind(ip, 8080) for ip in ips)
    started = time.monotonic()
    await a.stop()
    assert time.monotonic() - started < 3.0
    assert not any(alive(pid) for pid in pids)
    assert all(can_bind(ip, port) for ip in ips for port in (80, 8080))
    await a.stop()  # a second stop is harmless


async def test_pod_without_its_own_view_still_runs_and_says_so(
    agent: Agent, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where no mount namespace can be had (not root, no user namespaces), the
    # child-side set-up reports why; simulate that report.
    monkeypatch.setattr(
        ChildSetup, "_enter_pod_view", lambda self: b"unshare: Operation not permitted"
    )
    store.create(
        pod_obj(
            "hostview", [{"name": "h", "image": "x", "command": ["true"]}], restartPolicy="Never"
        )
    )
    pod = await wait_pod(store, "hostview", phase_is("Succeeded", "Failed"))
    assert pod["status"]["phase"] == "Succeeded"
    cond = {c["type"]: c for c in pod["status"]["conditions"]}[SANDBOX_CONDITION]
    assert cond["status"] == "False"
    assert "unshare: Operation not permitted" in cond["message"]
    warnings = [e for e in store.list("Event", "default") if e["reason"] == "HostNetworkView"]
    assert warnings and warnings[0]["involvedObject"]["name"] == "hostview"


async def test_child_setup_reports_a_failed_bind_mount(tmp_path: Any) -> None:
    # A real child: making / private works as root, the bind of a missing file fails.
    r, w = os.pipe()
    setup = ChildSetup(
        Libc(), os.getpid(), w, False, b"x", str(tmp_path / "missing").encode(), None
    )
    proc = await asyncio.create_subprocess_exec("true", preexec_fn=setup)
    os.close(w)
    assert await proc.wait() == 0
    with os.fdopen(r, "rb") as f:
        assert f.read().startswith(b"bind-mount /etc/resolv.conf: No such file")
