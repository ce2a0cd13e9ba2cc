"""Argument handling that users rely on without reading the help."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from svcnet.cli.get import UsageError, multiple_types_requested, parse_resources
from svcnet.config import ConfigError
from svcnet.k8s.kinds import lookup
from svcnet.main import build_parser
from svcnet.up import build_settings


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
        "Deployment",
        "ReplicaSet",
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


def test_up_settings_from_dir_config_then_flags(tmp_path: Path) -> None:
    (tmp_path / "svcnet.yaml").write_text("api:\n  port: 7000\ndns:\n  port: 5300\n")
    argv = ["up", "-f", str(tmp_path), "--dns-port", "5353", "--nodeport-addresses", "127.0.0.1"]
    settings = build_settings(build_parser().parse_args(argv))
    assert settings.api.port == 7000  # from the file
    assert settings.dns.port == 5353  # the flag wins
    assert settings.network.node_port_addresses == ["127.0.0.1"]
    assert settings.manifests == [str(tmp_path)]


def test_up_refuses_non_loopback_cidr_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["up", "-f", "nowhere/", "--service-cidr", "10.96.0.0/12"])
    with pytest.raises(ConfigError):
        build_settings(args)
    from svcnet.up import up

    assert up(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "outside 127.0.0.0/8" in err
