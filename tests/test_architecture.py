"""The rules of docs/architecture.md that an import contract cannot see.

The floors themselves are import-linter contracts (pyproject.toml,
``[tool.importlinter]``), run by scripts/test. These tests read the source:
- one writer: only the registry holds the whole store (everyone else gets a
  ``ReadOnlyStore``), so every write is admitted the same way;
- every instance attribute is set in ``__init__``, so a class's state can be
  read in one place;
- the README's Layout names every top-level module and package.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "svcnet"

STORE_HOLDERS = {"svcnet/registry/registry.py", "svcnet/daemon.py", "svcnet/store/__init__.py"}
"""Where the writable ``Store`` may be named: the registry, which writes it, and
the daemon, which creates it and hands it to the registry alone."""


def sources() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        yield rel, ast.parse(path.read_text(), rel)


def test_only_the_registry_and_the_daemon_hold_the_writable_store() -> None:
    offenders = []
    for rel, tree in sources():
        if rel.startswith("svcnet/store/") and rel != "svcnet/store/__init__.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("svcnet.store"):
                if any(a.name == "Store" for a in node.names) and rel not in STORE_HOLDERS:
                    offenders.append(f"{rel}:{node.lineno} imports Store")
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "mutate"
                and not rel.startswith("svcnet/registry/")
            ):
                offenders.append(f"{rel}:{node.lineno} calls Store.mutate")
    assert not offenders, "writes go through the registry:\n" + "\n".join(offenders)


def _self_targets(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[tuple[str, int]]:
    for node in ast.walk(fn):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for t in targets:
            for leaf in ast.walk(t):
                if (
                    isinstance(leaf, ast.Attribute)
                    and isinstance(leaf.value, ast.Name)
                    and leaf.value.id == "self"
                ):
                    yield leaf.attr, getattr(node, "lineno", 0)


def _class_level(cls: ast.ClassDef) -> set[str]:
    """Names a class declares in its body: fields, class attributes, properties, slots."""
    out: set[str] = set()
    for stmt in cls.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            out.add(stmt.target.id)
        elif isinstance(stmt, ast.Assign):
            for t in stmt.targets:
                if isinstance(t, ast.Name):
                    out.add(t.id)
                    if t.id == "__slots__" and isinstance(stmt.value, ast.Tuple | ast.List):
                        out.update(
                            e.value
                            for e in stmt.value.elts
                            if isinstance(e, ast.Constant) and isinstance(e.value, str)
                        )
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            if any(
                isinstance(d, ast.Name) and d.id in ("property", "cached_property")
                for d in stmt.decorator_list
            ):
                out.add(stmt.name)
    return out


def test_every_instance_attribute_is_set_in_init() -> None:
    classes: dict[str, ast.ClassDef] = {}
    for _rel, tree in sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, node)

    def declared(cls: ast.ClassDef, seen: frozenset[str] = frozenset()) -> set[str]:
        names = _class_level(cls)
        for stmt in cls.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name in (
                "__init__",
                "__post_init__",
                "__new__",
            ):
                names.update(a for a, _ in _self_targets(stmt))
        for base in cls.bases:
            name = base.id if isinstance(base, ast.Name) else None
            if name in classes and name not in seen:
                names |= declared(classes[name], seen | {cls.name})
        return names

    offenders = []
    for rel, tree in sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            known = declared(node)
            for stmt in node.body:
                if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) or stmt.name in (
                    "__init__",
                    "__post_init__",
                    "__new__",
                ):
                    continue
                for attr, line in _self_targets(stmt):
                    if attr not in known:
                        offenders.append(f"{rel}:{line} {node.name}.{attr} (in {stmt.name})")
    assert not offenders, "attributes first set outside __init__:\n" + "\n".join(
        sorted(set(offenders))
    )


def test_the_readme_layout_names_every_module_and_package() -> None:
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"\b([A-Za-z_]\w*)(?:\.py|/)", layout))
    missing = [
        p.name
        for p in sorted(PACKAGE.iterdir())
        if (p.suffix == ".py" and p.name != "__init__.py" and p.stem not in named)
        or (p.is_dir() and (p / "__init__.py").exists() and p.name not in named)
    ]
    assert missing == [], f"README's Layout does not name {missing}"
