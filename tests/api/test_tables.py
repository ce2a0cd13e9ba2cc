"""Table cells, one kind at a time, against kubectl's printers (k8s-services.md §4)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from svcnet.api import tables
from svcnet.k8s.objects import Obj
from tests.api.conftest import make_pod

NOW = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.UTC)


def ago(seconds: float) -> str:
    return (NOW - dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


M, H, D, Y = 60, 3600, 86400, 365 * 86400


def test_since_unknown_for_missing_timestamp() -> None:
    assert tables.since(None, NOW) == "<unknown>"
    assert tables.since(ago(150), NOW) == "2m30s"


def pod_with(**status: Any) -> Obj:
    pod = make_pod("web-1")
    pod["metadata"]["creationTimestamp"] = ago(65)
    pod["status"].update(status)
    return pod


def test_pod_running() -> None:
    cells = tables.cells(pod_with(), NOW)
    assert cells == [
        "web-1",
        "1/1",
        "Running",
        "0",
        "65s",
        "127.244.0.5",
        "svcnet",
        "<none>",
        "<none>",
    ]


def test_pod_waiting_reason_and_restarts_ago() -> None:
    pod = pod_with(
        containerStatuses=[
            {
                "name": "main",
                "ready": False,
                "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(41)}},
            }
        ]
    )
    assert tables.cells(pod, NOW)[:4] == ["web-1", "0/1", "CrashLoopBackOff", "3 (41s ago)"]


def test_pod_terminated_and_terminating() -> None:
    done = pod_with(
        phase="Succeeded",
        containerStatuses=[
            {
                "name": "main",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
            }
        ],
    )
    assert tables.cells(done, NOW)[2] == "Completed"
    assert tables.row(done, NOW)["conditions"][0]["reason"] == "Succeeded"
    no_reason = pod_with(
        containerStatuses=[
            {
                "name": "main",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 3}},
            }
        ]
    )
    assert tables.cells(no_reason, NOW)[2] == "ExitCode:3"
    deleting = pod_with()
    deleting["metadata"]["deletionTimestamp"] = ago(0)
    assert tables.cells(deleting, NOW)[2] == "Terminating"


def test_pod_pending_without_statuses_and_wide_defaults() -> None:
    pod = make_pod("p", phase="Pending")
    pod["status"] = {"phase": "Pending"}
    pod["spec"].pop("nodeName")
    pod["spec"]["readinessGates"] = [{"conditionType": "x"}]
    assert tables.cells(pod, NOW) == [
        "p",
        "0/1",
        "Pending",
        "0",
        "<unknown>",
        "<none>",
        "<none>",
        "<none>",
        "0/1",
    ]


def test_pod_init_container_waiting() -> None:
    pod = pod_with(
        initContainerStatuses=[
            {
                "name": "init",
                "ready": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": "PodInitializing"}},
            }
        ]
    )
    pod["spec"]["initContainers"] = [{"name": "init", "image": "busybox"}]
    assert tables.cells(pod, NOW)[2] == "Init:0/1"


def svc(**spec: Any) -> Obj:
    base: Obj = {
        "kind": "Service",
        "metadata": {"name": "echo", "creationTimestamp": ago(3 * H + 5 * M)},
        "spec": {
            "type": "ClusterIP",
            "clusterIPs": ["127.96.0.20"],
            "ports": [{"port": 80, "protocol": "TCP"}],
            "selector": {"release": "spring", "app": "echo"},
        },
    }
    base["spec"].update(spec)
    return base


def test_service_cluster_ip() -> None:
    assert tables.cells(svc(), NOW) == [
        "echo",
        "ClusterIP",
        "127.96.0.20",
        "<none>",
        "80/TCP",
        "3h5m",
        "app=echo,release=spring",
    ]


def test_service_node_port_and_external_ips() -> None:
    s = svc(
        type="NodePort",
        externalIPs=["1.2.3.4", "5.6.7.8"],
        ports=[
            {"port": 80, "nodePort": 30026, "protocol": "TCP"},
            {"port": 443, "nodePort": 31351, "protocol": "TCP"},
        ],
    )
    cells = tables.cells(s, NOW)
    assert cells[3] == "1.2.3.4,5.6.7.8"
    assert cells[4] == "80:30026/TCP,443:31351/TCP"


def test_service_load_balancer_pending_and_cut() -> None:
    s = svc(type="LoadBalancer")
    assert tables.cells(s, NOW)[3] == "<pending>"
    s["status"] = {
        "loadBalancer": {
            "ingress": [{"ip": "127.240.0.12"}, {"ip": "127.240.0.3"}, {"ip": "127.240.0.3"}]
        }
    }
    assert tables.service_external_ip(s, wide=True) == "127.240.0.12,127.240.0.3"
    assert tables.service_external_ip(s, wide=False) == "127.240.0.12,..."
    # the apiserver renders wide, as kube-apiserver does
    assert tables.cells(s, NOW)[3] == "127.240.0.12,127.240.0.3"
    s["spec"]["externalIPs"] = ["9.9.9.9"]
    assert tables.service_external_ip(s) == "127.240.0.12,127.240.0.3,9.9.9.9"


def test_service_headless_external_name_and_empty() -> None:
    headless = svc(clusterIPs=["None"], ports=[], selector={})
    cells = tables.cells(headless, NOW)
    assert (cells[2], cells[4], cells[6]) == ("None", "<none>", "<none>")
    ext = svc(type="ExternalName", externalName="example.com")
    ext["spec"].pop("clusterIPs")
    assert tables.cells(ext, NOW)[1:4] == ["ExternalName", "<none>", "example.com"]


def endpoints(*subsets: Obj) -> Obj:
    return {
        "kind": "Endpoints",
        "metadata": {"name": "echo", "creationTimestamp": ago(5)},
        "subsets": list(subsets),
    }


def test_endpoints_cells() -> None:
    assert tables.cells(endpoints(), NOW) == ["echo", "<none>", "5s"]
    one = {
        "addresses": [{"ip": "127.244.0.1"}, {"ip": "127.244.0.2"}],
        "notReadyAddresses": [{"ip": "127.244.0.9"}],
        "ports": [{"port": 8080}],
    }
    assert tables.cells(endpoints(one), NOW)[1] == "127.244.0.1:8080,127.244.0.2:8080"
    many = {"addresses": [{"ip": f"127.244.0.{i}"} for i in range(1, 6)], "ports": [{"port": 8080}]}
    assert tables.cells(endpoints(many), NOW)[1] == (
        "127.244.0.1:8080,127.244.0.2:8080,127.244.0.3:8080 + 2 more..."
    )
    headless = {"addresses": [{"ip": "127.244.0.1"}]}
    assert tables.cells(endpoints(headless), NOW)[1] == "127.244.0.1"


def test_endpointslice_cells() -> None:
    es = {
        "kind": "EndpointSlice",
        "metadata": {"name": "echo-abc", "creationTimestamp": ago(1)},
        "addressType": "IPv4",
        "ports": [{"port": 8080, "name": ""}],
        "endpoints": [{"addresses": ["127.244.0.1"]}, {"addresses": ["127.244.0.2"]}],
    }
    assert tables.cells(es, NOW) == ["echo-abc", "IPv4", "8080", "127.244.0.1,127.244.0.2", "1s"]
    es["ports"], es["endpoints"] = [], []
    assert tables.cells(es, NOW)[2:4] == ["<unset>", "<unset>"]


def workload(kind: str) -> Obj:
    return {
        "kind": kind,
        "metadata": {"name": "echo", "creationTimestamp": ago(25 * M)},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "echo", "pod-template-hash": "7c4c8d5d4f"}},
            "template": {
                "spec": {
                    "containers": [
                        {"name": "echo", "image": "gihyodocker/echo:latest"},
                        {"name": "side", "image": "busybox"},
                    ]
                }
            },
        },
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }


def test_replicaset_cells() -> None:
    assert tables.cells(workload("ReplicaSet"), NOW) == [
        "echo",
        3,
        3,
        2,
        "25m",
        "echo,side",
        "gihyodocker/echo:latest,busybox",
        "app=echo,pod-template-hash=7c4c8d5d4f",
    ]


def test_deployment_cells() -> None:
    assert tables.cells(workload("Deployment"), NOW) == [
        "echo",
        "2/3",
        3,
        2,
        "25m",
        "echo,side",
        "gihyodocker/echo:latest,busybox",
        "app=echo,pod-template-hash=7c4c8d5d4f",
    ]
    empty = workload("Deployment")
    empty["status"] = {}
    assert tables.cells(empty, NOW)[1:4] == ["0/3", 0, 0]


def test_namespace_and_event_cells() -> None:
    ns = {
        "kind": "Namespace",
        "metadata": {"name": "default", "creationTimestamp": ago(2 * D)},
        "status": {"phase": "Active"},
    }
    assert tables.cells(ns, NOW) == ["default", "Active", "2d"]
    ev = {
        "kind": "Event",
        "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{main}"},
        "reason": "Started",
        "type": "Normal",
        "message": "Started container main\n",
        "firstTimestamp": ago(90),
        "lastTimestamp": ago(30),
        "count": 2,
        "source": {"component": "kubelet", "host": "svcnet"},
    }
    assert tables.cells(ev, NOW) == [
        "30s",
        "Normal",
        "Started",
        "pod/web",
        "spec.containers{main}",
        "kubelet, svcnet",
        "Started container main",
        "90s",
        2,
        "web.1",
    ]
    assert tables.cells(ev, NOW, wide=False) == [
        "30s",
        "Normal",
        "Started",
        "pod/web",
        "Started container main",
    ]


def test_column_definitions_match_cells() -> None:
    for kind, printer in tables.PRINTERS.items():
        names = [c.name for c in printer.columns]
        assert names[0] in ("Name", "Last Seen"), kind
        wide = [c.name for c in printer.columns if c.priority == 1]
        if kind == "Pod":
            assert wide == ["IP", "Node", "Nominated Node", "Readiness Gates"]
    obj = workload("Deployment")
    assert len(tables.cells(obj, NOW)) == len(tables.column_definitions("Deployment"))


def test_row_objects() -> None:
    pod = pod_with()
    assert tables.row(pod, NOW)["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": pod["metadata"],
    }
    assert tables.row(pod, NOW, "Object")["object"] is pod
    assert "object" not in tables.row(pod, NOW, "None")
