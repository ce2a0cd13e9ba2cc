"""kube-proxy for svcnet: Service addresses to ready endpoints, over TCP.

- ``proxier.py``: ``Proxier`` follows Services and Endpoints in the store and
  keeps one listener per ClusterIP:port, NodePort address and LoadBalancer
  ingress IP, open only while the service port has ready endpoints (so a
  Service without endpoints refuses connections, as kube-proxy's REJECT does).
- ``relay.py``: the per-connection Protocol pair with flow control, half-close
  and kube-proxy userspace's dial retries (250 ms, 500 ms, 1 s, 2 s).
- ``balancer.py``: round-robin over a list shuffled at every endpoint change.

Settings used: ``network.node_port_addresses`` (where NodePorts listen) and
``network.service_cidr`` (its tenth address, kube-dns, is never proxied: the
DNS server binds it). UDP and SCTP ports are not proxied yet.
"""

from svcnet.proxy.proxier import PortStats, Proxier
from svcnet.proxy.relay import ServicePortName

__all__ = ["PortStats", "Proxier", "ServicePortName"]
