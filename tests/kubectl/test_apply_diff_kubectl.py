"""`kubectl diff` and `kubectl apply` (client- and server-side) against svcnet as
against the API server: a dry-run answers what the write would store, so a diff
right after an apply is empty and after an edit shows only the edit; kubectl's
move from client-side to server-side apply takes over its fields without
conflicts; and every kubectl verb's field manager lands in managedFields with the
operation, apiVersion, subresource and fields the API server records."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.kubectl.conftest import MANIFESTS, Daemon, Kubectl, make_kubectl

pytestmark = pytest.mark.slow

APP = MANIFESTS / "applydiff" / "app.yaml"


def changed_lines(diff: str) -> list[str]:
    return [
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def managers(k: Kubectl, what: str) -> list[dict[str, Any]]:
    """managedFields without their timestamps."""
    out = json.loads(k.ok("get", what, "-o", "json", "--show-managed-fields"))
    entries = out["metadata"].get("managedFields") or []
    for e in entries:
        assert e.pop("time").endswith("Z")
    return list(entries)


def settle(k: Kubectl) -> None:
    """Wait until the controllers have finished with what was applied, so the
    live objects kubectl diff reads no longer move."""
    k.ok("rollout", "status", "deployment/web", "--timeout=60s")
    k.ok("rollout", "status", "statefulset/store", "--timeout=60s")
    k.ok(
        "wait",
        "--for=jsonpath={.status.loadBalancer.ingress[0].ip}",
        "ingress/web",
        "--timeout=30s",
    )


def test_diff_after_apply_shows_nothing_then_only_the_change(
    daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path
) -> None:
    k = make_kubectl(daemon, kubectl_bin[1], f"diff-{kubectl_bin[0]}", tmp_path)
    k.ok("apply", "-f", str(APP))
    settle(k)
    r = k("diff", "-f", str(APP))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")

    edited = tmp_path / "app.yaml"
    edited.write_text(
        APP.read_text()
        .replace("mode: quiet", "mode: loud")
        .replace("  - port: 80\n", "  - port: 80\n    name: http\n")
        .replace(
            "  replicas: 0\n  selector:\n    matchLabels:\n      app: store",
            "  replicas: 0\n  minReadySeconds: 5\n  selector:\n    matchLabels:\n      app: store",
        )
    )
    node_port = k.ok("get", "service", "web", "-o", "jsonpath={.spec.ports[0].nodePort}")
    r = k("diff", "-f", str(edited))
    assert r.returncode == 1, r.stderr
    # The edits, and the StatefulSet's generation they bump (a Service has none):
    # no metadata drift, the allocated ClusterIP and nodePort kept.
    assert sorted(changed_lines(r.stdout)) == sorted(
        [
            "-  mode: quiet",
            "+  mode: loud",
            f"-  - nodePort: {node_port}",
            "+  - name: http",
            f"+    nodePort: {node_port}",
            "-  generation: 1",
            "+  generation: 2",
            "+  minReadySeconds: 5",
        ]
    ), r.stdout

    # A server-side dry run answers what the write would store: the live
    # resourceVersion on an update, none on a create, the server's uid either way.
    live = json.loads(k.ok("get", "configmap", "settings", "-o", "json"))
    dry = json.loads(k.ok("apply", "--dry-run=server", "-f", str(edited), "-o", "json"))
    cm = next(o for o in dry["items"] if o["kind"] == "ConfigMap")
    assert cm["data"] == {"mode": "loud"}
    for f in ("uid", "resourceVersion", "creationTimestamp"):
        assert cm["metadata"][f] == live["metadata"][f]
    created = json.loads(
        k.ok("create", "configmap", "fresh", "--from-literal=a=1", "--dry-run=server", "-o", "json")
    )
    assert created["metadata"]["uid"] and created["metadata"]["creationTimestamp"]
    assert "resourceVersion" not in created["metadata"]
    assert k("get", "configmap", "fresh").returncode == 1

    # Server-side: after an apply, a server-side diff is empty too.
    k.ok("apply", "--server-side", "-f", str(edited))
    r = k("diff", "--server-side", "-f", str(edited))
    assert (r.returncode, r.stdout) == (0, ""), r.stdout + r.stderr


def test_server_side_apply_takes_over_client_side_apply(
    daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path
) -> None:
    k = make_kubectl(daemon, kubectl_bin[1], f"csa-{kubectl_bin[0]}", tmp_path)
    k.ok("apply", "-f", str(APP))
    settle(k)
    # The same file, then with a changed field, server-side: no conflicts with
    # what client-side apply set (the API server's last-applied upgrade path).
    assert k.ok("apply", "--server-side", "-f", str(APP)).startswith(
        "deployment.apps/web serverside-applied\n"
    )
    edited = tmp_path / "app.yaml"
    edited.write_text(APP.read_text().replace("mode: quiet", "mode: loud"))
    out = k.ok("apply", "--server-side", "-f", str(edited))
    assert "configmap/settings serverside-applied" in out
    cm = managers(k, "configmap/settings")
    # kubectl moved client-side apply's ownership to its own Apply entry.
    assert cm == [
        {
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:mode": {}}},
            "manager": "kubectl",
            "operation": "Apply",
        },
        {
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {
                    "f:annotations": {"f:kubectl.kubernetes.io/last-applied-configuration": {}}
                }
            },
            "manager": "kubectl-last-applied",
            "operation": "Apply",
        },
    ]
    last = k.ok(
        "get",
        "configmap",
        "settings",
        "-o",
        r"jsonpath={.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}",
    )
    assert json.loads(last)["data"] == {"mode": "loud"}

    # kubectl scale sends no field manager: the API server names it after the
    # User-Agent ("kubectl"), against the scale subresource.
    k.ok("scale", "deployment/web", "--replicas=1")
    scale = [e for e in managers(k, "deployment/web") if e.get("subresource")]
    assert scale == [
        {
            "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}},
            "manager": "kubectl",
            "operation": "Update",
            "subresource": "scale",
        }
    ]
    # Applying another replicas now conflicts, with the API server's message.
    r = k("apply", "--server-side", "-f", str(edited))
    assert r.returncode == 1
    assert r.stderr.startswith(
        'error: Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" '
        "using apps/v1: .spec.replicas\n"
    ), r.stderr
    k.ok("scale", "deployment/web", "--replicas=0")


VERBS = [
    (
        ("label", "deployment/web", "tier=front"),
        "kubectl-label",
        {"f:metadata": {"f:labels": {"f:tier": {}}}},
    ),
    (
        ("annotate", "deployment/web", "note=x"),
        "kubectl-annotate",
        {"f:metadata": {"f:annotations": {"f:note": {}}}},
    ),
    (
        ("set", "image", "deployment/web", "nginx=registry.k8s.io/nginx-slim:0.26"),
        "kubectl-set",
        {
            "f:spec": {
                "f:template": {"f:spec": {"f:containers": {'k:{"name":"nginx"}': {"f:image": {}}}}}
            }
        },
    ),
    (
        ("patch", "deployment/web", "-p", '{"spec":{"minReadySeconds":3}}'),
        "kubectl-patch",
        {"f:spec": {"f:minReadySeconds": {}}},
    ),
]


def test_kubectl_verbs_record_their_field_managers(
    daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path
) -> None:
    k = make_kubectl(daemon, kubectl_bin[1], f"managers-{kubectl_bin[0]}", tmp_path)
    k.ok("apply", "-f", str(APP))
    csa = managers(k, "deployment/web")
    assert [(e["manager"], e["operation"], e["apiVersion"]) for e in csa] == [
        ("kubectl-client-side-apply", "Update", "apps/v1")
    ]
    for args, manager, fields in VERBS:
        k.ok(*args)
        entry = [e for e in managers(k, "deployment/web") if e["manager"] == manager]
        assert entry == [
            {
                "apiVersion": "apps/v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": fields,
                "manager": manager,
                "operation": "Update",
            }
        ], (args, managers(k, "deployment/web"))
    k.ok("rollout", "restart", "deployment/web")
    (rollout,) = [e for e in managers(k, "deployment/web") if e["manager"] == "kubectl-rollout"]
    assert (rollout["operation"], rollout["apiVersion"]) == ("Update", "apps/v1")
    restarted = rollout["fieldsV1"]["f:spec"]["f:template"]["f:metadata"]["f:annotations"]
    assert "f:kubectl.kubernetes.io/restartedAt" in restarted
    edit = subprocess.run(
        k.argv("edit", "deployment/web"),
        capture_output=True,
        text=True,
        timeout=60,
        env={**k.env(), "KUBE_EDITOR": "sed -i s/minReadySeconds:.3/minReadySeconds:\\ 4/"},
    )
    assert edit.stdout == "deployment.apps/web edited\n", edit.stderr
    entries = managers(k, "deployment/web")
    assert [e["manager"] for e in entries if e["manager"].startswith("kubectl-")] == [
        "kubectl-client-side-apply",
        "kubectl-label",
        "kubectl-annotate",
        "kubectl-set",
        "kubectl-rollout",
        "kubectl-edit",  # took minReadySeconds from kubectl-patch, which owns nothing now
    ]
    assert entries[-1]["fieldsV1"] == {"f:spec": {"f:minReadySeconds": {}}}
