"""kubectl's typed generators (`kubectl create deployment|service|configmap|secret|
cronjob|job|ingress`, `create job --from=cronjob/x`, `expose`) send protobuf;
the objects svcnet stores must hold every field that the same command's JSON
(`--dry-run=client -o json`) carries."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.kubectl.conftest import Daemon, Kubectl, make_kubectl

GENERATORS = [
    (["deployment", "web", "--image=nginx", "--replicas=2", "--port=80"], "deployment", "web"),
    (
        ["deployment", "cmd", "--image=gihyodocker/fundamental:0.1.0", "--", "sh", "-c", "sleep 9"],
        "deployment",
        "cmd",
    ),
    (["service", "clusterip", "web3", "--tcp=80:8080"], "service", "web3"),
    (["service", "externalname", "ext", "--external-name=example.com"], "service", "ext"),
    (["configmap", "c1", "--from-literal=a=b", "--from-literal=x=y"], "configmap", "c1"),
    (["secret", "generic", "s1", "--from-literal=p=q"], "secret", "s1"),
    (
        ["cronjob", "cj", "--image=busybox", "--schedule=*/5 * * * *", "--", "/bin/busybox"],
        "cronjob",
        "cj",
    ),
    # The job kubectl makes of the CronJob's template (owned by it, annotated).
    (["job", "manual", "--from=cronjob/cj"], "job", "manual"),
    (["job", "j1", "--image=busybox", "--", "/bin/busybox", "true"], "job", "j1"),
    (["ingress", "ing", "--rule=foo.example/bar*=web3:80,tls=s1"], "ingress", "ing"),
]


def missing(want: Any, got: Any, path: str = "") -> list[str]:
    """What of want (kubectl's JSON) is not in got (svcnet's object), field by field."""
    if isinstance(want, dict):
        out = []
        for key, v in want.items():
            if key in ("creationTimestamp", "status") or (v in ({}, None) and key not in got):
                continue
            if key not in got:
                out.append(f"{path}.{key}")
            else:
                out += missing(v, got[key], f"{path}.{key}")
        return out
    if isinstance(want, list):
        if len(want) != len(got):
            return [f"{path} has {len(got)} items, not {len(want)}"]
        return [
            m
            for i, (a, b) in enumerate(zip(want, got, strict=True))
            for m in missing(a, b, f"{path}[{i}]")
        ]
    return [] if want == got else [f"{path}: {got!r}, not {want!r}"]


@pytest.mark.slow
def test_typed_generators_and_expose(
    daemon: Daemon, kubectl_bin: tuple[str, str], tmp_path: Path
) -> None:
    k: Kubectl = make_kubectl(daemon, kubectl_bin[1], f"gen-{kubectl_bin[0]}", tmp_path)
    for args, kind, name in GENERATORS:
        out = k.ok("create", *args)
        assert out.endswith(" created\n"), out
        cut = args.index("--") if "--" in args else len(args)  # flags go before a command
        dry = [*args[:cut], "--dry-run=client", "-o", "json", *args[cut:]]
        want = json.loads(k.ok("create", *dry))
        got = json.loads(k.ok("get", kind, name, "-o", "json"))
        assert missing(want, got) == [], (args, got)
    # The tutorial's next step: expose the Deployment and reach it.
    assert k.ok("expose", "deployment", "web", "--port=80", "--type=NodePort") == (
        "service/web exposed\n"
    )
    svc = json.loads(k.ok("get", "svc", "web", "-o", "json"))
    assert svc["spec"]["selector"] == {"app": "web"} and svc["spec"]["ports"][0]["nodePort"]
    k.ok("rollout", "status", "deployment/web", "--timeout=60s")

    # kubectl's describe reads the EndpointSlices (an unnamed port once made it
    # panic); svcnet's own describe prints the same.
    def ours(*what: str) -> str:
        """svcnet's own describe of the same objects."""
        return daemon.svcnet("describe", *what, "-n", f"gen-{kubectl_bin[0]}")

    described = k.ok("describe", "svc", "web")
    assert re.search(r"\nEndpoints: +[\d.]+:80,[\d.]+:80\n", described), described
    assert ours("svc", "web") == described
    # The Deployment and its ReplicaSets as kubectl describes them (up to the
    # events, whose ages may tick between the two commands).
    for what in (["deployment", "web"], ["rs", "-l", "app=web"]):
        theirs = k.ok("describe", *what)
        assert ours(*what).split("Events:")[0] == theirs.split("Events:")[0], what
