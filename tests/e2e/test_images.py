"""Image mappings beside the manifests and changed while svcnet runs: a svcnet.yaml
given to `svcnet apply` fills the svcnet-images ConfigMap, which the agent follows
for the pods created afterwards; a bad one applies nothing."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster

pytestmark = pytest.mark.slow

WEB = """
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  containers:
  - name: web
    image: example/{image}:1
    ports: [{{containerPort: 8080}}]
    readinessProbe:
      httpGet: {{path: /, port: 8080}}
      periodSeconds: 1
"""


def config(images: str) -> str:
    return "apiVersion: svcnet.dev/v1alpha1\nkind: SvcnetConfiguration\nagent:\n  images:\n" + (
        textwrap.indent(textwrap.dedent(images).strip() + "\n", "    ")
    )


def pod_ip(c: Cluster, name: str) -> str:
    out = c.cli("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=30s")
    assert out.returncode == 0, out.stderr + c.cli("describe", "pod", name).stdout
    return c.cli("get", "pod", name, "-o", "jsonpath={.status.podIP}").stdout


def test_mappings_beside_the_manifests_and_changed_while_running(
    cluster: Cluster, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "svcnet.yaml").write_text(config("example/web: [python3, -m, http.server, '8080']"))
    (app / "web.yaml").write_text(WEB.format(name="web-a", image="web"))
    out = cluster.cli("apply", "-f", str(app))
    assert out.stdout == "configmap/svcnet-images created\npod/web-a created\n", out.stderr
    assert "Directory listing" in cluster.curl(f"http://{pod_ip(cluster, 'web-a')}:8080/")

    # Changed while running: a second folder maps another image, merged over the first.
    other = tmp_path / "other"
    other.mkdir()
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("from busybox\n")
    (other / "svcnet.yaml").write_text(
        config(f"example/static: [busybox, httpd, -f, -p, '8080', -h, '{www}']")
    )
    (other / "static.yaml").write_text(WEB.format(name="static-b", image="static"))
    out = cluster.cli("apply", "-f", str(other))
    assert out.stdout == "configmap/svcnet-images configured\npod/static-b created\n", out.stderr
    assert cluster.curl(f"http://{pod_ip(cluster, 'static-b')}:8080/") == "from busybox\n"
    cm = json.loads(
        cluster.cli("get", "cm", "svcnet-images", "-n", "kube-system", "-o", "json").stdout
    )
    mapped = cm["data"]["images.yaml"]
    assert "example/web:" in mapped and "example/static:" in mapped
    # The same files again change nothing.
    assert cluster.cli("apply", "-f", str(app)).stdout == (
        "configmap/svcnet-images unchanged\npod/web-a unchanged\n"
    )


def test_a_bad_mapping_applies_nothing(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "svcnet.yaml").write_text(config("example/bad: {cmd: [sleep, '1']}"))
    (tmp_path / "web.yaml").write_text(WEB.format(name="never", image="bad"))
    out = cluster.cli("apply", "-f", str(tmp_path))
    assert out.returncode == 1
    assert "svcnet.yaml" in out.stderr and "unknown field(s) cmd" in out.stderr, out.stderr
    assert cluster.cli("get", "pod", "never").returncode == 1  # nothing was applied


def test_an_unmapped_image_says_how_to_map_it(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(WEB.format(name="unmapped", image="nowhere"))
    assert cluster.cli("apply", "-f", str(tmp_path / "p.yaml")).returncode == 0
    reason = "{.status.containerStatuses[0].state.waiting.reason}"
    out = cluster.cli("wait", f"--for=jsonpath={reason}=ImagePullBackOff", "pod/unmapped")
    assert out.returncode == 0, out.stderr
    message = cluster.cli(
        "get", "pod", "unmapped", "-o",
        "jsonpath={.status.containerStatuses[0].state.waiting.reason}: "
        "{.status.containerStatuses[0].state.waiting.message}",
    ).stdout  # fmt: skip
    assert message == (
        'ImagePullBackOff: Back-off pulling image "example/nowhere:1": ErrImagePull: svcnet has '
        'no built-in image "example/nowhere:1" and the container has no command; map it under '
        "agent.images in a svcnet.yaml (svcnet apply -f it while svcnet runs) or with svcnet "
        "up --image example/nowhere=COMMAND"
    )
    # Mapped while svcnet runs, the image is found at the next try (the kubelet's
    # pull back-off: 10 s after the first failure), and the pod starts.
    (tmp_path / "svcnet.yaml").write_text(
        config("example/nowhere: [python3, -m, http.server, '8080']")
    )
    assert cluster.cli("apply", "-f", str(tmp_path)).returncode == 0
    out = cluster.cli("wait", "--for=condition=Ready", "pod/unmapped", "--timeout=40s")
    assert out.returncode == 0, out.stderr
