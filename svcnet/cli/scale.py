"""`scale` and `version`: one request each, kubectl's output lines."""

from __future__ import annotations

import argparse
import sys

from svcnet import __version__
from svcnet.cli.client import ApiStatusError, Client, kind_name
from svcnet.k8s import kinds
from svcnet.k8s.media import MERGE_PATCH


def scale(args: argparse.Namespace, client: Client) -> int:
    words: list[str] = args.resources
    if any("/" in w for w in words):
        pairs = [(w.partition("/")[0], w.partition("/")[2]) for w in words]
    elif len(words) >= 2:
        pairs = [(words[0], name) for name in words[1:]]
    else:
        sys.stderr.write("error: resource(s) were provided, but no name was specified\n")
        return 1
    if args.replicas < 0:
        sys.stderr.write("error: The --replicas=COUNT flag is required, and COUNT must be >= 0\n")
        return 1
    for type_, name in pairs:
        kind = kinds.lookup(type_)
        if kind is None:
            sys.stderr.write(f'error: the server doesn\'t have a resource type "{type_}"\n')
            return 1
        if kind.kind not in ("ReplicaSet", "Deployment"):
            sys.stderr.write(f'error: cannot scale {kind_name(kind)} "{name}"\n')
            return 1
        path = kind.object_path(args.namespace, name)
        client.get(path)  # kubectl's GET first: a missing object is NotFound, not a scale error
        patch = {"spec": {"replicas": args.replicas}}
        try:
            client.call("PATCH", path + "/scale", body=patch, content_type=MERGE_PATCH)
        except ApiStatusError as e:
            # A server without the scale subresource: the same merge patch on
            # the object itself has the same effect.
            if e.code not in (404, 405):
                raise
            client.call("PATCH", path, body=patch, content_type=MERGE_PATCH)
        print(f"{kind_name(kind)}/{name} scaled")
    return 0


def version(args: argparse.Namespace, client: Client) -> int:
    print(f"Client Version: v{__version__}")
    info = client.get("/version") or {}
    print(f"Server Version: {info.get('gitVersion', 'unknown')}")
    return 0
