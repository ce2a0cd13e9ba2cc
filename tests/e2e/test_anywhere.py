"""`svcnet up` outside the repository: no -f and no config/ gives an empty cluster
(kube-dns and the kubernetes Service), and says so; a second start says what it kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from svcnet.testing import Svcnet

pytestmark = pytest.mark.slow


def test_an_empty_cluster_from_any_directory(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Svcnet.start(state) as s:
        assert s.ready_line.endswith(
            "an empty cluster, kube-dns and the kubernetes Service only (no -f given and no "
            "config/ here); add objects with svcnet apply -f or kubectl"
        ), s.ready_line
        names = s.kubectl("get", "svc", "-A", "-o", "name").stdout.split()
        assert names == ["service/kubernetes", "service/kube-dns"]
        s.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kept}\n", namespace="default")
    with Svcnet.start(state) as s:
        assert "no manifests (no -f given and no config/ here); the " in s.ready_line
        assert s.ready_line.endswith("objects the last run kept"), s.ready_line
        assert s.get("cm/kept", namespace="default")["metadata"]["name"] == "kept"


def test_a_namespace_and_what_lives_in_it_from_one_file(tmp_path: Path) -> None:
    # kubectl applies documents in order; so does svcnet up -f.
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "shop.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: prices, namespace: shop}\n"
        "data: {apple: '1'}\n"
    )
    with Svcnet.start(tmp_path / "state", manifests=[manifests]) as s:
        assert s.ready_line.endswith(": namespace/shop, configmap/prices"), s.ready_line
        assert s.get("cm/prices", namespace="shop")["data"] == {"apple": "1"}
