"""The debugging verbs as kubectl has them: logs of a workload or a selector,
`wait --for=...`, and duration flags, against the seed's pods."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.cluster import ROOT, Cluster

pytestmark = pytest.mark.slow


def kubeconfig(c: Cluster, tmp_path: Path) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(c.cli("kubeconfig", check=True).stdout)
    return str(path)


def test_logs_of_a_replicaset_a_service_and_a_selector(cluster: Cluster) -> None:
    assert cluster.curl(f"http://{cluster.node_ip}:30026/") == "Hello Docker!!"
    out = cluster.cli("logs", "rs/echo-summer", "-c", "nginx")
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(r"Found 2 pods, using pod/echo-summer-\w{5}\n", out.stderr)

    out = cluster.cli("logs", "svc/echo", "-c", "echo")
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(r"Found 2 pods, using pod/echo-summer-\w{5}\n", out.stderr)

    out = cluster.cli("logs", "-l", "app=echo", "--all-containers", "--prefix")
    assert out.returncode == 0, out.stderr
    prefixes = {line.split("] ", 1)[0] + "]" for line in out.stdout.splitlines()}
    pods = {p.split("/")[1] for p in prefixes}
    assert len(pods) == 3, out.stdout
    containers = {p.rstrip("]").split("/")[2] for p in prefixes}
    assert containers == {"nginx", "echo"}, out.stdout
    assert all(
        re.fullmatch(r"\[pod/echo-(spring|summer)-\w{5}/(nginx|echo)\]", p) for p in prefixes
    )

    out = cluster.cli("logs", "-f", "-l", "app=echo", "--all-containers", "--max-log-requests", "5")
    assert out.returncode == 1
    assert out.stderr == (
        "error: you are attempting to follow 6 log streams, but maximum allowed concurrency "
        "is 5, use --max-log-requests to increase the limit\n"
    )
    out = cluster.cli("logs", "-l", "app=nothing")
    assert (out.returncode, out.stderr) == (0, "No resources found in default namespace.\n")


def test_wait_for_conditions_as_kubectl_does(cluster: Cluster, tmp_path: Path) -> None:
    out = cluster.cli("wait", "--for=condition=Ready", "pod", "-l", "app=echo", "--timeout=30s")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3 and all(re.fullmatch(r"pod/echo-\S+ condition met", x) for x in lines)
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is required (scripts/test installs it)"
    config = kubeconfig(cluster, tmp_path)
    theirs = subprocess.run(
        [kubectl, "--kubeconfig", config, "wait", "--for=condition=Ready", "pod", "-l", "app=echo",
         "--timeout=30s"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert theirs.stdout == out.stdout, theirs.stderr  # the real one prints the same lines

    pod = lines[0].split()[0]
    out = cluster.cli("wait", "--for=jsonpath={.status.phase}=Running", pod)
    assert (out.returncode, out.stdout) == (0, f"{pod} condition met\n"), out.stderr
    out = cluster.cli("wait", "--for=condition=Ready=false", pod, "--timeout=1s")
    assert out.returncode == 1
    assert out.stderr == f"error: timed out waiting for the condition on pods/{pod[4:]}\n"
    out = cluster.cli("wait", "--for=condition=Ready", "pod/nope", "--timeout=1s")
    assert (out.returncode, out.stderr) == (
        1,
        'Error from server (NotFound): pods "nope" not found\n',
    )
    out = cluster.cli("wait", "--for=bogus", pod)
    assert (out.returncode, out.stderr) == (1, 'error: unrecognized condition: "bogus"\n')

    # --for=delete: the ReplicaSet replaces the pod; the wait ends when it is gone.
    assert cluster.cli("delete", pod, "--wait=false").returncode == 0
    out = cluster.cli("wait", "--for=delete", pod, "--timeout=60s")
    assert (out.returncode, out.stdout) == (0, f"{pod} condition met\n"), out.stderr


def test_duration_flags_read_as_go_durations(cluster: Cluster) -> None:
    out = cluster.cli("wait", "--for=condition=Ready", "pod", "--all", "--timeout", "30")
    assert out.returncode == 2
    assert 'argument --timeout: time: missing unit in duration "30"' in out.stderr
    out = cluster.cli("wait", "--for=condition=Ready", "pod", "--all", "--timeout=1m")
    assert out.returncode == 0, out.stderr
    out = cluster.cli("rollout", "status", "deploy/none", "--timeout=2m")
    assert out.stderr == 'Error from server (NotFound): deployments.apps "none" not found\n'


def test_kubectl_apply_after_up_finds_nothing_to_change(cluster: Cluster, tmp_path: Path) -> None:
    # svcnet up and svcnet apply leave kubectl's last-applied-configuration, as a
    # client-side kubectl apply does, so the real one agrees that nothing changed.
    kubectl = shutil.which("kubectl")
    assert kubectl
    config = kubeconfig(cluster, tmp_path)
    files = [
        f"--filename={p}"
        for p in sorted((ROOT / "config").glob("*.yaml"))
        if p.name != "svcnet.yaml"
    ]
    theirs = subprocess.run(
        [kubectl, "--kubeconfig", config, "apply", *files],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert theirs.returncode == 0, theirs.stderr
    assert theirs.stderr == ""  # no "missing the last-applied-configuration annotation"
    assert all(line.endswith(" unchanged") for line in theirs.stdout.splitlines()), theirs.stdout
    ours = cluster.cli("apply", "-f", str(ROOT / "config"))
    assert ours.returncode == 0, ours.stderr
    assert all(line.endswith(" unchanged") for line in ours.stdout.splitlines()), ours.stdout

    web = tmp_path / "web.yaml"
    web.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first-apply\ndata:\n  a: '1'\n"
    )
    assert cluster.cli("apply", "-f", str(web)).stdout == "configmap/first-apply created\n"
    out = subprocess.run(
        [kubectl, "--kubeconfig", config, "apply", "-f", str(web)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (out.stdout, out.stderr) == ("configmap/first-apply unchanged\n", "")
