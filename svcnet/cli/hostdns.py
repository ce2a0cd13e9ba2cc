"""`svcnet dns`: send this machine's lookups of the cluster's zones to svcnet.

Pods get the cluster DNS in their resolv.conf; host programs (a browser, a
test runner outside `svcnet exec`) ask the machine's resolver, which knows
nothing of `cluster.local`. This prints, applies or undoes the split-DNS
setting of the resolver in use, so only the cluster's zones (and the seed's
`<svc>.<ns>.svc.local` names) go to svcnet's host-facing DNS address and everything else
stays as it was:

- systemd-resolved: a dummy link `svcnet0` carrying the DNS server and the
  routing-only domains `~cluster.local ~svc.local`, never the default route
  (`resolvectl`, as VPN clients do); undone by deleting the link;
- NetworkManager with its dnsmasq plugin, or dnsmasq itself: a file
  `svcnet.conf` in its conf dir with `server=/cluster.local/127.0.0.1#53`;
- macOS: one /etc/resolver/<zone> file per zone (resolver(5)).

Files it writes start with a marker line, and `undo` removes only such files.
`--root` writes under another root (for packaging, and tests); `--no-reload`
leaves restarting the resolver to you.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "# Written by `svcnet dns apply`; `svcnet dns undo` removes it."
LINK = "svcnet0"
RESOLVERS = ("systemd-resolved", "networkmanager", "dnsmasq", "macos")
DEFAULT_ZONES = ["cluster.local", "svc.local"]
"""The cluster domain, and of the seed's `local` alias only `svc.local` (where its
names live): all of `.local` would take mDNS names (printer.local) from the host."""


@dataclass
class Plan:
    resolver: str
    files: dict[str, str] = field(default_factory=dict)
    """Absolute path (before --root) -> content."""
    commands: list[list[str]] = field(default_factory=list)
    undo_commands: list[list[str]] = field(default_factory=list)
    reload: list[str] = field(default_factory=list)


def detect(root: Path) -> str:
    if sys.platform == "darwin":
        return "macos"
    if (root / "run/systemd/resolve").is_dir() and shutil.which("resolvectl"):
        return "systemd-resolved"
    if (root / "etc/NetworkManager/dnsmasq.d").is_dir():
        return "networkmanager"
    if (root / "etc/dnsmasq.d").is_dir():
        return "dnsmasq"
    raise SystemExit(
        "svcnet dns: found none of systemd-resolved, NetworkManager's dnsmasq, dnsmasq "
        "(/etc/dnsmasq.d) or macOS here; name one with --resolver"
    )


def plan(resolver: str, address: str, port: int, zones: list[str]) -> Plan:
    target = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    if resolver == "systemd-resolved":
        return Plan(
            resolver,
            commands=[
                ["ip", "link", "add", LINK, "type", "dummy"],
                ["ip", "link", "set", LINK, "up"],
                ["resolvectl", "dns", LINK, target],
                ["resolvectl", "domain", LINK, *(f"~{z}" for z in zones)],
                ["resolvectl", "default-route", LINK, "false"],
            ],
            undo_commands=[["ip", "link", "delete", LINK]],
        )
    if resolver in ("networkmanager", "dnsmasq"):
        lines = [MARKER, *(f"server=/{z}/{address}#{port}" for z in zones)]
        if resolver == "networkmanager":
            path, reload = "/etc/NetworkManager/dnsmasq.d/svcnet.conf", "NetworkManager"
        else:
            path, reload = "/etc/dnsmasq.d/svcnet.conf", "dnsmasq"
        return Plan(resolver, files={path: "\n".join(lines) + "\n"}, reload=[
            "systemctl", "reload" if reload == "NetworkManager" else "restart", reload
        ])  # fmt: skip
    if resolver == "macos":
        content = f"{MARKER}\nnameserver {address}\nport {port}\n"
        return Plan(resolver, files={f"/etc/resolver/{z}": content for z in zones})
    raise SystemExit(f"svcnet dns: unknown resolver {resolver!r} (one of {', '.join(RESOLVERS)})")


def _under(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def show(p: Plan, root: Path, undo: bool) -> str:
    out = [f"# {p.resolver}: {'undo' if undo else 'apply'} (as root)"]
    if undo:
        out += [f"rm {_under(root, f)}" for f in p.files]
        out += [" ".join(c) for c in p.undo_commands]
    else:
        for f, content in p.files.items():
            out.append(f"cat > {_under(root, f)} <<'EOF'\n{content}EOF")
        out += [" ".join(c) for c in p.commands]
    if p.reload:
        out.append(" ".join(p.reload))
    return "\n".join(out) + "\n"


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"svcnet dns: {' '.join(argv)} failed: {done.stderr.strip()}")


def execute(p: Plan, root: Path, undo: bool, reload: bool) -> list[str]:
    said = []
    for f, content in p.files.items():
        path = _under(root, f)
        if undo:
            try:
                if path.read_text().startswith(MARKER):
                    path.unlink()
                    said.append(f"removed {path}")
                else:
                    said.append(f"left {path}: svcnet did not write it")
            except FileNotFoundError:
                pass
            continue
        if path.exists() and not path.read_text().startswith(MARKER):
            raise SystemExit(
                f"svcnet dns: {path} exists and svcnet did not write it; not touching it"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".svcnet-tmp")
        tmp.write_text(content)
        os.replace(tmp, path)
        said.append(f"wrote {path}")
    for argv in p.undo_commands if undo else p.commands:
        if (
            undo
            and p.resolver == "systemd-resolved"
            and not Path(f"/sys/class/net/{LINK}").exists()
        ):
            continue  # nothing to undo
        if not undo and p.resolver == "systemd-resolved" and argv[:3] == ["ip", "link", "add"]:
            if Path(f"/sys/class/net/{LINK}").exists():
                continue  # applied before: set it again
        _run(argv)
        said.append("ran " + " ".join(argv))
    if reload and p.reload and p.files:
        _run(p.reload)
        said.append("ran " + " ".join(p.reload))
    return said


def hostdns(args: argparse.Namespace) -> int:
    root = Path(args.root)
    resolver = args.resolver if args.resolver != "auto" else detect(root)
    zones = args.zone or DEFAULT_ZONES
    p = plan(resolver, args.address, args.port, zones)
    undo = args.action == "undo"
    if args.action == "print":
        sys.stdout.write(show(p, root, undo=False))
        return 0
    if os.geteuid() != 0 and root == Path("/"):
        sys.stderr.write("svcnet dns: changing the resolver needs root: run it with sudo\n")
        return 1
    for line in execute(p, root, undo, reload=not args.no_reload):
        print(line)
    if not undo:
        print(f"{', '.join(zones)} now resolve through {args.address}:{args.port} ({resolver})")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", default="print", choices=["print", "apply", "undo"])
    p.add_argument("--resolver", default="auto", choices=["auto", *RESOLVERS])
    p.add_argument("--address", default="127.0.0.1", help="svcnet's host-facing DNS (dns.host)")
    p.add_argument("--port", type=int, default=53, help="its port (dns.port)")
    p.add_argument(
        "--zone",
        action="append",
        default=None,
        help="a zone to send (default: cluster.local, svc.local)",
    )
    p.add_argument("--root", default="/", help=argparse.SUPPRESS)
    p.add_argument("--no-reload", action="store_true", help="do not restart the resolver")
