# The kubernetes package is only partly typed (untyped helpers, Optional model fields).
# mypy: disable-error-code="no-untyped-call,arg-type,union-attr,attr-defined"
"""The Python `kubernetes` client (v37) against `svcnet up`, configured from
`svcnet kubeconfig`: list, watch, create, patch, delete and exec."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

from tests.kubectl.conftest import PREFIX, Daemon

pytestmark = pytest.mark.slow

NS = "python-client"


def pod_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "py"}},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "gihyodocker/fundamental:0.1.0",
                    "command": ["sleep", "300"],
                }
            ]
        },
    }


def test_python_client(daemon: Daemon) -> None:
    api_client = config.new_client_from_config(config_file=str(daemon.kubeconfig(NS)))
    core = client.CoreV1Api(api_client)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})

    # list
    names = [n.metadata.name for n in core.list_namespace().items]
    assert {"default", NS} <= set(names)

    # watch (no resourceVersion: initial ADDED events, then live ones), from a thread
    # so the create below happens while it runs.
    seen: list[tuple[str, str, str]] = []
    ready = threading.Event()

    def watcher() -> None:
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_pod, NS, timeout_seconds=30):
            pod = ev["object"]
            phase = pod.status.phase if pod.status else ""
            seen.append((ev["type"], pod.metadata.name, phase or ""))
            ready.set()
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=watcher, daemon=True)
    t.start()

    # create
    created = core.create_namespaced_pod(NS, pod_manifest("py"))
    assert created.metadata.uid and created.metadata.creation_timestamp is not None
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod(NS, pod_manifest("py"))
    assert e.value.status == 409

    # wait until running, through a second watch
    w = watch.Watch()
    for ev in w.stream(
        core.list_namespaced_pod, NS, field_selector="metadata.name=py", timeout_seconds=30
    ):
        if ev["object"].status.phase == "Running":
            w.stop()
    assert core.read_namespaced_pod("py", NS).status.pod_ip.startswith(f"127.{PREFIX + 1}.")

    # patch (strategic merge for a dict body)
    patched = core.patch_namespaced_pod("py", NS, {"metadata": {"labels": {"tier": "x"}}})
    assert patched.metadata.labels == {"app": "py", "tier": "x"}
    assert [
        p.metadata.name for p in core.list_namespaced_pod(NS, label_selector="tier=x").items
    ] == ["py"]

    # exec (WebSocket, v4/v5 as the client offers), with its exit code
    out = stream(
        core.connect_get_namespaced_pod_exec,
        "py",
        NS,
        command=["sh", "-c", "echo hello $HOSTNAME"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    assert out == "hello py\n"
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        "py",
        NS,
        command=["sh", "-c", "exit 5"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    resp.run_forever(timeout=30)
    assert resp.returncode == 5
    # stdin written as str goes in text frames (bytes go in binary ones): both arrive.
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        "py",
        NS,
        command=["sh", "-c", 'read a; read b; echo "$a|$b"'],
        stderr=True,
        stdin=True,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    resp.write_stdin("from text\n")
    resp.write_stdin(b"from bytes\n")
    resp.run_forever(timeout=30)
    assert resp.read_stdout() == "from text|from bytes\n"
    assert resp.returncode == 0

    # delete; the watcher sees it go
    core.delete_namespaced_pod("py", NS, grace_period_seconds=0)
    t.join(timeout=30)
    assert not t.is_alive()
    types = [s[0] for s in seen if s[1] == "py"]
    assert types[0] == "ADDED" and types[-1] == "DELETED" and "MODIFIED" in types
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod("py", NS)
    assert e.value.status == 404
