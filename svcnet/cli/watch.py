"""`svcnet apply -f PATH --watch` (and `svcnet up --watch`): a dev loop.

After the first apply it looks at the files every POLL seconds (their size and
modification time; no inotify in the standard library, and a few hundred
stats a second cost nothing) and:

- when a manifest file changed, applies them all again as `svcnet apply`
  would (dry run first, so a broken file applies nothing and the running
  objects stay as they were) and prints one line per object that changed, or
  the same error `svcnet apply` prints;
- when a file that an image mapping of a svcnet.yaml among them runs changed
  (`example/web: [python3, app.py]` and app.py beside it), restarts the pods
  of that image: a Deployment's with `rollout restart` (so a Service keeps
  ready endpoints), a bare pod by deleting it and applying it again.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from svcnet.cli.apply import config_dir, file_beside
from svcnet.cli.client import ApiStatusError, Client
from svcnet.cli.rollout import restart_deployment
from svcnet.k8s import kinds
from svcnet.k8s.names import normalize_image
from svcnet.k8s.objects import Obj
from svcnet.manifest import Manifest, ManifestError, load_paths, manifest_files

POLL = 0.25
"""Seconds between two looks at the files: a change shows within about this."""
MAX_FILES = 10_000
"""Files watched at most (a -R over a huge tree is refused rather than crawled)."""

Stamp = dict[Path, tuple[int, int]]


def stamp(paths: list[Path]) -> Stamp:
    out: Stamp = {}
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            continue  # gone: it reads as a change
        out[p] = (st.st_mtime_ns, st.st_size)
    return out


def watched_manifests(args: argparse.Namespace) -> list[Path]:
    out: list[Path] = []
    for p in args.filename:
        if p != "-" and Path(p).exists():
            out.extend(manifest_files(Path(p), args.recursive))
    if len(out) > MAX_FILES:
        raise ManifestError(f"--watch: {len(out)} files is more than {MAX_FILES}")
    return out


def mapped_programs(configs: list[Manifest]) -> dict[Path, set[str]]:
    """Files that image mappings run, beside their svcnet.yaml: file -> images."""
    out: dict[Path, set[str]] = {}
    for m in configs:
        agent = m.obj.get("agent")
        images = agent.get("images") if isinstance(agent, dict) else None
        base = config_dir(m)
        if not isinstance(images, dict) or base is None:
            continue
        for name, spec in images.items():
            argv: list[object] = []
            if isinstance(spec, list):
                argv = list(spec)
            elif isinstance(spec, dict):
                argv = [*(spec.get("command") or []), *(spec.get("args") or [])]
            for arg in argv:
                path = file_beside(base, arg)
                if path is not None:
                    out.setdefault(path, set()).add(normalize_image(str(name)))
    return out


def run(
    args: argparse.Namespace,
    client: Client,
    apply_once: Callable[[list[Manifest]], list[str]],
) -> int:
    """Watch until interrupted; `apply_once(configs)` applies the files as
    `svcnet apply` does and returns its lines (raising its errors)."""
    manifests = watched_manifests(args)
    configs: list[Manifest] = []
    try:
        load_paths(args.filename, recursive=args.recursive, configs=configs)
    except ManifestError:
        pass  # already said by the first apply; watched until fixed
    programs = mapped_programs(configs)
    seen, seen_programs = stamp(manifests), stamp(list(programs))
    sys.stderr.write(
        f"svcnet: watching {len(manifests)} manifest file(s) and {len(programs)} program "
        "file(s); Ctrl-C stops\n"
    )
    sys.stderr.flush()
    while True:
        time.sleep(POLL)
        manifests = watched_manifests(args)
        now = stamp(manifests)
        if now != seen:
            seen = now
            configs = []
            try:
                for line in apply_once(configs):
                    if not line.endswith(" unchanged"):
                        print(line, flush=True)
            except (ManifestError, ApiStatusError) as e:
                sys.stderr.write(f"{e}\n" if not str(e).endswith("\n") else str(e))
                sys.stderr.flush()
                continue
            programs = mapped_programs(configs)
            # Files watched already keep the stamp they had: one edited while
            # the manifests were being applied is still seen as changed.
            fresh = stamp(list(programs))
            seen_programs = {p: seen_programs.get(p, st) for p, st in fresh.items()}
        now_programs = stamp(list(programs))
        if now_programs != seen_programs:
            changed = [p for p in programs if now_programs.get(p) != seen_programs.get(p)]
            seen_programs = now_programs
            images = set().union(*(programs[p] for p in changed))
            names = ", ".join(sorted(p.name for p in changed))
            for line in restart(client, args.namespace, images, apply_once):
                print(f"{line} ({names} changed)", flush=True)


def restart(
    client: Client,
    namespace: str,
    images: set[str],
    apply_once: Callable[[list[Manifest]], list[str]],
) -> list[str]:
    pod_kind, rs_kind, deploy_kind = (kinds.BY_KIND[k] for k in ("Pod", "ReplicaSet", "Deployment"))
    pods: list[Obj] = client.get(pod_kind.collection_path(namespace))["items"]
    deployments: set[str] = set()
    bare: list[str] = []
    for pod in pods:
        containers = (pod.get("spec") or {}).get("containers") or []
        if not any(normalize_image(str(c.get("image") or "")) in images for c in containers):
            continue
        md = pod["metadata"]
        owner = next((o for o in md.get("ownerReferences") or [] if o.get("controller")), None)
        if owner is not None and owner.get("kind") == "ReplicaSet":
            rs = client.get(rs_kind.object_path(namespace, owner["name"]))
            up = next(
                (o for o in rs["metadata"].get("ownerReferences") or [] if o.get("controller")),
                None,
            )
            if up is not None and up.get("kind") == "Deployment":
                deployments.add(str(up["name"]))
                continue
        if owner is None:
            bare.append(str(md["name"]))
        else:  # a controller without rollouts replaces what is deleted
            client.call("DELETE", pod_kind.object_path(namespace, md["name"]))
    lines = []
    for name in sorted(deployments):
        restart_deployment(client, deploy_kind, namespace, name, precise=True)
        lines.append(f"deployment.apps/{name} restarted")
    for name in bare:
        client.call("DELETE", pod_kind.object_path(namespace, name))
        client.wait_for(pod_kind, namespace, name, lambda o: o is None, timeout=60)
        lines.append(f"pod/{name} restarted")
    if bare:
        apply_once([])  # the bare pods come back from their files
    return lines
