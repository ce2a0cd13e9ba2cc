"""The Kubernetes version svcnet answers as, in one place.

kubectl reads it from /version (the machine's kubectl dispatcher even picks the
kubectl binary by its minor), the node reports it as its kubelet's, and the
official schemas svcnet validates against are that release's. A change here is a
change of all of them at once.
"""

from __future__ import annotations

from svcnet.k8s.objects import Obj

GIT_VERSION = "v1.32.0"
MAJOR, MINOR = GIT_VERSION.removeprefix("v").split(".")[:2]


def version_info() -> Obj:
    """kube-apiserver's /version answer (apimachinery's version.Info) for that release."""
    return {
        "major": MAJOR,
        "minor": MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": "70d3cc986aa8221cd1dfb1121852688902d3bf53",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    }
