"""The printer against kubectl's real output (the seed walkthrough and the
reference), so alignment and wording are checked byte for byte."""

from __future__ import annotations

from typing import Any

from svcnet.cli.describe import describe_pod, describe_service
from svcnet.cli.printer import (
    TableOptions,
    render_tables,
    status_error_text,
    tabwrite,
    to_json,
    to_yaml,
)
from svcnet.k8s.objects import Obj


def col(name: str, priority: int = 0, fmt: str = "") -> Obj:
    return {"name": name, "type": "string", "format": fmt, "priority": priority}


def row(*cells: Any, namespace: str = "default", labels: dict[str, str] | None = None) -> Obj:
    md: Obj = {"name": cells[0], "namespace": namespace}
    if labels is not None:
        md["labels"] = labels
    return {"cells": list(cells), "object": {"metadata": md}}


POD_COLUMNS = [
    col("Name", fmt="name"),
    col("Ready"),
    col("Status"),
    col("Restarts"),
    col("Age"),
    col("IP", 1),
    col("Node", 1),
]
SERVICE_COLUMNS = [
    col("Name", fmt="name"),
    col("Type"),
    col("Cluster-IP"),
    col("External-IP"),
    col("Port(s)"),
    col("Age"),
    col("Selector", 1),
]


def pods(*rows: Obj) -> Obj:
    return {"kind": "Table", "columnDefinitions": POD_COLUMNS, "rows": list(rows)}


def services(*rows: Obj) -> Obj:
    return {"kind": "Table", "columnDefinitions": SERVICE_COLUMNS, "rows": list(rows)}


def test_seed_pod_table_is_kubectls() -> None:
    table = pods(
        row("echo-summer-2xj8q", "2/2", "Running", "0", "2m47s", "127.244.0.5", "svcnet"),
        row("echo-summer-vjv9j", "2/2", "Running", "0", "2m47s", "127.244.0.6", "svcnet"),
    )
    assert render_tables([(table, TableOptions())]) == (
        "NAME                READY   STATUS    RESTARTS   AGE\n"
        "echo-summer-2xj8q   2/2     Running   0          2m47s\n"
        "echo-summer-vjv9j   2/2     Running   0          2m47s\n"
    )


def test_seed_service_tables_are_kubectls() -> None:
    cluster_ip = services(row("echo", "ClusterIP", "10.111.36.1", "<none>", "80/TCP", "20s", "x"))
    node_port = services(
        row("echo", "NodePort", "10.111.36.1", "<none>", "80:30026/TCP", "25m", "x")
    )
    assert render_tables([(cluster_ip, TableOptions())]) == (
        "NAME   TYPE        CLUSTER-IP    EXTERNAL-IP   PORT(S)   AGE\n"
        "echo   ClusterIP   10.111.36.1   <none>        80/TCP    20s\n"
    )
    assert render_tables([(node_port, TableOptions())]) == (
        "NAME   TYPE       CLUSTER-IP    EXTERNAL-IP   PORT(S)        AGE\n"
        "echo   NodePort   10.111.36.1   <none>        80:30026/TCP   25m\n"
    )


def test_wide_shows_priority_columns_like_the_reference() -> None:
    table = services(row("web", "ClusterIP", "10.96.0.10", "<none>", "80/TCP", "1s", "app=web"))
    assert render_tables([(table, TableOptions(wide=True))]) == (
        "NAME   TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE   SELECTOR\n"
        "web    ClusterIP   10.96.0.10   <none>        80/TCP    1s    app=web\n"
    )


def test_several_types_get_prefixes_namespace_labels_and_a_blank_line() -> None:
    pod_table = pods(row("echo-spring-5dprx", "2/2", "Running", "0", "55s", "", ""))
    svc_table = services(
        row("echo", "NodePort", "10.111.36.1", "<none>", "80:30026/TCP", "25m", "", labels={})
    )
    out = render_tables(
        [
            (pod_table, TableOptions(with_namespace=True, kind_prefix="pod/")),
            (services(), TableOptions(kind_prefix="service/")),  # no rows: nothing at all
            (
                svc_table,
                TableOptions(with_namespace=True, kind_prefix="service/", show_labels=True),
            ),
        ]
    )
    assert out == (
        "NAMESPACE   NAME                    READY   STATUS    RESTARTS   AGE\n"
        "default     pod/echo-spring-5dprx   2/2     Running   0          55s\n"
        "\n"
        "NAMESPACE   NAME           TYPE       CLUSTER-IP    EXTERNAL-IP   PORT(S)"
        "        AGE   LABELS\n"
        "default     service/echo   NodePort   10.111.36.1   <none>        80:30026/TCP"
        "   25m   <none>\n"
    )


def test_tabwriter_minwidth_pads_narrow_columns_to_six() -> None:
    # cli-runtime's table writer has minwidth 6: a 1-character column is 6 wide.
    assert tabwrite("A\tB\tC\nx\ty\tz\n") == "A     B     C\nx     y     z\n"


def test_tabwriter_blocks_end_at_lines_without_the_column() -> None:
    # The shape of describe's `Port:  http  80/TCP`: column 1 exists only on
    # the Port line, so it is sized by that line alone.
    text = "Name:\techo\nPort:\thttp\t80/TCP\nTargetPort:\t80/TCP\nIPs:\nIP:\tx\n"
    assert tabwrite(text, minwidth=0, padding=2) == (
        "Name:        echo\nPort:        http  80/TCP\nTargetPort:  80/TCP\nIPs:\nIP:  x\n"
    )


