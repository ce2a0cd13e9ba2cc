"""Bounded decoding: alias bombs and deep nesting are refused before they cost
anything, with the decoder's words; ordinary anchors still work."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import pytest

from svcnet.manifest import ManifestError, decode, load_paths


def bomb(levels: int = 9, fan: int = 9) -> str:
    """The classic billion laughs: `fan ** levels` strings from a few hundred bytes."""
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * fan) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_without_expanding() -> None:
    text = bomb()
    assert len(text) < 700
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(decode.DecodeError, match=r"^yaml: document contains excessive aliasing$"):
        decode.load_yaml(text)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 50_000


def test_ordinary_anchors_and_merge_keys_still_load() -> None:
    text = "base: &b {cpu: 100m, memory: 64Mi}\nlimits: *b\nrequests:\n  <<: *b\n  cpu: 50m\n"
    assert decode.load_yaml(text) == {
        "base": {"cpu": "100m", "memory": "64Mi"},
        "limits": {"cpu": "100m", "memory": "64Mi"},
        "requests": {"cpu": "50m", "memory": "64Mi"},
    }


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,  # flow: crashed libyaml's composer (C recursion)
        "- " * 100_000 + "x",  # block sequences nest two bytes a level
        "{a: " * 20_000 + "1" + "}" * 20_000,
    ],
)
def test_deep_yaml_is_refused_before_composing(text: str) -> None:
    with pytest.raises(decode.DecodeError, match=f"exceeded max depth of {decode.MAX_DEPTH}"):
        decode.load_yaml(text)


def test_nesting_up_to_the_limit_is_fine() -> None:
    n = decode.MAX_DEPTH
    assert decode.depth(decode.load_yaml("[" * n + "]" * n)) == n
    assert decode.depth(decode.load_json("[" * n + "]" * n)) == n
    with pytest.raises(decode.DecodeError):
        decode.load_json("[" * (n + 1) + "]" * (n + 1))
    with pytest.raises(decode.DecodeError, match="json: exceeded max depth"):
        decode.load_json("[" * 100_000 + "]" * 100_000)  # RecursionError inside json


def test_kubectl_booleans() -> None:
    assert decode.load_yaml("a: y\nb: N\nc: yes\n") == {"a": True, "b": False, "c": True}
    assert json.dumps(decode.load_yaml("v: 'y'\n")) == '{"v": "y"}'


def test_a_manifest_file_with_a_bomb_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "bomb.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n" + bomb())
    with pytest.raises(ManifestError) as e:
        load_paths([str(f)])
    assert str(e.value) == (
        f"error parsing {f}: error converting YAML to JSON: "
        "yaml: document contains excessive aliasing"
    )
