"""`logs`: pick the container as kubectl does, then copy the log stream to stdout.

The container choice happens client-side (the server answers a multi-container
pod without `container=` with a 400): `-c`, else the
`kubectl.kubernetes.io/default-container` annotation, else the first
container with a `Defaulted container ...` note on stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from svcnet.cli.client import ApiStatusError, Client
from svcnet.k8s.kinds import BY_KIND
from svcnet.k8s.objects import Obj
from svcnet.k8s.wellknown import DEFAULT_CONTAINER

POD = BY_KIND["Pod"]


def all_container_names(pod: Obj) -> str:
    spec = pod.get("spec") or {}
    names = [str(c.get("name")) for c in spec.get("containers") or []]
    names += [f"{c.get('name')} (ephem)" for c in spec.get("ephemeralContainers") or []]
    names += [f"{c.get('name')} (init)" for c in spec.get("initContainers") or []]
    return ", ".join(names)


def default_container(pod: Obj, warn: bool = True) -> str:
    """podcmd.FindOrDefaultContainerByName for an unnamed container."""
    containers = (pod.get("spec") or {}).get("containers") or []
    names = [str(c.get("name")) for c in containers]
    annotated = ((pod.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CONTAINER)
    if annotated and annotated in names:
        return str(annotated)
    if not names:
        return ""
    if warn and len(names) > 1:
        sys.stderr.write(f'Defaulted container "{names[0]}" out of: {all_container_names(pod)}\n')
    return names[0]


def stream_log(client: Client, namespace: str, pod: str, query: dict[str, Any]) -> None:
    out = sys.stdout.buffer
    with client.stream(POD.object_path(namespace, pod) + "/log", query, accept="*/*") as resp:
        while True:
            chunk = resp.read1(65536)
            if not chunk:
                break
            out.write(chunk)
            out.flush()


def logs(args: argparse.Namespace, client: Client) -> int:
    try:
        pod = client.get(POD.object_path(args.namespace, args.pod))
    except ApiStatusError as e:
        if e.code == 404:
            # kubectl's own (odd) casing and suffix for this one message.
            sys.stderr.write(
                f"error: error from server (NotFound): {e.message} in namespace "
                f'"{args.namespace}"\n'
            )
            return 1
        raise
    container = args.container or default_container(pod)
    query: dict[str, Any] = {"container": container or None}
    if args.follow:
        query["follow"] = "true"
    if args.tail >= 0:
        query["tailLines"] = args.tail
    if args.timestamps:
        query["timestamps"] = "true"
    if args.previous:
        query["previous"] = "true"
    stream_log(client, args.namespace, args.pod, query)
    return 0
