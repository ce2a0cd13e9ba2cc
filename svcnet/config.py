"""Daemon settings: defaults follow docs/architecture.md's address plan; `config/svcnet.yaml`
and then command-line flags override them.

Everything is derived from a few CIDRs the way kubeadm derives it: the first
service IP is the `kubernetes` Service, the tenth is kube-dns.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    pass


def reachable(host: str) -> str:
    """An address clients can connect to for a listening address (a wildcard
    listener, as in the container, is reached on loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


@functools.lru_cache(maxsize=16)
def _nth_address(cidr: str, n: int) -> str:
    # Cached: the proxier asks for the DNS Service's address at every Service or
    # slice change, and parsing the CIDR each time was most of that question.
    return str(ipaddress.IPv4Network(cidr).network_address + n)


@dataclass
class NetworkSettings:
    service_cidr: str = "127.96.0.0/12"
    """ClusterIPs are allocated from here (mirrors 10.96.0.0/12)."""
    pod_cidr: str = "127.244.0.0/16"
    """One loopback IP per pod (mirrors 10.244.0.0/16)."""
    load_balancer_cidr: str = "127.240.0.0/16"
    """Ingress IPs for type LoadBalancer (what MetalLB would hand out)."""
    node_port_range: str = "30000-32767"
    node_port_addresses: list[str] = field(default_factory=lambda: ["127.0.0.1", "::1"])
    """Where NodePorts listen (kube-proxy's --nodeport-addresses)."""
    cluster_domain: str = "cluster.local"
    alias_zones: list[str] = field(default_factory=lambda: ["local"])
    """Extra zones answered like the cluster domain (the seed writes svc.local)."""

    @property
    def service_network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.service_cidr)

    @property
    def kubernetes_service_ip(self) -> str:
        return _nth_address(self.service_cidr, 1)

    @property
    def dns_service_ip(self) -> str:
        return _nth_address(self.service_cidr, 10)

    @property
    def node_ports(self) -> tuple[int, int]:
        lo, _, hi = self.node_port_range.partition("-")
        return int(lo), int(hi)


@dataclass
class DnsSettings:
    host: str = "127.0.0.1"
    port: int = 53
    """Host-facing DNS (`dig @127.0.0.1`)."""
    cluster_port: int = 53
    """The kube-dns Service's port on its ClusterIP. Pods' resolv.conf cannot name a
    port, so pods reach cluster DNS only when this is 53; tests set 0 (any free port)."""
    upstream: list[str] = field(default_factory=lambda: ["/etc/resolv.conf"])
    """Where names outside the cluster go: `ip[:port]` entries or a resolv.conf path."""
    ttl: int = 5
    """TTL of cluster answers, 0-3600 (CoreDNS' default is 5, kubeadm ships 30)."""
    upstream_timeout: float = 2.0
    pods: Literal["disabled", "insecure", "verified"] = "insecure"
    """Pod records `a-b-c-d.<ns>.pod.<zone>`: disabled, insecure (kubeadm's default) or
    verified (only IPs of existing pods in that namespace)."""


@dataclass
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 6443


@dataclass
class ProxySettings:
    socket_lb: Literal["host", "pods", "off"] = "host"
    """Service balancing at connect() in the kernel (eBPF socket hooks, as root):
    "host" for pods and this machine's own processes (only svcnet's own Service
    addresses are touched), "pods" for pods only, "off" for the userspace proxy alone."""


@dataclass
class IngressSettings:
    address: str = "127.0.0.80"
    """Where the built-in ingress controller listens: an address of its own, which
    Ingresses show as their ADDRESS (minikube's `minikube ip`, a LoadBalancer IP)."""
    http_port: int = 80
    https_port: int = 443
    """Below 1024 needs root or CAP_NET_BIND_SERVICE; without, 8080 and 8443 are used."""


@dataclass
class AgentSettings:
    images: dict[str, Any] = field(default_factory=dict)
    """Extra image -> local command mappings: `myorg/tool: [/usr/bin/tool]`, or
    `myorg/tool: {command: [...], args: [...], workingDir: ..., env: {K: V}}`."""
    log_bytes: int = 1 << 20
    """Per-container log kept for `logs` (bounded, oldest dropped)."""


@dataclass
class ControllerSettings:
    hpa_sync_period: float = 15.0
    """Seconds between HorizontalPodAutoscaler syncs (kube-controller-manager's
    --horizontal-pod-autoscaler-sync-period)."""


