"""`logs`: pick the pods and containers as kubectl does, then copy the log streams.

What to read: a pod name or `pod/NAME`; `deploy/NAME`, `rs/NAME` or `svc/NAME`
(one of the pods their selector picks, running and ready ones first, with
kubectl's `Found N pods, using pod/X` note); or `-l SELECTOR` (every matching
pod, at most `--max-log-requests` streams when following). The container
choice happens client-side (the server answers a multi-container pod without
`container=` with a 400): `--all-containers`, `-c`, else the
`kubectl.kubernetes.io/default-container` annotation, else the first
container with a `Defaulted container ...` note on stderr. `--prefix` starts
each line with `[pod/NAME/CONTAINER] `.
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any

from svcnet.cli.client import ApiStatusError, Client, kind_name
from svcnet.k8s import kinds
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


MAX_LINE = 1 << 20
"""A prefixed line longer than this is cut in pieces, each prefixed (bounded memory)."""


def stream_log(
    client: Client,
    namespace: str,
    pod: str,
    query: dict[str, Any],
    prefix: bytes = b"",
    lock: threading.Lock | None = None,
) -> None:
    out = sys.stdout.buffer
    lock = lock or threading.Lock()
    pending = b""
    with client.stream(POD.object_path(namespace, pod) + "/log", query, accept="*/*") as resp:
        while True:
            chunk = resp.read1(65536)
            if not chunk:
                break
            if not prefix:
                with lock:
                    out.write(chunk)
                    out.flush()
                continue
            pending += chunk
            lines = pending.split(b"\n")
            pending = lines.pop()
            while len(pending) > MAX_LINE:
                lines.append(pending[:MAX_LINE])
                pending = pending[MAX_LINE:]
            if lines:
                with lock:
                    out.write(b"".join(prefix + line + b"\n" for line in lines))
                    out.flush()
    if pending:
        with lock:
            out.write(prefix + pending + b"\n")
            out.flush()


class LogsError(Exception):
    pass


def _not_found(e: ApiStatusError, namespace: str) -> LogsError:
    # kubectl's own (odd) casing and suffix for this one message.
    return LogsError(f'error: error from server (NotFound): {e.message} in namespace "{namespace}"')


def _by_logging(pod: Obj) -> tuple[int, int, int, str]:
    """podutils.ByLogging, roughly: scheduled, running, ready, then older first."""
    st = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or ()
    )
    phase_rank = {"Running": 0, "Unknown": 1, "Pending": 2}.get(str(st.get("phase")), 3)
    scheduled = 0 if (pod.get("spec") or {}).get("nodeName") else 1
    created = str(pod["metadata"].get("creationTimestamp") or "")
    return (scheduled, phase_rank, 0 if ready else 1, created)


def _selector_of(obj: Obj) -> str:
    spec = obj.get("spec") or {}
    sel = spec.get("selector") or {}
    if obj.get("kind") == "Service":
        match = sel
    else:
        if sel.get("matchExpressions"):
            raise LogsError("error: matchExpressions selectors are not supported here")
        match = sel.get("matchLabels") or {}
    if not match:
        raise LogsError(f"error: {str(obj.get('kind')).lower()} has no selector")
    return ",".join(f"{k}={v}" for k, v in sorted(match.items()))


def _list_pods(client: Client, namespace: str, selector: str) -> list[Obj]:
    items: list[Obj] = client.get(
        POD.collection_path(namespace), query={"labelSelector": selector}
    )["items"]
    return items


def pods_to_read(args: argparse.Namespace, client: Client) -> list[Obj]:
    ns = args.namespace
    if args.selector is not None:
        if args.pod:
            raise LogsError("error: only one of a selector or a resource name may be given")
        return _list_pods(client, ns, args.selector)
    if not args.pod:
        raise LogsError("error: expected POD, TYPE/NAME, or -l SELECTOR")
    type_, slash, name = args.pod.partition("/")
    kind = kinds.lookup(type_) if slash else POD
    if kind is None:
        raise LogsError(f'error: the server doesn\'t have a resource type "{type_}"')
    name = name if slash else args.pod
    try:
        obj: Obj = client.get(kind.object_path(ns, name))
    except ApiStatusError as e:
        if e.code == 404 and kind is POD:
            raise _not_found(e, ns) from None
        raise
    if kind is POD:
        return [obj]
    if kind.kind not in ("Deployment", "ReplicaSet", "Service", "StatefulSet", "DaemonSet"):
        raise LogsError(f"error: cannot get the logs from {kind_name(kind)}")
    pods = sorted(_list_pods(client, ns, _selector_of(obj)), key=_by_logging)
    if not pods:
        raise LogsError(f"error: no pods found for {kind_name(kind)}/{name}")
    if len(pods) > 1:
        sys.stderr.write(f"Found {len(pods)} pods, using pod/{pods[0]['metadata']['name']}\n")
    return pods[:1]


def _containers(args: argparse.Namespace, pod: Obj, several: bool) -> list[str]:
    spec = pod.get("spec") or {}
    if args.all_containers:
        return [
            str(c.get("name"))
            for group in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(group) or ()
        ]
    return [args.container or default_container(pod, warn=not several)]


def logs(args: argparse.Namespace, client: Client) -> int:
    try:
        pods = pods_to_read(args, client)
    except LogsError as e:
        sys.stderr.write(f"{e}\n")
        return 1
    if not pods:
        sys.stderr.write(f"No resources found in {args.namespace} namespace.\n")
        return 0
    several = len(pods) > 1
    streams = [(p, c) for p in pods for c in _containers(args, p, several)]
    if args.follow and len(streams) > args.max_log_requests:
        sys.stderr.write(
            f"error: you are attempting to follow {len(streams)} log streams, but maximum "
            f"allowed concurrency is {args.max_log_requests}, use --max-log-requests to "
            "increase the limit\n"
        )
        return 1
    base: dict[str, Any] = {}
    if args.follow:
        base["follow"] = "true"
    if args.tail >= 0:
        base["tailLines"] = args.tail
    elif args.selector is not None:
        base["tailLines"] = 10  # kubectl's default with a selector
    if args.timestamps:
        base["timestamps"] = "true"
    if args.previous:
        base["previous"] = "true"
    lock = threading.Lock()

    def one(pod: Obj, container: str) -> None:
        name = str(pod["metadata"]["name"])
        prefix = f"[pod/{name}/{container}] ".encode() if args.prefix else b""
        query = dict(base, container=container or None)
        stream_log(client, args.namespace, name, query, prefix, lock)

    if not args.follow or len(streams) == 1:
        for pod, container in streams:
            one(pod, container)
        return 0
    # Following several streams: each on its own connection, interleaved by line.
    errors: list[BaseException] = []

    def run(pod: Obj, container: str) -> None:
        try:
            one(pod, container)
        except (ApiStatusError, OSError) as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=s, daemon=True) for s in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return 0
