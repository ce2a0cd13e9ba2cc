from __future__ import annotations

from typing import Any

import pytest

from svcnet.cli.jsonpath import JsonPathError, render

SVC: dict[str, Any] = {
    "metadata": {"name": "echo", "labels": {"app": "echo"}},
    "spec": {"clusterIP": "127.96.0.20", "ports": [{"port": 80}, {"port": 443}]},
}
LIST: dict[str, Any] = {"items": [SVC, {"metadata": {"name": "gihyo"}, "spec": {}}]}


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
    ],
)
def test_render(template: str, data: Any, want: str) -> None:
    assert render(template, data) == want


@pytest.mark.parametrize("bad", ["{.spec", "{spec.clusterIP}", "{.items[x]}"])
def test_errors(bad: str) -> None:
    with pytest.raises(JsonPathError):
        render(bad, SVC)
