"""Probes: the threshold and schedule rules as pure code; the prober under a
busy loop (timeouts from the probe's own start, less the loop's stalls; slots;
real refusals and timeouts still failing) against real sockets; then startup,
liveness and readiness probes against real processes (probe periods are
shortened below Kubernetes' 1 s minimum; the agent takes the pod as given)."""

from __future__ import annotations

import asyncio
import random
import socket
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from svcnet._aio import TaskSet
from svcnet.agent import Agent
from svcnet.agent.probes import (
    MAX_IN_FLIGHT,
    UNDECIDED_AFTER,
    Dialing,
    Probe,
    Prober,
    ProbeTracker,
    Ticker,
    container_probes,
    first_delay,
    next_tick,
)
from svcnet.api import metrics
from svcnet.config import Settings
from svcnet.k8s.objects import Obj
from svcnet.store import Store
from tests.agent.conftest import container_status, pod_obj, wait_pod, wait_until


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings()
    s.network.pod_cidr = "127.142.0.0/24"
    s.network.service_cidr = "127.143.0.0/24"
    s.state_dir = str(tmp_path / "state")
    return s


# --- pure rules --------------------------------------------------------------------


def test_probe_defaults_are_kubernetes_defaults() -> None:
    p = Probe.from_spec("livenessProbe", {"httpGet": {"port": 8080}})
    assert (p.handler, p.initial_delay, p.timeout, p.period) == ("httpGet", 0.0, 1.0, 10.0)
    assert (p.success_threshold, p.failure_threshold, p.termination_grace) == (1, 3, None)
    assert set(container_probes({"readinessProbe": {"exec": {"command": ["true"]}}})) == {
        "readinessProbe"
    }


def test_ticks_keep_their_grid_and_drop_what_a_slow_probe_missed() -> None:
    assert next_tick(5.0, 10.0, 6.0) == 15.0  # on time: one period on
    assert next_tick(5.0, 10.0, 15.0) == 15.0
    # The probe due at 5 ended at 40: 15 and 25 are dropped, 35 runs at once (the
    # tick a Go ticker holds for a slow receiver), then the grid goes on.
    assert next_tick(5.0, 10.0, 40.0) == 35.0
    assert next_tick(35.0, 10.0, 40.1) == 45.0


def test_first_probe_is_spread_over_one_period_only_while_the_agent_is_young() -> None:
    rng = random.Random(16)
    spread = [first_delay(2.0, 0.5, rng) for _ in range(2000)]
    assert all(0.0 <= d < 2.0 for d in spread)
    # Uniform over the period: no lockstep, nothing bunched at either end.
    assert min(spread) < 0.01 and max(spread) > 1.99
    assert abs(statistics.mean(spread) - 1.0) < 0.05
    assert sum(d < 0.5 for d in spread) / len(spread) == pytest.approx(0.25, abs=0.04)
    # The kubelet's rule: only workers started within one period of the kubelet.
    assert first_delay(2.0, 2.5, rng) == 0.0
    assert first_delay(10.0, 9.99, random.Random(1)) > 0.0


@pytest.mark.parametrize(
    ("kind", "initial"),
    [("readinessProbe", False), ("livenessProbe", True), ("startupProbe", None)],
)
def test_initial_results(kind: str, initial: bool | None) -> None:
    assert ProbeTracker(Probe.from_spec(kind, {"exec": {"command": ["x"]}})).result is initial


def result(t: ProbeTracker) -> bool | None:
    return t.result


def test_thresholds_need_consecutive_results() -> None:
    p = Probe.from_spec(
        "readinessProbe", {"exec": {"command": ["x"]}, "successThreshold": 2, "failureThreshold": 3}
    )
    t = ProbeTracker(p)
    assert not t.observe(True) and result(t) is False  # 1 of 2 successes
    assert not t.observe(False)  # the run restarts
    assert not t.observe(True)
    assert t.observe(True) and result(t) is True  # 2 in a row
    assert not t.observe(False) and not t.observe(False)
    assert not t.observe(True)  # interrupted: failures count from zero again
    for _ in range(2):
        assert not t.observe(False)
    assert t.observe(False) and result(t) is False


# --- the prober under a busy loop, against real sockets ----------------------------


def tcp_probe(port: int, timeout: float) -> Probe:
    return Probe.from_spec(
        "readinessProbe", {"tcpSocket": {"port": port}, "timeoutSeconds": timeout}
    )


