"""Controllers (kube-controller-manager's role): they watch the store and only
write objects, through the registry like any API client would.

Each controller keeps a set of dirty keys fed by store events and syncs them in
a loop callback scheduled right after the event, so bursts coalesce and every
change is acted on within the same loop iteration (no polling).
"""

from svcnet.controllers.base import Controller
from svcnet.controllers.cronjob import CronJobController
from svcnet.controllers.daemonset import DaemonSetController
from svcnet.controllers.deployment import DeploymentController
from svcnet.controllers.endpoints import EndpointsController
from svcnet.controllers.gc import GarbageCollector
from svcnet.controllers.job import JobController
from svcnet.controllers.loadbalancer import LoadBalancerController
from svcnet.controllers.namespace import NamespaceController
from svcnet.controllers.podautoscaler import HorizontalPodAutoscalerController
from svcnet.controllers.replicaset import ReplicaSetController
from svcnet.controllers.statefulset import StatefulSetController
from svcnet.controllers.volumes import VolumeController

__all__ = [
    "Controller",
    "CronJobController",
    "DaemonSetController",
    "DeploymentController",
    "EndpointsController",
    "GarbageCollector",
    "HorizontalPodAutoscalerController",
    "JobController",
    "LoadBalancerController",
    "NamespaceController",
    "ReplicaSetController",
    "StatefulSetController",
    "VolumeController",
]
