"""`limit` and `continue` on lists, as kube-apiserver's etcd storage pages them.

A page holds at most `limit` items in key order (etcd's: `namespace/name`, or
`name` for cluster-scoped kinds); when more keys follow, the List's
`metadata.continue` is an opaque token and, for a list without selectors,
`metadata.remainingItemCount` counts them. The token is k8s.io/apiserver's own
encoding (base64url of `{"v":"meta.k8s.io/v1","rv":N,"start":"<key>\\x00"}`), so
every page of one list shows the cluster as it was at the first page's
resourceVersion: later pages are read from the store's change history rolled
back to that version, as etcd serves an old revision. A token older than that
history gets etcd's compaction answer, 410 Expired with a token to carry on at
the current version (rv -1); a garbled one gets the 400 kube-apiserver gives.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from svcnet.k8s.kinds import Kind
from svcnet.k8s.objects import Obj
from svcnet.registry import ApiError
from svcnet.registry.errors import bad_request, internal
from svcnet.store import ReadOnlyStore

TOKEN_VERSION = "meta.k8s.io/v1"
MAX_TOKEN = 4096
"""Longest continue token read (a key is at most a namespace and a name)."""

INVALID_KEY = "continue key is not valid"
INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter, or use the continue token "
    "in this response to retrieve the remainder of the results. Continuing with the "
    "provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may show "
    "up in the list."
)
SelectFn = Callable[[list[Obj]], list[Obj]]
"""Filters items by a request's label and field selectors."""

_B64URL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class Page:
    items: list[Obj]
    resource_version: int
    continue_token: str | None
    remaining: int | None


def key_of(obj: Obj, kind: Kind, namespace: str | None) -> str:
    """The object's etcd key below the list's prefix: `/registry/pods/` lists every
    namespace (`ns/name`), `/registry/pods/ns/` one (`name`)."""
    md = obj["metadata"]
    name = str(md["name"])
    return f"{md.get('namespace', '')}/{name}" if kind.namespaced and namespace is None else name


def encode(start: str, rv: int) -> str:
    data = json.dumps({"v": TOKEN_VERSION, "rv": rv, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def decode(token: str) -> tuple[str, int]:
    """(start key below the kind's prefix, resourceVersion) of a token; 400 if it is
    not one this server wrote (apiserver's storage.DecodeContinue)."""
    if len(token) > MAX_TOKEN:
        raise _invalid(f"{INVALID_KEY}: token longer than {MAX_TOKEN} bytes")
    raw = token.encode()
    bad = next((i for i, b in enumerate(raw) if b not in _B64URL), None)
    if bad is None and len(raw) % 4 == 1:
        bad = len(raw) - 1  # a lone trailing character, as Go's decoder reports it
    if bad is not None:
        raise _invalid(f"{INVALID_KEY}: illegal base64 data at input byte {bad}")
    try:
        data = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
        c = json.loads(data)
    except (binascii.Error, ValueError, RecursionError):
        raise _invalid(f"{INVALID_KEY}: invalid character looking for beginning of value") from None
    if not isinstance(c, dict):
        raise _invalid(
            f"{INVALID_KEY}: json: cannot unmarshal {type(c).__name__} into Go value of type "
            "storage.continueToken"
        )
    version, rv, start = c.get("v"), c.get("rv"), c.get("start")
    if version != TOKEN_VERSION:
        raise _invalid(
            f"continue key is not valid: server does not recognize this encoded version "
            f"{version if isinstance(version, str) else ''}"
        )
    if not isinstance(rv, int) or isinstance(rv, bool) or rv == 0:
        raise _invalid(
            f"{INVALID_KEY}: incorrect encoded start resourceVersion (version {TOKEN_VERSION})"
        )
    if not isinstance(start, str) or not start:
        raise _invalid(f"{INVALID_KEY}: encoded start key empty")
    # Path traversal out of the kind's prefix is refused as the apiserver does.
    parts = start.lstrip("/").split("/")
    if start.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise _invalid(f"{INVALID_KEY}: {start}")
    return start, rv


def _invalid(message: str) -> ApiError:
    return bad_request(f"invalid continue token: {message}")


def snapshot(store: ReadOnlyStore, kind: Kind, namespace: str | None, rv: int) -> list[Obj]:
    """The kind's objects (in one namespace or all) as they were at rv, rolled back
    from the store's history; 410 Expired when history no longer reaches rv."""
    current = store.resource_version
    items = store.list(kind.kind, namespace)
    if rv == current:
        return items
    if rv > current:
        raise internal("etcdserver: mvcc: required revision is a future revision")
    events = store.events_since(rv)
    if events is None:
        raise _Expired()
    by_key = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in items}
    for ev in reversed(events):
        if ev.kind != kind.kind or (namespace is not None and ev.namespace != namespace):
            continue
        key = (ev.namespace, ev.name)
        if ev.type == "ADDED":
            by_key.pop(key, None)
        elif ev.type == "MODIFIED" and ev.old is not None:
            by_key[key] = ev.old
        elif ev.type == "DELETED":
            by_key[key] = ev.obj
    return list(by_key.values())


class _Expired(Exception):
    """History no longer reaches the token's resourceVersion."""


@dataclass
class ExpiredContinue(ApiError):
    """etcd's answer to a compacted continue: 410 with a token that carries on from
    the same key at the current resourceVersion."""

    token: str = ""

    def status(self) -> dict[str, Any]:
        out = super().status()
        out["metadata"] = {"continue": self.token}
        return out


def page(
    store: ReadOnlyStore,
    kind: Kind,
    namespace: str | None,
    limit: int | None,
    token: str | None,
    resource_version: str | None,
    select: SelectFn,
    selectors: bool,
) -> Page:
    """One page of a list: `select` filters by the request's selectors; `selectors`
    says whether it has any (then the remaining count is not known, as in etcd)."""
    start = ""
    rv = store.resource_version
    if token:
        if resource_version and resource_version != "0":
            raise bad_request("specifying resource version is not allowed when using continue")
        start, token_rv = decode(token)
        if token_rv > 0:
            rv = token_rv
        try:
            everything = snapshot(store, kind, namespace, rv)
        except _Expired:
            raise ExpiredContinue(
                410, "Expired", INCONSISTENT_CONTINUE, token=encode(start, -1)
            ) from None
    else:
        everything = store.list(kind.kind, namespace)
        if resource_version == "0":
            # resourceVersion=0 is served from the watch cache, which ignores limit.
            limit = None
    if not start and (not limit or limit <= 0):
        # The common whole list: the store's order, no keys to sort (a hot path).
        return Page(select(everything), rv, None, None)
    keyed = [(key_of(o, kind, namespace), o) for o in everything]
    keyed.sort(key=lambda ko: ko[0].encode())
    if start:
        keyed = [ko for ko in keyed if ko[0].encode() >= start.encode()]
    if not limit or limit <= 0:
        return Page(select([o for _, o in keyed]), rv, None, None)
    items: list[Obj] = []
    last = -1
    for i, (_, obj) in enumerate(keyed):
        if len(items) >= limit:
            break
        if select([obj]):
            items.append(obj)
            last = i
    more = last >= 0 and last + 1 < len(keyed) and len(items) >= limit
    if not more:
        return Page(items, rv, None, None)
    following = len(keyed) - last - 1
    return Page(
        items,
        rv,
        encode(keyed[last][0] + "\x00", rv),
        None if selectors else following,
    )
