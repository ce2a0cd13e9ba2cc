"""`wait`: block until objects meet a condition, as `kubectl wait` does.

``--for=condition=TYPE[=VALUE]`` (VALUE defaults to true; both compared without
case, as kubectl compares them), ``--for=delete``, ``--for=create`` and
``--for=jsonpath={.path}=VALUE`` (or just ``{.path}``: the field exists). Each
object met prints ``KIND/NAME condition met``; the first one that is not met
in ``--timeout`` (default 30s; 0 checks once, as kubectl does) ends the wait
with kubectl's ``timed out waiting for the condition on PLURAL/NAME``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from svcnet.cli import jsonpath
from svcnet.cli.client import ApiStatusError, Client, kind_name
from svcnet.k8s import kinds
from svcnet.k8s.kinds import Kind
from svcnet.k8s.objects import Obj

Check = Callable[[Obj | None], bool]
WEEK = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Condition:
    check: Check
    gone_ok: bool
    """Whether a missing object is what was waited for (delete)."""
    must_exist: bool
    """Whether a missing object is an error at once (condition, jsonpath)."""


def parse_for(text: str) -> Condition:
    """kubectl's --for forms; raises ValueError with its message."""
    low = text.lower()
    if low == "delete":
        return Condition(lambda o: o is None, gone_ok=True, must_exist=False)
    if low == "create":
        return Condition(lambda o: o is not None, gone_ok=False, must_exist=False)
    if low.startswith("condition="):
        spec = text[len("condition=") :]
        ctype, _, value = spec.partition("=")
        want = (value or "true").lower()
        if not ctype:
            raise ValueError(f'unrecognized condition: "{text}"')

        def has_condition(obj: Obj | None) -> bool:
            conds = ((obj or {}).get("status") or {}).get("conditions") or []
            return any(
                str(c.get("type", "")).lower() == ctype.lower()
                and str(c.get("status", "")).lower() == want
                for c in conds
                if isinstance(c, dict)
            )

        return Condition(has_condition, gone_ok=False, must_exist=True)
    if low.startswith("jsonpath="):
        spec = text[len("jsonpath=") :]
        if not spec.startswith("{") or "}" not in spec:
            raise ValueError(f'unrecognized condition: "{text}"')
        path, _, value = spec[1:].partition("}")
        has_value = value.startswith("=")
        want_value = value[1:]

        def matches(obj: Obj | None) -> bool:
            if obj is None:
                return False
            found = jsonpath.select(obj, path)
            if not has_value:
                return bool(found)
            return any(_text(v) == want_value for v in found)

        return Condition(matches, gone_ok=False, must_exist=True)
    raise ValueError(f'unrecognized condition: "{text}"')


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _targets(args: argparse.Namespace, client: Client) -> list[tuple[Kind, str]]:
    words: list[str] = list(args.resources)
    if words and all("/" in w for w in words):
        pairs = [tuple(w.split("/", 1)) for w in words]
    elif words and (len(words) >= 2 or args.selector is not None or args.all):
        pairs = [(words[0], n) for n in words[1:]]
        if not pairs:
            kind = _kind(words[0])
            query = {"labelSelector": args.selector} if args.selector else None
            items = client.get(kind.collection_path(args.namespace), query=query)["items"]
            return [(kind, str(i["metadata"]["name"])) for i in items]
    else:
        raise ValueError("resource(s) were provided, but no name was specified")
    return [(_kind(t), n) for t, n in pairs]


def _kind(word: str) -> Kind:
    kind = kinds.lookup(word)
    if kind is None:
        raise ValueError(f'the server doesn\'t have a resource type "{word}"')
    return kind


def wait(args: argparse.Namespace, client: Client) -> int:
    try:
        condition = parse_for(args.for_)
        targets = _targets(args, client)
    except (ValueError, jsonpath.JsonPathError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    if not targets:
        sys.stderr.write("error: no matching resources found\n")
        return 1
    timeout = WEEK if args.timeout < 0 else args.timeout
    deadline = time.monotonic() + timeout
    for kind, name in targets:
        ns = args.namespace if kind.namespaced else None
        if condition.must_exist:
            client.get(kind.object_path(ns, name))  # NotFound in kubectl's words
        left = max(0.0, deadline - time.monotonic())
        try:
            if left == 0:
                obj = _get(client, kind, ns, name)
                if not condition.check(obj):
                    raise TimeoutError
            else:
                client.wait_for(kind, ns, name, condition.check, timeout=left)
        except TimeoutError:
            sys.stderr.write(
                f"error: timed out waiting for the condition on {kind.plural}/{name}\n"
            )
            return 1
        print(f"{kind_name(kind)}/{name} condition met")
    return 0


def _get(client: Client, kind: Kind, ns: str | None, name: str) -> Obj | None:
    try:
        obj: Obj = client.get(kind.object_path(ns, name))
    except ApiStatusError as e:
        if e.code == 404:
            return None
        raise
    return obj
