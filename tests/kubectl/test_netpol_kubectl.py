"""The Kubernetes website's "Declare Network Policy" task with real kubectl, enforced by
the socket hooks (the daemon runs as root here, as CI does): nginx behind a Service,
the `access-nginx` policy letting in only pods labelled access=true, then the
website's default-deny-ingress, a namespaceSelector and a port restriction.

A denied connect fails at once with EPERM, where Calico or Cilium would let the
client time out: busybox's wget says "Operation not permitted".
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.kubectl.binaries import system_kubectl
from tests.kubectl.conftest import MANIFESTS, Daemon, Kubectl, make_kubectl

pytestmark = pytest.mark.slow

HERE = MANIFESTS / "netpol"
DENIED = "Operation not permitted"


def wget(k: Kubectl, pod: str, url: str, namespace: str | None = None) -> tuple[bool, str]:
    """busybox wget --spider from inside a pod: (reached, what it said). This busybox
    has no --timeout, and needs none: a refusal is immediate."""
    ns = ["-n", namespace] if namespace else []
    r = k(*ns, "exec", pod, "--", "/bin/busybox", "wget", "--spider", url)
    return r.returncode == 0, r.stdout + r.stderr


def test_declare_network_policy(daemon: Daemon, tmp_path: Path) -> None:
    exe = system_kubectl() or ""
    assert exe, "the machine's kubectl (v1.32) is needed for its describe layout"
    ns = "netpol-task"
    k = make_kubectl(daemon, exe, ns, tmp_path)
    k.ok("apply", "-f", str(HERE / "nginx.yaml"))
    k.ok("rollout", "status", "deployment/nginx", "--timeout=60s")
    k.ok("wait", "--for=condition=Ready", "pod/busybox", "pod/busybox-access", "--timeout=60s")
    pod_ip = json.loads(k.ok("get", "pods", "-l", "app.kubernetes.io/name=nginx", "-o", "json"))[
        "items"
    ][0]["status"]["podIP"]

    # Before any policy: everyone gets through.
    reached, said = wget(k, "busybox", "http://nginx/")
    assert reached and "remote file exists" in said, said

    out = k.ok("apply", "-f", str(HERE / "nginx-policy.yaml"))
    assert out == "networkpolicy.networking.k8s.io/access-nginx created\n"
    for url in ("http://nginx/", f"http://{pod_ip}/"):
        reached, said = wget(k, "busybox", url)
        assert not reached and DENIED in said, said
        reached, said = wget(k, "busybox-access", url)
        assert reached and "remote file exists" in said, said
    # The kubelet's probes are not held back: the pod stays Ready.
    k.ok("wait", "--for=condition=Ready", "pod", "-l", "app.kubernetes.io/name=nginx")

    lines = k.ok("get", "netpol").splitlines()
    assert lines[0].split() == ["NAME", "POD-SELECTOR", "AGE"]
    assert lines[1].split()[:2] == ["access-nginx", "app.kubernetes.io/name=nginx"]
    described = k.ok("describe", "networkpolicy", "access-nginx")
    assert described.splitlines()[:1] == ["Name:         access-nginx"]
    assert (
        "Spec:\n"
        "  PodSelector:     app.kubernetes.io/name=nginx\n"
        "  Allowing ingress traffic:\n"
        "    To Port: <any> (traffic allowed to all ports)\n"
        "    From:\n"
        "      PodSelector: access=true\n"
        "  Not affecting egress traffic\n"
        "  Policy Types: Ingress\n"
    ) in described
    assert daemon.svcnet("describe", "netpol", "access-nginx", "-n", ns) == described

    # The website's default deny: nobody in, this machine's processes included.
    k.ok("delete", "-f", str(HERE / "nginx-policy.yaml"))
    out = k.ok("apply", "-f", str(HERE / "network-policy-default-deny-ingress.yaml"))
    assert out == "networkpolicy.networking.k8s.io/default-deny-ingress created\n"
    reached, said = wget(k, "busybox-access", "http://nginx/")
    assert not reached and DENIED in said, said
    with pytest.raises(PermissionError):
        socket.create_connection((pod_ip, 80), timeout=10).close()
    described = k.ok("describe", "netpol", "default-deny-ingress")
    assert (
        "  PodSelector:     <none> (Allowing the specific traffic to all pods in this namespace)\n"
        "  Allowing ingress traffic:\n"
        "    <none> (Selected pods are isolated for ingress connectivity)\n"
    ) in described
    assert daemon.svcnet("describe", "netpol", "default-deny-ingress", "-n", ns) == described

    # A namespaceSelector, with a named port: pods of namespaces labelled team=friends.
    friends = "netpol-friends"
    k.ok("create", "namespace", friends)
    k.ok("apply", "-n", friends, "-f", str(HERE / "nginx.yaml"))
    k.ok("wait", "-n", friends, "--for=condition=Ready", "pod/busybox", "--timeout=60s")
    k.ok("apply", "-f", str(HERE / "from-friends.yaml"))
    url = f"http://nginx.{ns}/"
    reached, said = wget(k, "busybox", url, friends)
    assert not reached and DENIED in said, said  # not labelled yet
    k.ok("label", "namespace", friends, "team=friends")
    reached, said = wget(k, "busybox", url, friends)
    assert reached and "remote file exists" in said, said
    reached, said = wget(k, "busybox-access", "http://nginx/")
    assert not reached and DENIED in said, said  # its own namespace is not a friend

    # A port restriction: only 8080 now, which nginx does not serve.
    policy = json.loads(k.ok("get", "netpol", "from-friends", "-o", "json"))
    policy["spec"]["ingress"][0]["ports"] = [{"port": 8080, "protocol": "TCP"}]
    replaced = k("replace", "-f", "-", input=json.dumps(policy))
    assert replaced.returncode == 0, replaced.stderr
    reached, said = wget(k, "busybox", url, friends)
    assert not reached and DENIED in said, said

    k.ok("delete", "namespace", friends, "--wait=false")
    k.ok("delete", "netpol", "--all")
    reached, said = wget(k, "busybox", "http://nginx/")
    assert reached, said


def test_egress_rules_are_stored_and_said_not_enforced(daemon: Daemon, tmp_path: Path) -> None:
    exe = system_kubectl() or ""
    assert exe, "the machine's kubectl (v1.32) is needed for its describe layout"
    k = make_kubectl(daemon, exe, "default", tmp_path)
    # The concepts page's example, as published (it names the default namespace).
    k.ok("apply", "-f", str(HERE / "networkpolicy.yaml"))
    try:
        described = k.ok("describe", "netpol", "test-network-policy")
        assert (
            "  Allowing ingress traffic:\n"
            "    To Port: 6379/TCP\n"
            "    From:\n"
            "      IPBlock:\n"
            "        CIDR: 172.17.0.0/16\n"
            "        Except: 172.17.1.0/24\n"
            "    From:\n"
            "      NamespaceSelector: project=myproject\n"
            "    From:\n"
            "      PodSelector: role=frontend\n"
            "  Allowing egress traffic:\n"
            "    To Port: 5978/TCP\n"
            "    To:\n"
            "      IPBlock:\n"
            "        CIDR: 10.0.0.0/24\n"
            "        Except: \n"
            "  Policy Types: Ingress, Egress\n"
        ) in described
        assert daemon.svcnet("describe", "netpol", "test-network-policy") == described
        k.ok(
            "wait",
            "--for=jsonpath={.reason}=EgressNotEnforced",
            "events",
            "--field-selector=involvedObject.name=test-network-policy",
            "--timeout=30s",
        )
        about = "--field-selector=involvedObject.kind=NetworkPolicy"
        [event] = json.loads(k.ok("get", "events", about, "-o", "json"))["items"]
        assert (event["type"], event["count"]) == ("Warning", 1)
        assert "egress rules of this policy are stored but not enforced" in event["message"]
    finally:
        k.ok("delete", "-f", str(HERE / "networkpolicy.yaml"))
