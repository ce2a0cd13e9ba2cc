from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from svcnet.k8s.objects import Obj
from svcnet.manifest import decode

CONFIG_KIND = "SvcnetConfiguration"
EXTENSIONS = (".yaml", ".yml", ".json")


class ManifestError(ValueError):
    """A file that cannot be read as manifests; str() is the full user-facing message."""


@dataclass
class Manifest:
    obj: Obj
    source: str  # file path, or "STDIN"
    doc_index: int
    line: int  # 1-based line where the document starts
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind") or "")

    @property
    def name(self) -> str:
        md = self.obj.get("metadata")
        return str(md.get("name") or "") if isinstance(md, dict) else ""

    @property
    def namespace(self) -> str:
        md = self.obj.get("metadata")
        return str(md.get("namespace") or "") if isinstance(md, dict) else ""

    def position(self, field_path: str) -> tuple[int, int] | None:
        """1-based (line, column) of a field path, or of its nearest known parent."""
        path = field_path.lstrip(".")
        while path:
            if path in self.positions:
                return self.positions[path]
            # The API names a map's key `data[key]`; positions are recorded as `data.key`.
            as_field = _MAP_KEY.sub(r".\1", path)
            if as_field in self.positions:
                return self.positions[as_field]
            path = _parent(path)
        return self.positions.get("")

    def where(self, field_path: str = "") -> str:
        """`file:line:col` for messages."""
        pos = self.position(field_path) if field_path else self.positions.get("")
        if pos is None:
            return f"{self.source}:{self.line}"
        return f"{self.source}:{pos[0]}:{pos[1]}"


_MAP_KEY = re.compile(r"\[([^\]]*[^\]\d][^\]]*)\]")
"""A bracketed path segment that is not a list index."""


def _parent(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path.rpartition(".")[0]


def _record(node: yaml.Node, path: str, out: dict[str, tuple[int, int]]) -> None:
    """Remember where every field path starts; for a mapping entry, where its key is."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = str(k.value)
            sub = f"{path}.{key}" if path else key
            out[sub] = (k.start_mark.line + 1, k.start_mark.column + 1)
            _record(v, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = f"{path}[{i}]"
            out[sub] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _record(item, sub, out)


def _yaml_error(source: str, e: yaml.YAMLError) -> ManifestError:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    if mark is not None:
        detail = f"yaml: line {mark.line + 1}, column {mark.column + 1}: {problem}"
    else:
        detail = f"yaml: {problem}"
    return ManifestError(f"error parsing {source}: error converting YAML to JSON: {detail}")


def load_text(text: str, source: str, configs: list[Manifest] | None = None) -> list[Manifest]:
    """Parse one file's text; raise ManifestError naming file:line:column.
    SvcnetConfiguration documents are not manifests: they go to `configs` when
    it is given (for `svcnet apply`'s image mappings), else nowhere."""
    try:
        nodes = decode.compose_all(text)
    except yaml.YAMLError as e:
        raise _yaml_error(source, e) from None
    except decode.DecodeError as e:
        raise ManifestError(f"error parsing {source}: error converting YAML to JSON: {e}") from None
    out: list[Manifest] = []
    for i, node in enumerate(nodes):
        try:
            data = decode.construct(node)
        except yaml.YAMLError as e:
            raise _yaml_error(source, e) from None
        line = node.start_mark.line + 1
        if data is None or (isinstance(data, dict) and not data):
            continue
        if not isinstance(data, dict):
            raise ManifestError(
                f"error validating {source}:{line}: error validating data: the document is a "
                f"{type(data).__name__}, not an object with apiVersion and kind"
            )
        positions: dict[str, tuple[int, int]] = {"": (line, node.start_mark.column + 1)}
        _record(node, "", positions)
        missing = [f for f in ("apiVersion", "kind") if not isinstance(data.get(f), str)]
        if missing:
            raise ManifestError(
                f"error validating {source}:{line}: error validating data: "
                f"[{', '.join(f'{f} not set' for f in missing)}]"
            )
        if data["kind"] == CONFIG_KIND:
            if configs is not None:
                configs.append(Manifest(data, source, i, line, positions))
            continue
        if data["kind"] == "List" or data["kind"].endswith("List"):
            for j, item in enumerate(data.get("items") or []):
                sub = {
                    k.removeprefix(f"items[{j}]").lstrip("."): v
                    for k, v in positions.items()
                    if k.startswith(f"items[{j}]")
                }
                if not isinstance(item, dict) or not item.get("kind"):
                    pos = positions.get(f"items[{j}]", (line, 1))
                    raise ManifestError(
                        f"error validating {source}:{pos[0]}:{pos[1]}: error validating data: "
                        f"items[{j}]: kind not set"
                    )
                out.append(Manifest(item, source, i, sub.get("", (line, 1))[0], sub))
            continue
        out.append(Manifest(data, source, i, line, positions))
    return out


def manifest_files(path: Path, recursive: bool) -> list[Path]:
    """The manifest files `-f path` names (a directory: its .yaml, .yml and .json)."""
    if path.is_dir():
        pattern = "**/*" if recursive else "*"
        return sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix in EXTENSIONS)
    return [path]


def load_paths(
    paths: list[str], *, recursive: bool = False, configs: list[Manifest] | None = None
) -> list[Manifest]:
    """Read every manifest from files, directories and `-`, or raise for the first bad one.

    Nothing is returned unless everything parsed, so a caller can apply all or
    nothing.
    """
    out: list[Manifest] = []
    for p in paths:
        if p == "-":
            out.extend(load_text(sys.stdin.read(), "STDIN", configs))
            continue
        path = Path(p)
        if not path.exists():
            raise ManifestError(f'the path "{p}" does not exist')
        files = manifest_files(path, recursive)
        if path.is_dir() and not files:
            raise ManifestError(
                f"error reading [{p}]: recognized file extensions are [{' '.join(EXTENSIONS)}]"
            )
        for f in files:
            try:
                text = f.read_text()
            except (OSError, UnicodeDecodeError) as e:
                raise ManifestError(f"error reading {f}: {e}") from None
            out.extend(load_text(text, _display(f), configs))
    return out


def _display(p: Path) -> str:
    try:
        rel = os.path.relpath(p)
    except ValueError:
        return str(p)
    return str(p) if rel.startswith("..") else rel
