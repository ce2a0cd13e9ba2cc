"""`svcnet exec -- CMD`: this machine's own programs, seeing the cluster as a pod does,
checked with the resolvers real programs use (glibc through getent and curl,
Python's socket module) and the seed's echo Service."""

from __future__ import annotations

import ipaddress
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
    # Its death by a signal is the caller's to see, as if the CLI were the command.
    killed = cluster.cli("exec", "--", "sh", "-c", "kill -TERM $$")
    assert killed.returncode == -signal.SIGTERM
    missing = cluster.cli("exec", "--", "no-such-command-here")
    assert missing.returncode == 127
    assert "no-such-command-here: command not found" in missing.stderr


def test_as_root_the_command_has_a_pod_identity_of_its_own(cluster: Cluster) -> None:
    # Its connections leave from an IP of the pod CIDR (a session pod's, as
    # `kubectl debug` makes one), so servers and ClientIP affinity see it; the
    # session pod goes when the command ends.
    py = (
        "import socket; s = socket.create_connection(('echo', 80)); "
        "print(s.getsockname()[0], s.getpeername()[0])"
    )
    out = cluster.cli("exec", "--", "python3", "-c", py)
    assert out.returncode == 0, out.stderr
    source, peer = out.stdout.split()
    assert ipaddress.ip_address(source) in ipaddress.ip_network(cluster.pod_cidr)
    assert peer == echo_ip(cluster)  # getpeername shows the ClusterIP, as in a pod
    left = cluster.cli("get", "pods", "-l", "svcnet.dev/exec-session", "-o", "name")
    assert left.stdout == "", left.stdout


def test_a_pod_name_points_to_kubectl_exec(cluster: Cluster) -> None:
    r = cluster.cli("exec", "some-pod", "--", "sh")
    assert r.returncode == 1
    assert "kubectl exec some-pod -- CMD" in r.stderr
