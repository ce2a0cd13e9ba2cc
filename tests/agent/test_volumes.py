"""Pod volumes with real processes: configMap, secret, emptyDir, downwardAPI, hostPath and
persistentVolumeClaim, mounted in each container's own view (volumes.py)."""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import socket
from pathlib import Path
from typing import Any

from svcnet.agent import Agent
from svcnet.k8s.objects import Obj
from svcnet.store import Store
from tests.agent.conftest import (
    configmap,
    container_status,
    follow_until,
    pod_obj,
    read_logs,
    running_ready,
    secret,
    wait_pod,
    wait_until,
)


def sh(name: str, script: str, mounts: list[Obj], **extra: Any) -> Obj:
    return {
        "name": name,
        "image": "busybox",
        "command": ["sh", "-c", script],
        "volumeMounts": mounts,
        **extra,
    }


def failed_mounts(store: Store, pod: str) -> list[str]:
    return [
        str(e["message"])
        for e in store.list("Event", "default")
        if e["involvedObject"]["name"] == pod and e["reason"] == "FailedMount"
    ]


def on_machine(path: str) -> bool:
    return os.path.lexists(path)


def waiting_reason(pod: Obj, container: str) -> str | None:
    return (container_status(pod, container)["state"].get("waiting") or {}).get("reason")


async def test_configmap_files_follow_updates_but_a_subpath_does_not(
    agent: Agent, store: Store
) -> None:
    store.create(configmap("app", {"greeting": "hello", "level": "info"}))
    script = (
        "cat /etc/app/greeting; echo; cat /etc/one/level.txt; echo; ls -a /etc/app | tr '\\n' ' ';"
        " echo; seen=;"
        " while :; do v=$(cat /etc/app/greeting) s=$(cat /etc/one/level.txt);"
        ' [ "$v" != "$seen" ] && echo "now $v $s" && seen=$v; sleep 0.05; done'
    )
    mounts = [
        {"name": "cfg", "mountPath": "/etc/app"},
        {"name": "cfg", "mountPath": "/etc/one/level.txt", "subPath": "level"},
    ]
    pod = pod_obj("cm", [sh("app", script, mounts)])
    pod["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "app"}}]
    store.create(pod)
    await wait_pod(store, "cm", running_ready)
    out = await follow_until(agent, "cm", "app", "now hello info")
    lines = out.splitlines()
    assert lines[:2] == ["hello", "info"]
    # The kubelet's atomic writer layout: ..data, a timestamped directory, a symlink a key.
    assert re.fullmatch(
        r"\. \.\. \.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d+ \.\.data greeting level ", lines[2]
    )

    def change(o: Obj) -> None:
        o["data"] = {"greeting": "bonjour", "level": "debug"}

    store.mutate("ConfigMap", "default", "app", change)
    # The directory mount sees the new value; the subPath file keeps the old one.
    await follow_until(agent, "cm", "app", "now bonjour info")
    # Nothing of it leaked to the machine.
    assert not on_machine("/etc/app") and not on_machine("/etc/one")


async def test_missing_secret_waits_in_container_creating_then_starts(
    agent: Agent, store: Store
) -> None:
    pod = pod_obj(
        "sec",
        [
            sh(
                "app",
                "cat /var/run/token/t; exec sleep 60",
                [{"name": "tok", "mountPath": "/var/run/token"}],
            )
        ],
    )
    pod["spec"]["volumes"] = [
        {"name": "tok", "secret": {"secretName": "api", "items": [{"key": "token", "path": "t"}]}}
    ]
    store.create(pod)
    await wait_until(store, lambda: failed_mounts(store, "sec") or None)
    assert failed_mounts(store, "sec") == [
        'MountVolume.SetUp failed for volume "tok" : secret "api" not found'
    ]
    got = store.get("Pod", "default", "sec")
    assert got is not None
    assert got["status"]["phase"] == "Pending"
    assert waiting_reason(got, "app") == "ContainerCreating"
    # Created without the key: the kubelet's other message.
    store.create(secret("api", {"other": "x"}))
    msg = 'MountVolume.SetUp failed for volume "tok" : references non-existent secret key: token'
    await wait_until(store, lambda: msg in failed_mounts(store, "sec") or None)

    def add(o: Obj) -> None:
        o["data"]["token"] = base64.b64encode(b"s3cret").decode()

    # At once when the object changes, not at the next back-off step.
    store.mutate("Secret", "default", "api", add)
    await wait_pod(store, "sec", running_ready, within=5)
    assert await follow_until(agent, "sec", "app", "s3cret") == "s3cret"


async def test_optional_configmap_and_key_missing_mount_empty(agent: Agent, store: Store) -> None:
    pod = pod_obj(
        "opt",
        [sh("app", "ls /cfg | wc -l; exec sleep 60", [{"name": "c", "mountPath": "/cfg"}])],
    )
    pod["spec"]["volumes"] = [
        {
            "name": "c",
            "configMap": {"name": "absent", "optional": True, "items": [{"key": "a", "path": "a"}]},
        }
    ]
    store.create(pod)
    await wait_pod(store, "opt", running_ready)
    assert (await follow_until(agent, "opt", "app", "\n")).strip() == "0"


async def test_empty_dir_is_shared_by_the_pods_containers_only(
    agent: Agent, store: Store, settings: Any
) -> None:
    writer = sh(
        "writer",
        "echo from-writer > /scratch/note; ls /only-writer >/dev/null && echo mine; exec sleep 60",
        [{"name": "shared", "mountPath": "/scratch"}, {"name": "own", "mountPath": "/only-writer"}],
    )
    reader = sh(
        "reader",
        "until [ -s /data/note ]; do sleep 0.05; done; cat /data/note;"
        " [ -e /only-writer ] || echo not-mine; stat -c %a /data; exec sleep 60",
        [{"name": "shared", "mountPath": "/data"}],
    )
    pod = pod_obj("shared", [writer, reader])
    pod["spec"]["volumes"] = [{"name": "shared", "emptyDir": {}}, {"name": "own", "emptyDir": {}}]
    store.create(pod)
    got = await wait_pod(store, "shared", running_ready)
    assert await follow_until(agent, "shared", "writer", "mine\n") == "mine\n"
    out = await follow_until(agent, "shared", "reader", "777\n")
    assert out == "from-writer\nnot-mine\n777\n"
    # On the machine: a directory of the pod, removed with it.
    uid = got["metadata"]["uid"]
    vol = Path(settings.state_dir) / "pods"
    dirs = [p for p in vol.rglob("kubernetes.io~empty-dir/shared")]
    assert len(dirs) == 1 and (dirs[0] / "note").read_text() == "from-writer\n", uid
    store.delete("Pod", "default", "shared")
    await wait_until(store, lambda: None if dirs[0].exists() else True)


async def test_downward_api_labels_follow_the_pod(agent: Agent, store: Store) -> None:
    script = (
        "seen=; while :; do v=$(cat /info/labels | tr '\\n' ,);"
        ' [ "$v" != "$seen" ] && echo "$v|$(cat /info/name)|$(cat /info/mem)" && seen=$v;'
        " sleep 0.05; done"
    )
    container = sh(
        "app",
        script,
        [{"name": "info", "mountPath": "/info"}],
        resources={"limits": {"memory": "64Mi"}},
    )
    pod = pod_obj("dapi", [container])
    pod["metadata"]["labels"] = {"app": "dapi", "tier": 'we"b'}
    pod["spec"]["volumes"] = [
        {
            "name": "info",
            "downwardAPI": {
                "items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                    {
                        "path": "mem",
                        "resourceFieldRef": {
                            "containerName": "app",
                            "resource": "limits.memory",
                            "divisor": "1Mi",
                        },
                    },
                ]
            },
        }
    ]
    store.create(pod)
    await wait_pod(store, "dapi", running_ready)
    await follow_until(agent, "dapi", "app", 'app="dapi",tier="we\\"b"|dapi|64\n')

    def relabel(o: Obj) -> None:
        o["metadata"]["labels"]["tier"] = "api"

    store.mutate("Pod", "default", "dapi", relabel)
    await follow_until(agent, "dapi", "app", 'app="dapi",tier="api"|dapi|64\n')


