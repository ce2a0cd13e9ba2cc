"""`-o jsonpath=TEMPLATE`: the subset of kubectl's JSONPath that scripts use.

Supported: literal text, `{.a.b}`, `{.items[0].x}`, `{.items[*].x}`,
`{.metadata.labels.app}`, recursive descent (`{..image}`), filters
(`{.status.conditions[?(@.type=="Ready")].status}`, with ==, !=, <, <=, >, >=
against a quoted string, a number, true/false or another `@` path, or `[?(@.x)]`
for "has x"), `{range .items[*]}...{end}`, and string literals such as
`{"\\n"}` or `{'\\t'}`. Several results of one expression are joined by a
space; maps and lists print as JSON, as kubectl does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_STEP = re.compile(r"\.\.([^.\[\]]+)|\.([^.\[\]]+)|\[(\*|-?\d+)\]")
_FILTER = re.compile(r"\s*(@[^=!<>\s]*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*$")


class JsonPathError(ValueError):
    pass


def _tokens(template: str) -> list[tuple[str, str]]:
    """('text', s) and ('expr', s) pieces of a template."""
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(template):
        start = template.find("{", pos)
        if start < 0:
            out.append(("text", template[pos:]))
            break
        if start > pos:
            out.append(("text", template[pos:start]))
        end = template.find("}", start)
        if end < 0:
            raise JsonPathError(f"unclosed action in {template!r}")
        out.append(("expr", template[start + 1 : end].strip()))
        pos = end + 1
    return out


def select(data: Any, path: str) -> list[Any]:
    """Every value the path reaches (missing fields reach nothing)."""
    path = path.strip()
    if path in ("", ".", "@"):
        return [data]
    if path.startswith("@"):
        path = path[1:]
    if not path.startswith((".", "[")):
        raise JsonPathError(f"unrecognized identifier {path}")
    current = [data]
    pos = 0
    while pos < len(path):
        if path.startswith("[?(", pos):
            end = _filter_end(path, pos)
            keep = _filter(path[pos + 3 : end])
            current = [v for item in current if isinstance(item, list) for v in item if keep(v)]
            pos = end + 2
            continue
        m = _STEP.match(path, pos)
        if m is None:
            raise JsonPathError(f"invalid array index or field at {path[pos:]!r}")
        pos = m.end()
        nxt: list[Any] = []
        for item in current:
            if m.group(1) is not None:
                _descend(item, m.group(1), nxt)
            elif m.group(2) is not None:
                if isinstance(item, dict) and m.group(2) in item:
                    nxt.append(item[m.group(2)])
            elif isinstance(item, list):
                if m.group(3) == "*":
                    nxt.extend(item)
                else:
                    i = int(m.group(3))
                    if -len(item) <= i < len(item):
                        nxt.append(item[i])
        current = nxt
    return current


def _descend(item: Any, name: str, out: list[Any]) -> None:
    """`..name`: every value under key name, at any depth, in document order."""
    if isinstance(item, dict):
        for k, v in item.items():
            if k == name:
                out.append(v)
            _descend(v, name, out)
    elif isinstance(item, list):
        for v in item:
            _descend(v, name, out)


def _filter_end(path: str, pos: int) -> int:
    """Index of the `)` closing the filter that opens at pos (quotes respected)."""
    quote = ""
    for i in range(pos + 3, len(path)):
        c = path[i]
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif path.startswith(")]", i):
            return i
    raise JsonPathError(f"unclosed filter in {path[pos:]!r}")


def _filter(expr: str) -> Callable[[Any], bool]:
    """`@.x OP value` or `@.x` as a test of one list element; parsed before any
    element is looked at, so a typo is an error even where nothing is filtered."""
    m = _FILTER.match(expr)
    if m is None:
        raise JsonPathError(f"unrecognized filter {expr!r}")
    left, op, right = m.groups()
    if op is None:
        return lambda v: bool(select(v, left))
    literal = None if right.startswith("@") else _value(right)

    def keep(v: Any) -> bool:
        got = select(v, left)
        want = select(v, right) if literal is None else [literal]
        return bool(got) and bool(want) and _compare(got[0], op, want[0])

    return keep


def _value(text: str) -> Any:
    if (lit := _literal(text)) is not None:
        return lit
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise JsonPathError(f"unrecognized value {text!r} in a filter") from None


def _compare(a: Any, op: str, b: Any) -> bool:
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    try:
        if op == "<":
            return bool(a < b)
        if op == "<=":
            return bool(a <= b)
        if op == ">":
            return bool(a > b)
        return bool(a >= b)
    except TypeError:
        return False


def _text(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


def _literal(expr: str) -> str | None:
    if len(expr) >= 2 and expr[0] == expr[-1] and expr[0] in "\"'":
        return expr[1:-1].encode().decode("unicode_escape")
    return None


def render(template: str, data: Any) -> str:
    tokens = _tokens(template)
    out, _ = _render(tokens, 0, data)
    return out


def _render(tokens: list[tuple[str, str]], i: int, data: Any) -> tuple[str, int]:
    out: list[str] = []
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "text":
            out.append(value)
        elif value == "end":
            return "".join(out), i
        elif value.startswith("range "):
            items = select(data, value[len("range ") :])
            body_end = i
            for item in items:
                text, body_end = _render(tokens, i + 1, item)
                out.append(text)
            if not items:
                _, body_end = _render(tokens, i + 1, None)
            i = body_end
        elif (lit := _literal(value)) is not None:
            out.append(lit)
        else:
            out.append(" ".join(_text(v) for v in select(data, value)))
        i += 1
    return "".join(out), i
