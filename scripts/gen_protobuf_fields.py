#!/usr/bin/env python3
"""Generate svcnet/api/protobuf_fields.json from the Go types of k8s.io/api and
k8s.io/apimachinery.

Why from the Go types and not generated.proto: the `protobuf:"..."` struct tags
hold the field numbers, and the Go field's type says what the .proto cannot:
whether the field is a pointer (a zero set on purpose, `replicas: 0`), and
whether it is embedded with an empty JSON name (inlined into its parent in
JSON, as `Volume.VolumeSource` is).

Usage (two checkouts of the v0.32.0 tags, or the git directories of two clones):

    python3 scripts/gen_protobuf_fields.py API_REPO APIMACHINERY_REPO > \
        svcnet/api/protobuf_fields.json

Only messages reachable from the kinds svcnet serves (k8s/kinds.py) are
written, top-level `status` excepted (the server never takes a status from a
create or update body).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REF = "v0.32.0"
"""The tag of both repositories: Kubernetes 1.32, the version svcnet reports."""

API_PACKAGES = (
    "core/v1",
    "apps/v1",
    "batch/v1",
    "storage/v1",
    "networking/v1",
    "discovery/v1",
    "authentication/v1",
    "authorization/v1",
    "autoscaling/v1",
    "autoscaling/v2",
)
MACHINERY_FILES = ("pkg/apis/meta/v1/types.go",)

# Messages the decoder turns into JSON scalars itself (their proto fields are
# listed so that it can read them): name -> {number: [json name, type, flags]}.
SPECIAL: dict[str, dict[str, list[str]]] = {
    "Time": {"1": ["seconds", "int", ""], "2": ["nanos", "int", ""]},
    "MicroTime": {"1": ["seconds", "int", ""], "2": ["nanos", "int", ""]},
    "Duration": {"1": ["duration", "int", ""]},
    "Quantity": {"1": ["string", "string", ""]},
    "IntOrString": {
        "1": ["type", "int", ""],
        "2": ["intVal", "int", ""],
        "3": ["strVal", "string", ""],
    },
    "RawExtension": {"1": ["raw", "bytes", ""]},
    "FieldsV1": {"1": ["Raw", "bytes", ""]},
}
SCALARS = {
    "string": "string",
    "bool": "bool",
    "int32": "int",
    "int64": "int",
    "int": "int",
    "uint32": "int",
    "uint64": "int",
    "byte": "int",
    "UID": "string",
    "NodeName": "string",
}

_STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.M | re.S)
_NAMED = re.compile(r"^type (\w+) (\[\]byte|\[\]\w+|map\[\w+\][\w.]+|[\w.]+)\s*$", re.M)
_FIELD = re.compile(r"^\s+(?:(\w+)\s+)?([\w.*\[\]]+)\s+`([^`]*)`", re.M)
_TAG = re.compile(r'(\w+):"([^"]*)"')


def read(repo: Path, path: str) -> str:
    if (repo / path).is_file():
        return (repo / path).read_text()
    return subprocess.run(
        ["git", "--git-dir", str(repo), "show", f"{REF}:{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


_IMPORT = re.compile(r'^\s*(?:import\s+)?(\w+\s+)?"(k8s\.io/[\w./-]+)"', re.M)

PKG_OF = {f"k8s.io/api/{p}": p for p in API_PACKAGES} | {
    "k8s.io/apimachinery/pkg/apis/meta/v1": "meta/v1",
}

Struct = list[tuple[str, str, str, str]]
"""(number, json name, qualified go type, tag flags) per field."""


def parse(sources: list[tuple[str, str]]) -> tuple[dict[str, Struct], dict[str, str]]:
    """(structs, named types), each keyed "pkg:Name"; Go types are qualified the
    same way so that two packages' EndpointPort stay apart."""
    structs: dict[str, Struct] = {}
    named: dict[str, str] = {}
    for pkg, src in sources:
        imports = {}
        for m in _IMPORT.finditer(src):
            alias = (m[1] or "").strip() or m[2].rsplit("/", 1)[-1]
            imports[alias] = PKG_OF.get(m[2], m[2])

        def qualify(go_type: str, pkg: str = pkg, imports: dict[str, str] = imports) -> str:
            def one(w: re.Match[str]) -> str:
                word = w[0]
                if "." in word:
                    alias, _, base = word.partition(".")
                    return f"{imports.get(alias, alias)}:{base}"
                if word in ("map", "byte") or word in SCALARS:
                    return word
                return f"{pkg}:{word}"

            return re.sub(r"[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)?", one, go_type)

        for m in _NAMED.finditer(src):
            named.setdefault(f"{pkg}:{m[1]}", qualify(m[2]))
        for m in _STRUCT.finditer(src):
            fields = []
            for f in _FIELD.finditer(m[2]):
                go_type, tag = f[2], dict(_TAG.findall(f[3]))
                if "protobuf" not in tag:
                    continue
                pb = tag["protobuf"].split(",")
                json_name = tag.get("json", "").split(",")[0]
                if json_name == "-":
                    continue
                inline = json_name == ""
                fields.append((pb[1], json_name, qualify(go_type), "i" if inline else ""))
            structs[f"{pkg}:{m[1]}"] = fields
    return structs, named


