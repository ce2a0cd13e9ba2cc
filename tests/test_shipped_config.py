"""config/ is what README's quick start runs: the seed's manifests, corrected,
and every daemon setting with its default. tests/fixtures/seed/ keeps the
seed's manifests as printed, which must stay broken the way the seed has them.
"""

from __future__ import annotations

import re
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from svcnet.config import Settings, load
from svcnet.manifest import Manifest, ManifestError, load_paths
from svcnet.registry import ApiError, Registry
from svcnet.store import Store

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
FIXTURES = ROOT / "tests" / "fixtures"


def _settings_keys(obj: Any, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for f in fields(obj):
        value = getattr(obj, f.name)
        out.add(prefix + f.name)
        if is_dataclass(value):
            out |= _settings_keys(value, f"{prefix}{f.name}.")
    return out


def _file_keys(data: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for k, v in data.items():
        out.add(prefix + k)
        if isinstance(v, dict) and k != "images":  # agent.images is a map of user data
            out |= _file_keys(v, f"{prefix}{k}.")
    return out


def test_svcnet_yaml_holds_every_setting_at_its_default() -> None:
    path = CONFIG / "svcnet.yaml"
    assert load(path) == Settings()
    data = yaml.safe_load(path.read_text())
    assert data.pop("apiVersion") == "svcnet.dev/v1alpha1"
    assert data.pop("kind") == "SvcnetConfiguration"
    assert _file_keys(data) == _settings_keys(Settings())


def test_svcnet_yaml_comments_every_setting() -> None:
    lines = (CONFIG / "svcnet.yaml").read_text().splitlines()
    key = re.compile(r"^\s*[a-z_]+:")
    for i, line in enumerate(lines):
        if key.match(line) and not line.startswith(("apiVersion:", "kind:")):
            value = line.split(":", 1)[1].strip()
            if value == "":  # a section (network:, dns:, ...)
                continue
            assert lines[i - 1].lstrip().startswith("#"), f"line {i + 1} has no comment: {line}"


def _config_manifests() -> list[Manifest]:
    return load_paths([str(CONFIG)])


def test_config_holds_the_seed_objects() -> None:
    objs = {(m.kind, m.name): m.obj for m in _config_manifests()}
    assert set(objs) == {
        ("ReplicaSet", "echo-spring"),
        ("ReplicaSet", "echo-summer"),
        ("Service", "echo"),
        ("Service", "gihyo"),
    }
    for name, replicas in (("echo-spring", 1), ("echo-summer", 2)):
        rs = objs[("ReplicaSet", name)]
        assert rs["spec"]["replicas"] == replicas
        release = name.removeprefix("echo-")
        assert rs["spec"]["selector"]["matchLabels"] == {"app": "echo", "release": release}
        pod = rs["spec"]["template"]
        assert pod["metadata"]["labels"] == {"app": "echo", "release": release}
        nginx, echo = pod["spec"]["containers"]
        assert (nginx["name"], nginx["image"]) == ("nginx", "gihyodocker/nginx:latest")
        assert nginx["env"] == [{"name": "BACKEND_HOST", "value": "localhost:8080"}]
        assert nginx["ports"] == [{"containerPort": 80}]
        assert (echo["name"], echo["image"]) == ("echo", "gihyodocker/echo:latest")
        assert echo["ports"] == [{"containerPort": 8080}]
    echo_svc = objs[("Service", "echo")]["spec"]
    assert echo_svc["type"] == "NodePort"
    assert echo_svc["selector"] == {"app": "echo", "release": "summer"}
    # targetPort is left to its default (the port, 80: nginx), as the seed has it.
    assert echo_svc["ports"] == [{"name": "http", "port": 80, "nodePort": 30026}]
    assert objs[("Service", "gihyo")]["spec"] == {
        "type": "ExternalName",
        "externalName": "gihyo.jp",
    }


def _registry() -> Registry:
    registry = Registry(Settings(), Store())
    registry.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    return registry


def test_config_is_accepted_as_the_api_server_would() -> None:
    registry = _registry()
    for m in _config_manifests():
        created = registry.create(m.obj, dry_run=True)
        assert created["metadata"]["namespace"] == "default"
        if m.name == "echo":
            port = created["spec"]["ports"][0]
            assert (port["targetPort"], port["protocol"], port["nodePort"]) == (80, "TCP", 30026)


@pytest.mark.parametrize("name", ["simple-service.yaml", "simple-node-port-service.yaml"])
def test_seed_services_as_printed_do_not_parse(name: str) -> None:
    path = FIXTURES / "seed" / name
    with pytest.raises(ManifestError) as e:
        load_paths([str(path)])
    # `- port: 80` under `- name: http`: the seed's indentation breaks on line 11.
    assert "line 11, column 19" in str(e.value)
    assert name in str(e.value)


def test_seed_externalname_as_printed_is_refused() -> None:
    (m,) = load_paths([str(FIXTURES / "seed" / "gihyo-service.yaml")])
    assert isinstance(m.obj["metadata"], list)  # as printed: metadata is a list
    with pytest.raises(ApiError):
        _registry().create(m.obj, dry_run=True)


def test_unknown_field_fixture_is_refused_with_its_path() -> None:
    (m,) = load_paths([str(FIXTURES / "bad" / "unknown-field.yaml")])
    with pytest.raises(ApiError) as e:
        _registry().create(m.obj, dry_run=True)
    assert "spec.ports[0].targetPrt" in str(e.value)