def http_probe(port: int, timeout: float) -> Probe:
    return Probe.from_spec(
        "readinessProbe", {"httpGet": {"port": port, "path": "/"}, "timeoutSeconds": timeout}
    )


async def no_exec(argv: list[str], limit: float) -> tuple[int | None, str]:
    raise AssertionError("no exec probe here")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket nobody accepts on: the kernel completes handshakes for it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s
    s.close()


@pytest.fixture
def full_listener() -> Iterator[socket.socket]:
    """A listener whose accept queue is full: the kernel drops further SYNs, so a
    connect neither completes nor fails (a pod that accepts nothing)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    held = socket.create_connection(s.getsockname())
    yield s
    held.close()
    s.close()


class Counted:
    """A listener on the loop that accepts and closes, counting connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self.want = 0
        self.reached = asyncio.Event()
        """Set once `want` connections were accepted."""
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._accept)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return
            conn.close()
            self.accepted += 1
            if self.accepted >= self.want:
                self.reached.set()

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self._accept()  # what the kernel completed already
        self.sock.close()


def steady_prober(in_flight: int = MAX_IN_FLIGHT) -> Prober:
    prober = Prober(in_flight=in_flight)
    prober.ticker = Ticker(quantum=0.01)
    return prober


async def test_a_steady_probe_runs_on_its_ticks_until_one_is_not_a_success() -> None:
    loop = asyncio.get_running_loop()
    server = Counted()
    prober = steady_prober()
    probe = Probe.from_spec(
        "readinessProbe", {"tcpSocket": {"port": server.port}, "periodSeconds": 0.05}
    )
    due = loop.time() + 0.05
    server.want = 5
    task = loop.create_task(prober.hold_steady(probe, "127.0.0.1", {}, due, lambda: True))
    await asyncio.wait_for(server.reached.wait(), 5)
    assert not task.done()
    server.close()
    last, handed = await asyncio.wait_for(task, 5)
    port = server.port
    assert handed == (False, f"dial tcp 127.0.0.1:{port}: connect: connection refused")
    counts = prober.results["Readiness"]
    # One connect per tick, each counted once: the successes are the connections the
    # server took, and the refused tick is counted as the failure it is.
    assert counts["successful"] == server.accepted >= 5 and counts["failed"] == 1
    assert last == pytest.approx(due + 0.05 * server.accepted)  # the refused tick


