"""kube-proxy for svcnet: Service addresses to ready endpoints, over TCP and UDP.

- ``proxier.py``: ``Proxier`` follows Services and Endpoints in the store and
  keeps one listener per ClusterIP:port, NodePort address and LoadBalancer
  ingress IP (per protocol), open only while the service port has ready
  endpoints (so a Service without endpoints refuses connections, as
  kube-proxy's REJECT does).
- ``relay.py``: TCP on raw non-blocking sockets: accept, dial (kube-proxy
  userspace's retries: 250 ms, 500 ms, 1 s, 2 s), relay with flow control and
  half-close; a failed connect() moves on to the next endpoint, a request is
  never replayed.
- ``udp.py``: UDP sessions per client address, with the same retries.
- ``target.py``: what a connection is for: ``ServicePortName``, the port's
  live state and balancer (``PortTarget``), the ``Hub`` connections share.
- ``splice.py``: the splice(2) pipe a bulk direction moves its bytes through.
- ``poller.py``: the proxy's own epoll, nested in the event loop.
- ``balancer.py``: round-robin over a list shuffled at every endpoint change,
  and ClientIP session affinity with its timeout.

Settings used: ``network.node_port_addresses`` (where NodePorts listen) and
``network.service_cidr`` (its tenth address, kube-dns, is never proxied: the
DNS server binds it). SCTP ports are not proxied.
"""

from svcnet.proxy.proxier import PortStats, Proxier
from svcnet.proxy.target import ServicePortName

__all__ = ["PortStats", "Proxier", "ServicePortName"]
