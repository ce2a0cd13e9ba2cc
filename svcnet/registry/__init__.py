"""What kube-apiserver does between a request and the store.

For every write: decode and check the object against the official schema
(strict: unknown fields are refused), apply Kubernetes defaulting, validate
(kubectl's exact messages), check the namespace exists, allocate ClusterIPs,
NodePorts; then write to the store. Both the REST API and `svcnet up -f` go
through here, so a manifest is accepted or refused the same way everywhere.
"""

from svcnet.registry.errors import ApiError, Cause
from svcnet.registry.registry import Registry

__all__ = ["ApiError", "Cause", "Registry"]
