"""What the CLI prints, as pure functions from API data to text.

kubectl's output is Go's ``text/tabwriter`` over tab-separated cells, so the
alignment rules here are tabwriter's, not "pad every column to its widest
cell": a column is aligned only across a *block* of consecutive lines that
have a cell in it, and the last cell of a line is never padded. Getting this
exactly right matters for ``describe``, whose ``Port:  http  80/TCP`` lines
form one-line blocks of their own.

Two writer settings are used, both taken from kubectl:

- tables (``get``): minwidth 6, tabwidth 4, padding 3 (cli-runtime
  ``printers/tabwriter.go``), which gives the familiar 3-space gutters;
- ``describe``: minwidth 0, tabwidth 8, padding 2 (``tabbedString`` in
  kubectl's ``describe.go``).

Error messages follow kubectl's ``checkErr``/``StandardErrorMessage``, with
one svcnet addition: a field error is followed by where that field is in the
manifest file, so the user sees file, line and field path together.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from svcnet.k8s.durations import human_duration
from svcnet.k8s.objects import Obj
from svcnet.k8s.timestamps import parse_time

TABLE_WRITER = (6, 3)  # (minwidth, padding) of kubectl's table printer
DESCRIBE_WRITER = (0, 2)  # (minwidth, padding) of kubectl's describe writer


def tabwrite(text: str, minwidth: int = 6, padding: int = 3) -> str:
    """Align tab-separated text exactly as Go's tabwriter with padchar ' ' does."""
    trailing_newline = text.endswith("\n")
    body = text[:-1] if trailing_newline else text
    lines = [line.split("\t") for line in body.split("\n")]
    out: list[str] = []
    widths: list[int] = []

    def write_lines(line0: int, line1: int) -> None:
        for cells in lines[line0:line1]:
            parts = []
            for j, cell in enumerate(cells):
                if j < len(widths) and j < len(cells) - 1:
                    parts.append(cell + " " * (widths[j] - len(cell)))
                else:
                    parts.append(cell)
            out.append("".join(parts))

    def fmt(line0: int, line1: int) -> None:
        # A transcription of tabwriter.(*Writer).format: find the next block
        # of lines that have a cell in the current column, size that column
        # over the block only, and recurse into the next column.
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    fmt(0, len(lines))
    return "\n".join(out) + ("\n" if trailing_newline else "")


# --- get: Tables --------------------------------------------------------------


@dataclass(frozen=True)
class TableOptions:
    wide: bool = False
    with_namespace: bool = False
    """-A: a leading NAMESPACE column, from each row's object metadata."""
    kind_prefix: str = ""
    """`service/`, `replicaset.apps/`: set when several types are printed."""
    show_labels: bool = False


def format_labels(labels: Mapping[str, str] | None) -> str:
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def table_lines(table: Obj, opts: TableOptions) -> list[str]:
    """Tab-separated lines (header first) for one meta.k8s.io Table; no lines if no rows."""
    rows = table.get("rows") or []
    if not rows:
        return []
    columns = table.get("columnDefinitions") or []
    shown = [i for i, c in enumerate(columns) if opts.wide or not c.get("priority")]
    name_index = next(
        (i for i, c in enumerate(columns) if c.get("format") == "name"),
        0 if columns else -1,
    )
    header = [str(columns[i]["name"]).upper() for i in shown]
    if opts.with_namespace:
        header.insert(0, "NAMESPACE")
    if opts.show_labels:
        header.append("LABELS")
    lines = ["\t".join(header)]
    for row in rows:
        cells = row.get("cells") or []
        metadata = (row.get("object") or {}).get("metadata") or {}
        out = []
        for i in shown:
            value = cell_text(cells[i]) if i < len(cells) else ""
            if i == name_index:
                value = opts.kind_prefix + value
            out.append(value)
        if opts.with_namespace:
            out.insert(0, str(metadata.get("namespace") or ""))
        if opts.show_labels:
            out.append(format_labels(metadata.get("labels")))
        lines.append("\t".join(out))
    return lines


