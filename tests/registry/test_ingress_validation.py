"""Ingress and IngressClass admission: the API server's messages, defaults, default class."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.registry import ApiError, Registry


def ingress(path: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "path": "/",
        "pathType": "Prefix",
        "backend": {"service": {"name": "web", "port": {"number": 80}}},
    }
    p.update(path or {})
    body: dict[str, Any] = {"rules": [{"host": "a.example", "http": {"paths": [p]}}]}
    body.update(spec)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "ing"},
        "spec": body,
    }


def refused(reg: Registry, obj: dict[str, Any]) -> list[str]:
    with pytest.raises(ApiError) as e:
        reg.create(obj)
    return [c.render() for c in e.value.causes]


P = "spec.rules[0].http.paths[0]"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pathType": None}, f"{P}.pathType: Required value: pathType must be specified"),
        ({"path": "foo"}, f'{P}.path: Invalid value: "foo": must be an absolute path'),
        ({"path": "/a//b"}, f"{P}.path: Invalid value: \"/a//b\": must not contain '//'"),
        ({"path": "/a/.."}, f"{P}.path: Invalid value: \"/a/..\": cannot end with '/..'"),
        (
            {"pathType": "Regex"},
            f'{P}.pathType: Unsupported value: "Regex": supported values: "Exact", '
            '"ImplementationSpecific", "Prefix"',
        ),
        (
            {"backend": {}},
            f'{P}.backend: Invalid value: "": resource or service backend is required',
        ),
        (
            {"backend": {"service": {"name": "web", "port": {}}}},
            f"{P}.backend: Required value: port name or number is required",
        ),
        (
            {"backend": {"service": {"name": "web", "port": {"name": "http", "number": 80}}}},
            f'{P}.backend: Invalid value: "": cannot set both port name & port number',
        ),
        (
            {"backend": {"service": {"name": "web", "port": {"number": 70000}}}},
            f"{P}.backend.service.port.number: Invalid value: 70000: must be between 1 and "
            "65535, inclusive",
        ),
    ],
)
def test_path_messages(reg: Registry, change: dict[str, Any], message: str) -> None:
    obj = ingress({k: v for k, v in change.items() if v is not None})
    if change.get("pathType", "") is None:
        del obj["spec"]["rules"][0]["http"]["paths"][0]["pathType"]
    assert refused(reg, obj) == [message]


def test_spec_and_host_messages(reg: Registry) -> None:
    assert refused(reg, {**ingress(), "spec": {}}) == [
        "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or "
        "`rules` must be specified"
    ]
    obj = ingress()
    obj["spec"]["rules"][0]["host"] = "*.*.example"
    assert refused(reg, obj)[0].startswith(
        'spec.rules[0].host: Invalid value: "*.*.example": a wildcard DNS-1123 subdomain'
    )
    obj["spec"]["rules"][0]["host"] = "127.0.0.1"
    assert refused(reg, obj)[0] == (
        'spec.rules[0].host: Invalid value: "127.0.0.1": must be a DNS name, not an IP address'
    )


def test_a_classless_ingress_gets_the_default_class(reg: Registry) -> None:
    reg.create(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {
                "name": "nginx",
                "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"},
            },
            "spec": {"controller": "k8s.io/ingress-nginx"},
        }
    )
    created = reg.create(ingress())
    assert created["spec"]["ingressClassName"] == "nginx"
    assert created["status"] == {"loadBalancer": {}}


def test_ingressclass_messages_and_defaults(reg: Registry) -> None:
    ic: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": "x"},
        "spec": {"controller": "nodomain"},
    }
    assert refused(reg, ic) == [
        'spec.controller: Invalid value: "nodomain": must be a domain-prefixed path '
        '(such as "acme.io/foo")'
    ]
    ic["spec"] = {
        "controller": "example.com/ingress-controller",
        "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"},
    }
    assert reg.create(ic)["spec"]["parameters"]["scope"] == "Cluster"
