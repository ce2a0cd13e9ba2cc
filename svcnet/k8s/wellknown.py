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

# --- apps: StatefulSets and DaemonSets; batch: Jobs and CronJobs; storage ----------

CONTROLLER_REVISION_HASH = "controller-revision-hash"
"""Label the StatefulSet and DaemonSet controllers put on their pods: the revision
of the template each pod was made from."""
STS_POD_NAME = "statefulset.kubernetes.io/pod-name"
POD_INDEX = "apps.kubernetes.io/pod-index"
"""A StatefulSet pod's ordinal (and a DaemonSet-free cluster's only index label)."""
JOB_NAME = "batch.kubernetes.io/job-name"
LEGACY_JOB_NAME = "job-name"
JOB_CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
LEGACY_CONTROLLER_UID = "controller-uid"
JOB_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
"""Annotation and label of an Indexed Job's pods; JOB_COMPLETION_INDEX env var too."""
CRONJOB_SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
CRONJOB_INSTANTIATE = "cronjob.kubernetes.io/instantiate"
"""`kubectl create job --from=cronjob/x` marks the Job it makes with "manual"."""
DEFAULT_STORAGE_CLASS = "storageclass.kubernetes.io/is-default-class"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
SELECTED_NODE = "volume.kubernetes.io/selected-node"

# --- deletion: the garbage collector's finalizers --------------------------------

ORPHAN_FINALIZER = "orphan"
"""metav1.FinalizerOrphanDependents: the garbage collector removes this owner's
references from its dependents, then the finalizer, so the owner goes and they stay."""
FOREGROUND_FINALIZER = "foregroundDeletion"
"""metav1.FinalizerDeleteDependents: the owner stays until the garbage collector has
deleted every dependent whose reference has blockOwnerDeletion."""

# --- networking: Ingresses and IngressClasses ---------------------------------------

DEFAULT_INGRESS_CLASS = "ingressclass.kubernetes.io/is-default-class"
"""IngressClass annotation ("true"): the class of Ingresses that name none."""
INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
"""The deprecated class annotation on an Ingress, which ingress-nginx still honours."""
INGRESS_NGINX_CONTROLLER = "k8s.io/ingress-nginx"
"""spec.controller of ingress-nginx's IngressClasses, which svcnet's controller serves."""
