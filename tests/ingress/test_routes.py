"""The routing table against ingress-nginx's matching rules, as tables."""

from __future__ import annotations

from typing import Any

import pytest

from svcnet.ingress import routes
from svcnet.ingress.routes import Backend


def ing(name: str, rules: list[Any], ts: str = "2026-01-01T00:00:00Z", **spec: Any) -> Any:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": ts},
        "spec": {"rules": rules, **spec},
    }


def rule(host: str, *paths: tuple[str, str, str]) -> Any:
    return {
        "host": host,
        "http": {
            "paths": [
                {
                    "path": p,
                    "pathType": t,
                    "backend": {"service": {"name": s, "port": {"number": 80}}},
                }
                for p, t, s in paths
            ]
        },
    }


def where(table: routes.Routes, host: str, path: str) -> str:
    loc = table.server_for(host).match(routes.normalize(path))
    return loc.backend.service if loc is not None and loc.backend is not None else "404"


MIXED = routes.build(
    [
        ing(
            "a",
            [
                rule(
                    "foo.bar.com",
                    ("/foo", "Prefix", "prefix-foo"),
                    ("/foo/bar", "Prefix", "prefix-foo-bar"),
                    ("/exact", "Exact", "exact"),
                    ("/exact", "Prefix", "prefix-exact"),
                    ("/impl", "ImplementationSpecific", "impl"),
                    ("/slash/", "Prefix", "slash"),
                ),
                rule("*.foo.com", ("/", "Prefix", "wild")),
                rule("", ("/any", "Prefix", "hostless")),
            ],
        )
    ]
)


@pytest.mark.parametrize(
    ("host", "path", "want"),
    [
        # Prefix matches whole path elements (the concept page's table).
        ("foo.bar.com", "/foo", "prefix-foo"),
        ("foo.bar.com", "/foo/", "prefix-foo"),
        ("foo.bar.com", "/foo/baz", "prefix-foo"),
        ("foo.bar.com", "/foobar", "404"),
        ("foo.bar.com", "/foo/bar", "prefix-foo-bar"),
        ("foo.bar.com", "/foo/bar/baz", "prefix-foo-bar"),
        ("foo.bar.com", "/foo/barista", "prefix-foo"),
        # Exact before Prefix of the same path.
        ("foo.bar.com", "/exact", "exact"),
        ("foo.bar.com", "/exact/", "prefix-exact"),
        ("foo.bar.com", "/exact/x", "prefix-exact"),
        # ImplementationSpecific: nginx's plain prefix.
        ("foo.bar.com", "/impl", "impl"),
        ("foo.bar.com", "/implx", "impl"),
        # A Prefix path with a trailing slash: ingress-nginx's locations are `= /slash/`
        # and `/slash/`, so without the slash it does not match (unlike the spec's table).
        ("foo.bar.com", "/slash", "404"),
        ("foo.bar.com", "/slash/x", "slash"),
        # Normalised before matching; the query never counts.
        ("foo.bar.com", "/x/../foo//baz?q=/exact", "prefix-foo"),
        ("foo.bar.com", "/%66oo/bar", "prefix-foo-bar"),
        ("foo.bar.com", "/", "404"),
        # A wildcard host is one more label, never two, never none.
        ("x.foo.com", "/anything", "wild"),
        ("x.y.foo.com", "/anything", "404"),
        ("foo.com", "/anything", "404"),
        # Hosts nobody names go to the default server, which has the host-less rules.
        ("other.example", "/any/thing", "hostless"),
        ("other.example", "/foo", "404"),
        ("FOO.BAR.COM", "/foo", "prefix-foo"),
    ],
)
def test_paths_and_hosts_match_as_ingress_nginx_does(host: str, path: str, want: str) -> None:
    assert where(MIXED, routes.host_of(host), path) == want


def test_ingresses_merge_per_host_oldest_first() -> None:
    old = ing("old", [rule("a.example", ("/x", "Prefix", "old-x"))], "2026-01-01T00:00:00Z")
    new = ing(
        "new",
        [rule("a.example", ("/x", "Prefix", "new-x"), ("/y", "Prefix", "new-y"))],
        "2026-01-02T00:00:00Z",
    )
    table = routes.build([new, old])
    assert where(table, "a.example", "/x") == "old-x"  # the first definition stays
    assert where(table, "a.example", "/y") == "new-y"  # the others merge in
    assert where(table, "a.example", "/z") == "404"


def test_default_backends() -> None:
    backend = {"service": {"name": "fallback", "port": {"number": 80}}}
    catch_all = ing("catch-all", [], defaultBackend=backend)
    with_rules = ing(
        "with-rules",
        [rule("b.example", ("/app", "Prefix", "app"))],
        "2026-01-02T00:00:00Z",
        defaultBackend={"service": {"name": "own", "port": {"number": 80}}},
    )
    table = routes.build([catch_all, with_rules])
    assert where(table, "nowhere.example", "/x") == "fallback"
    assert where(table, "b.example", "/app/1") == "app"
    # The first Ingress of a host gives that host's root its own default backend.
    assert where(table, "b.example", "/other") == "own"
    loc = table.server_for("b.example").match("/app")
    assert loc is not None and loc.backend == Backend("default", "app", 80)


def test_tls_hosts() -> None:
    tls = ing(
        "t",
        [rule("secure.example", ("/", "Prefix", "s")), rule("plain.example", ("/", "Prefix", "p"))],
        tls=[{"hosts": ["secure.example"], "secretName": "cert"}],
    )
    table = routes.build([tls])
    assert table.tls_for("secure.example") == ("default", "cert")
    assert table.server_for("plain.example").tls == ("default", "cert")  # tried by its SAN
    assert table.tls_for("unknown.example") is None


@pytest.mark.parametrize(
    ("spec", "classes", "default", "want"),
    [
        ({"ingressClassName": "nginx"}, {"nginx"}, False, True),
        ({"ingressClassName": "other"}, {"nginx"}, True, False),
        ({}, {"nginx"}, True, True),
        ({}, {"nginx"}, False, False),
    ],
)
def test_which_ingresses_are_served(
    spec: dict[str, str], classes: set[str], default: bool, want: bool
) -> None:
    obj = {"metadata": {"name": "x", "namespace": "default"}, "spec": spec}
    assert routes.served(obj, classes, default) is want


def test_the_old_class_annotation() -> None:
    obj = {"metadata": {"annotations": {"kubernetes.io/ingress.class": "nginx"}}, "spec": {}}
    assert routes.served(obj, set(), False)
    obj["metadata"]["annotations"]["kubernetes.io/ingress.class"] = "traefik"
    assert not routes.served(obj, {"nginx"}, True)


@pytest.mark.parametrize("bad", ["/..", "/a/../..", "*", "relative"])
def test_paths_that_climb_out_or_are_not_paths(bad: str) -> None:
    with pytest.raises(routes.BadPath):
        routes.normalize(bad)
