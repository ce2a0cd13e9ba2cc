"""Helpers for tests that run svcnet itself (its own suite, benchmarks, and
users' integration tests that start a `svcnet up` of their own)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from svcnet import credentials, state
from svcnet.config import Settings
from svcnet.credentials import Credentials


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP on host: svcnet's DNS binds both on one number."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind((host, 0))
            port = int(t.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((host, port))
                except OSError:
                    continue
            return port
    raise RuntimeError(f"no port free for both TCP and UDP on {host}")


def node_ip(prefix: int) -> str:
    """Where an instance started with ``isolated_up_args(prefix=...)`` serves NodePorts."""
    return f"127.{prefix + 3}.0.1"


def isolated_up_args(
    manifests: str, prefix: int, api_port: int, dns_port: int, state_dir: str | None = None
) -> list[str]:
    """`svcnet up` arguments for an instance that cannot collide with another one:
    ClusterIPs in 127.<prefix>.0.0/16, pods in 127.<prefix+1>, LoadBalancer IPs in
    127.<prefix+2>, NodePorts on ``node_ip(prefix)``, and DNS forwarding to a
    loopback port where nothing listens (never the machine's own resolver). With
    `state_dir`, the cluster's state goes there instead of under $HOME."""
    return [
        "up",
        *(["--state-dir", state_dir] if state_dir else []),
        "-f",
        manifests,
        "--api-port",
        str(api_port),
        "--dns-port",
        str(dns_port),
        "--service-cidr",
        f"127.{prefix}.0.0/16",
        "--pod-cidr",
        f"127.{prefix + 1}.0.0/16",
        "--lb-cidr",
        f"127.{prefix + 2}.0.0/16",
        "--nodeport-addresses",
        node_ip(prefix),
        "--upstream-dns",
        f"127.{prefix + 3}.0.2:9",
    ]


def make_credentials(directory: Path, api_host: str = "127.0.0.1") -> Credentials:
    """A cluster's credentials in `directory`, as `svcnet up` makes them, for tests that
    run an ApiServer of their own on `api_host`."""
    settings = Settings()
    statedir = state.StateDir(directory, state.owner(os.environ))
    names = credentials.api_names(
        settings.network.cluster_domain, [settings.network.kubernetes_service_ip, api_host]
    )
    return credentials.ensure(statedir, *names)


def client_auth(creds: Credentials) -> credentials.ClientAuth:
    """What the svcnet CLI's Client would find in a state directory holding `creds`."""
    return credentials.ClientAuth(creds.token, creds.ca_path, None)
