"""What each pod admits under the ingress policies that select it (pure)."""

from __future__ import annotations

from typing import Any

from svcnet.netpol.rules import EVERY_PORT, PodInfo, ingress_allows, pod_info


def pod(
    ns: str, name: str, ip: str, ports: list[dict[str, Any]] | None = None, **labels: str
) -> PodInfo:
    info = pod_info(
        {
            "metadata": {"namespace": ns, "name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "ports": ports or []}]},
            "status": {"phase": "Running", "podIP": ip},
        }
    )
    assert info is not None
    return info


def ns(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **labels}}}


def policy(
    ns: str, selector: dict[str, Any], *rules: dict[str, Any], types: list[str] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": ns, "name": "p"},
        "spec": {
            "podSelector": selector,
            "ingress": list(rules),
            "policyTypes": types or ["Ingress"],
        },
    }


WEB = pod(
    "default",
    "web",
    "127.244.0.2",
    [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
    app="nginx",
)
FRIEND = pod("default", "friend", "127.244.0.3", access="true")
STRANGER = pod("default", "stranger", "127.244.0.4")
OTHER = pod("shop", "other", "127.244.0.5", access="true")
PODS: list[PodInfo] = [WEB, FRIEND, STRANGER, OTHER]
NSS = [ns("default"), ns("shop", team="shop")]


def test_unselected_pods_are_not_isolated_and_rules_add_up() -> None:
    access = policy(
        "default",
        {"matchLabels": {"app": "nginx"}},
        {"from": [{"podSelector": {"matchLabels": {"access": "true"}}}]},
    )
    got = ingress_allows([access], PODS, NSS)
    assert set(got) == {WEB.ip}
    # podSelector peers are pods of the policy's namespace only; every port of both protocols.
    assert got[WEB.ip] == {(f"{FRIEND.ip}/32", p, a, b) for p, a, b in EVERY_PORT}


def test_default_deny_namespace_selector_and_both() -> None:
    deny = policy("default", {})
    got = ingress_allows([deny], PODS, NSS)
    assert got == {WEB.ip: frozenset(), FRIEND.ip: frozenset(), STRANGER.ip: frozenset()}
    from_shop = policy(
        "default",
        {},
        {
            "from": [{"namespaceSelector": {"matchLabels": {"team": "shop"}}}],
            "ports": [{"port": 8080, "protocol": "TCP"}],
        },
    )
    got = ingress_allows([from_shop], PODS, NSS)
    assert got[STRANGER.ip] == {(f"{OTHER.ip}/32", "TCP", 8080, 8080)}
    both = policy(
        "default",
        {},
        {"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"access": "true"}}}]},
    )
    got = ingress_allows([both], PODS, NSS)
    assert {a[0] for a in got[WEB.ip]} == {"127.244.0.3/32", "127.244.0.5/32"}  # collapsed per pod


def test_ports_named_ranges_and_ip_blocks() -> None:
    p = policy(
        "default",
        {"matchLabels": {"app": "nginx"}},
        {
            "from": [{"ipBlock": {"cidr": "127.0.0.0/8", "except": ["127.244.0.0/16"]}}],
            "ports": [
                {"port": "http", "protocol": "TCP"},
                {"port": "http", "protocol": "UDP"},  # no such UDP port: nothing
                {"port": 32000, "endPort": 32768, "protocol": "UDP"},
                {"port": 7, "protocol": "SCTP"},  # not judged by the hooks
            ],
        },
    )
    got = ingress_allows([p], PODS, NSS)[WEB.ip]
    sources = {a[0] for a in got}
    assert "127.0.0.0/9" in sources and "127.244.0.0/16" not in sources
    assert {(proto, a, b) for _, proto, a, b in got} == {("TCP", 8080, 8080), ("UDP", 32000, 32768)}


def test_egress_only_policies_isolate_nothing_for_ingress() -> None:
    p = policy("default", {}, types=["Egress"])
    assert ingress_allows([p], PODS, NSS) == {}
    # An empty from is every source.
    p = policy("default", {"matchLabels": {"app": "nginx"}}, {"ports": [{"port": 80}]})
    assert ingress_allows([p], PODS, NSS)[WEB.ip] == {("0.0.0.0/0", "TCP", 80, 80)}