def cell_text(value: Any) -> str:
    """A Table cell as kubectl prints it (`fmt.Sprintf("%v")` for most types)."""
    if value is None:
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def render_tables(tables: Sequence[tuple[Obj, TableOptions]]) -> str:
    """Several types' Tables, one header each, a blank line between (like `get all`).

    Each table is flushed on its own so column widths are per type, as kubectl
    resets the remembered widths when the resource mapping changes.
    """
    chunks = []
    for table, opts in tables:
        lines = table_lines(table, opts)
        if lines:
            chunks.append(tabwrite("\n".join(lines) + "\n", *TABLE_WRITER))
    return "\n".join(chunks)


# --- get -o json|yaml|name ---------------------------------------------------


def to_json(obj: Any) -> str:
    """kubectl's JSON printer: Go's MarshalIndent (4 spaces, sorted map keys,
    HTML-safe escaping) plus a newline."""
    text = json.dumps(obj, indent=4, sort_keys=True, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


class _GoYamlEmitterDumper(yaml.SafeDumper):
    """go-yaml quotes ambiguous strings with double quotes (`"80"`), PyYAML
    with single ones; keep kubectl's look."""

    def choose_scalar_style(self) -> str:
        style = str(super().choose_scalar_style())
        return '"' if style == "'" else style


def to_yaml(obj: Any) -> str:
    return str(
        yaml.dump(
            obj,
            Dumper=_GoYamlEmitterDumper,
            default_flow_style=False,
            sort_keys=True,
            allow_unicode=True,
            width=float("inf"),
        )
    )


def as_list(items: Iterable[Obj]) -> Obj:
    """The `kind: List` kubectl prints for several objects."""
    return {
        "apiVersion": "v1",
        "items": list(items),
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    }


# --- ages and times ------------------------------------------------------------


def age(value: str | None, now: dt.datetime | None = None) -> str:
    t = parse_time(value)
    if t is None:
        return "<unknown>"
    now = now or dt.datetime.now(dt.UTC)
    return human_duration((now - t).total_seconds())


def rfc1123z(value: str | None) -> str:
    """Go's time.RFC1123Z, which describe uses for Start Time / Started."""
    t = parse_time(value)
    if t is None:
        return "<unknown>"
    return t.strftime("%a, %d %b %Y %H:%M:%S %z")


# --- errors ---------------------------------------------------------------------


def cause_text(cause: Mapping[str, Any]) -> str:
    field = str(cause.get("field") or "")
    message = str(cause.get("message") or "")
    return f"{field}: {message}" if field else message


def status_error_text(
    status: Mapping[str, Any],
    where: Callable[[str], str | None] | None = None,
) -> str:
    """kubectl's words for an API error Status, ending in a newline.

    ``where(field)`` may return a `file:line:col` for a field path; it is
    appended to each field error so the user can find the field in the file.
    """
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or "")
    details = status.get("details") or {}
    causes = list(details.get("causes") or [])

    def located(cause: Mapping[str, Any]) -> str:
        text = cause_text(cause)
        pos = where(str(cause["field"])) if where and cause.get("field") else None
        return f"{text} ({pos})" if pos else text

    if reason == "Invalid" and causes:
        head = "The request is invalid"
        if details.get("kind") or details.get("name"):
            head = f'The {details.get("kind", "")} "{details.get("name", "")}" is invalid'
        if len(causes) == 1:
            return f"{head}: {located(causes[0])}\n"
        return f"{head}: \n" + "".join(f"* {located(c)}\n" for c in causes)
    if where:
        positions = [where(str(c["field"])) for c in causes if c.get("field")]
        found = [p for p in positions if p]
        if found:
            message = f"{message} ({found[0]})"
    if reason == "Unauthorized":
        return f"error: You must be logged in to the server ({message})\n"
    if reason:
        return f"Error from server ({reason}): {message}\n"
    return f"Error from server: {message}\n"
