"""`svcnet up`: settings from the file beside the manifests, then flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from svcnet.config import ConfigError
from svcnet.main import build_parser
from svcnet.up import build_settings


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


def test_image_flags_map_images_over_the_file(tmp_path: Path) -> None:
    (tmp_path / "svcnet.yaml").write_text(
        "agent:\n  images:\n    example/web: [sleep, '1']\n    example/db: [redis-server]\n"
    )
    argv = ["up", "-f", str(tmp_path), "--image", "example/web=python3 -m http.server '80 80'"]
    settings = build_settings(build_parser().parse_args(argv))
    assert settings.agent.images == {
        "example/web": ["python3", "-m", "http.server", "80 80"],
        "example/db": ["redis-server"],
    }
    for bad in ("example/web", "example/web=", "=python3"):
        args = build_parser().parse_args(["up", "-f", str(tmp_path), "--image", bad])
        with pytest.raises(ConfigError) as err:
            build_settings(args)
        assert str(err.value) == f"--image {bad!r}: expected IMAGE=COMMAND [ARG...]"