async def test_a_steady_probe_hands_its_tick_back_without_a_connect() -> None:
    loop = asyncio.get_running_loop()
    server = Counted()
    probe = Probe.from_spec(
        "livenessProbe", {"tcpSocket": {"port": server.port}, "periodSeconds": 0.05}
    )
    # The container ended: the loop takes the tick, to return.
    prober = steady_prober()
    due = loop.time() + 0.02
    assert await prober.hold_steady(probe, "127.0.0.1", {}, due, lambda: False) == (due, None)
    # No slot free: the loop takes the tick and waits for one, as any probe does.
    prober = steady_prober(in_flight=1)
    await prober._slots.acquire()
    assert await prober.hold_steady(probe, "127.0.0.1", {}, due, lambda: True) == (due, None)
    # Cancelled (the container is stopping): its ticks stop with it.
    prober = steady_prober()
    server.want = 2
    task = loop.create_task(
        prober.hold_steady(probe, "127.0.0.1", {}, loop.time() + 0.02, lambda: True)
    )
    await asyncio.wait_for(server.reached.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    seen = server.accepted
    await asyncio.sleep(0.2)
    server.close()
    assert server.accepted == seen and prober.results["Liveness"] == {"successful": seen}
    assert prober.ticker._slots == {}


async def test_a_steady_probe_hands_a_connect_under_way_to_the_timed_path(
    full_listener: socket.socket,
) -> None:
    loop = asyncio.get_running_loop()
    port = full_listener.getsockname()[1]
    prober = steady_prober()
    probe = tcp_probe(port, 0.3)
    due = loop.time() + 0.02
    last, handed = await prober.hold_steady(probe, "127.0.0.1", {}, due, lambda: True)
    assert last == due and isinstance(handed, Dialing) and handed.state is False
    ok, message = await prober.run(probe, "127.0.0.1", {}, no_exec, handed)
    assert (ok, message) == (False, f"dial tcp 127.0.0.1:{port}: i/o timeout")
    assert 0.3 <= loop.time() - handed.started < 1.0  # timed from the tick's connect
    assert prober.results == {"Readiness": {"failed": 1}}


def stick_the_loop(seconds: float) -> None:
    """Block the event loop (called from a coroutine), as a busy daemon does."""
    time.sleep(seconds)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_connect_the_busy_loop_did_not_see_is_a_success(
    listener: socket.socket,
) -> None:
    prober = Prober()
    port = listener.getsockname()[1]
    task = asyncio.get_running_loop().create_task(
        prober.run(tcp_probe(port, 0.2), "127.0.0.1", {}, no_exec)
    )
    await asyncio.sleep(0)  # the probe issues its connect
    stick_the_loop(0.6)  # then the loop is stuck for three timeouts
    assert await task == (True, "")
    assert prober.results == {"Readiness": {"successful": 1}}


async def test_an_answer_that_came_while_the_loop_was_stuck_is_a_success() -> None:
    asked, answer = threading.Event(), threading.Event()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(4096)
            asked.set()
            answer.wait(10)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            conn.recv(4096)  # until the prober closes

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    prober = Prober()
    try:
        task = asyncio.get_running_loop().create_task(
            prober.run(http_probe(server.getsockname()[1], 0.2), "127.0.0.1", {}, no_exec)
        )
        assert await asyncio.to_thread(asked.wait, 10)
        answer.set()
        # The answer arrives in the kernel now; the loop only sees it after 3 timeouts.
        stick_the_loop(0.6)
        assert await task == (True, "")
    finally:
        answer.set()
        thread.join(10)
        server.close()
    assert prober.lag.worst >= 0.5


async def test_waiting_for_a_slot_is_not_part_of_the_timeout(listener: socket.socket) -> None:
    prober = Prober(in_flight=2)
    running = 0
    seen: list[int] = []

    async def slow_exec(argv: list[str], limit: float) -> tuple[int | None, str]:
        nonlocal running
        running += 1
        seen.append(running)
        await asyncio.sleep(0.1)
        running -= 1
        return 0, ""

    slow = Probe.from_spec("livenessProbe", {"exec": {"command": ["x"]}, "timeoutSeconds": 0.15})
    port = listener.getsockname()[1]
    t0 = time.monotonic()
    results = await asyncio.gather(
        *(prober.run(slow, "127.0.0.1", {}, slow_exec) for _ in range(8)),
        prober.run(tcp_probe(port, 0.15), "127.0.0.1", {}, no_exec),
    )
    # Two at a time: the last ones waited 0.3 s and more for a slot, twice their
    # timeout, and none of them timed out.
    assert time.monotonic() - t0 >= 0.4
    assert results == [(True, "")] * 9
    assert max(seen) == 2 and prober.most_running == 2
    assert prober.running == prober.waiting == 0
    assert prober.results == {"Liveness": {"successful": 8}, "Readiness": {"successful": 1}}


async def test_a_refused_connect_fails_at_once_with_the_kubelets_message() -> None:
    prober = Prober()
    port = closed_port()
    ok, message = await prober.run(tcp_probe(port, 1), "127.0.0.1", {}, no_exec)
    assert (ok, message) == (False, f"dial tcp 127.0.0.1:{port}: connect: connection refused")
    ok, message = await prober.run(http_probe(port, 1), "127.0.0.1", {}, no_exec)
    assert ok is False
    assert message == (
        f'Get "http://127.0.0.1:{port}/": dial tcp 127.0.0.1:{port}: connect: connection refused'
    )
    assert prober.failures() == 2
    text = metrics.prometheus({"probes": prober.stats()})
    assert 'prober_probe_total{probe_type="Readiness",result="failed"} 2' in text


async def test_a_pod_that_accepts_nothing_still_times_out(full_listener: socket.socket) -> None:
    prober = Prober()
    port = full_listener.getsockname()[1]
    t0 = time.monotonic()
    ok, message = await prober.run(tcp_probe(port, 0.3), "127.0.0.1", {}, no_exec)
    took = time.monotonic() - t0
    assert (ok, message) == (False, f"dial tcp 127.0.0.1:{port}: i/o timeout")
    assert 0.3 <= took < 0.3 * UNDECIDED_AFTER


async def test_a_server_that_never_answers_still_times_out(listener: socket.socket) -> None:
    prober = Prober()
    port = listener.getsockname()[1]
    ok, message = await prober.run(http_probe(port, 0.3), "127.0.0.1", {}, no_exec)
    assert ok is False
    assert message == (
        f'Get "http://127.0.0.1:{port}/": context deadline exceeded'
        " (Client.Timeout exceeded while awaiting headers)"
    )
    assert prober.results == {"Readiness": {"failed": 1}}


async def test_a_probe_the_stalled_loop_kept_from_its_timeout_is_thrown_away(
    full_listener: socket.socket,
) -> None:
    loop = asyncio.get_running_loop()
    hogging = True

    def hog() -> None:
        # The loop is stuck for longer than the probe's whole timeout at a time, with
        # a breath in between: slowed down, not stopped.
        if hogging:
            stick_the_loop(0.25)
            loop.call_later(0.002, hog)

    prober = Prober()
    port = full_listener.getsockname()[1]
    loop.call_soon(hog)
    try:
        ok, message = await prober.run(tcp_probe(port, 0.2), "127.0.0.1", {}, no_exec)
    finally:
        hogging = False
    # Nothing answered, but the probe could not have told a dead pod from a slow
    # loop: Unknown, neither a failure nor a success.
    assert ok is None, message
    assert "the loop was stalled" in message
    assert prober.results == {"Readiness": {"unknown": 1}}
    assert prober.failures() == 0 and prober.stats()["unknown"] == 1


# --- real processes ------------------------------------------------------------------

FLAG_SERVER = r"""
import os, http.server
flag = os.environ["FLAG"]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if os.path.exists(flag) else 503
        self.send_response(code); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer((os.environ["POD_IP"], 8080), H).serve_forever()
"""


def ready_cond(pod: Obj) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or ()
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def events(store: Store, reason: str) -> list[str]:
    return [str(e["message"]) for e in store.list("Event", "default") if e["reason"] == reason]


async def test_readiness_probe_gates_ready_both_ways(
    agent: Agent, store: Store, tmp_path: Path
) -> None:
    flag = tmp_path / "ready"
    store.create(
        pod_obj(
            "gated",
            [
                {
                    "name": "web",
                    "image": "flag-server",
                    "command": [sys.executable, "-c", FLAG_SERVER],
                    "env": [{"name": "FLAG", "value": str(flag)}],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {
                        "httpGet": {"path": "/", "port": "http"},
                        "periodSeconds": 0.05,
                        "failureThreshold": 1,
                    },
                }
            ],
        )
    )
    # Running, answering 503: the probe fails, the pod stays unready.
    await wait_until(
        store,
        lambda: [m for m in events(store, "Unhealthy") if "statuscode: 503" in m] or None,
    )
    pod = store.get("Pod", "default", "gated")
    assert pod is not None and not ready_cond(pod)
    assert container_status(pod, "web")["started"] is True
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in events(
        store, "Unhealthy"
    )
    flag.touch()
    await wait_pod(store, "gated", ready_cond)
    flag.unlink()
    await wait_pod(store, "gated", lambda p: not ready_cond(p))
    pod = store.get("Pod", "default", "gated")
    assert pod is not None and container_status(pod, "web")["restartCount"] == 0


TCP_FLAG_SERVER = r"""
import os, socket, time
flag = os.environ["FLAG"]
s = socket.create_server((os.environ["POD_IP"], 8080))
while os.path.exists(flag):
    s.settimeout(0.05)
    try:
        s.accept()[0].close()
    except TimeoutError:
        pass
s.close()
time.sleep(600)
"""


async def test_a_tcp_readiness_probe_at_kubernetes_periods_notices_a_closed_port(
    agent: Agent, store: Store, tmp_path: Path
) -> None:
    # At periods of 1 s and more, a probe that keeps succeeding runs from the prober's
    # ticks (Prober.hold_steady): the failure must still reach the pod.
    flag = tmp_path / "listening"
    flag.touch()
    store.create(
        pod_obj(
            "closer",
            [
                {
                    "name": "web",
                    "image": "flag-server",
                    "command": [sys.executable, "-c", TCP_FLAG_SERVER],
                    "env": [{"name": "FLAG", "value": str(flag)}],
                    "readinessProbe": {
                        "tcpSocket": {"port": 8080},
                        "periodSeconds": 1,
                        "failureThreshold": 1,
                    },
                }
            ],
        )
    )
    pod = await wait_pod(store, "closer", ready_cond)
    # Probes before the server bound its port were refused too: count from here.
    failed = agent.prober.results["Readiness"].get("failed", 0)
    flag.unlink()
    await wait_pod(store, "closer", lambda p: not ready_cond(p))
    # failureThreshold 1: the first refused tick turned it unready (the next is 1 s on).
    assert agent.prober.results["Readiness"]["failed"] == failed + 1
    refused = [m for m in events(store, "Unhealthy") if "connection refused" in m]
    assert refused == [
        f"Readiness probe failed: dial tcp {pod['status']['podIP']}:8080: connect: connection"
        " refused"
    ]


async def test_liveness_probe_failure_restarts_the_container(
    agent: Agent, store: Store, tmp_path: Path
) -> None:
    flag = tmp_path / "alive"
    flag.touch()
    store.create(
        pod_obj(
            "lively",
            [
                {
                    "name": "main",
                    "image": "sleeper",
                    "command": ["sleep", "600"],
                    "livenessProbe": {
                        "exec": {"command": ["test", "-f", str(flag)]},
                        "periodSeconds": 0.05,
                        "failureThreshold": 2,
                    },
                }
            ],
            terminationGracePeriodSeconds=1,
        )
    )
    await wait_pod(store, "lively", ready_cond)
    flag.unlink()
    pod = await wait_pod(
        store, "lively", lambda p: container_status(p, "main")["restartCount"] >= 1
    )
    last = container_status(pod, "main")["lastState"]["terminated"]
    assert last["exitCode"] == 143  # SIGTERM
    assert "Container main failed liveness probe, will be restarted" in events(store, "Killing")
    assert any(m.startswith("Liveness probe failed:") for m in events(store, "Unhealthy"))


async def test_startup_probe_holds_other_probes_and_kills_on_failure(
    agent: Agent, store: Store
) -> None:
    store.create(
        pod_obj(
            "slow",
            [
                {
                    "name": "main",
                    "image": "sleeper",
                    "command": ["sleep", "600"],
                    # Nothing listens on 8080: the startup probe can only fail.
                    "startupProbe": {
                        "tcpSocket": {"port": 8080},
                        "periodSeconds": 0.05,
                        "failureThreshold": 3,
                    },
                    "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 0.05},
                }
            ],
            restartPolicy="Never",
            terminationGracePeriodSeconds=1,
        )
    )
    pod = await wait_pod(store, "slow", lambda p: (p.get("status") or {}).get("phase") == "Failed")
    cs = container_status(pod, "main")
    assert cs["started"] is False and cs["ready"] is False
    assert cs["state"]["terminated"]["exitCode"] == 143
    assert "Container main failed startup probe, will be restarted" in events(store, "Killing")
    fails = events(store, "Unhealthy")
    assert any("connect: connection refused" in m for m in fails)
    assert all(m.startswith("Startup probe failed:") for m in fails)  # readiness never ran


async def test_startup_then_readiness_on_a_tcp_port(agent: Agent, store: Store) -> None:
    store.create(
        pod_obj(
            "echo",
            [
                {
                    "name": "echo",
                    "image": "gihyodocker/echo:latest",
                    "startupProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 0.05},
                    "readinessProbe": {"httpGet": {"port": 8080}, "periodSeconds": 0.05},
                }
            ],
        )
    )
    pod = await wait_pod(store, "echo", ready_cond)
    assert container_status(pod, "echo")["started"] is True


async def test_the_ticker_wakes_a_slot_of_sleepers_on_one_timer() -> None:
    loop = asyncio.get_running_loop()
    ticker = Ticker(quantum=0.05)
    base = (int(loop.time() / 0.05) + 2) * 0.05  # a slot boundary ahead
    woke: dict[str, float] = {}

    async def sleeper(name: str, when: float) -> None:
        await ticker.sleep_until(when)
        woke[name] = loop.time()

    early, late = base + 0.001, base + 0.049  # both in the slot ending at base + 0.05
    ts = TaskSet()
    tasks = [
        ts.spawn(sleeper("early", early), name="early"),
        ts.spawn(sleeper("late", late), name="late"),
        ts.spawn(sleeper("next", base + 0.051), name="next"),
    ]
    cancelled = ts.spawn(sleeper("cancelled", early), name="cancelled")
    await asyncio.sleep(0)
    assert len(ticker._slots) == 2  # two slots armed, whatever the number of sleepers
    cancelled.cancel()
    await asyncio.gather(*tasks)
    assert "cancelled" not in woke
    assert woke["early"] >= early and woke["late"] >= late
    # Woken by the same timer: one after the other, in the same loop iteration.
    assert abs(woke["early"] - woke["late"]) < 0.005
    assert woke["late"] <= base + 0.05 + 0.02
    assert woke["next"] >= base + 0.1 - 1e-9
    assert ticker._slots == {}
