"""What a pod sees of the cluster, as the kubelet derives it from objects.

Pure functions on API objects, shared by the agent (which gives them to pods)
and by `svcnet exec` (which gives them to a host command run "as a pod"):
the Docker-link Service variables of kubelet_pods.go ``getServiceEnvVarMap``
(``ECHO_SERVICE_HOST``, ``ECHO_PORT_80_TCP``...) and the resolv.conf of
pkg/kubelet/network/dns (cluster DNS first, ``search <ns>.svc.<zone>
svc.<zone> <zone>``, ``ndots:5``, per dnsPolicy and dnsConfig).
"""

from __future__ import annotations

from collections.abc import Iterable

from svcnet.k8s.objects import Obj


def _env_name(svc: str) -> str:
    return svc.upper().replace("-", "_")


def service_links(services: Iterable[Obj]) -> dict[str, str]:
    """Docker-link style variables for Services with a cluster IP (FromServices)."""
    env: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        ports = spec.get("ports") or []
        if not ip or ip == "None" or not ports:
            continue
        name = _env_name(str(svc["metadata"]["name"]))
        first = ports[0]
        env[f"{name}_SERVICE_HOST"] = ip
        env[f"{name}_SERVICE_PORT"] = str(first["port"])
        for p in ports:
            if p.get("name"):
                env[f"{name}_SERVICE_PORT_{_env_name(str(p['name']))}"] = str(p["port"])
        proto0 = str(first.get("protocol") or "TCP").lower()
        env[f"{name}_PORT"] = f"{proto0}://{ip}:{first['port']}"
        for p in ports:
            proto = str(p.get("protocol") or "TCP")
            prefix = f"{name}_PORT_{p['port']}_{proto.upper()}"
            env[prefix] = f"{proto.lower()}://{ip}:{p['port']}"
            env[f"{prefix}_PROTO"] = proto.lower()
            env[f"{prefix}_PORT"] = str(p["port"])
            env[f"{prefix}_ADDR"] = ip
    return env


def resolv_conf(pod: Obj, cluster_domain: str, dns_ip: str) -> str | None:
    """The pod's resolv.conf per dnsPolicy; None means the host's file (policy Default)."""
    spec = pod.get("spec") or {}
    ns = str(pod["metadata"].get("namespace") or "default")
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        # The kubelet's getPodDNSType: a host-network pod asks for the cluster's DNS
        # with ClusterFirstWithHostNet only.
        policy = "Default"
    cfg = spec.get("dnsConfig") or {}
    if policy == "Default" and not cfg:
        return None
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        nameservers = [dns_ip]
        searches = [f"{ns}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]
        options = ["ndots:5"]
    nameservers += [str(s) for s in cfg.get("nameservers") or ()]
    searches += [str(s) for s in cfg.get("searches") or () if s not in searches]
    for opt in cfg.get("options") or ():
        name = str(opt.get("name"))
        value = opt.get("value")
        options = [o for o in options if o.partition(":")[0] != name]
        options.append(f"{name}:{value}" if value is not None else name)
    lines = [f"search {' '.join(searches)}"] if searches else []
    lines += [f"nameserver {n}" for n in nameservers[:3]]
    if options:
        lines.append(f"options {' '.join(options)}")
    return "\n".join(lines) + "\n"
