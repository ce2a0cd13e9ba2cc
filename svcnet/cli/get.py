"""`get`: the server renders Tables, the CLI only lays them out.

Columns and cells come from the API server's ``meta.k8s.io/v1`` Table (the
same one real kubectl receives), so `svcnet get` and `kubectl get` cannot
disagree about what a column means; this module only decides which tables to
ask for and how kubectl would arrange them: ``kind/`` name prefixes when more
than one type is involved, a ``NAMESPACE`` column with ``-A``, a blank line
between types, and "No resources found" on stderr.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from svcnet.cli import jsonpath
from svcnet.cli.client import ACCEPT_TABLE, ApiStatusError, Client, kind_name
from svcnet.cli.printer import (
    TableOptions,
    age,
    as_list,
    render_tables,
    status_error_text,
    to_json,
    to_yaml,
)
from svcnet.k8s import kinds
from svcnet.k8s.kinds import Kind
from svcnet.k8s.objects import Obj


class UsageError(ValueError):
    pass


@dataclass(frozen=True)
class Query:
    kind: Kind
    names: tuple[str, ...]  # empty: list the collection


def resolve_kind(word: str) -> Kind:
    kind = kinds.lookup(word)
    if kind is None:
        raise UsageError(f'the server doesn\'t have a resource type "{word}"')
    return kind


def parse_resources(words: list[str]) -> list[Query]:
    """`svc,pods [NAME...]`, `all`, or `TYPE/NAME ...`, in kubectl's order."""
    if not words:
        raise UsageError(
            'You must specify the type of resource to get. Use "svcnet get all" to list '
            "everything.\n\nerror: Required resource not specified."
        )
    if any("/" in w for w in words):
        queries: list[Query] = []
        for w in words:
            type_, _, name = w.partition("/")
            if not name:
                raise UsageError(
                    "there is no need to specify a resource type as a separate argument when "
                    "passing arguments in resource/name form (e.g. 'svcnet get "
                    "resource/<resource_name>' instead of 'svcnet get resource "
                    "resource/<resource_name>')"
                )
            kind = resolve_kind(type_)
            # Consecutive names of one type share a table, as in kubectl.
            if queries and queries[-1].kind == kind:
                queries[-1] = Query(kind, (*queries[-1].names, name))
            else:
                queries.append(Query(kind, (name,)))
        return queries
    types: list[Kind] = []
    for word in words[0].split(","):
        if not word:
            continue
        for kind in kinds.ALL_CATEGORY if word == "all" else (resolve_kind(word),):
            if kind not in types:
                types.append(kind)
    return [Query(k, tuple(words[1:])) for k in types]


def multiple_types_requested(words: list[str]) -> bool:
    """cli-runtime's MultipleTypesRequested, compared on the words as typed."""
    if len(words) == 1 and words[0] == "all":
        return True
    seen: set[str] = set()
    for w in words:
        if "/" in w:
            seen.add(w.partition("/")[0])
        elif w is words[0]:
            seen.update(t for t in w.split(",") if t)
    return len(seen) > 1


def _fallback_table(data: Obj) -> Obj:
    """What kubectl shows when a server ignores `as=Table`: NAME and AGE only."""
    items = data.get("items") if "items" in data else [data]
    return {
        "kind": "Table",
        "columnDefinitions": [
            {"name": "Name", "format": "name", "priority": 0},
            {"name": "Age", "format": "", "priority": 0},
        ],
        "rows": [
            {
                "cells": [
                    (i.get("metadata") or {}).get("name", ""),
                    age((i.get("metadata") or {}).get("creationTimestamp")),
                ],
                "object": {"metadata": i.get("metadata") or {}},
            }
            for i in items or []
        ],
    }


def _as_table(data: Any) -> Obj:
    if isinstance(data, dict) and data.get("kind") == "Table":
        return data
    return _fallback_table(data if isinstance(data, dict) else {})


OUTPUTS = ("", "wide", "yaml", "json", "name")


