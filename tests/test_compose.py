"""docker-compose.yml and the Dockerfile stay true to the CLI and to config/.

No Docker engine runs where these tests run, so the files are checked by
reading them: the compose command is a `svcnet up` that our own argument
parser accepts, pointing at paths the Dockerfile really copies, and every
port the daemon will listen on inside the container is published, on the
host's 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from svcnet.config import Settings, load
from svcnet.manifest import load_paths

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _service() -> dict[str, Any]:
    services = _compose()["services"]
    assert list(services) == ["svcnet"]
    svc = services["svcnet"]
    assert isinstance(svc, dict)
    return svc


def _command() -> list[str]:
    cmd = _service()["command"]
    argv = shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]
    return argv


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        instr, _, args = line.partition(" ")
        out.append((instr.upper(), args.strip()))
    return out


def _copied() -> dict[str, Path]:
    """Image path -> repository path for each COPY in the Dockerfile."""
    workdir = PurePosixPath("/")
    copied: dict[str, Path] = {}
    for instr, args in _dockerfile():
        if instr == "WORKDIR":
            workdir = workdir / args
        elif instr == "COPY":
            *sources, dest = args.split()
            assert not any(s.startswith("--") for s in sources), "COPY flags not expected"
            for src in sources:
                target = workdir / dest
                if dest.endswith(("/", "/.")) or dest == ".":  # into a directory
                    target = target / PurePosixPath(src).name
                copied[str(target).rstrip("/")] = ROOT / src
    return copied


def _up_args(argv: list[str]) -> argparse.Namespace | None:
    """Parse `svcnet up ...` with the CLI's own parser, or None if it has no build_parser."""
    from svcnet import main

    build = getattr(main, "build_parser", None)
    if build is None:
        return None
    parser = build()
    assert isinstance(parser, argparse.ArgumentParser)
    try:
        return parser.parse_args(argv[1:])
    except SystemExit as e:  # argparse reports unknown flags by exiting 2
        pytest.fail(f"svcnet's parser rejects the compose command {argv!r} (exit {e.code})")


def _flags(argv: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in argv if a.startswith("-")]


def _option(argv: list[str], *names: str) -> list[str]:
    values = []
    for i, a in enumerate(argv):
        for n in names:
            if a == n and i + 1 < len(argv):
                values.append(argv[i + 1])
            elif a.startswith(n + "="):
                values.append(a.split("=", 1)[1])
    return values


def _container_settings() -> Settings:
    """The settings the compose command gives the daemon, read from the repository."""
    argv = _command()
    copied = _copied()
    configs = _option(argv, "--config")
    if configs:
        return load(copied[configs[-1]])
    # As `svcnet up` does without --config: svcnet.yaml in the first -f directory.
    first = _option(argv, "-f", "--filename")[0]
    candidate = copied[first.rstrip("/")] / "svcnet.yaml"
    return load(candidate if candidate.is_file() else None)


def test_command_is_svcnet_up_on_the_copied_config() -> None:
    argv = _command()
    assert argv[:2] == ["svcnet", "up"]
    manifests = _option(argv, "-f", "--filename")
    assert manifests == ["/app/config"]
    copied = _copied()
    assert copied["/app/config"] == ROOT / "config"
    assert (ROOT / "config").is_dir()
    for path in _option(argv, "--config"):
        assert path in copied, f"--config {path} is not a file the Dockerfile copies"
        assert copied[path].is_file()


def test_dockerfile_is_python_slim_with_dig_and_curl_and_the_same_command() -> None:
    instrs = _dockerfile()
    assert instrs[0][0] == "FROM"
    assert instrs[0][1].startswith("python:3.11-slim")
    runs = " ".join(args for instr, args in instrs if instr == "RUN")
    assert "dnsutils" in runs and "curl" in runs
    assert "pip install" in runs
    cmds = [args for instr, args in instrs if instr == "CMD"]
    assert len(cmds) == 1
    assert yaml.safe_load(cmds[0]) == _command(), "Dockerfile CMD and compose command differ"
    # Everything the package build reads is copied before `pip install .`.
    for needed in ("pyproject.toml", "README.md", "svcnet"):
        assert (ROOT / needed).exists()
        assert any(p == ROOT / needed for p in _copied().values()), needed


def test_compose_flags_exist_in_the_cli() -> None:
    argv = _command()
    ns = _up_args(argv)
    if ns is not None:
        assert ns.verb == "up"
        assert ns.filename == ["/app/config"]
        return
    # No build_parser(): ask the installed CLI for its help and look for each flag.
    proc = subprocess.run(
        [sys.executable, "-m", "svcnet", "up", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    for flag in _flags(argv):
        assert flag in proc.stdout, f"`svcnet up --help` does not list {flag}"


def _published() -> list[tuple[str, int, int, str]]:
    """(host ip, host port, container port, protocol) for each published port."""
    out = []
    for entry in _service()["ports"]:
        if isinstance(entry, dict):  # long syntax
            out.append(
                (
                    str(entry.get("host_ip", "")),
                    int(entry["published"]),
                    int(entry["target"]),
                    str(entry.get("protocol", "tcp")),
                )
            )
            continue
        spec, _, proto = str(entry).partition("/")
        parts = spec.split(":")
        assert len(parts) == 3, f"{entry!r}: publish as HOST_IP:HOST_PORT:CONTAINER_PORT"
        out.append((parts[0], int(parts[1]), int(parts[2]), proto or "tcp"))
    return out


def test_ports_are_published_on_loopback_only() -> None:
    published = _published()
    assert published
    for host_ip, _, _, _ in published:
        assert host_ip == "127.0.0.1", "publish on the host's loopback only"
    host_side = {(port, proto) for _, port, _, proto in published}
    assert {(30026, "tcp"), (6443, "tcp"), (53, "udp"), (53, "tcp")} <= host_side


def test_every_container_listener_is_published() -> None:
    """API, DNS and each NodePort in config/ reach their container-side listener."""
    settings = _container_settings()
    targets = {(target, proto) for _, _, target, proto in _published()}
    assert (settings.api.port, "tcp") in targets
    assert (settings.dns.port, "udp") in targets
    assert (settings.dns.port, "tcp") in targets
    # Published ports arrive on the container's interface, not its loopback.
    assert settings.api.host in ("0.0.0.0", "::")
    assert settings.dns.host in ("0.0.0.0", "::")
    assert set(settings.network.node_port_addresses) & {"0.0.0.0", "::"}
    node_ports = [
        int(p["nodePort"])
        for m in load_paths([str(ROOT / "config")])
        if m.kind == "Service"
        for p in m.obj["spec"].get("ports") or ()
        if "nodePort" in p
    ]
    assert 30026 in node_ports
    for np in node_ports:
        assert (np, "tcp") in targets, f"nodePort {np} is not published"


def test_container_settings_are_valid() -> None:
    settings = _container_settings()
    settings.validate()
    # The kube-dns ClusterIP listens on :53 inside; a TCP wildcard there would collide.
    assert settings.dns.port != 53