def resolve(go_type: str, named: dict[str, str]) -> tuple[str, str]:
    """A qualified Go type -> (type key, flags): p pointer, r repeated."""
    flags = ""
    if go_type.startswith("*"):
        flags += "p"
        go_type = go_type[1:]
    if go_type == "[]byte":
        return "bytes", flags
    if go_type.startswith("[]"):
        inner, inner_flags = resolve(go_type[2:], named)
        if inner_flags:
            raise SystemExit(f"unsupported slice type {go_type}")
        return inner, flags + "r"
    if go_type.startswith("map["):
        value = go_type[go_type.index("]") + 1 :]
        inner, inner_flags = resolve(value, named)
        if inner.startswith("map:") or inner_flags:
            raise SystemExit(f"unsupported map type {go_type}")
        return f"map:{inner}", flags
    base = go_type.split(":")[-1]
    if base in SCALARS:
        return SCALARS[base], flags
    if base in SPECIAL:
        return base, flags
    if go_type in named:
        inner, inner_flags = resolve(named[go_type], named)
        return inner, flags + inner_flags
    return go_type, flags


PLAIN = ("string", "bytes", "int", "bool")


def generate(api: Path, machinery: Path, roots: list[str]) -> dict[str, object]:
    sources = [(pkg, read(api, f"{pkg}/types.go")) for pkg in API_PACKAGES]
    sources += [("meta/v1", read(machinery, p)) for p in MACHINERY_FILES]
    structs, named = parse(sources)
    by_base: dict[str, list[str]] = {}
    for key in structs:
        by_base.setdefault(key.split(":")[1], []).append(key)
    # A kind served in two versions is named "pkg:Kind" (autoscaling/v2:HorizontalPodAutoscaler).
    root_keys = {r if ":" in r else by_base[r][0] for r in roots}
    tables: dict[str, dict[str, list[str]]] = {}
    todo = sorted(root_keys)
    while todo:
        key = todo.pop()
        if key in tables or key in SPECIAL:
            continue
        if key not in structs:
            raise SystemExit(f"no struct {key}")
        table: dict[str, list[str]] = {}
        for number, json_name, go_type, tag_flags in structs[key]:
            type_, flags = resolve(go_type, named)
            if key in root_keys and json_name == "status":
                table[number] = ["status", "Ignored", ""]
                continue
            table[number] = [json_name or type_, type_, flags + tag_flags]
            value = type_.removeprefix("map:")
            if value not in PLAIN:
                todo.append(value)
        tables[key] = table

    def short(key: str) -> str:
        """The bare Go name, or "pkg/v1:Name" where two packages share it."""
        if key in PLAIN or key in SPECIAL:
            return key
        base = key.split(":")[1]
        clash = [k for k in tables if k.split(":")[1] == base]
        return base if len(clash) == 1 else key

    messages: dict[str, dict[str, list[str]]] = dict(SPECIAL)
    for key, table in tables.items():
        out = {}
        for number, (json_name, type_, flags) in table.items():
            prefix = "map:" if type_.startswith("map:") else ""
            t = prefix + short(type_.removeprefix("map:")) if type_ != "Ignored" else type_
            name = short(json_name) if "i" in flags else json_name
            out[number] = [name, t, flags]
        messages[short(key)] = out
    kinds = sorted({r.rpartition(":")[2] for r in roots})
    return {"messages": dict(sorted(messages.items())), "kinds": kinds}


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from svcnet.k8s import kinds

    groups = {"": "core/v1"} | {p.split("/")[0]: p for p in API_PACKAGES}
    groups |= {"networking.k8s.io": "networking/v1", "discovery.k8s.io": "discovery/v1"}
    groups |= {"storage.k8s.io": "storage/v1"}
    groups |= {"authentication.k8s.io": "authentication/v1"}
    groups |= {"authorization.k8s.io": "authorization/v1"}
    groups |= {"autoscaling": "autoscaling/v2"}
    # The reviews kubectl auth sends (typed clients send protobuf) are decoded too.
    served = [k for k in kinds.KINDS if (k.stored or k.review) and k.group in groups]
    names = [k.kind for k in served]
    # A kind served in several versions has a message per version (HPA v1 and v2).
    roots = [
        f"{k.group}/{k.version}:{k.kind}" if names.count(k.kind) > 1 else k.kind for k in served
    ]
    out = generate(Path(sys.argv[1]), Path(sys.argv[2]), roots)
    json.dump(out, sys.stdout, separators=(",", ":"), sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
