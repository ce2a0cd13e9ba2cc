"""`svcnet up`: settings from file and flags, then the daemon in the foreground.

This is the server side of the `svcnet` command; ``svcnet.cli`` is the
client side (the kubectl-shaped verbs) and never imports it. ``svcnet.main``
puts the two together (docs/architecture.md, "Floors").

Precedence is defaults < config file < flags. The config file is the one
named by ``--config``, else ``svcnet.yaml`` inside the first ``-f``
directory (so `svcnet up -f config/` picks up `config/svcnet.yaml` the way a
project keeps its settings beside its manifests). The daemon module is
imported only here, once the settings are known to be valid.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from svcnet.config import CONFIG_FILE_NAME, ConfigError, Settings, load

DEFAULT_MANIFESTS = "config/"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-f",
        "--filename",
        action="append",
        default=None,
        metavar="PATH",
        help=f"manifest file or directory to apply at start-up (default: {DEFAULT_MANIFESTS} "
        "when there is one here; without it, an empty cluster)",
    )
    p.add_argument("--config", default=None, metavar="FILE", help="settings file (svcnet.yaml)")
    p.add_argument(
        "--watch",
        action="store_true",
        help="apply the manifests again as they change, restart pods whose mapped "
        "program files change (as svcnet apply --watch)",
    )
    p.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="IMAGE=COMMAND",
        help="run containers of IMAGE as COMMAND (split as a shell would), over "
        "agent.images; repeatable",
    )
    p.add_argument("--dns-port", type=int, default=None, metavar="N", help="dns.port")
    p.add_argument(
        "--dns-host", default=None, metavar="ADDR", help="dns.host: the host-facing DNS address"
    )
    p.add_argument(
        "--dns-cluster-port",
        type=int,
        default=None,
        metavar="N",
        help="dns.cluster_port: the kube-dns Service's port on its ClusterIP",
    )
    p.add_argument("--api-port", type=int, default=None, metavar="N")
    p.add_argument(
        "--ingress-address",
        default=None,
        metavar="ADDR",
        help="ingress.address: where the ingress controller listens (a loopback address)",
    )
    p.add_argument("--ingress-http-port", type=int, default=None, metavar="N")
    p.add_argument("--ingress-https-port", type=int, default=None, metavar="N")
    p.add_argument("--service-cidr", default=None, metavar="CIDR")
    p.add_argument("--pod-cidr", default=None, metavar="CIDR")
    p.add_argument("--lb-cidr", default=None, metavar="CIDR")
    p.add_argument("--nodeport-addresses", default=None, metavar="A,B")
    p.add_argument("--upstream-dns", action="append", default=None, metavar="ADDR")
    p.add_argument(
        "--socket-lb",
        choices=["host", "pods", "off"],
        default=None,
        help="proxy.socket_lb: Service balancing at connect() for pods and this machine "
        "(host), pods only, or off (the userspace proxy alone)",
    )
    p.add_argument(
        "--state-dir",
        default=None,
        metavar="DIR",
        help="the cluster's state directory (default: ~/.local/state/svcnet/<api host>-<port>)",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="start with no objects but the manifests (forget what the last run kept)",
    )
    p.add_argument(
        "--dns-log-queries",
        action="store_true",
        help="log one line per DNS query (CoreDNS' log format) on stderr",
    )
    p.add_argument(
        "-v",
        "--log-level",
        nargs="?",
        const="DEBUG",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level (-v alone means DEBUG)",
    )


def config_file_for(args: argparse.Namespace) -> Path | None:
    if args.config:
        return Path(args.config)
    first = Path((args.filename or [DEFAULT_MANIFESTS])[0])
    candidate = first / CONFIG_FILE_NAME
    return candidate if first.is_dir() and candidate.is_file() else None


def build_settings(args: argparse.Namespace) -> Settings:
    """Settings for these flags; raises ConfigError."""
    settings = load(config_file_for(args))
    if args.dns_port is not None:
        settings.dns.port = args.dns_port
    if args.dns_host:
        settings.dns.host = args.dns_host
    if args.dns_cluster_port is not None:
        settings.dns.cluster_port = args.dns_cluster_port
    if args.api_port is not None:
        settings.api.port = args.api_port
    if args.ingress_address:
        settings.ingress.address = args.ingress_address
    if args.ingress_http_port is not None:
        settings.ingress.http_port = args.ingress_http_port
    if args.ingress_https_port is not None:
        settings.ingress.https_port = args.ingress_https_port
    if args.service_cidr:
        settings.network.service_cidr = args.service_cidr
    if args.pod_cidr:
        settings.network.pod_cidr = args.pod_cidr
    if args.lb_cidr:
        settings.network.load_balancer_cidr = args.lb_cidr
    if args.nodeport_addresses:
        settings.network.node_port_addresses = [
            a.strip() for a in args.nodeport_addresses.split(",") if a.strip()
        ]
    if args.upstream_dns:
        settings.dns.upstream = list(args.upstream_dns)
    if args.state_dir:
        settings.state_dir = args.state_dir
    if args.socket_lb:
        settings.proxy.socket_lb = args.socket_lb
    for entry in args.image:
        name, sep, command = entry.partition("=")
        argv = shlex.split(command) if sep else []
        if not name.strip() or not argv:
            raise ConfigError(f"--image {entry!r}: expected IMAGE=COMMAND [ARG...]")
        # Over the config file's entry for the same image, as flags are.
        settings.agent.images = {**settings.agent.images, name.strip(): argv}
    if args.filename:
        settings.manifests = list(args.filename)
    elif not settings.manifests and Path(DEFAULT_MANIFESTS).is_dir():
        settings.manifests = [DEFAULT_MANIFESTS]
    settings.validate()
    return settings


def up(args: argparse.Namespace) -> int:
    try:
        settings = build_settings(args)
    except ConfigError as e:
        sys.stderr.write(f"svcnet: {e}\n")
        return 2
    except OSError as e:
        sys.stderr.write(f"svcnet: cannot read settings: {e}\n")
        return 2
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.dns_log_queries:
        logging.getLogger("svcnet.dns.query").setLevel(logging.DEBUG)
    from svcnet import daemon  # type: ignore[attr-defined,unused-ignore]

    companion: list[str] = []
    if args.watch:
        # The dev loop is `svcnet apply --watch` on the same files, against this
        # cluster: one implementation of re-applying, with apply's errors.
        companion = [sys.executable, "-m", "svcnet", "apply", "--watch", "--changes-only"]
        companion += [a for p in settings.manifests for a in ("-f", p)]
        if not settings.manifests:
            sys.stderr.write("svcnet: --watch needs manifests to watch (-f PATH)\n")
            return 2
    return int(daemon.serve(settings, fresh=args.fresh, companion=companion))
