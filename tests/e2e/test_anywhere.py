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