async def test_default_mode_item_modes_and_fs_group(agent: Agent, store: Store) -> None:
    store.create(secret("creds", {"user": "u", "pass": "p"}))
    container = sh(
        "app",
        "stat -L -c '%n %a %g' /s/user /s/pass /i/deep/pw; exec sleep 60",
        [{"name": "all", "mountPath": "/s"}, {"name": "items", "mountPath": "/i"}],
    )
    pod = pod_obj("modes", [container])
    pod["spec"]["securityContext"] = {"fsGroup": 2345}
    pod["spec"]["volumes"] = [
        {"name": "all", "secret": {"secretName": "creds", "defaultMode": 0o400}},
        {
            "name": "items",
            "secret": {
                "secretName": "creds",
                "defaultMode": 0o400,
                "items": [{"key": "pass", "path": "deep/pw", "mode": 0o600}],
            },
        },
    ]
    store.create(pod)
    await wait_pod(store, "modes", running_ready)
    out = await follow_until(agent, "modes", "app", "/i/deep/pw")
    out += await follow_until(agent, "modes", "app", "\n") if not out.endswith("\n") else ""
    logs = await read_logs(agent, "modes", "app")
    # fsGroup adds group read to the read-only volume's files (SetVolumeOwnership).
    assert logs.splitlines() == ["/s/user 440 2345", "/s/pass 440 2345", "/i/deep/pw 640 2345"]