def get(args: argparse.Namespace, client: Client) -> int:
    words: list[str] = args.resources
    if args.output not in OUTPUTS and not args.output.startswith("jsonpath="):
        sys.stderr.write(
            f'error: unable to match a printer suitable for the output format "{args.output}", '
            "allowed formats are: json,jsonpath,name,wide,yaml\n"
        )
        return 1
    try:
        queries = parse_resources(words)
        if args.all_namespaces and any(q.names for q in queries):
            raise UsageError("a resource cannot be retrieved by name across all namespaces")
    except UsageError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    namespace = None if args.all_namespaces else args.namespace
    query = {"labelSelector": args.selector}
    errors: list[ApiStatusError] = []

    if args.output in ("", "wide"):
        tables: list[tuple[Kind, Obj]] = []
        for q in queries:
            ns = namespace if q.kind.namespaced else None
            if not q.names:
                data = client.get(
                    q.kind.collection_path(ns), query={**query, "limit": 500}, accept=ACCEPT_TABLE
                )
                tables.append((q.kind, _as_table(data)))
                continue
            merged: Obj | None = None
            for name in q.names:
                try:
                    one = _as_table(client.get(q.kind.object_path(ns, name), accept=ACCEPT_TABLE))
                except ApiStatusError as e:
                    errors.append(e)
                    continue
                if merged is None:
                    merged = one
                else:
                    merged["rows"] = [*(merged.get("rows") or []), *(one.get("rows") or [])]
            if merged is not None:
                tables.append((q.kind, merged))
        printed_kinds = {k for k, t in tables if t.get("rows")}
        with_kind = multiple_types_requested(words) or len(printed_kinds) > 1
        out = render_tables(
            [
                (
                    table,
                    TableOptions(
                        wide=args.output == "wide",
                        with_namespace=bool(args.all_namespaces) and kind.namespaced,
                        kind_prefix=f"{kind_name(kind)}/" if with_kind else "",
                        show_labels=args.show_labels,
                    ),
                )
                for kind, table in tables
            ]
        )
        sys.stdout.write(out)
        found = bool(printed_kinds)
    else:
        objects: list[Obj] = []
        for q in queries:
            ns = namespace if q.kind.namespaced else None
            if not q.names:
                data = client.get(q.kind.collection_path(ns), query=query) or {}
                for item in data.get("items") or []:
                    item.setdefault("apiVersion", q.kind.api_version)
                    item.setdefault("kind", q.kind.kind)
                    objects.append(item)
                continue
            for name in q.names:
                try:
                    objects.append(client.get(q.kind.object_path(ns, name)))
                except ApiStatusError as e:
                    errors.append(e)
        # Machine-readable output says nothing about an empty result (an
        # empty List is the answer), as kubectl's generic printer does.
        found = True
        single = len(queries) == 1 and len(queries[0].names) == 1 and not args.all_namespaces
        if args.output == "name":
            for obj in objects:
                kind = kinds.BY_KIND.get(str(obj.get("kind")))
                prefix = kind_name(kind) if kind else str(obj.get("kind", "")).lower()
                print(f"{prefix}/{(obj.get('metadata') or {}).get('name', '')}")
        elif objects or not single:
            doc: Obj = objects[0] if single and objects else as_list(objects)
            if args.output.startswith("jsonpath="):
                template = args.output[len("jsonpath=") :]
                try:
                    sys.stdout.write(jsonpath.render(template, doc))
                except jsonpath.JsonPathError as e:
                    sys.stderr.write(f"error: error parsing jsonpath {template}, {e}\n")
                    return 1
            else:
                sys.stdout.write(to_json(doc) if args.output == "json" else to_yaml(doc))
    sys.stdout.flush()

    if not found and not errors:
        where = "" if args.all_namespaces else f" in {args.namespace} namespace"
        sys.stderr.write(f"No resources found{where}.\n")
    for err in errors:
        sys.stderr.write(status_error_text(err.status))
    return 1 if errors else 0
