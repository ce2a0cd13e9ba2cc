"""Component counters over the API: JSON at /debug/svcnet/stats and the
Prometheus text format at /metrics (`kubectl get --raw /metrics` works too).

Metric names follow CoreDNS' (`coredns_dns_requests_total{type}`,
`coredns_dns_responses_total{rcode}`) so dashboards written for a cluster's
DNS read svcnet's the same way; probes are counted as the kubelet counts them
(`prober_probe_total{probe_type,result}`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

StatsProvider = Callable[[], Mapping[Any, Any]]


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def snapshot(providers: Mapping[str, StatsProvider]) -> dict[str, Any]:
    return {name: _jsonable(fn()) for name, fn in providers.items()}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus(snap: Mapping[str, Any]) -> str:
    lines: list[str] = []
    dns = snap.get("dns")
    if isinstance(dns, Mapping):
        lines += [
            "# HELP coredns_dns_requests_total Counter of DNS requests made per type.",
            "# TYPE coredns_dns_requests_total counter",
        ]
        for qtype, n in sorted((dns.get("qtypes") or {}).items()):
            lines.append(f'coredns_dns_requests_total{{type="{_label(qtype)}"}} {n}')
        lines += [
            "# HELP coredns_dns_responses_total Counter of response status codes.",
            "# TYPE coredns_dns_responses_total counter",
        ]
        for rcode, n in sorted((dns.get("rcodes") or {}).items()):
            lines.append(f'coredns_dns_responses_total{{rcode="{_label(rcode)}"}} {n}')
        lines += [
            "# HELP coredns_cache_hits_total The count of cache hits.",
            "# TYPE coredns_cache_hits_total counter",
            f"coredns_cache_hits_total {dns.get('cacheHits', 0)}",
        ]
    proxy = snap.get("proxy")
    if isinstance(proxy, Mapping):
        lines += [
            "# HELP svcnet_proxy_connections_total Connections accepted per service port.",
            "# TYPE svcnet_proxy_connections_total counter",
        ]
        for port, st in sorted(proxy.items()):
            if isinstance(st, Mapping):
                lines.append(
                    f'svcnet_proxy_connections_total{{service_port="{_label(port)}"}} '
                    f"{st.get('connections', 0)}"
                )
    probes = snap.get("probes")
    if isinstance(probes, Mapping):
        # The kubelet's metric, summed over pods and containers (svcnet has one node).
        lines += [
            "# HELP prober_probe_total Cumulative number of a liveness, readiness or startup"
            " probe for a container by result.",
            "# TYPE prober_probe_total counter",
        ]
        for ptype, counts in sorted((probes.get("results") or {}).items()):
            for result, n in sorted(counts.items()):
                lines.append(
                    f'prober_probe_total{{probe_type="{_label(ptype)}",result="{_label(result)}"}}'
                    f" {n}"
                )
    return "\n".join(lines) + "\n"