@dataclass
class Settings:
    network: NetworkSettings = field(default_factory=NetworkSettings)
    dns: DnsSettings = field(default_factory=DnsSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    proxy: ProxySettings = field(default_factory=ProxySettings)
    agent: AgentSettings = field(default_factory=AgentSettings)
    ingress: IngressSettings = field(default_factory=IngressSettings)
    controllers: ControllerSettings = field(default_factory=ControllerSettings)
    manifests: list[str] = field(default_factory=list)
    """Files or directories applied at start-up (svcnet.yaml itself is skipped)."""
    state_dir: str = ""
    """The cluster's state directory (svcnet/state.py): its objects, credential and
    pods' files. Empty: ~/.local/state/svcnet/<api host>-<api port> of the user
    who started svcnet (through sudo, the calling user)."""

    @property
    def kube_dns(self) -> tuple[str, int]:
        """The kube-dns Service's address: the service CIDR's tenth IP (as kubeadm
        picks it) and ``dns.cluster_port``. Bootstrap, the DNS listener, pods'
        resolv.conf and the proxier all take it from here."""
        return self.network.dns_service_ip, self.dns.cluster_port

    def validate(self) -> None:
        n = self.network
        for name in ("service_cidr", "pod_cidr", "load_balancer_cidr"):
            value = getattr(n, name)
            try:
                net = ipaddress.IPv4Network(value)
            except ValueError as e:
                raise ConfigError(f"network.{name}: invalid CIDR {value!r}: {e}") from None
            if not net.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
                raise ConfigError(
                    f"network.{name}: {value} is outside 127.0.0.0/8; svcnet only uses loopback"
                    " addresses so it never sends traffic to networks that are not yours"
                )
        ttl = self.dns.ttl
        if not isinstance(ttl, int) or not 0 <= ttl <= 3600:
            raise ConfigError(f"dns.ttl: {ttl!r} is not a whole number of seconds in [0, 3600]")
        if self.dns.pods not in ("disabled", "insecure", "verified"):
            raise ConfigError(
                f"dns.pods: {self.dns.pods!r} is not one of disabled, insecure, verified"
            )
        if self.proxy.socket_lb not in ("host", "pods", "off"):
            raise ConfigError(
                f"proxy.socket_lb: {self.proxy.socket_lb!r} is not one of host, pods, off"
            )
        if not 0 < self.dns.cluster_port < 65536:
            raise ConfigError(f"dns.cluster_port: {self.dns.cluster_port!r} is not a port number")
        try:
            ingress_ip = ipaddress.ip_address(self.ingress.address)
        except ValueError:
            raise ConfigError(
                f"ingress.address: {self.ingress.address!r} is not an IP address"
            ) from None
        if not ingress_ip.is_loopback:
            raise ConfigError(
                f"ingress.address: {ingress_ip} is not a loopback address (127.0.0.0/8, ::1)"
            )
        for name in ("http_port", "https_port"):
            port = getattr(self.ingress, name)
            if not isinstance(port, int) or not 0 < port < 65536:
                raise ConfigError(f"ingress.{name}: {port!r} is not a port number")
        period = self.controllers.hpa_sync_period
        if (
            isinstance(period, bool)
            or not isinstance(period, int | float)
            or not 0 < period <= 3600
        ):
            raise ConfigError(
                f"controllers.hpa_sync_period: {period!r} is not a number of seconds in (0, 3600]"
            )
        lo, hi = n.node_ports
        if not (0 < lo <= hi < 65536):
            raise ConfigError(f"network.node_port_range: invalid range {n.node_port_range!r}")


def _merge(target: Any, data: dict[str, Any], path: str) -> None:
    known = {f.name: f for f in fields(target)}
    for k, v in data.items():
        key = k.replace("-", "_")
        if key not in known:
            raise ConfigError(f"{path}{k}: unknown setting (known: {', '.join(sorted(known))})")
        cur = getattr(target, key)
        if is_dataclass(cur):
            if not isinstance(v, dict):
                raise ConfigError(f"{path}{k}: expected a mapping")
            _merge(cur, v, f"{path}{k}.")
        else:
            setattr(target, key, v)


def load(path: str | Path | None) -> Settings:
    s = Settings()
    if path is not None:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping of settings")
        data.pop("apiVersion", None)
        data.pop("kind", None)
        try:
            _merge(s, data, "")
        except ConfigError as e:
            raise ConfigError(f"{p}: {e}") from None
    return s


CONFIG_FILE_NAME = "svcnet.yaml"
