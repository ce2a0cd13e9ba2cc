"""`svcnet exec -- CMD`: this machine's own programs, seeing the cluster as a pod does,
checked with the resolvers real programs use (glibc through getent and curl,
Python's socket module) and the seed's echo Service."""

from __future__ import annotations

import signal

import pytest

from tests.e2e.cluster import IP_RE, Cluster

pytestmark = pytest.mark.slow


def echo_ip(c: Cluster) -> str:
    out = c.cli("get", "svc", "echo", "-o", "jsonpath={.spec.clusterIP}", check=True).stdout
    assert IP_RE.match(out), out
    return out


def test_names_resolve_as_in_a_pod(cluster: Cluster) -> None:
    ip = echo_ip(cluster)
    out = cluster.cli("exec", "--", "getent", "hosts", "echo", check=True).stdout
    assert out.split() == [ip, "echo.default.svc.cluster.local"]
    py = "import socket; print(socket.gethostbyname('echo.default'))"
    out = cluster.cli("exec", "--", "python3", "-c", py, check=True).stdout
    assert out.strip() == ip
    # The search path is the namespace's: kube-dns is found from kube-system only.
    assert cluster.cli("exec", "--", "getent", "hosts", "kube-dns").returncode == 2
    out = cluster.cli("exec", "-n", "kube-system", "--", "getent", "hosts", "kube-dns").stdout
    assert out.split()[1] == "kube-dns.kube-system.svc.cluster.local"
    # The machine's own resolv.conf is untouched: the view is the command's alone.
    with open("/etc/resolv.conf") as f:
        assert cluster.service_cidr.split(".")[1] not in f.read().split("nameserver", 1)[-1][:8]


def test_curl_reaches_a_service_by_its_short_name(cluster: Cluster) -> None:
    out = cluster.cli(
        "exec", "--", "curl", "-s", "--max-time", "10", "http://echo/", check=True
    ).stdout
    assert out == "Hello Docker!!"


def test_service_variables(cluster: Cluster) -> None:
    ip = echo_ip(cluster)
    script = "echo $ECHO_SERVICE_HOST $ECHO_SERVICE_PORT $ECHO_PORT_80_TCP $KUBERNETES_SERVICE_PORT"
    out = cluster.cli("exec", "--", "sh", "-c", script, check=True).stdout
    assert out.split() == [ip, "80", f"tcp://{ip}:80", "443"]


def test_exit_status_and_signals_are_the_commands(cluster: Cluster) -> None:
    assert cluster.cli("exec", "--", "sh", "-c", "exit 7").returncode == 7
    # The command replaced the CLI's process: its death by a signal is the caller's to see.
    killed = cluster.cli("exec", "--", "sh", "-c", "kill -TERM $$")
    assert killed.returncode == -signal.SIGTERM
    missing = cluster.cli("exec", "--", "no-such-command-here")
    assert missing.returncode == 127
    assert "no-such-command-here: command not found" in missing.stderr


def test_a_pod_name_points_to_kubectl_exec(cluster: Cluster) -> None:
    r = cluster.cli("exec", "some-pod", "--", "sh")
    assert r.returncode == 1
    assert "kubectl exec some-pod -- CMD" in r.stderr
