"""The real `svcnet` executable against the project's own ApiServer (real
Store and Registry, no node agent): apply, get, describe, scale and delete
end to end, as a user would run them."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from svcnet.api.server import ApiServer
from svcnet.controllers import DeploymentController, ReplicaSetController
from tests.cli.conftest import REAL_HOST, SVCNET, cli

SEED = """\
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: echo-summer
  labels:
    app: echo
    release: summer
spec:
  replicas: 2
  selector:
    matchLabels:
      app: echo
      release: summer
  template:
    metadata:
      labels:
        app: echo
        release: summer
    spec:
      containers:
      - name: echo
        image: gihyodocker/echo:latest
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: echo
spec:
  type: NodePort
  selector:
    app: echo
  ports:
  - name: http
    port: 80
"""


async def test_apply_get_describe_delete(real_api: ApiServer, tmp_path: Path) -> None:
    (tmp_path / "seed.yaml").write_text(SEED)
    server = real_api

    r = await cli("apply", "-f", "seed.yaml", server=server, cwd=tmp_path)
    assert (r.rc, r.err) == (0, "")
    assert r.out == "replicaset.apps/echo-summer created\nservice/echo created\n"
    r = await cli("apply", "-f", "seed.yaml", server=server, cwd=tmp_path)
    assert r.out == "replicaset.apps/echo-summer unchanged\nservice/echo unchanged\n"

    r = await cli("get", "svc", "echo", server=server)
    assert r.rc == 0, r.err
    header, line = r.out.splitlines()
    m = re.fullmatch(
        r"echo   NodePort   (127\.\d+\.\d+\.\d+) +<none>        80:3\d{4}/TCP   \d+s", line
    )
    assert m, line
    # The ClusterIP is random, so its column is as wide as this one plus 3.
    gap = " " * (len(m.group(1)) + 3 - len("CLUSTER-IP"))
    assert header == f"NAME   TYPE       CLUSTER-IP{gap}EXTERNAL-IP   PORT(S)        AGE"
    assert line.index("<none>") == header.index("EXTERNAL-IP")

    r = await cli("get", "all", server=server)
    assert r.rc == 0, r.err
    assert "\nservice/echo " in "\n" + r.out
    assert "\n\nNAME                          DESIRED   CURRENT   READY   AGE\n" in r.out
    assert "\nreplicaset.apps/echo-summer   2         " in r.out

    r = await cli("describe", "svc", "echo", server=server)
    assert r.rc == 0, r.err
    assert "Port:                     http  80/TCP\n" in r.out
    assert r.out.endswith("Events:                   <none>\n")

    r = await cli("scale", "rs", "echo-summer", "--replicas=3", server=server)
    assert (r.rc, r.out) == (0, "replicaset.apps/echo-summer scaled\n"), r.err
    r = await cli("get", "rs", "echo-summer", "-o", "json", server=server)
    assert '"replicas": 3' in r.out

    r = await cli("delete", "-f", "seed.yaml", server=server, cwd=tmp_path)
    assert (r.rc, r.err) == (0, "")
    assert r.out == 'replicaset.apps "echo-summer" deleted\nservice "echo" deleted\n'
    r = await cli("get", "svc,rs", server=server)
    assert (r.rc, r.out, r.err) == (0, "", "No resources found in default namespace.\n")


async def test_unknown_field_is_refused_with_its_line(real_api: ApiServer, tmp_path: Path) -> None:
    (tmp_path / "a-good.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: extra\nspec:\n  ports:\n  - port: 80\n"
    )
    (tmp_path / "b-bad.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: typo\nspec:\n  ports:\n"
        "  - port: 80\n    targetPrt: 8080\n"
    )
    r = await cli("apply", "-f", ".", server=real_api, cwd=tmp_path)
    assert (r.rc, r.out) == (1, "")
    assert r.err.startswith('Error from server (BadRequest): error when creating "b-bad.yaml": ')
    assert "spec.ports[0].targetPrt" in r.err
    assert r.err.endswith("(b-bad.yaml:8:5)\n"), r.err
    r = await cli("get", "svc", "extra", server=real_api)
    assert (r.rc, r.err) == (1, 'Error from server (NotFound): services "extra" not found\n')


STUCK = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  progressDeadlineSeconds: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: gihyodocker/echo:latest
"""


