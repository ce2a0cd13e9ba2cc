"""EndpointSlices are what DNS and the proxy read, whoever wrote them: a user's
own slice, a slice mirrored from hand-written Endpoints (IPv6 included), and
what deleting a Service takes with it. Against a whole svcnet (the pytest
plugin's), with curl, kubectl and the cluster DNS."""

from __future__ import annotations

import http.server
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator

import pytest

from svcnet.k8s.wellknown import SLICE_MANAGED_BY
from svcnet.testing import Namespace

pytestmark = pytest.mark.slow


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello from the slice\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[int]:
    """python's http.server on loopback, a program outside the cluster."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def curl(url: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("curl")
    assert exe, "curl is required (apt-get install curl)"
    return subprocess.run(
        [exe, "-sS", "--max-time", "5", url], capture_output=True, text=True, timeout=10
    )


def user_slice(ns: str, port: int, ready: bool) -> str:
    return f"""
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: outside-1
  namespace: {ns}
  labels:
    kubernetes.io/service-name: outside
    endpointslice.kubernetes.io/managed-by: staff.example.com
addressType: IPv4
ports:
- name: http
  port: {port}
  protocol: TCP
endpoints:
- addresses: ["127.0.0.1"]
  conditions:
    ready: {str(ready).lower()}
"""


def test_a_users_own_slice_is_served_and_followed(
    svcnet_namespace: Namespace, backend: int
) -> None:
    ns = svcnet_namespace
    ns.apply(
        f"""
apiVersion: v1
kind: Service
metadata:
  name: outside
spec:
  ports:
  - name: http
    port: 80
---
apiVersion: v1
kind: Service
metadata:
  name: outside-headless
spec:
  clusterIP: None
  ports:
  - name: http
    port: 80
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: outside-headless-1
  labels:
    kubernetes.io/service-name: outside-headless
    endpointslice.kubernetes.io/managed-by: staff.example.com
addressType: IPv4
ports:
- name: http
  port: {backend}
endpoints:
- addresses: ["127.0.0.1"]
  hostname: box
"""
    )
    ns.apply(user_slice(ns.name, backend, ready=True))
    url = ns.url("outside", "http")
    got = curl(url)
    assert got.stdout == "hello from the slice\n", got.stderr
    # DNS reads the same slices: the headless name and the endpoint's hostname.
    assert ns.resolve("outside-headless") == ["127.0.0.1"]
    assert ns.resolve("box.outside-headless") == ["127.0.0.1"]
    # The controllers leave a slice they do not manage alone.
    out = ns.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=outside").stdout
    assert out.split("\n")[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    assert out.split("\n")[1].split()[:4] == ["outside-1", "IPv4", str(backend), "127.0.0.1"]
    # Not ready: nothing to send to, refused as kube-proxy's REJECT rule does.
    ns.apply(user_slice(ns.name, backend, ready=False))
    refused = curl(url)
    assert refused.returncode == 7, (refused.returncode, refused.stdout, refused.stderr)
    ns.apply(user_slice(ns.name, backend, ready=True))
    assert curl(url).stdout == "hello from the slice\n"


def test_manual_endpoints_are_mirrored_and_go_with_their_service(
    svcnet_namespace: Namespace, backend: int
) -> None:
    ns = svcnet_namespace
    ns.apply(
        f"""
apiVersion: v1
kind: Service
metadata:
  name: manual
spec:
  ports:
  - name: http
    port: 80
---
apiVersion: v1
kind: Endpoints
metadata:
  name: manual
subsets:
- addresses:
  - ip: 127.0.0.1
  - ip: "::1"
  ports:
  - name: http
    port: {backend}
"""
    )
    assert curl(ns.url("manual", "http")).stdout == "hello from the slice\n"
    out = ns.kubectl(
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=manual",
        "-o",
        "custom-columns=TYPE:.addressType,MANAGER:.metadata.labels.endpointslice\\.kubernetes\\.io/managed-by,IPS:.endpoints[*].addresses[0]",
        "--sort-by=.addressType",
    ).stdout.split("\n")
    assert [line.split() for line in out if line] == [
        ["TYPE", "MANAGER", "IPS"],
        ["IPv4", "endpointslicemirroring-controller.k8s.io", "127.0.0.1"],
        ["IPv6", "endpointslicemirroring-controller.k8s.io", "::1"],
    ]
    # Deleting the Service takes the hand-written Endpoints and their mirrors.
    mirrors = ns.kubectl(
        "get", "endpointslices", "-l", "kubernetes.io/service-name=manual", "-o", "name"
    ).stdout.split()
    assert len(mirrors) == 2
    ns.kubectl("delete", "service", "manual")
    ns.kubectl("wait", "--for=delete", "endpoints/manual", *mirrors, "--timeout=10s")
    gone = ns.kubectl("get", "endpoints", "manual", check=False)
    assert 'endpoints "manual" not found' in gone.stderr


def test_the_api_server_is_reachable_through_the_kubernetes_service(
    svcnet_namespace: Namespace,
) -> None:
    """In-cluster clients (KUBERNETES_SERVICE_HOST) reach the API server through the
    `kubernetes` Service, whose EndpointSlice the API server writes itself."""
    ns = svcnet_namespace
    svc = ns.get("service/kubernetes", "default")
    ip = svc["spec"]["clusterIP"]
    assert ns.resolve("kubernetes.default") == [ip]
    [slice_] = ns.client.get(
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
        query={"labelSelector": "kubernetes.io/service-name=kubernetes"},
    )["items"]
    assert slice_["metadata"]["name"] == "kubernetes"
    assert SLICE_MANAGED_BY not in slice_["metadata"]["labels"]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((ip, 443), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
        tls.sendall(
            b"GET /version HTTP/1.1\r\nHost: kubernetes.default\r\nConnection: close\r\n\r\n"
        )
        status = tls.recv(64)
    # The API server answers (/version needs no credential, as kube-apiserver's).
    assert status.startswith(b"HTTP/1.1 200 OK"), status
