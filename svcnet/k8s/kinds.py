"""The resource types svcnet serves, as Kubernetes names them.

One table drives the API paths, discovery, the CLI's resource arguments
(`svc`, `po`, `rs`...) and `kubectl get all`, so the names cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass

STORED_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    singular: str
    group: str  # "" for the core group
    version: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    has_status: bool = False
    """Whether objects have a status (and a /status subresource) the server keeps
    apart from what clients PUT."""
    stored: bool = True
    """Objects kept in the store; False: computed when asked (metrics.k8s.io)."""
    review: bool = False
    """A create-only virtual kind (SelfSubjectAccessReview...): a POST is answered with
    the object and its computed status, and nothing is kept (stored is False too)."""
    no_delete_collection: bool = False
    """kube-apiserver does not serve deletecollection for it (namespaces)."""
    storage_version: str = ""
    """Set on another served version of a kind stored in this version (autoscaling/v1
    HorizontalPodAutoscalers are autoscaling/v2 ones): objects are kept and defaulted in
    the storage version and converted at the API's edge (k8s/conversion.py)."""

    @property
    def verbs(self) -> list[str]:
        if self.review:
            return ["create"]
        if not self.stored:
            return ["get", "list"]
        return [v for v in STORED_VERBS if v != "deletecollection" or not self.no_delete_collection]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified_plural(self) -> str:
        """`pods`, `replicasets.apps`: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def collection_path(self, namespace: str | None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    def object_path(self, namespace: str | None, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"


KINDS: tuple[Kind, ...] = (
    Kind(
        "Namespace",
        "namespaces",
        "namespace",
        "",
        "v1",
        False,
        ("ns",),
        has_status=True,
        no_delete_collection=True,
    ),
    Kind("Node", "nodes", "node", "", "v1", False, ("no",), has_status=True),
    Kind("Pod", "pods", "pod", "", "v1", True, ("po",), ("all",), has_status=True),
    Kind("Service", "services", "service", "", "v1", True, ("svc",), ("all",), has_status=True),
    Kind("Endpoints", "endpoints", "endpoints", "", "v1", True, ("ep",)),
    Kind("Event", "events", "event", "", "v1", True, ("ev",)),
    Kind("ConfigMap", "configmaps", "configmap", "", "v1", True, ("cm",)),
    Kind("Secret", "secrets", "secret", "", "v1", True),
    Kind(
        "PersistentVolume",
        "persistentvolumes",
        "persistentvolume",
        "",
        "v1",
        False,
        ("pv",),
        has_status=True,
    ),
    Kind(
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "",
        "v1",
        True,
        ("pvc",),
        has_status=True,
    ),
    Kind("ReplicaSet", "replicasets", "replicaset", "apps", "v1", True, ("rs",), ("all",), True),
    Kind(
        "Deployment", "deployments", "deployment", "apps", "v1", True, ("deploy",), ("all",), True
    ),
    # What the API server says of the caller (kubectl auth whoami|can-i): answered
    # from api/reviews.py, never stored.
    Kind(
        "SelfSubjectReview",
        "selfsubjectreviews",
        "selfsubjectreview",
        "authentication.k8s.io",
        "v1",
        False,
        stored=False,
        review=True,
    ),
    Kind(
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        "authorization.k8s.io",
        "v1",
        False,
        stored=False,
        review=True,
    ),
    Kind(
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
        "authorization.k8s.io",
        "v1",
        False,
        stored=False,
        review=True,
    ),
    # Groups in kube-apiserver's discovery order: apps, networking.k8s.io, discovery.k8s.io.
    Kind(
        "Ingress",
        "ingresses",
        "ingress",
        "networking.k8s.io",
        "v1",
        True,
        ("ing",),
        has_status=True,
    ),
    Kind("IngressClass", "ingressclasses", "ingressclass", "networking.k8s.io", "v1", False),
    Kind(
        "NetworkPolicy",
        "networkpolicies",
        "networkpolicy",
        "networking.k8s.io",
        "v1",
        True,
        ("netpol",),
    ),
    Kind("EndpointSlice", "endpointslices", "endpointslice", "discovery.k8s.io", "v1", True),
    Kind(
        "StatefulSet", "statefulsets", "statefulset", "apps", "v1", True, ("sts",), ("all",), True
    ),
    Kind("DaemonSet", "daemonsets", "daemonset", "apps", "v1", True, ("ds",), ("all",), True),
    # The storage version first: discovery's first version of a group is its preferred one.
    Kind(
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "autoscaling",
        "v2",
        True,
        ("hpa",),
        ("all",),
        True,
    ),
    Kind(
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "autoscaling",
        "v1",
        True,
        ("hpa",),
        ("all",),
        True,
        storage_version="v2",
    ),
    Kind("Job", "jobs", "job", "batch", "v1", True, (), ("all",), True),
    Kind("CronJob", "cronjobs", "cronjob", "batch", "v1", True, ("cj",), ("all",), True),
    Kind("StorageClass", "storageclasses", "storageclass", "storage.k8s.io", "v1", False, ("sc",)),
    # The StatefulSet and DaemonSet controllers' history (rollout history|undo).
    Kind("ControllerRevision", "controllerrevisions", "controllerrevision", "apps", "v1", True),
    # metrics-server's API: usage read from the pods' cgroups when asked (kubectl top).
    Kind("NodeMetrics", "nodes", "", "metrics.k8s.io", "v1beta1", False, stored=False),
    Kind("PodMetrics", "pods", "", "metrics.k8s.io", "v1beta1", True, stored=False),
)

BY_KIND: dict[str, Kind] = {k.kind: k for k in KINDS if not k.storage_version}
"""Each kind by its storage version, the one the store and the controllers see."""


def lookup(name: str) -> Kind | None:
    """Resolve what a user types (`svc`, `services`, `Service`, `rs.apps`)."""
    n = name.lower()
    base, _, group = n.partition(".")
    for k in KINDS:
        if (group and group != k.group) or (not k.stored and group != k.group):
            continue
        if k.storage_version:
            continue  # the storage version's entry answers for the kind
        if base in (k.plural, k.singular, k.kind.lower()) or base in k.short_names:
            return k
    return None


def for_api_version(api_version: str, kind: str) -> Kind | None:
    for k in KINDS:
        if k.kind == kind and k.api_version == api_version:
            return k
    return None


def storage_of(kind: Kind) -> Kind:
    """The entry objects of kind are stored as (itself unless it is another version)."""
    return BY_KIND[kind.kind] if kind.storage_version else kind


# `kubectl get all` order: kubectl expands the category in discovery order, which
# kube-apiserver sorts by resource within each group (core, apps, ..., batch):
# pods, services, daemonsets, deployments, replicasets, statefulsets,
# horizontalpodautoscalers, cronjobs, jobs.
ALL_CATEGORY: tuple[Kind, ...] = tuple(
    BY_KIND[n]
    for n in (
        "Pod",
        "Service",
        "DaemonSet",
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "HorizontalPodAutoscaler",
        "CronJob",
        "Job",
    )
)

# Kinds with a spec whose API server strategy keeps no metadata.generation (a
# Service, a Namespace...; pods only gained one in 1.33): the store sets and
# bumps it for every other kind with a spec.
WITHOUT_GENERATION = frozenset(
    {"Namespace", "Node", "Pod", "Service", "PersistentVolume", "PersistentVolumeClaim"}
)

# Kinds without a spec whose strategy keeps a generation all the same, bumped when
# anything but metadata changes or the labels do (the EndpointSlice strategy's
# PrepareForUpdate): kind -> the top-level fields that are its body.
GENERATION_OF_BODY: dict[str, tuple[str, ...]] = {
    "EndpointSlice": ("addressType", "endpoints", "ports")
}
