"""Every Service validation message of k8s-services.md section 2 that
test_registry.py does not already pin, word for word."""

from __future__ import annotations

import random

import pytest

from svcnet.config import Settings
from svcnet.k8s.objects import Obj
from svcnet.registry import ApiError, Registry
from svcnet.store import Store


def make(settings: Settings | None = None) -> Registry:
    r = Registry(settings or Settings(), Store(), random.Random(1))
    r.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    return r


def svc(spec: Obj, name: str = "web") -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def message(reg: Registry, obj: Obj) -> str:
    with pytest.raises(ApiError) as e:
        reg.create(obj)
    assert e.value.code == 422, e.value.message
    return e.value.message


P80 = [{"port": 80}]
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        (
            {"ports": [{"port": 80, "targetPort": 70000}]},
            "spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, "
            "inclusive",
        ),
        (
            {"ports": [{"port": 80, "targetPort": "web_port"}]},
            'spec.ports[0].targetPort: Invalid value: "web_port": must contain only '
            "alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        ),
        (
            {"ports": [{"port": 80, "targetPort": "8-0"}]},
            'spec.ports[0].targetPort: Invalid value: "8-0": must contain at least one letter '
            "(a-z)",
        ),
        (
            {"ports": [{"port": 80, "targetPort": "a--b"}]},
            'spec.ports[0].targetPort: Invalid value: "a--b": must not contain consecutive hyphens',
        ),
        (
            {"ports": [{"port": 80, "targetPort": "web-"}]},
            'spec.ports[0].targetPort: Invalid value: "web-": must not begin or end with a hyphen',
        ),
        (
            {"ports": [{"name": "Web", "port": 80}]},
            f'spec.ports[0].name: Invalid value: "Web": {LABEL_MSG}',
        ),
        (
            {"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]},
            'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", '
            "AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, "
            'IntVal:0, StrVal:""}, NodePort:0}',
        ),
        (
            {
                "type": "NodePort",
                "ports": [
                    {"name": "a", "port": 80, "nodePort": 30080},
                    {"name": "b", "port": 81, "nodePort": 30080},
                ],
            },
            "spec.ports[1].nodePort: Duplicate value: 30080",
        ),
        (
            {"type": "ExternalName", "externalName": "example.com", "clusterIP": "127.96.0.9"},
            "spec.clusterIPs: Forbidden: may not be set for ExternalName services",
        ),
        (
            {"type": "LoadBalancer", "clusterIP": "None", "ports": P80},
            "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for "
            "LoadBalancer services",
        ),
        (
            {
                "sessionAffinity": "ClientIP",
                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 86401}},
                "ports": P80,
            },
            "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: must be "
            "greater than 0 and less than 86400",
        ),
        (
            {"externalTrafficPolicy": "Local", "ports": P80},
            'spec.externalTrafficPolicy: Invalid value: "Local": may only be set for '
            "externally-accessible services",
        ),
        (
            {"loadBalancerSourceRanges": ["10.0.0.0/8"], "ports": P80},
            "spec.loadBalancerSourceRanges: Forbidden: may only be used when `type` is "
            "'LoadBalancer'",
        ),
        (
            {"type": "NodePort", "allocateLoadBalancerNodePorts": False, "ports": P80},
            "spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when `type` is "
            "'LoadBalancer'",
        ),
        (
            {"type": "NodePort", "healthCheckNodePort": 31000, "ports": P80},
            "spec.healthCheckNodePort: Invalid value: 31000: may only be set when `type` is "
            "'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        ),
    ],
)
def test_service_messages(spec: Obj, want: str) -> None:
    assert message(make(), svc(spec)) == f'Service "web" is invalid: {want}'


def test_tcp_and_udp_on_one_port_share_a_node_port() -> None:
    reg = make()
    o = reg.create(
        svc(
            {
                "type": "NodePort",
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                ],
            }
        )
    )
    a, b = (p["nodePort"] for p in o["spec"]["ports"])
    assert a == b


def test_node_port_range_exhausted() -> None:
    s = Settings()
    s.network.node_port_range = "30000-30001"
    reg = make(s)
    reg.create(svc({"type": "NodePort", "ports": P80}, "a"))
    reg.create(svc({"type": "NodePort", "ports": P80}, "b"))
    with pytest.raises(ApiError) as e:
        reg.create(svc({"type": "NodePort", "ports": P80}, "c"))
    assert e.value.code == 500
    assert (
        e.value.message == "Internal error occurred: failed to allocate a nodePort: range is full"
    )


def test_several_errors_are_listed_in_brackets() -> None:
    got = message(make(), svc({"ports": [{"port": 0, "protocol": "HTTP"}]}))
    assert got == (
        'Service "web" is invalid: [spec.ports[0].port: Invalid value: 0: must be between 1 and '
        '65535, inclusive, spec.ports[0].protocol: Unsupported value: "HTTP": supported values: '
        '"SCTP", "TCP", "UDP", spec.ports[0].targetPort: Invalid value: 0: must be between 1 and '
        "65535, inclusive]"
    )


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        (
            {"ports": P80, "ipFamilies": ["IPv6"]},
            'Service "web" is invalid: spec.ipFamilies[0]: Invalid value: "IPv6": not configured '
            "on this cluster",
        ),
        (
            {"ports": P80, "ipFamilyPolicy": "RequireDualStack"},
            'Service "web" is invalid: spec.ipFamilyPolicy: Invalid value: "RequireDualStack": '
            "this cluster is not configured for dual-stack services",
        ),
        (
            {"ports": P80, "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack"},
            'Service "web" is invalid: spec.ipFamilies[1]: Invalid value: "IPv6": not configured '
            "on this cluster",
        ),
        (
            {"ports": P80, "ipFamilies": ["IPv4", "IPv6"]},
            'Service "web" is invalid: spec.ipFamilyPolicy: Invalid value: "SingleStack": must be '
            "'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
        ),
        (
            {"ports": P80, "clusterIP": "fd00::10"},
            'Service "web" is invalid: spec.clusterIPs[0]: Invalid value: []string{"fd00::10"}: '
            "IPv6 is not configured on this cluster",
        ),
    ],
)
def test_ip_families_on_a_single_stack_cluster(spec: Obj, want: str) -> None:
    """What kube-apiserver with an IPv4 --service-cluster-ip-range answers (initIPFamilyFields)."""
    assert message(make(), svc(spec)) == want


@pytest.mark.parametrize(
    ("spec", "families", "policy"),
    [
        ({"ports": P80, "ipFamilyPolicy": "PreferDualStack"}, ["IPv4"], "PreferDualStack"),
        ({"ports": P80}, ["IPv4"], "SingleStack"),
        # Headless without a selector: both families even on a single-stack cluster.
        ({"ports": P80, "clusterIP": "None"}, ["IPv4", "IPv6"], "RequireDualStack"),
        ({"ports": P80, "clusterIP": "None", "selector": {"a": "b"}}, ["IPv4"], "SingleStack"),
    ],
)
def test_ip_family_defaults(spec: Obj, families: list[str], policy: str) -> None:
    out = make().create(svc(spec))["spec"]
    assert (out["ipFamilies"], out["ipFamilyPolicy"]) == (families, policy)
