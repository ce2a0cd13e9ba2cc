"""NetworkPolicy admission: the API server's defaults and ValidateNetworkPolicy's messages."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.registry import ApiError, Registry


def policy(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"podSelector": {"matchLabels": {"app": "db"}}}
    body.update(spec)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "np", "namespace": "default"},
        "spec": body,
    }


def refused(reg: Registry, obj: dict[str, Any]) -> list[str]:
    with pytest.raises(ApiError) as e:
        reg.create(obj)
    assert e.value.code == 422, e.value.message
    return [c.render() for c in e.value.causes]


def test_defaults_follow_the_api_server(reg: Registry) -> None:
    # No podSelector is the empty one; policyTypes Ingress, plus Egress with egress rules.
    made = reg.create({**policy(), "spec": {"ingress": [{"ports": [{"port": 80}]}]}})
    assert made["spec"] == {
        "podSelector": {},
        "ingress": [{"ports": [{"port": 80, "protocol": "TCP"}]}],
        "policyTypes": ["Ingress"],
    }
    p = policy(egress=[{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}]}])
    p["metadata"]["name"] = "np2"
    assert reg.create(p)["spec"]["policyTypes"] == ["Ingress", "Egress"]
    p = policy(policyTypes=["Egress"])
    p["metadata"]["name"] = "np3"
    assert reg.create(p)["spec"]["policyTypes"] == ["Egress"]


IN = "spec.ingress[0]"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"ports": [{"port": 0}]},
            f"{IN}.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        ),
        (
            {"ports": [{"protocol": "ICMP"}]},
            f'{IN}.ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", '
            '"UDP", "SCTP"',
        ),
        (
            {"ports": [{"port": 9000, "endPort": 8000}]},
            f"{IN}.ports[0].endPort: Invalid value: 8000: must be greater than or equal to `port`",
        ),
        (
            {"ports": [{"port": "http", "endPort": 8000}]},
            f"{IN}.ports[0].endPort: Invalid value: 8000: may not be specified when `port` is "
            "non-numeric",
        ),
        (
            {"ports": [{"endPort": 8000}]},
            f"{IN}.ports[0].endPort: Invalid value: 8000: may not be specified when `port` is "
            "not specified",
        ),
        (
            {"ports": [{"port": "http_x"}]},
            f'{IN}.ports[0].port: Invalid value: "http_x": must contain only alpha-numeric '
            "characters (a-z, 0-9), and hyphens (-)",
        ),
        ({"from": [{}]}, f"{IN}.from[0]: Required value: must specify a peer"),
        (
            {"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]},
            f"{IN}.from[0]: Forbidden: may not specify both ipBlock and another peer",
        ),
        ({"from": [{"ipBlock": {"cidr": ""}}]}, f"{IN}.from[0].ipBlock.cidr: Required value"),
        (
            {"from": [{"ipBlock": {"cidr": "10.0.0.0"}}]},
            f'{IN}.from[0].ipBlock.cidr: Invalid value: "10.0.0.0": must be a valid CIDR '
            "value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        ),
        (
            {"from": [{"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.18.1.0/24"]}}]},
            f'{IN}.from[0].ipBlock.except[0]: Invalid value: "172.18.1.0/24": must be a strict '
            "subset of `cidr`",
        ),
        (
            {"from": [{"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.0.0/16"]}}]},
            f'{IN}.from[0].ipBlock.except[0]: Invalid value: "172.17.0.0/16": must be a strict '
            "subset of `cidr`",
        ),
        (
            {"from": [{"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}]},
            f"{IN}.from[0].podSelector.matchExpressions[0].values: Required value: must be "
            "specified when `operator` is 'In' or 'NotIn'",
        ),
        (
            {"from": [{"namespaceSelector": {"matchLabels": {"team": "a b"}}}]},
            f'{IN}.from[0].namespaceSelector.matchLabels: Invalid value: "a b": a valid label '
            "must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
            "'my_value',  or '12345', regex used for validation is "
            "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
    ],
)
def test_rule_messages(reg: Registry, rule: dict[str, Any], message: str) -> None:
    assert refused(reg, policy(ingress=[rule])) == [message]


def test_policy_types_and_the_pod_selector(reg: Registry) -> None:
    assert refused(reg, policy(policyTypes=["Ingress", "Sideways"])) == [
        'spec.policyTypes[1]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"'
    ]
    assert refused(reg, policy(policyTypes=["Ingress", "Egress", "Ingress"])) == [
        'spec.policyTypes: Invalid value: []networking.PolicyType{"Ingress", "Egress", '
        '"Ingress"}: may not specify more than two policyTypes'
    ]
    bad = policy(podSelector={"matchExpressions": [{"key": "a", "operator": "Near"}]})
    assert refused(reg, bad) == [
        'spec.podSelector.matchExpressions[0].operator: Invalid value: "Near": not a valid '
        "selector operator"
    ]
    # Egress rules are validated the same way.
    assert refused(reg, policy(egress=[{"to": [{}]}])) == [
        "spec.egress[0].to[0]: Required value: must specify a peer"
    ]


def test_the_website_example_is_accepted(reg: Registry) -> None:
    made = reg.create(
        policy(
            policyTypes=["Ingress", "Egress"],
            ingress=[
                {
                    "from": [
                        {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}},
                        {"namespaceSelector": {"matchLabels": {"project": "myproject"}}},
                        {"podSelector": {"matchLabels": {"role": "frontend"}}},
                    ],
                    "ports": [{"protocol": "TCP", "port": 6379}],
                }
            ],
            egress=[
                {
                    "to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
                    "ports": [{"protocol": "TCP", "port": 32000, "endPort": 32768}],
                }
            ],
        )
    )
    assert made["spec"]["policyTypes"] == ["Ingress", "Egress"]
