"""Kubernetes' vocabulary, in one home: what the API server, the controllers,
the kubelet and kubectl all mean by the same words.

The resource table (``kinds``), label and field selectors, generated names,
RFC 3339 timestamps and human durations, owner references, media types,
well-known labels and annotations, and the ``Obj`` alias with the slim typed
views of stored objects. This is apimachinery's role (and the constants of
k8s.io/api): pure data and functions, no I/O, and no import of anything else
in svcnet, so every floor above may use it (docs/architecture.md).
"""