def test_describe_service_layout() -> None:
    svc = {
        "metadata": {"name": "echo", "namespace": "default", "labels": {"b": "2", "a": "1"}},
        "spec": {
            "type": "NodePort",
            "selector": {"release": "summer", "app": "echo"},
            "ipFamilyPolicy": "SingleStack",
            "ipFamilies": ["IPv4"],
            "clusterIP": "127.96.0.50",
            "clusterIPs": ["127.96.0.50"],
            "ports": [{"name": "http", "port": 80, "targetPort": 80, "nodePort": 30026}],
            "sessionAffinity": "None",
            "externalTrafficPolicy": "Cluster",
        },
    }
    endpoints = {
        "subsets": [
            {
                "addresses": [{"ip": f"127.244.0.{i}"} for i in range(1, 6)],
                "ports": [{"name": "http", "port": 80}],
            }
        ]
    }
    assert describe_service(svc, endpoints, []) == (
        "Name:                     echo\n"
        "Namespace:                default\n"
        "Labels:                   a=1\n"
        "                          b=2\n"
        "Annotations:              <none>\n"
        "Selector:                 app=echo,release=summer\n"
        "Type:                     NodePort\n"
        "IP Family Policy:         SingleStack\n"
        "IP Families:              IPv4\n"
        "IP:                       127.96.0.50\n"
        "IPs:                      127.96.0.50\n"
        "Port:                     http  80/TCP\n"
        "TargetPort:               80/TCP\n"
        "NodePort:                 http  30026/TCP\n"
        "Endpoints:                127.244.0.1:80,127.244.0.2:80,127.244.0.3:80 + 2 more...\n"
        "Session Affinity:         None\n"
        "External Traffic Policy:  Cluster\n"
        "Events:                   <none>\n"
    )


def test_describe_pod_containers_and_events() -> None:
    pod = {
        "metadata": {
            "name": "echo-summer-2xj8q",
            "namespace": "default",
            "labels": {"app": "echo"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "echo-summer", "controller": True}],
        },
        "spec": {
            "nodeName": "svcnet",
            "priority": 0,
            "serviceAccountName": "default",
            "containers": [
                {
                    "name": "echo",
                    "image": "gihyodocker/echo:latest",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "env": [{"name": "BACKEND_HOST", "value": "localhost:8080"}],
                }
            ],
        },
        "status": {
            "phase": "Running",
            "hostIP": "127.0.0.1",
            "podIP": "127.244.0.5",
            "podIPs": [{"ip": "127.244.0.5"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {
                    "name": "echo",
                    "ready": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": "2020-11-08T14:35:35Z"}},
                }
            ],
        },
    }
    out = describe_pod(pod, [{"type": "Normal", "reason": "Started", "message": "Started"}])
    # kubectl's quirks included: the `IPs:` line ends a tabwriter block, so
    # `IP:` and `Controlled By:` are aligned on their own.
    assert out.splitlines()[:12] == [
        "Name:             echo-summer-2xj8q",
        "Namespace:        default",
        "Priority:         0",
        "Service Account:  default",
        "Node:             svcnet/127.0.0.1",
        "Labels:           app=echo",
        "Annotations:      <none>",
        "Status:           Running",
        "IP:               127.244.0.5",
        "IPs:",
        "  IP:           127.244.0.5",
        "Controlled By:  ReplicaSet/echo-summer",
    ]
    assert "Conditions:\n  Type           Status\n  Ready          True \n" in out
    assert "    State:          Running\n" in out
    assert "      Started:      Sun, 08 Nov 2020 14:35:35 +0000\n" in out
    assert "      BACKEND_HOST:  localhost:8080\n" in out
    assert out.endswith(
        "Events:\n"
        "  Type    Reason   Age        From  Message\n"
        "  ----    ------   ----       ----  -------\n"
        "  Normal  Started  <unknown>        Started\n"
    )


def test_invalid_with_one_cause_is_one_line_with_its_position() -> None:
    st = {
        "reason": "Invalid",
        "message": 'Service "echo" is invalid: ...',
        "details": {
            "name": "echo",
            "kind": "Service",
            "causes": [
                {
                    "field": "spec.ports[0].port",
                    "message": "Invalid value: 70000: must be between 1 and 65535, inclusive",
                }
            ],
        },
    }
    assert status_error_text(st) == (
        'The Service "echo" is invalid: spec.ports[0].port: Invalid value: 70000: '
        "must be between 1 and 65535, inclusive\n"
    )
    where = {"spec.ports[0].port": "svc.yaml:12:9"}.get
    assert status_error_text(st, where).endswith("inclusive (svc.yaml:12:9)\n")


def test_invalid_with_several_causes_is_one_bullet_each() -> None:
    st = {
        "reason": "Invalid",
        "details": {
            "name": "x",
            "kind": "Service",
            "causes": [
                {"field": "spec.ports[1].name", "message": "Required value"},
                {"field": "", "message": "something general"},
            ],
        },
    }
    assert status_error_text(st, lambda f: "s.yaml:9:5") == (
        'The Service "x" is invalid: \n'
        "* spec.ports[1].name: Required value (s.yaml:9:5)\n"
        "* something general\n"
    )


def test_other_errors_use_error_from_server() -> None:
    st = {"reason": "NotFound", "message": 'services "nope" not found'}
    assert status_error_text(st) == 'Error from server (NotFound): services "nope" not found\n'
    assert status_error_text({"message": "odd"}) == "Error from server: odd\n"


def test_json_and_yaml_look_like_kubectls() -> None:
    obj = {"b": [1, {"d": "<none>"}], "a": {}, "port": "80"}
    assert to_json(obj) == (
        '{\n    "a": {},\n    "b": [\n        1,\n        {\n'
        '            "d": "\\u003cnone\\u003e"\n        }\n    ],\n    "port": "80"\n}\n'
    )
    assert to_yaml(obj) == 'a: {}\nb:\n- 1\n- d: <none>\nport: "80"\n'
