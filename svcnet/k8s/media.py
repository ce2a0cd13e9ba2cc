"""Media types of the Kubernetes API: request bodies, patches, responses.

The API server picks a patch algorithm by Content-Type, and kubectl picks a
response shape (a Table, protobuf) by Accept; the server and every client
verb name them from here.
"""

from __future__ import annotations

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, APPLY_PATCH, STRATEGIC_MERGE_PATCH)
"""What PATCH accepts, in the order the API server lists them in a 415."""

OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
OPENAPI_V2_PROTOBUF_DEPRECATED = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
"""/openapi/v2 as gnostic's protobuf: client-go asks for the deprecated name and
kube-openapi answers with the other."""
