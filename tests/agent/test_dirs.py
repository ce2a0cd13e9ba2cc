"""Each container has its own working directory, HOME and TMPDIR under its pod's state
directory (gone with the pod), and a PATH that does not lead into svcnet's own
virtualenv; image mappings can set command, args, workingDir and env."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from svcnet.agent import Agent
from svcnet.agent.envvars import DEFAULT_PATH, host_path
from svcnet.images import ImageRegistry, MappingError
from svcnet.registry import Registry
from svcnet.store import Store
from tests.agent.conftest import phase_is, pod_obj, read_logs, wait_pod

SHOW = ["sh", "-c", 'echo "cwd=$(pwd) home=$HOME tmp=$TMPDIR"; touch state.db']


async def test_replicas_do_not_share_files(agent: Agent, store: Store, settings: Any) -> None:
    for name in ("r1", "r2"):
        store.create(
            pod_obj(name, [{"name": "c", "image": "x", "command": SHOW}], restartPolicy="Never")
        )
    seen = {}
    for name in ("r1", "r2"):
        await wait_pod(store, name, phase_is("Succeeded"))
        log = await read_logs(agent, name)
        fields = dict(kv.split("=", 1) for kv in log.split())
        seen[name] = fields
        pods = Path(settings.state_dir) / "pods"
        assert fields["cwd"].startswith(str(pods)) and fields["cwd"].endswith("/containers/c/work")
        assert fields["home"].endswith("/containers/c/home")
        assert fields["tmp"].endswith("/containers/c/tmp")
        assert "state.db" in await asyncio.to_thread(os.listdir, fields["cwd"])
    assert seen["r1"]["cwd"] != seen["r2"]["cwd"]
    store.delete("Pod", "default", "r1")


def test_path_leaves_out_svcnets_virtualenv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    path = os.pathsep.join([str(venv / "bin"), "/usr/local/bin", "/usr/bin"])
    assert host_path(path, str(venv), "/usr") == "/usr/local/bin:/usr/bin"
    assert host_path(path, "/usr", "/usr") == path  # no virtualenv: nothing to hide
    assert host_path(None, "/usr", "/usr") == DEFAULT_PATH


async def test_an_image_mapping_sets_command_args_workdir_and_env(
    settings: Any, registry: Registry, store: Store, tmp_path: Path
) -> None:
    settings.agent.images = {
        "myorg/tool:1.0": {
            "command": ["sh", "-c"],
            "args": ['echo "$GREETING from $(pwd)"'],
            "workingDir": str(tmp_path),
            "env": {"GREETING": "hello"},
        }
    }
    a = Agent(settings, registry)
    await a.start()
    try:
        store.create(
            pod_obj("tool", [{"name": "c", "image": "myorg/tool:1.0"}], restartPolicy="Never")
        )
        await wait_pod(store, "tool", phase_is("Succeeded"))
        assert (await read_logs(a, "tool")).strip() == f"hello from {tmp_path}"
    finally:
        await a.stop()


def test_a_bad_image_mapping_names_its_field() -> None:
    with pytest.raises(MappingError, match=r"agent.images\[myorg/tool\]: unknown field\(s\) cmd"):
        ImageRegistry({"myorg/tool": {"cmd": ["x"]}})
