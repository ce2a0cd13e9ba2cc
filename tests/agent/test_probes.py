"""Probes: the threshold and schedule rules as pure code, then startup,
liveness and readiness probes against real processes (probe periods are
shortened below Kubernetes' 1 s minimum; the agent takes the pod as given)."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

from svcnet.agent import Agent
from svcnet.agent.probes import Probe, ProbeTracker, container_probes, schedule
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


def test_probe_schedule_starts_after_the_initial_delay_every_period() -> None:
    p = Probe.from_spec("readinessProbe", {"tcpSocket": {"port": 1}, "initialDelaySeconds": 5})
    assert list(itertools.islice(schedule(p), 4)) == [5.0, 15.0, 25.0, 35.0]


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
