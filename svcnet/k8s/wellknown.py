"""Well-known labels and annotations: the keys Kubernetes components agree on.

k8s.io/api's well_known_labels.go and the constants the Deployment
controller, the EndpointSlice controllers and kubectl share. A key written
by one component and read by another (the Deployment controller writes a
revision, `kubectl rollout history` reads it) is named once, here.
"""

from __future__ import annotations

# --- apps: Deployments and their ReplicaSets --------------------------------------

POD_TEMPLATE_HASH = "pod-template-hash"
"""Label the Deployment controller adds to a ReplicaSet, its selector and its pods."""
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
CHANGE_CAUSE = "kubernetes.io/change-cause"

# --- kubectl ---------------------------------------------------------------------

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# --- svcnet ------------------------------------------------------------------------

IMAGES_NAMESPACE, IMAGES_CONFIGMAP, IMAGES_KEY = "kube-system", "svcnet-images", "images.yaml"
"""The ConfigMap whose `images.yaml` maps image names to local commands while svcnet
runs, over `agent.images` (`svcnet apply` writes it from a svcnet.yaml it is given)."""
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"

REPLICASET_SKIPPED_ANNOTATIONS = (
    LAST_APPLIED,
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    ROLLBACK_TO,
)
"""Annotations a Deployment does not copy to its ReplicaSets (the controller's
annotationsToSkip), and that `rollout undo` therefore keeps from the Deployment."""

# --- discovery: Endpoints and EndpointSlices --------------------------------------

SERVICE_NAME = "kubernetes.io/service-name"
"""Label tying an EndpointSlice to its Service."""
SLICE_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
SLICE_CONTROLLER = "endpointslice-controller.k8s.io"
SLICE_MIRRORING_CONTROLLER = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
"""Endpoints label: do not mirror these into EndpointSlices."""
ENDPOINTS_MANAGED_BY = "endpoints.kubernetes.io/managed-by"
ENDPOINTS_CONTROLLER = "endpoint-controller"

# --- networking: Ingresses and IngressClasses ---------------------------------------

DEFAULT_INGRESS_CLASS = "ingressclass.kubernetes.io/is-default-class"
"""IngressClass annotation ("true"): the class of Ingresses that name none."""
INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
"""The deprecated class annotation on an Ingress, which ingress-nginx still honours."""
INGRESS_NGINX_CONTROLLER = "k8s.io/ingress-nginx"
"""spec.controller of ingress-nginx's IngressClasses, which svcnet's controller serves."""
