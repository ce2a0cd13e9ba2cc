"""Cluster DNS: CoreDNS's kubernetes plugin plus forwarding, on asyncio.

Layout (CoreDNS's, shrunk)::

    server.py     the DnsServer: lifecycle, dispatch, stats
    transport.py  listeners: the UDP reader (the hot path), TCP framing, time-outs
    cache.py      the wire-level answer cache, dropped on store changes
    wire.py       sans-IO query parsing, cache keys, canned replies
    chain.py      the Handler protocol and the chain that links handlers
    index.py      Services/Endpoints/Namespaces from the store, kept current
    names.py      how a query name maps onto the cluster (parse.go), reverse zones
    handlers/     cluster.py (the kubernetes plugin), forward.py

Configuration (``dns:`` and ``network:`` in config/svcnet.yaml)::

    dns:
      host: 127.0.0.1          # host-facing listener (dig @127.0.0.1)
      port: 53                 # 0 = ephemeral, read back from DnsServer.addresses
      upstream: [/etc/resolv.conf]   # ip, ip:port, [ipv6]:port or resolv.conf paths
      ttl: 5                   # TTL of cluster answers (SOA minimum too), 0-3600
      upstream_timeout: 2.0    # seconds per forwarded query, all upstreams together
      pods: insecure           # a-b-c-d.<ns>.pod.<zone>: disabled | insecure | verified
    network:
      service_cidr: 127.96.0.0/12    # kube-dns listens on its 10th address, port 53
      cluster_domain: cluster.local
      alias_zones: [local]           # answered like the cluster domain

Observability: `DnsServer.stats()` (per-rcode and per-type counters, cache and
forwarding counters); the ``svcnet.dns.query`` logger at DEBUG logs one line
per query.

Only dnslib's wire format is used (packing replies); never its server.
"""

from svcnet.dns.server import DnsServer

__all__ = ["DnsServer"]
