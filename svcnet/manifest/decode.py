"""Decoding YAML and JSON that anyone may send, within the bounds the API server sets.

The API server decodes with go-yaml and Go's encoding/json, which refuse
documents that expand too much through aliases ("yaml: document contains
excessive aliasing", the fix for CVE-2019-11254) or nest too deep. PyYAML
has neither bound: a 600-byte alias bomb expands to gigabytes once anything
walks it, and libyaml's composer recurses in C, so a deeply nested document
crashes the whole process. Every YAML document svcnet reads, from a file or
from a request, goes through here first:

1. libyaml's event stream (iterative, no recursion) is walked once to count
   nesting depth, refusing more than ``MAX_DEPTH`` before anything recursive
   runs;
2. the composed node graph is measured as go-yaml's decoder would walk it
   (each alias counts the whole subtree it stands for, computed once per node,
   so the bomb is never expanded), and refused with go-yaml's words when
   aliases account for more of the walk than go-yaml allows;
3. only then are Python objects built.

JSON nests too: json.loads recurses in C and raises RecursionError past
Python's recursion limit, which is turned into the same refusal.

``MAX_DEPTH`` is lower than Go's 10000 because Python's recursion limit is:
a body nested past it is refused either way, since no object svcnet serves
nests more than a few dozen levels.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

MAX_DEPTH = 512
"""Deepest nesting accepted; see the module docstring."""

_ALIAS_RANGE_LOW = 400_000
_ALIAS_RANGE_HIGH = 4_000_000

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Loader(_Base):  # type: ignore[valid-type,misc]
    """YAML 1.1 as kubectl reads it (go-yaml v2): `y`, `Y`, `n` and `N` are booleans
    too, so `value: y` fails here as it fails on a cluster, not only later there."""


Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))


class Constructor(yaml.SafeLoader):
    bool_values = {**yaml.SafeLoader.bool_values, "y": True, "n": False}


class DecodeError(ValueError):
    """A document refused before it was built; str() is the decoder's message."""


def _allowed_alias_ratio(decodes: int) -> float:
    """go-yaml v2's allowedAliasRatio: 99% for small documents, down to 10% for huge."""
    if decodes <= _ALIAS_RANGE_LOW:
        return 0.99
    if decodes >= _ALIAS_RANGE_HIGH:
        return 0.10
    span = _ALIAS_RANGE_HIGH - _ALIAS_RANGE_LOW
    return 0.99 - 0.89 * ((decodes - _ALIAS_RANGE_LOW) / span)


def check_depth(text: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise DecodeError(f"yaml: exceeded max depth of {MAX_DEPTH}")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def check_aliasing(root: yaml.Node) -> None:
    """Refuse what go-yaml refuses, without expanding anything: a node's walk size
    is computed once and reused wherever an alias points at it."""
    size: dict[int, int] = {}

    def walk(node: yaml.Node) -> int:
        # Iterative post-order: the graph may be deep (up to MAX_DEPTH) and wide.
        stack: list[tuple[yaml.Node, bool]] = [(node, False)]
        while stack:
            n, done = stack.pop()
            if id(n) in size:
                continue
            kids: list[yaml.Node] = []
            if isinstance(n, yaml.MappingNode):
                for k, v in n.value:
                    kids += (k, v)
            elif isinstance(n, yaml.SequenceNode):
                kids = list(n.value)
            if done:
                size[id(n)] = 1 + sum(size[id(k)] for k in kids)
            else:
                stack.append((n, True))
                stack.extend((k, False) for k in kids if id(k) not in size)
        return size[id(node)]

    total = walk(root)
    # PyYAML resolves an alias to the very node it names, so every step past the
    # first visit of each node is a step through an alias, as go-yaml counts them.
    aliased = total - len(size)
    if aliased > 100 and total > 1000 and aliased / total > _allowed_alias_ratio(total):
        raise DecodeError("yaml: document contains excessive aliasing")


def compose_all(text: str) -> list[yaml.Node]:
    """The documents of a YAML stream as node graphs, checked for depth and aliasing.
    Raises DecodeError, or yaml.YAMLError for a syntax error."""
    check_depth(text)
    nodes = [n for n in yaml.compose_all(text, Loader=Loader) if n is not None]
    for node in nodes:
        check_aliasing(node)
    return nodes


def construct(node: yaml.Node) -> Any:
    return Constructor("").construct_document(node)


def load_yaml(text: str) -> Any:
    """One YAML document (a request body), or None for an empty one."""
    nodes = compose_all(text)
    if len(nodes) > 1:
        raise DecodeError("yaml: expected a single document in the stream")
    return construct(nodes[0]) if nodes else None


def load_json(data: str | bytes) -> Any:
    try:
        value = json.loads(data)
    except RecursionError:
        raise DecodeError(f"json: exceeded max depth of {MAX_DEPTH}") from None
    if depth(value) > MAX_DEPTH:
        raise DecodeError(f"json: exceeded max depth of {MAX_DEPTH}")
    return value


def depth(value: Any) -> int:
    """How deep lists and maps nest in a decoded value (iteratively)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = v.values()
        elif not isinstance(v, list):
            continue
        d += 1
        deepest = max(deepest, d)
        stack.extend((x, d) for x in v)
    return deepest
