"""The `svcnet` command line: `up` runs the daemon; the other verbs are a
kubectl-shaped client that talks to the daemon's Kubernetes API over HTTP."""
