# The kubernetes package is only partly typed (untyped helpers, Optional model fields).
# mypy: disable-error-code="no-untyped-call,arg-type,union-attr,attr-defined,misc"
"""`kubectl auth whoami|can-i`, `kubectl version`, `kubectl api-resources` and
chunked lists (`get --chunk-size`), with both kubectls and the Python client,
against a running svcnet: outputs as a kind cluster's admin gets them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.kubectl.conftest import Daemon, make_kubectl

pytestmark = pytest.mark.slow

WHOAMI = """\
ATTRIBUTE   VALUE
Username    kubernetes-admin
Groups      [kubeadm:cluster-admins system:authenticated]
"""

CAN_I_LIST = """\
Resources                                       Non-Resource URLs   Resource Names   Verbs
*.*                                             []                  []               [*]
                                                [*]                 []               [*]
selfsubjectreviews.authentication.k8s.io        []                  []               [create]
selfsubjectaccessreviews.authorization.k8s.io   []                  []               [create]
selfsubjectrulesreviews.authorization.k8s.io    []                  []               [create]
                                                [/api/*]            []               [get]
                                                [/api]              []               [get]
                                                [/apis/*]           []               [get]
                                                [/apis]             []               [get]
                                                [/healthz]          []               [get]
                                                [/healthz]          []               [get]
                                                [/livez]            []               [get]
                                                [/livez]            []               [get]
                                                [/openapi/*]        []               [get]
                                                [/openapi]          []               [get]
                                                [/readyz]           []               [get]
                                                [/readyz]           []               [get]
                                                [/version/]         []               [get]
                                                [/version/]         []               [get]
                                                [/version]          []               [get]
                                                [/version]          []               [get]
"""

ALL_VERBS = "create,delete,deletecollection,get,list,patch,update,watch"
# (name, shortnames, apiversion, namespaced, kind, verbs, categories) as a 1.32
# cluster lists them, for the kinds svcnet serves; kubectl sorts by group, then name.
RESOURCES = [
    ("configmaps", "cm", "v1", "true", "ConfigMap", ALL_VERBS, ""),
    ("endpoints", "ep", "v1", "true", "Endpoints", ALL_VERBS, ""),
    ("events", "ev", "v1", "true", "Event", ALL_VERBS, ""),
    (
        "namespaces",
        "ns",
        "v1",
        "false",
        "Namespace",
        "create,delete,get,list,patch,update,watch",
        "",
    ),
    ("nodes", "no", "v1", "false", "Node", ALL_VERBS, ""),
    ("persistentvolumeclaims", "pvc", "v1", "true", "PersistentVolumeClaim", ALL_VERBS, ""),
    ("persistentvolumes", "pv", "v1", "false", "PersistentVolume", ALL_VERBS, ""),
    ("pods", "po", "v1", "true", "Pod", ALL_VERBS, "all"),
    ("secrets", "", "v1", "true", "Secret", ALL_VERBS, ""),
    ("services", "svc", "v1", "true", "Service", ALL_VERBS, "all"),
    ("controllerrevisions", "", "apps/v1", "true", "ControllerRevision", ALL_VERBS, ""),
    ("daemonsets", "ds", "apps/v1", "true", "DaemonSet", ALL_VERBS, "all"),
    ("deployments", "deploy", "apps/v1", "true", "Deployment", ALL_VERBS, "all"),
    ("replicasets", "rs", "apps/v1", "true", "ReplicaSet", ALL_VERBS, "all"),
    ("statefulsets", "sts", "apps/v1", "true", "StatefulSet", ALL_VERBS, "all"),
    (
        "selfsubjectreviews",
        "",
        "authentication.k8s.io/v1",
        "false",
        "SelfSubjectReview",
        "create",
        "",
    ),
    (
        "selfsubjectaccessreviews",
        "",
        "authorization.k8s.io/v1",
        "false",
        "SelfSubjectAccessReview",
        "create",
        "",
    ),
    (
        "selfsubjectrulesreviews",
        "",
        "authorization.k8s.io/v1",
        "false",
        "SelfSubjectRulesReview",
        "create",
        "",
    ),
    (
        "horizontalpodautoscalers",
        "hpa",
        "autoscaling/v2",
        "true",
        "HorizontalPodAutoscaler",
        ALL_VERBS,
        "all",
    ),
    ("cronjobs", "cj", "batch/v1", "true", "CronJob", ALL_VERBS, "all"),
    ("jobs", "", "batch/v1", "true", "Job", ALL_VERBS, "all"),
    ("endpointslices", "", "discovery.k8s.io/v1", "true", "EndpointSlice", ALL_VERBS, ""),
    ("nodes", "", "metrics.k8s.io/v1beta1", "false", "NodeMetrics", "get,list", ""),
    ("pods", "", "metrics.k8s.io/v1beta1", "true", "PodMetrics", "get,list", ""),
    ("ingressclasses", "", "networking.k8s.io/v1", "false", "IngressClass", ALL_VERBS, ""),
    ("ingresses", "ing", "networking.k8s.io/v1", "true", "Ingress", ALL_VERBS, ""),
    ("networkpolicies", "netpol", "networking.k8s.io/v1", "true", "NetworkPolicy", ALL_VERBS, ""),
    ("storageclasses", "sc", "storage.k8s.io/v1", "false", "StorageClass", ALL_VERBS, ""),
]


def columns(rows: list[tuple[str, ...]]) -> str:
    """kubectl's tabwriter: columns padded to the widest cell plus three spaces."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["".join(c.ljust(w + 3) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "".join(line[: -3 if line.endswith("   ") else len(line)] + "\n" for line in lines)


def test_auth_version_and_api_resources(
    daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path
) -> None:
    k = make_kubectl(daemon, kubectl_bin[1], "default", tmp_path)
    assert k.ok("auth", "whoami") == WHOAMI
    assert k.ok("auth", "can-i", "create", "deployments") == "yes\n"
    assert k.ok("auth", "can-i", "get", "/healthz") == "yes\n"
    assert k.ok("auth", "can-i", "--list") == CAN_I_LIST
    assert re.search(r"^Server Version: v1\.32\.0$", k.ok("version"), re.M)

    head = ("NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND", "VERBS", "CATEGORIES")
    wide = [head, *RESOURCES]
    got = [line.rstrip() for line in k.ok("api-resources", "-o", "wide").splitlines()]
    want = [line.rstrip() for line in columns(wide).splitlines()]
    assert got == want
    narrow = [r[:5] for r in wide]
    got = [line.rstrip() for line in k.ok("api-resources").splitlines()]
    assert got == [line.rstrip() for line in columns(narrow).splitlines()]


def test_chunked_lists(daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path) -> None:
    ns = f"chunks-{kubectl_bin[0]}"
    k = make_kubectl(daemon, kubectl_bin[1], ns, tmp_path)
    for i in range(5):
        k.ok("create", "configmap", f"cm{i}", f"--from-literal=k={i}")
    whole = k.ok("get", "configmaps", "-o", "name")
    r = k("get", "configmaps", "-o", "name", "--chunk-size=2", "-v=6")
    assert r.returncode == 0, r.stderr
    assert r.stdout == whole and whole.count("configmap/cm") == 5
    # Pages of two, each after the first carrying the continue token.
    gets = re.findall(r'/configmaps\?([^\s"]*limit=2[^\s"]*)', r.stderr)
    assert len(gets) >= 3 and all("continue=" in q for q in gets[1:]), r.stderr
    table = k.ok("get", "configmaps", "--chunk-size=2")
    assert table.count("NAME ") == 1 and len(table.splitlines()) == 1 + whole.count("\n")


def test_python_client_pages_and_version(daemon: Daemon) -> None:
    ns = "chunks-python"
    api_client = config.new_client_from_config(config_file=str(daemon.kubeconfig(ns)))
    core = client.CoreV1Api(api_client)
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for i in range(5):
        core.create_namespaced_config_map(
            ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm{i}"}}
        )
    names: list[str] = []
    pages = []
    token = None
    while True:
        page = core.list_namespaced_config_map(ns, limit=2, _continue=token)
        pages.append(page)
        names += [cm.metadata.name for cm in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert [n for n in names if n.startswith("cm")] == [f"cm{i}" for i in range(5)]
    assert pages[0].metadata.remaining_item_count == len(names) - 2
    assert {p.metadata.resource_version for p in pages} == {pages[0].metadata.resource_version}
    with pytest.raises(client.ApiException) as e:
        core.list_namespaced_config_map(ns, limit=2, _continue="garbled!")
    assert e.value.status == 400
    version = client.VersionApi(api_client).get_code()
    assert (version.major, version.minor, version.git_version) == ("1", "32", "v1.32.0")
