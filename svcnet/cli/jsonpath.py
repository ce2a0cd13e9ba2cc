"""`-o jsonpath=TEMPLATE`: the subset of kubectl's JSONPath that scripts use.

Supported: literal text, `{.a.b}`, `{.items[0].x}`, `{.items[*].x}`,
`{.metadata.labels.app}`, `{range .items[*]}...{end}`, and string literals
such as `{"\\n"}` or `{'\\t'}`. Several results of one expression are joined
by a space; maps and lists print as JSON, as kubectl does.
"""

from __future__ import annotations

import json
import re
from typing import Any

_STEP = re.compile(r"\.([^.\[\]]+)|\[(\*|-?\d+)\]")


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
    if not path.startswith((".", "[")):
        raise JsonPathError(f"unrecognized identifier {path}")
    current = [data]
    pos = 0
    while pos < len(path):
        m = _STEP.match(path, pos)
        if m is None:
            raise JsonPathError(f"invalid array index or field at {path[pos:]!r}")
        pos = m.end()
        nxt: list[Any] = []
        for item in current:
            if m.group(1) is not None:
                if isinstance(item, dict) and m.group(1) in item:
                    nxt.append(item[m.group(1)])
            elif isinstance(item, list):
                if m.group(2) == "*":
                    nxt.extend(item)
                else:
                    i = int(m.group(2))
                    if -len(item) <= i < len(item):
                        nxt.append(item[i])
        current = nxt
    return current


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
