# The kubernetes package is only partly typed (untyped helpers, Optional model fields).
# mypy: disable-error-code="no-untyped-call,arg-type,union-attr,attr-defined,index"
"""HorizontalPodAutoscalers with both kubectls and the Python client against a
svcnet whose HPA controller syncs every second: `kubectl autoscale` (v1.32 sends
an autoscaling/v1 object, v1.37 a v2 one, both as protobuf), `get hpa` and its
TARGETS, `describe hpa`, both API versions, api-resources, validation, and a
Deployment whose pods burn CPU scaled up by the controller."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from tests.kubectl.conftest import Daemon, make_kubectl, start_daemon, stop_daemon

pytestmark = pytest.mark.slow

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: burn}
spec:
  replicas: 1
  selector: {matchLabels: {app: burn}}
  template:
    metadata: {labels: {app: burn}}
    spec:
      containers:
      - name: spin
        image: busybox
        command: ["sh", "-c", "while :; do :; done"]
        resources: {requests: {cpu: 100m}}
"""

SETTINGS = """\
apiVersion: svcnet.dev/v1alpha1
kind: SvcnetConfiguration
controllers:
  hpa_sync_period: 1
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    # The controller's 15 s period would make the scale-up test wait: 1 s here.
    d = start_daemon(tmp_path_factory.mktemp("svcnet"), SETTINGS)
    try:
        yield d
    finally:
        stop_daemon(d)


def wait_for(what: str, check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check() if callable(check) else check
        if last:
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")


def test_autoscale_get_describe(
    daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path
) -> None:
    ns = f"hpa-{kubectl_bin[0]}"
    k = make_kubectl(daemon, kubectl_bin[1], ns, tmp_path)
    (tmp_path / "d.yaml").write_text(
        DEPLOYMENT.replace("burn", "web").replace(
            'command: ["sh", "-c", "while :; do :; done"]', 'command: ["sleep", "1000"]'
        )
    )
    k.ok("apply", "-f", str(tmp_path / "d.yaml"))

    out = k.ok("autoscale", "deployment", "web", "--cpu-percent=50", "--min=1", "--max=3")
    assert out == "horizontalpodautoscaler.autoscaling/web autoscaled\n"

    table = k.ok("get", "hpa")
    assert re.match(
        r"NAME +REFERENCE +TARGETS +MINPODS +MAXPODS +REPLICAS +AGE\n"
        r"web +Deployment/web +cpu: (<unknown>|\d+%)/50% +1 +3 +[01] +\d+s\n$",
        table,
    ), table
    resources = k.ok("api-resources")
    assert re.search(
        r"^horizontalpodautoscalers +hpa +autoscaling/v2 +true +HorizontalPodAutoscaler$",
        resources,
        re.M,
    ), resources

    as_v2 = yaml.safe_load(k.ok("get", "hpa", "web", "-o", "yaml"))
    assert as_v2["apiVersion"] == "autoscaling/v2"
    assert as_v2["spec"]["minReplicas"] == 1
    assert as_v2["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50},
            },
        }
    ]
    as_v1 = json.loads(k.ok("get", "horizontalpodautoscalers.v1.autoscaling", "web", "-o", "json"))
    assert as_v1["apiVersion"] == "autoscaling/v1"
    assert as_v1["spec"]["targetCPUUtilizationPercentage"] == 50
    assert "metrics" not in as_v1["spec"]

    # The controller's first sync has run: the target was read.
    wait_for(
        "AbleToScale",
        lambda: (
            "SucceededGetScale" in k.ok("get", "hpa", "web", "-o", "yaml")
            or "SucceededRescale" in k.ok("get", "hpa", "web", "-o", "yaml")
        ),
    )
    described = k.ok("describe", "hpa", "web")
    for line in (
        "Name:                                                  web",
        f"Namespace:                                             {ns}",
        "Reference:                                             Deployment/web",
        "Metrics:                                               ( current / target )",
        "Min replicas:                                          1",
        "Max replicas:                                          3",
        "Conditions:",
    ):
        assert line in described, described
    assert re.search(
        r"^  resource cpu on pods  \(as a percentage of request\):  "
        r"(<unknown>|\d+% \(\S+\)) / 50%$",
        described,
        re.M,
    ), described
    assert re.search(r"^Deployment pods: +1 current / \d desired$", described, re.M), described
    assert re.search(r"^  Type +Status +Reason +Message$", described, re.M), described
    assert re.search(r"^  AbleToScale +True +Succeeded(GetScale|Rescale) ", described, re.M)
    ours = daemon.svcnet("describe", "hpa", "web", "-n", ns)
    assert ours.split("Conditions:")[0] == described.split("Conditions:")[0]

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: bad}\n"
        "spec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n"
        "  minReplicas: 2\n  maxReplicas: 1\n"
    )
    r = k("apply", "-f", str(bad))
    assert r.returncode == 1
    assert (
        'The HorizontalPodAutoscaler "bad" is invalid: spec.maxReplicas: Invalid value: 1: '
        "must be greater than or equal to `minReplicas`" in r.stderr
    ), r.stderr

    k.ok("delete", "hpa", "web")
    k.ok("delete", "namespace", ns, "--wait=false")


def test_python_client_reads_both_versions(daemon: Daemon) -> None:
    ns = "hpa-python"
    api_client = config.new_client_from_config(config_file=str(daemon.kubeconfig(ns)))
    client.CoreV1Api(api_client).create_namespace(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    )
    v1 = client.AutoscalingV1Api(api_client)
    v1.create_namespaced_horizontal_pod_autoscaler(
        ns,
        {
            "apiVersion": "autoscaling/v1",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "py"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "py"},
                "maxReplicas": 4,
                "targetCPUUtilizationPercentage": 60,
            },
        },
    )
    got2 = client.AutoscalingV2Api(api_client).read_namespaced_horizontal_pod_autoscaler("py", ns)
    assert got2.spec.max_replicas == 4
    assert got2.spec.min_replicas == 1
    assert got2.spec.metrics[0].resource.target.average_utilization == 60
    got1 = v1.read_namespaced_horizontal_pod_autoscaler("py", ns)
    assert got1.spec.target_cpu_utilization_percentage == 60
    # No such Deployment: the controller says so, as on a cluster.
    wait_for(
        "FailedGetScale",
        lambda: any(
            c.reason == "FailedGetScale"
            for c in (
                client.AutoscalingV2Api(api_client)
                .read_namespaced_horizontal_pod_autoscaler("py", ns)
                .status.conditions
                or []
            )
        ),
    )
    events = client.CoreV1Api(api_client).list_namespaced_event(ns).items
    assert any(
        e.reason == "FailedGetScale" and e.message == 'deployments.apps "py" not found'
        for e in events
    ), [(e.reason, e.message) for e in events]


def test_cpu_burning_deployment_scales_up(daemon: Daemon, tmp_path: Path) -> None:
    assert os.geteuid() == 0, "pod usage comes from cgroups: run this test as root (CI does)"
    ns = "hpa-burn"
    from tests.kubectl.binaries import all_kubectls

    k = make_kubectl(daemon, all_kubectls()[0][1], ns, tmp_path)
    (tmp_path / "d.yaml").write_text(DEPLOYMENT)
    k.ok("apply", "-f", str(tmp_path / "d.yaml"))
    k.ok("rollout", "status", "deployment/burn", "--timeout=30s")
    k.ok("autoscale", "deployment", "burn", "--cpu-percent=50", "--min=1", "--max=3")

    def replicas() -> int:
        return int(k.ok("get", "deployment", "burn", "-o", "jsonpath={.spec.replicas}"))

    # A busy loop uses ~1000% of a 100m request: the next syncs take it to the max.
    # (The first sample after the pod became ready is skipped, as the real
    # controller skips samples that began before readiness: up to a window, 15 s.)
    wait_for("scaled to 3", lambda: replicas() == 3, timeout=60)
    events = k.ok(
        "get", "events", "--field-selector", "involvedObject.kind=HorizontalPodAutoscaler"
    )
    assert re.search(
        r"SuccessfulRescale +horizontalpodautoscaler/burn +New size: [23]; reason: cpu resource "
        r"utilization \(percentage of request\) above target",
        events,
    ), events
    table = k.ok("get", "hpa", "burn")
    assert re.search(r"burn +Deployment/burn +cpu: \d+%/50% +1 +3 ", table), table
    k.ok("delete", "namespace", ns, "--wait=false")
