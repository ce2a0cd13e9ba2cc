from __future__ import annotations

from pathlib import Path

import pytest

from svcnet.manifest import ManifestError, load_paths, load_text

BROKEN_SEED_SERVICE = """apiVersion: v1
kind: Service
metadata:
    - name: echo
spec:
    - selector:
        - app: echo
        - release: summer
    - ports:
        - name: http
            - port: 80
"""


def test_broken_seed_yaml_names_file_line_column() -> None:
    with pytest.raises(ManifestError) as e:
        load_text(BROKEN_SEED_SERVICE, "simple-service.yaml")
    assert str(e.value) == (
        "error parsing simple-service.yaml: error converting YAML to JSON: yaml: line 11, "
        "column 19: mapping values are not allowed in this context"
    )


def test_multi_document_positions_and_lists() -> None:
    text = """---
apiVersion: v1
kind: Service
metadata:
  name: a
spec:
  ports:
  - port: 80
    targetPrt: 8080
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata:
    name: x
---
apiVersion: svcnet.dev/v1alpha1
kind: SvcnetConfiguration
"""
    ms = load_text(text, "f.yaml")
    assert [m.kind for m in ms] == ["Service", "Namespace"]
    assert ms[0].where("spec.ports[0].targetPrt") == "f.yaml:9:5"
    assert ms[0].where("spec.ports[0].nope") == "f.yaml:8:5"
    assert ms[1].name == "x"
    assert ms[1].where("metadata.name") == "f.yaml:17:5"


def test_missing_kind() -> None:
    with pytest.raises(ManifestError, match=r"f.yaml:1: .*\[kind not set\]"):
        load_text("apiVersion: v1\nmetadata: {name: x}\n", "f.yaml")


def test_directory_sorted_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n")
    (tmp_path / "a.yml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    (tmp_path / "notes.txt").write_text("ignored")
    assert [m.name for m in load_paths([str(tmp_path)])] == ["a", "b"]
    with pytest.raises(ManifestError, match="does not exist"):
        load_paths([str(tmp_path / "nope.yaml")])


def test_map_keys_as_the_api_names_them() -> None:
    # The API's field paths write a map key in brackets (`data[bad key]`,
    # `metadata.labels[app]`); list indexes keep theirs.
    text = """apiVersion: v1
kind: ConfigMap
metadata:
  name: c
  labels:
    app: web
data:
  good: x
  "bad key": y
"""
    [m] = load_text(text, "c.yaml")
    assert m.where("data[bad key]") == "c.yaml:9:3"
    assert m.where("data[good]") == "c.yaml:8:3"
    assert m.where("metadata.labels[app]") == "c.yaml:6:5"
    assert m.where("data[absent]") == "c.yaml:7:1"


def test_yaml_booleans_are_kubectls() -> None:
    # go-yaml v2 (what kubectl parses with) reads y/Y/n/N as booleans, as well as
    # yes/no/on/off; quoted, they stay strings.
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n"
    text += "  a: y\n  b: N\n  c: yes\n  d: 'y'\n  e: yy\n"
    [m] = load_text(text, "c.yaml")
    assert m.obj["data"] == {"a": True, "b": False, "c": True, "d": "y", "e": "yy"}
