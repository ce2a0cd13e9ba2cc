"""`set image KIND/NAME CONTAINER=IMAGE ...`: kubectl's strategic merge patch
with `$setElementOrder/containers` (reference/kubectl-api.md section 3)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from svcnet.cli.client import Client, kind_name
from svcnet.k8s import kinds
from svcnet.k8s.media import STRATEGIC_MERGE_PATCH
from svcnet.k8s.objects import Obj


def add_arguments(sub: Any, plain: argparse.ArgumentParser) -> None:
    p = sub.add_parser("set", help="set fields of objects")
    verbs = p.add_subparsers(dest="set_verb", metavar="VERB")
    verbs.required = True
    i = verbs.add_parser("image", parents=[plain], help="update the images of a pod template")
    i.add_argument("words", nargs="+", metavar="KIND/NAME CONTAINER=IMAGE")


def set_image(args: argparse.Namespace, client: Client) -> int:
    refs = [w for w in args.words if "=" not in w]
    pairs = [w.partition("=") for w in args.words if "=" in w]
    images = {c: img for c, _, img in pairs}
    if not images:
        sys.stderr.write("error: at least one image update is required\n")
        return 1
    if any("/" in r for r in refs):
        targets = [(r.partition("/")[0], r.partition("/")[2]) for r in refs]
    elif len(refs) >= 2:
        targets = [(refs[0], n) for n in refs[1:]]
    else:
        sys.stderr.write(
            "error: one or more resources must be specified as <resource> <name> or "
            "<resource>/<name>\n"
        )
        return 1
    for type_, name in targets:
        kind = kinds.lookup(type_)
        if kind is None:
            sys.stderr.write(f'error: the server doesn\'t have a resource type "{type_}"\n')
            return 1
        path = kind.object_path(args.namespace, name)
        obj = client.get(path)
        pod_spec = obj["spec"] if kind.kind == "Pod" else obj["spec"]["template"]["spec"]
        containers = [str(c["name"]) for c in pod_spec.get("containers") or ()]
        changed = []
        for cname, image in images.items():
            names = containers if cname == "*" else [cname]
            if cname != "*" and cname not in containers:
                sys.stderr.write(f'error: unable to find container named "{cname}"\n')
                return 1
            changed += [{"image": image, "name": n} for n in names]
        spec_patch: Obj = {
            "$setElementOrder/containers": [{"name": n} for n in containers],
            "containers": changed,
        }
        patch: Obj = (
            {"spec": spec_patch}
            if kind.kind == "Pod"
            else {"spec": {"template": {"spec": spec_patch}}}
        )
        client.call(
            "PATCH",
            path,
            query={"fieldManager": "kubectl-set"},
            body=patch,
            content_type=STRATEGIC_MERGE_PATCH,
        )
        print(f"{kind_name(kind)}/{name} image updated")
    return 0
