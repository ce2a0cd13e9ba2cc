"""The Kubernetes-shaped API server: REST, discovery, Tables, watch, logs, attach.

``server.ApiServer`` is the aiohttp application and its routing; ``request``
decodes what a request asks for (path, options, body); ``tables`` renders kubectl's
columns (also used by the svcnet CLI), ``discovery`` derives discovery and
OpenAPI documents from ``svcnet.k8s.kinds``, ``patch`` applies PATCH bodies,
``watch`` and ``streams`` serve the long-lived responses.
"""

from svcnet.api.server import ApiServer

__all__ = ["ApiServer"]
