"""svcnet: Kubernetes Service networking on one machine, without a cluster.

One asyncio daemon plays the parts of a cluster's control plane and node:

- ``store``: the object store (etcd's role): typed-by-kind JSON objects with
  resourceVersions and change events; the single source of truth.
- ``registry``: what kube-apiserver does before storing (defaulting,
  validation, ClusterIP/NodePort allocation, namespace lifecycle).
- ``controllers``: ReplicaSet, Endpoints and LoadBalancer controllers; they
  only write objects.
- ``agent``: the kubelet; runs pods' containers as local processes.
- ``images``: built-in stand-ins for the seed's container images.
- ``proxy``: kube-proxy; L4 listeners on ClusterIPs and NodePorts.
- ``dns``: CoreDNS' kubernetes plugin plus forwarding.
- ``api``: the Kubernetes-shaped REST API and the Table renderer.
- ``cli``: the kubectl-shaped client.

dns, proxy and agent never import each other; they meet only in the store.
"""

__version__ = "0.1.0"
