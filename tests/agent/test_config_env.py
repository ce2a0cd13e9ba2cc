"""Containers' environment from ConfigMaps and Secrets, with real processes."""

from __future__ import annotations

from typing import Any

from svcnet.agent import Agent
from svcnet.k8s.objects import Obj
from svcnet.store import Store
from tests.agent.conftest import (
    configmap,
    container_status,
    follow_until,
    pod_obj,
    running_ready,
    secret,
    wait_pod,
)


def printer(script: str, **extra: Any) -> Obj:
    return {"name": "app", "image": "busybox", "command": ["sh", "-c", script], **extra}


async def test_env_and_env_from_configmaps_and_secrets(agent: Agent, store: Store) -> None:
    store.create(configmap("app-config", {"GREETING": "hello", "mode": "debug"}))
    store.create(secret("app-secret", {"password": "s3cret", "token": "t0k"}))
    container = printer(
        'echo "$GREETING|$PASS|$CFG_mode|$token|$MISSING|$NOPE"; exec sleep 60',
        envFrom=[
            {"configMapRef": {"name": "app-config"}, "prefix": "CFG_"},
            {"secretRef": {"name": "app-secret"}},
            {"configMapRef": {"name": "absent", "optional": True}},
        ],
        env=[
            {
                "name": "GREETING",
                "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "GREETING"}},
            },
            {
                "name": "PASS",
                "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "password"}},
            },
            {
                "name": "MISSING",
                "valueFrom": {
                    "configMapKeyRef": {"name": "app-config", "key": "nope", "optional": True}
                },
            },
            {
                "name": "NOPE",
                "valueFrom": {"secretKeyRef": {"name": "gone", "key": "x", "optional": True}},
            },
        ],
    )
    store.create(pod_obj("configured", [container]))
    await wait_pod(store, "configured", running_ready)
    out = await follow_until(agent, "configured", "app", "\n")
    assert out == "hello|s3cret|debug|t0k||\n"


async def test_missing_configmap_waits_then_starts_when_it_appears(
    agent: Agent, store: Store
) -> None:
    container = printer(
        'echo "level=$LEVEL"; exec sleep 60',
        env=[{"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "late", "key": "level"}}}],
    )
    store.create(pod_obj("early", [container]))

    def waiting_for(message: str) -> Any:
        def pred(pod: Obj) -> bool:
            cs = ((pod.get("status") or {}).get("containerStatuses") or [{}])[0]
            w = (cs.get("state") or {}).get("waiting") or {}
            return w.get("reason") == "CreateContainerConfigError" and w.get("message") == message

        return pred

    await wait_pod(store, "early", waiting_for('configmap "late" not found'))
    # The ConfigMap comes without the key: the kubelet's other message.
    store.create(configmap("late", {"other": "x"}))
    await wait_pod(store, "early", waiting_for("couldn't find key level in ConfigMap default/late"))

    def add_key(o: Obj) -> None:
        o["data"]["level"] = "debug"

    store.mutate("ConfigMap", "default", "late", add_key)
    pod = await wait_pod(store, "early", running_ready)
    assert container_status(pod, "app")["restartCount"] == 0
    assert await follow_until(agent, "early", "app", "\n") == "level=debug\n"


async def test_exec_probes_run_with_the_containers_environment(agent: Agent, store: Store) -> None:
    """The environment is kept packed between probes (envvars.pack): what an exec probe
    sees is still exactly what the container started with, '=' in values included."""
    store.create(configmap("probe-config", {"WANT": "a=b c"}))
    container = printer(
        "exec sleep 60",
        env=[
            {
                "name": "WANT",
                "valueFrom": {"configMapKeyRef": {"name": "probe-config", "key": "WANT"}},
            }
        ],
        readinessProbe={
            "exec": {"command": ["sh", "-c", 'test "$WANT" = "a=b c" && test -n "$POD_IP"']},
            "periodSeconds": 0.05,
        },
    )
    store.create(pod_obj("probed-env", [container]))
    pod = await wait_pod(store, "probed-env", running_ready)
    assert container_status(pod, "app")["ready"] is True
