"""Handlers for the DNS chain, one per file like CoreDNS plugins.

- ``cluster``: the kubernetes plugin (Service names in the cluster zones).
- ``forward``: everything else, relayed to the upstream resolvers.
"""
