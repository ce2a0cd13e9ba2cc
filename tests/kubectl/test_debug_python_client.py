# The kubernetes package is only partly typed (untyped helpers, Optional model fields).
# mypy: disable-error-code="no-untyped-call,arg-type,union-attr,attr-defined,index,operator"
"""The Python `kubernetes` client (v37) and ephemeral containers: the
pods/ephemeralcontainers subresource read, patched and replaced, their statuses and
logs, and exec into one with a terminal whose size the client sets (channel 4)."""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

from tests.kubectl.conftest import Daemon

pytestmark = pytest.mark.slow

WEB = "gihyodocker/echo:latest"


def test_python_client_ephemeral_containers_and_resize(daemon: Daemon) -> None:
    ns = "debug-python"
    api = config.new_client_from_config(config_file=str(daemon.kubeconfig(ns)))
    core = client.CoreV1Api(api)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    core.create_namespaced_pod(
        ns,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "app"},
            "spec": {"containers": [{"name": "app", "image": WEB}]},
        },
    )
    deadline = time.monotonic() + 30
    while core.read_namespaced_pod("app", ns).status.phase != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.1)

    # PATCH (a strategic merge patch for a dict body) adds one; PUT adds another.
    debugger = {"name": "dbg", "image": "busybox", "command": ["sh", "-c", "echo one; sleep 60"]}
    got = core.patch_namespaced_pod_ephemeralcontainers(
        "app", ns, {"spec": {"ephemeralContainers": [debugger]}}
    )
    assert [c.name for c in got.spec.ephemeral_containers] == ["dbg"]
    assert got.spec.ephemeral_containers[0].image_pull_policy == "Always"
    # The kubelet's status writes move the resourceVersion on: retry on conflict, as
    # client-go's RetryOnConflict does.
    for _ in range(20):
        live = core.read_namespaced_pod_ephemeralcontainers("app", ns)
        live.spec.ephemeral_containers.append(
            client.V1EphemeralContainer(name="two", image="busybox", command=["true"])
        )
        try:
            got = core.replace_namespaced_pod_ephemeralcontainers("app", ns, live)
            break
        except ApiException as conflict:
            assert conflict.status == 409, conflict.body
    assert [c.name for c in got.spec.ephemeral_containers] == ["dbg", "two"]
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_pod_ephemeralcontainers(
            "app",
            ns,
            {"spec": {"ephemeralContainers": [{"name": "x", "image": "busybox", "lifecycle": {}}]}},
        )
    assert e.value.status == 422
    assert "spec.ephemeralContainers[2].lifecycle: Forbidden: cannot be set for an Ephemeral" in (
        e.value.body
    )

    deadline = time.monotonic() + 30
    while True:
        statuses = core.read_namespaced_pod("app", ns).status.ephemeral_container_statuses or []
        states = {s.name: s.state for s in statuses}
        if (
            states.get("dbg")
            and states["dbg"].running
            and states.get("two")
            and (states["two"].terminated)
        ):
            break
        assert time.monotonic() < deadline, statuses
        time.sleep(0.1)
    assert core.read_namespaced_pod_log("app", ns, container="dbg") == "one\n"

    # exec into the ephemeral container with a terminal: the size the client sends on
    # channel 4 is the pty's, and the exit code comes back on channel 3.
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        "app",
        ns,
        container="dbg",
        command=["sh", "-c", "read go; stty size; exit 6"],
        stderr=False,
        stdin=True,
        stdout=True,
        tty=True,
        _preload_content=False,
    )
    resp.write_channel(4, json.dumps({"Width": 120, "Height": 40}))
    resp.write_stdin("go\n")
    resp.run_forever(timeout=30)
    assert "40 120" in resp.read_stdout()
    assert resp.returncode == 6
    core.delete_namespace(ns)