async def test_host_path_types_and_a_claims_volume(
    agent: Agent, store: Store, tmp_path: Path
) -> None:
    afile = tmp_path / "a-file"
    afile.write_text("x")
    pod = pod_obj("hp", [sh("app", "sleep 60", [{"name": "h", "mountPath": "/h"}])])
    pod["spec"]["volumes"] = [{"name": "h", "hostPath": {"path": str(afile), "type": "Directory"}}]
    store.create(pod)
    msg = (
        'MountVolume.SetUp failed for volume "h" : hostPath type check failed: '
        f"{afile} is not a directory, it's a File"
    )
    await wait_until(store, lambda: msg in failed_mounts(store, "hp") or None)

    # A claim, bound by hand to a hostPath PersistentVolume.
    data = tmp_path / "pv"
    sock_path = tmp_path / "sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(sock_path))
    srv.close()
    c = sh(
        "app",
        "echo kept > /data/f; [ -S /run/s ] && echo sock; exec sleep 60",
        [
            {"name": "data", "mountPath": "/data"},
            {"name": "s", "mountPath": "/run/s"},
        ],
    )
    pod = pod_obj("claim", [c])
    pod["spec"]["volumes"] = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "db"}},
        {"name": "s", "hostPath": {"path": str(sock_path), "type": "Socket"}},
    ]
    store.create(pod)
    unbound = (
        "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[data]: "
        "error processing PVC default/db: failed to fetch PVC from API server: "
        'persistentvolumeclaims "db" not found'
    )
    await wait_until(store, lambda: unbound in failed_mounts(store, "claim") or None)
    store.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "pv-db"},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": str(data), "type": "DirectoryOrCreate"},
                "claimRef": {"namespace": "default", "name": "db"},
            },
            "status": {"phase": "Bound"},
        }
    )
    store.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {"volumeName": "pv-db", "accessModes": ["ReadWriteOnce"]},
            "status": {"phase": "Bound"},
        }
    )
    await wait_pod(store, "claim", running_ready)
    assert await follow_until(agent, "claim", "app", "sock\n") == "sock\n"
    assert (data / "f").read_text() == "kept\n"
    assert oct(data.stat().st_mode & 0o777) == oct(0o755)


async def test_without_a_mount_namespace_the_pod_is_refused(agent: Agent, store: Store) -> None:
    # What an ordinary user gets where unprivileged user namespaces are off.
    agent._context = dataclasses.replace(
        agent._context, mount_problem="unshare: Operation not permitted"
    )
    store.create(configmap("cfg", {"a": "1"}))
    pod = pod_obj("refused", [sh("app", "cat /c/a", [{"name": "c", "mountPath": "/c"}])])
    pod["spec"]["volumes"] = [{"name": "c", "configMap": {"name": "cfg"}}]
    store.create(pod)
    msgs = await wait_until(store, lambda: failed_mounts(store, "refused") or None)
    assert msgs[0].startswith(
        'MountVolume.SetUp failed for volume "c" : svcnet cannot give the pod\'s containers a '
        "private mount namespace (unshare: Operation not permitted)"
    )

    def said(p: Obj) -> bool:
        conds = {c["type"]: c for c in p["status"].get("conditions") or ()}
        view = conds.get("svcnet.io/PodNetworkView") or {}
        return "private mount namespace" in str(view.get("message"))

    got = await wait_pod(store, "refused", said)
    assert waiting_reason(got, "app") == "ContainerCreating"


def tmpfs_mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split(" ")[4] for line in f if "kubernetes.io~empty-dir" in line]


async def test_memory_empty_dir_is_a_tmpfs_of_its_size_limit(agent: Agent, store: Store) -> None:
    assert os.geteuid() == 0, "a tmpfs is mounted for the pod: run this test as root (CI does)"
    container = sh(
        "app",
        "stat -f -c '%T %b %S' /mem; exec sleep 60",
        [{"name": "mem", "mountPath": "/mem"}],
    )
    pod = pod_obj("ram", [container])
    pod["spec"]["volumes"] = [{"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}}]
    store.create(pod)
    await wait_pod(store, "ram", running_ready)
    out = (await follow_until(agent, "ram", "app", "\n")).split()
    assert out[0] == "tmpfs" and int(out[1]) * int(out[2]) == 8 * 1024 * 1024
    assert len(tmpfs_mounts()) == 1
    store.delete("Pod", "default", "ram")
    await wait_until(store, lambda: None if tmpfs_mounts() else True)


async def test_tmpfs_left_by_a_killed_svcnet_is_unmounted(
    settings: Any, registry: Any, store: Store
) -> None:
    assert os.geteuid() == 0, "this test mounts a tmpfs: run it as root (CI does)"
    left = Path(settings.state_dir) / "pods" / "default_x_1" / "volumes" / "kubernetes.io~empty-dir"
    left.mkdir(parents=True)
    a = Agent(settings, registry)
    assert a.libc.ns.mount(b"tmpfs", bytes(left), b"tmpfs", 0, b"size=1m") == 0
    await a.start()
    try:
        assert not tmpfs_mounts()
        assert "unmounted the emptyDir volumes an earlier svcnet left" in a.notes
    finally:
        await a.stop()