@pytest.fixture
async def controllers(real_api: ApiServer) -> AsyncIterator[None]:
    """Deployment and ReplicaSet controllers but no node agent: pods never turn ready."""
    ctrls = [
        DeploymentController(real_api.registry),
        ReplicaSetController(real_api.registry),
    ]
    for c in ctrls:
        c.start()
    yield
    for c in ctrls:
        c.stop()


@pytest.mark.usefixtures("controllers")
async def test_rollout_status_of_a_stuck_rollout_fails_at_its_deadline(
    real_api: ApiServer, tmp_path: Path
) -> None:
    (tmp_path / "web.yaml").write_text(STUCK)
    r = await cli("apply", "-f", "web.yaml", server=real_api, cwd=tmp_path)
    assert (r.rc, r.out) == (0, "deployment.apps/web created\n")
    r = await cli("rollout", "status", "deployment/web", server=real_api)
    assert r.rc == 1
    assert r.err == 'error: deployment "web" exceeded its progress deadline\n'
    # kubectl's waiting lines, each printed once, and never another object's.
    lines = r.out.splitlines()
    assert lines, r.out
    assert len(lines) == len(set(lines)), r.out
    assert all(line.startswith('Waiting for deployment "web" rollout') for line in lines), r.out


@pytest.mark.usefixtures("controllers")
async def test_rollout_pause_and_resume(real_api: ApiServer, tmp_path: Path) -> None:
    (tmp_path / "web.yaml").write_text(STUCK)
    url = real_api
    assert (await cli("apply", "-f", "web.yaml", server=url, cwd=tmp_path)).rc == 0
    r = await cli("rollout", "pause", "deployment/web", server=url)
    assert (r.rc, r.out, r.err) == (0, "deployment.apps/web paused\n", "")
    r = await cli("rollout", "pause", "deploy", "web", server=url)
    assert (r.rc, r.err) == (1, 'error: deployments.apps "web" is already paused\n')
    d = real_api.store.get("Deployment", "default", "web")
    assert d is not None and d["spec"]["paused"] is True
    assert d["metadata"]["managedFields"][-1]["manager"] == "kubectl-rollout"
    # A paused Deployment does not roll a new template out.
    r = await cli("set", "image", "deployment/web", "web=gihyodocker/echo:v2", server=url)
    assert r.rc == 0, r.err
    assert len(real_api.store.list("ReplicaSet", "default")) == 1
    r = await cli("rollout", "resume", "deployment/web", server=url)
    assert (r.rc, r.out, r.err) == (0, "deployment.apps/web resumed\n", "")
    r = await cli("rollout", "resume", "deployment/web", server=url)
    assert (r.rc, r.err) == (1, 'error: deployments.apps "web" is not paused\n')


async def test_apply_of_an_object_whose_metadata_is_not_a_map_names_the_field(
    real_api: ApiServer, tmp_path: Path
) -> None:
    """Without a name there is no object path; the server's own schema check
    (a dry-run create) says what is wrong, with the line of the field."""
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n- name: cfg\ndata:\n  a: b\n"
    )
    r = await cli("apply", "-f", str(tmp_path / "bad.yaml"), server=real_api)
    assert r.rc == 1
    assert r.err == (
        f"error: error validating {tmp_path / 'bad.yaml'}:3:1: "
        "error validating data: metadata: must be an object\n"
    )
    assert real_api.registry.store.list("ConfigMap") == []


async def test_without_the_token_the_cli_says_what_kubectl_says_and_where_it_looked(
    real_api: ApiServer, tmp_path: Path
) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "SVCNET_CA": str(real_api.credentials.ca_path),
    }
    proc = await asyncio.create_subprocess_exec(
        SVCNET,
        "get",
        "pods",
        "--server",
        real_api.url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 1 and out == b""
    first, hint = err.decode().splitlines()
    assert first == "error: You must be logged in to the server (Unauthorized)"
    port = real_api.port
    assert hint.startswith(
        f"svcnet: no credential for {real_api.url} in "
        f"{tmp_path}/.local/state/svcnet/{REAL_HOST}-{port} "
    )
    env["SVCNET_TOKEN"] = real_api.credentials.token
    proc = await asyncio.create_subprocess_exec(
        SVCNET, "get", "ns", "--server", real_api.url, stdout=asyncio.subprocess.PIPE, env=env
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0 and out.startswith(b"NAME ")
