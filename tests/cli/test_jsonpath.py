from __future__ import annotations

from typing import Any

import pytest

from svcnet.cli.jsonpath import JsonPathError, render

SVC: dict[str, Any] = {
    "metadata": {"name": "echo", "labels": {"app": "echo"}},
    "spec": {"clusterIP": "127.96.0.20", "ports": [{"port": 80}, {"port": 443}]},
}
LIST: dict[str, Any] = {"items": [SVC, {"metadata": {"name": "gihyo"}, "spec": {}}]}
POD: dict[str, Any] = {
    "spec": {
        "containers": [
            {"name": "nginx", "image": "gihyodocker/nginx:latest"},
            {"name": "echo", "image": "gihyodocker/echo:latest"},
        ],
        "ports": [{"name": "http", "port": 80}, {"port": 81}],
    },
    "status": {
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True", "reason": "a)]b"},
            {"type": "Ready", "status": "True"},
        ]
    },
}


@pytest.mark.parametrize(
    ("template", "data", "want"),
    [
        ("{.spec.clusterIP}", SVC, "127.96.0.20"),
        ("ip={.spec.clusterIP}:{.spec.ports[0].port}", SVC, "ip=127.96.0.20:80"),
        ("{.spec.ports[*].port}", SVC, "80 443"),
        ("{.spec.ports[-1].port}", SVC, "443"),
        ("{.metadata.labels}", SVC, '{"app":"echo"}'),
        ("{.spec.nope}", SVC, ""),
        ("{.items[*].metadata.name}", LIST, "echo gihyo"),
        ('{range .items[*]}{.metadata.name}{"\\n"}{end}', LIST, "echo\ngihyo\n"),
        ("{range .items[*]}[{.spec.clusterIP}]{end}", LIST, "[127.96.0.20][]"),
        # kubectl's filters, as scripts wait on conditions with them
        ('{.status.conditions[?(@.type=="Ready")].status}', POD, "True"),
        ("{.status.conditions[?(@.type!='Ready')].type}", POD, "PodScheduled Initialized"),
        ("{.spec.ports[?(@.port>100)].port}", SVC, "443"),
        ("{.spec.ports[?(@.port<=80)].port}", SVC, "80"),
        ("{.spec.ports[?(@.name)].name}", POD, "http"),
        ("{.items[?(@.spec.clusterIP)].metadata.name}", LIST, "echo"),
        ('{.items[?(@.metadata.name=="gihyo")].metadata.name}', LIST, "gihyo"),
        ("{.status.conditions[?(@.status==@.type)].type}", POD, ""),
        ('{.status.conditions[?(@.reason=="a)]b")].type}', POD, "Initialized"),
        # recursive descent
        ("{..image}", POD, "gihyodocker/nginx:latest gihyodocker/echo:latest"),
        ("{..port}", LIST, "80 443"),
    ],
)
def test_render(template: str, data: Any, want: str) -> None:
    assert render(template, data) == want


@pytest.mark.parametrize(
    "bad",
    ["{.spec", "{spec.clusterIP}", "{.items[x]}", "{.a[?(@.x==)]}", "{.a[?(@.x==y)]}", "{.a[?(@.x"],
)
def test_errors(bad: str) -> None:
    with pytest.raises(JsonPathError):
        render(bad, SVC)
