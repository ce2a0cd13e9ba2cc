"""Argument handling that users rely on without reading the help."""

from __future__ import annotations

import argparse

import pytest

from svcnet.cli.get import UsageError, multiple_types_requested, parse_resources
from svcnet.k8s.kinds import lookup
from svcnet.main import build_parser


def test_repeated_selector_last_one_wins_like_pflag() -> None:
    args = build_parser().parse_args(["get", "pod", "-l", "app=echo", "-l", "release=spring"])
    assert args.selector == "release=spring"


def test_resource_arguments() -> None:
    svc, pod = lookup("svc"), lookup("pods")
    assert svc is not None and pod is not None
    queries = parse_resources(["svc,po", "echo"])
    assert [(q.kind, q.names) for q in queries] == [(svc, ("echo",)), (pod, ("echo",))]
    assert [q.kind.kind for q in parse_resources(["all"])] == [
        "Pod",
        "Service",
        "DaemonSet",
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "HorizontalPodAutoscaler",
        "CronJob",
        "Job",
    ]
    slash = parse_resources(["pod/a", "pod/b", "svc/echo"])
    assert [(q.kind.kind, q.names) for q in slash] == [
        ("Pod", ("a", "b")),
        ("Service", ("echo",)),
    ]
    with pytest.raises(UsageError, match='resource type "foo"'):
        parse_resources(["foo"])


def test_multiple_types_requested_is_about_the_words_typed() -> None:
    assert multiple_types_requested(["all"])
    assert multiple_types_requested(["svc,pods"])
    assert multiple_types_requested(["pod/a", "svc/b"])
    assert not multiple_types_requested(["svc", "echo"])
    assert not multiple_types_requested(["pod/a", "pod/b"])


def test_run_takes_everything_after_double_dash_verbatim(monkeypatch: pytest.MonkeyPatch) -> None:
    from svcnet.cli import main as cli_main

    seen: list[argparse.Namespace] = []

    def fake(args: argparse.Namespace, client: object) -> int:
        seen.append(args)
        return 0

    monkeypatch.setattr(cli_main, "_verb", lambda name: fake)
    argv = ["run", "debug", "--image=x", "-i", "--", "sh", "-c", "echo -n hi", "--rm"]
    assert cli_main.main(argv) == 0
    assert seen[0].args == ["sh", "-c", "echo -n hi", "--rm"]
    assert seen[0].rm is False and seen[0].stdin is True
