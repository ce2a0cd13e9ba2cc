"""The Kubernetes website's Ingress examples, applied unmodified with real kubectl, and
reached with curl as the minikube tutorial does (--resolve to the ADDRESS)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from svcnet.testing import ingress_ip
from tests.kubectl.conftest import MANIFESTS, PREFIX, Daemon, make_kubectl

pytestmark = pytest.mark.slow

ADDRESS = ingress_ip(PREFIX)
HTTP, HTTPS = (80, 443) if os.geteuid() == 0 else (8080, 8443)


def curl(*args: str) -> str:
    out = subprocess.run(
        ["curl", "-s", "--max-time", "10", *args], capture_output=True, text=True, timeout=30
    )
    return out.stdout


def get(host: str, path: str = "/", *extra: str, https: bool = False) -> str:
    port = HTTPS if https else HTTP
    scheme = "https" if https else "http"
    return curl(*extra, "--resolve", f"{host}:{port}:{ADDRESS}", f"{scheme}://{host}:{port}{path}")


def before_ages(describe: str) -> str:
    """A describe output up to its Events' rows, whose ages move between two runs."""
    return describe.split("  ----    ------")[0]


def test_the_minikube_tutorial(
    daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path
) -> None:
    ns = f"minikube-{kubectl_bin[0]}"
    k = make_kubectl(daemon, kubectl_bin[1], ns, tmp_path)
    k.ok("create", "deployment", "web", "--image=gihyodocker/echo:latest")
    k.ok("expose", "deployment", "web", "--type=NodePort", "--port=8080")
    k.ok("rollout", "status", "deployment/web", "--timeout=60s")
    out = k.ok("apply", "-f", str(MANIFESTS / "ingress" / "example-ingress.yaml"))
    assert out == "ingress.networking.k8s.io/example-ingress created\n"
    k.ok(
        "wait",
        "--for=jsonpath={.status.loadBalancer.ingress[0].ip}=" + ADDRESS,
        "ingress/example-ingress",
        "--timeout=30s",
    )
    lines = k.ok("get", "ingress").splitlines()
    assert lines[0].split() == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    assert lines[1].split()[:5] == [
        "example-ingress",
        "nginx",
        "hello-world.example",
        ADDRESS,
        "80",
    ]
    assert get("hello-world.example") == "Hello Docker!!"
    assert k.ok("get", "ingressclass").splitlines()[1].split()[:3] == [
        "nginx",
        "k8s.io/ingress-nginx",
        "<none>",
    ]
    # kubectl's describe and svcnet's agree, line for line.
    described = k.ok("describe", "ingress", "example-ingress")
    assert "Default backend:  <default>" in described
    assert "hello-world.example" in described and "web:8080 (" in described
    assert (
        "Normal  Sync" in described and "nginx-ingress-controller  Scheduled for sync" in described
    )
    mine = daemon.svcnet("describe", "ingress", "example-ingress", "-n", ns)
    assert before_ages(mine) == before_ages(described)
    k.ok("delete", "ingress", "--all")


def test_the_concept_page_examples(
    daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path
) -> None:
    ns = f"concepts-{kubectl_bin[0]}"
    k = make_kubectl(daemon, kubectl_bin[1], ns, tmp_path)
    here = MANIFESTS / "ingress"
    k.ok("apply", "-f", str(here / "backends.yaml"))
    k.ok("wait", "--for=condition=Available", "deploy", "--all", "--timeout=60s")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(tmp_path / "tls.key"), "-out", str(tmp_path / "tls.crt"),
         "-subj", "/CN=https-example.foo.com",
         "-addext", "subjectAltName=DNS:https-example.foo.com"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    k.ok("create", "secret", "tls", "testsecret-tls", f"--cert={tmp_path / 'tls.crt'}",
         f"--key={tmp_path / 'tls.key'}")  # fmt: skip
    for name in ("name-virtual-host-ingress", "ingress-wildcard-host", "tls-example-ingress"):
        k.ok("apply", "-f", str(here / f"{name}.yaml"))
    k.ok("wait", "--for=jsonpath={.status.loadBalancer.ingress[0].ip}=" + ADDRESS, "ingress",
         "--all", "--timeout=30s")  # fmt: skip
    hello, welcome = "Hello Docker!!", "Welcome to nginx!"
    assert get("foo.bar.com") == hello  # name-based virtual hosting
    assert welcome in get("bar.foo.com")
    assert get("foo.bar.com", "/bar") == hello  # merged with the wildcard example's host
    # *.foo.com, one label: service2's nginx gets /foo/x (and answers 404 itself, as it
    # serves only /); the others are the controller's own 404 and reach no pod.
    for host, path in (
        ("baz.foo.com", "/foo/x"),
        ("baz.foo.com", "/other"),
        ("a.baz.foo.com", "/foo/y"),
    ):
        assert "404 Not Found" in get(host, path)
    deadline = time.monotonic() + 20
    while '"GET /foo/x HTTP/1.1" 404' not in (access := k.ok("logs", "deploy/service2")):
        assert time.monotonic() < deadline, f"service2 did not log /foo/x: {access!r}"
        time.sleep(0.2)
    assert "/other" not in access and "/foo/y" not in access
    # TLS with the Secret's certificate, and HTTP redirected to it.
    cacert = str(tmp_path / "tls.crt")
    assert get("https-example.foo.com", "/", "--cacert", cacert, https=True) == hello
    redirect = get("https-example.foo.com", "/x", "-i")
    assert redirect.startswith("HTTP/1.1 308 Permanent Redirect")
    rows = {line.split()[0]: line.split() for line in k.ok("get", "ing").splitlines()[1:]}
    assert rows["tls-example-ingress"][1:5] == ["nginx", "https-example.foo.com", ADDRESS, "80,"]
    assert rows["name-virtual-host-ingress"][2] == "foo.bar.com,bar.foo.com"
    described = k.ok("describe", "ingress", "tls-example-ingress")
    assert "  testsecret-tls terminates https-example.foo.com" in described
    mine = daemon.svcnet("describe", "ingress", "tls-example-ingress", "-n", ns)
    assert before_ages(mine) == before_ages(described)
    # Hosts are the controller's, not a namespace's: the next kubectl's run needs them.
    k.ok("delete", "ingress", "--all")
