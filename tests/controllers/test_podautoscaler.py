"""The HorizontalPodAutoscaler controller against an injected metrics source and
clock, with a real store and registry: the replica calculation (tolerance, the
min/max clamp, unready and missing pods, pods without requests), the scale-down
stabilization window, behaviors' rate policies, and the status, conditions and
Events the real controller writes. No wall-clock wait: each test calls sync."""

from __future__ import annotations

import pytest

from svcnet.config import Settings
from svcnet.controllers import HorizontalPodAutoscalerController
from svcnet.controllers.podautoscaler import milli_quantity
from svcnet.k8s.objects import Obj
from svcnet.k8s.timestamps import rfc3339
from svcnet.nodeapi import ContainerUsage, PodUsage
from svcnet.registry import Registry
from svcnet.store import Store

T0 = 1_800_000_000.0
NS = "default"


class World:
    """A Deployment `web` whose pods the test makes by hand, their usage, a clock."""

    def __init__(self, replicas: int = 2, cpu_request: str | None = "100m") -> None:
        self.registry = Registry(Settings(), Store())
        self.registry.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        container: Obj = {"name": "app", "image": "busybox", "command": ["sleep", "1000"]}
        if cpu_request:
            container["resources"] = {"requests": {"cpu": cpu_request}}
        self.container = container
        self.registry.create(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": NS},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [container]},
                    },
                },
            }
        )
        self.now = T0
        self.usage: dict[str, int] = {}  # pod -> millicores
        self.controller = HorizontalPodAutoscalerController(
            self.registry, self.metrics, clock=lambda: self.now
        )

    def metrics(self) -> list[PodUsage]:
        return [
            PodUsage(NS, name, self.now, 15.0, (ContainerUsage("app", m * 1_000_000, 1 << 20),))
            for name, m in self.usage.items()
        ]

    def pod(self, name: str, millicores: int | None, *, ready: bool = True) -> None:
        """A running pod of the Deployment, ready for ten minutes, using millicores."""
        self.registry.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": NS, "labels": {"app": "web"}},
                "spec": {"containers": [self.container]},
            }
        )
        started = rfc3339(self.now - 600)

        def status(p: Obj) -> None:
            p["status"] = {
                "phase": "Running",
                "startTime": started,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True" if ready else "False",
                        "lastTransitionTime": started,
                    }
                ],
            }

        self.registry.update_status("Pod", NS, name, status)
        if millicores is not None:
            self.usage[name] = millicores

    def hpa(self, spec: Obj | None = None, version: str = "v2") -> None:
        body: Obj = {
            "apiVersion": f"autoscaling/{version}",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1,
                "maxReplicas": 10,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 50},
                        },
                    }
                ],
                **(spec or {}),
            },
        }
        self.registry.create(body)

    def sync(self, advance: float = 15.0) -> Obj:
        self.now += advance
        self.controller.sync((NS, "web"))
        got = self.registry.store.get("HorizontalPodAutoscaler", NS, "web")
        assert got is not None
        return got

    def replicas(self) -> int:
        d = self.registry.store.get("Deployment", NS, "web")
        assert d is not None
        return int(d["spec"]["replicas"])

    def events(self) -> list[tuple[str, str, str]]:
        return [
            (e["type"], e["reason"], e["message"])
            for e in self.registry.store.list("Event", NS)
            if e["involvedObject"]["kind"] == "HorizontalPodAutoscaler"
        ]


def condition(hpa: Obj, ctype: str) -> tuple[str, str, str]:
    for c in hpa["status"]["conditions"]:
        if c["type"] == ctype:
            return c["status"], c["reason"], c["message"]
    raise AssertionError(f"no {ctype} condition in {hpa['status']}")


def test_scale_up_from_cpu_utilization() -> None:
    w = World()
    w.pod("a", 90)
    w.pod("b", 110)
    w.hpa()
    hpa = w.sync()
    # 100% of request against 50%: twice the pods.
    assert w.replicas() == 4
    assert hpa["status"]["currentReplicas"] == 2
    assert hpa["status"]["desiredReplicas"] == 4
    assert hpa["status"]["currentMetrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "current": {"averageValue": "100m", "averageUtilization": 100},
            },
        }
    ]
    assert hpa["status"]["lastScaleTime"] == rfc3339(w.now)
    assert condition(hpa, "AbleToScale") == (
        "True",
        "SucceededRescale",
        "the HPA controller was able to update the target scale to 4",
    )
    assert condition(hpa, "ScalingActive") == (
        "True",
        "ValidMetricFound",
        "the HPA was able to successfully calculate a replica count from cpu resource "
        "utilization (percentage of request)",
    )
    assert condition(hpa, "ScalingLimited") == (
        "False",
        "DesiredWithinRange",
        "the desired count is within the acceptable range",
    )
    assert (
        "Normal",
        "SuccessfulRescale",
        "New size: 4; reason: cpu resource utilization (percentage of request) above target",
    ) in w.events()
    # The scale went through the scale subresource, as kubectl scale's does.
    d = w.registry.store.get("Deployment", NS, "web")
    assert d is not None
    assert any(m.get("subresource") == "scale" for m in d["metadata"]["managedFields"])


def test_within_tolerance_nothing_changes() -> None:
    w = World()
    w.pod("a", 54)
    w.pod("b", 54)  # 54% against 50%: a ratio of 1.08, inside the 10% tolerance
    w.hpa()
    hpa = w.sync()
    assert w.replicas() == 2
    assert hpa["status"]["desiredReplicas"] == 2
    assert "lastScaleTime" not in hpa["status"]
    assert condition(hpa, "AbleToScale")[1] == "ReadyForNewScale"
    assert not [e for e in w.events() if e[1] == "SuccessfulRescale"]


def test_clamped_to_max_replicas() -> None:
    w = World()
    w.pod("a", 400)
    w.pod("b", 400)  # 800% of 50%: 16 pods asked, 3 at most
    w.hpa({"maxReplicas": 3})
    hpa = w.sync()
    assert w.replicas() == 3
    assert condition(hpa, "ScalingLimited") == (
        "True",
        "TooManyReplicas",
        "the desired replica count is more than the maximum replica count",
    )


def test_scale_up_rate_without_behavior() -> None:
    w = World()
    w.pod("a", 400)
    w.pod("b", 400)
    w.hpa()
    hpa = w.sync()
    # max(2 * current, 4): the fixed rate of an HPA without behavior.
    assert w.replicas() == 4
    assert condition(hpa, "ScalingLimited")[:2] == ("True", "ScaleUpLimit")


def test_raised_to_min_replicas() -> None:
    w = World(replicas=1)
    w.pod("a", 10)
    w.hpa({"minReplicas": 3})
    w.sync()
    assert w.replicas() == 3
    assert (
        "Normal",
        "SuccessfulRescale",
        "New size: 3; reason: Current number of replicas below Spec.MinReplicas",
    ) in w.events()


def test_scale_down_waits_for_the_stabilization_window() -> None:
    w = World(replicas=4)
    for name in "abcd":
        w.pod(name, 10)  # 10% against 50%: one pod would do
    w.hpa()
    hpa = w.sync()
    # The recommendation made when the HPA first saw 4 replicas holds for 5 minutes.
    assert w.replicas() == 4
    assert condition(hpa, "AbleToScale") == (
        "True",
        "ScaleDownStabilized",
        "recent recommendations were higher than current one, applying the highest recent "
        "recommendation",
    )
    w.sync(advance=200)
    assert w.replicas() == 4
    w.sync(advance=200)  # past 300 s since the 4 was recommended
    assert w.replicas() == 1
    assert (
        "Normal",
        "SuccessfulRescale",
        "New size: 1; reason: All metrics below target",
    ) in w.events()


def test_behavior_policies_limit_the_rate() -> None:
    w = World(replicas=4)
    for name in "abcd":
        w.pod(name, 10)
    w.hpa(
        {
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": 0,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                }
            }
        }
    )
    hpa = w.sync()
    assert w.replicas() == 3  # one pod per minute
    assert condition(hpa, "ScalingLimited") == (
        "True",
        "ScaleDownLimit",
        "the desired replica count is decreasing faster than the maximum scale rate",
    )
    w.sync(advance=15)
    assert w.replicas() == 3  # the minute's one pod is spent
    w.sync(advance=50)
    assert w.replicas() == 2


def test_missing_request_is_reported_as_the_controller_does() -> None:
    w = World(cpu_request=None)
    w.pod("a", 90)
    w.hpa()
    hpa = w.sync()
    assert w.replicas() == 2
    message = (
        "failed to get cpu resource metric value: failed to get cpu utilization: "
        "missing request for cpu in container app of Pod a"
    )
    assert condition(hpa, "ScalingActive") == (
        "False",
        "FailedGetResourceMetric",
        f"the HPA was unable to compute the replica count: {message}",
    )
    assert ("Warning", "FailedGetResourceMetric", message) in w.events()
    assert (
        "Warning",
        "FailedComputeMetricsReplicas",
        f"invalid metrics (1 invalid out of 1), first error is: {message}",
    ) in w.events()
    assert hpa["status"]["currentMetrics"] == [{"type": ""}]


def test_no_metrics_yet() -> None:
    w = World()
    w.pod("a", None)
    w.hpa()
    hpa = w.sync()
    assert condition(hpa, "ScalingActive")[1] == "FailedGetResourceMetric"
    assert condition(hpa, "ScalingActive")[2].endswith(
        "unable to get metrics for resource cpu: no metrics returned from resource metrics API"
    )


def test_unready_pods_do_not_push_a_scale_up() -> None:
    w = World(replicas=3)
    w.pod("a", 100)
    w.pod("b", 100)
    w.pod("c", 0, ready=False)  # never ready yet: counted at 0 usage on a scale-up
    w.hpa()
    w.sync()
    # Ready pods alone: 200% -> 4 pods; with c at 0%: 133% -> ceil(1.33 * 3) = 4.
    assert w.replicas() == 4


def test_missing_pod_metrics_damp_a_scale_down() -> None:
    w = World(replicas=3)
    w.pod("a", 10)
    w.pod("b", 10)
    w.pod("c", None)  # no figure: taken at 100% of its request when scaling down
    w.hpa({"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}})
    w.sync()
    # (10 + 10 + 100) / 300 = 40% of request, 0.8 of the target: ceil(0.8 * 3) = 3.
    assert w.replicas() == 3


def test_missing_target_gives_failed_get_scale() -> None:
    w = World()
    w.hpa({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nope"}})
    hpa = w.sync()
    assert condition(hpa, "AbleToScale") == (
        "False",
        "FailedGetScale",
        "the HPA controller was unable to get the target's current scale: "
        'deployments.apps "nope" not found',
    )
    assert ("Warning", "FailedGetScale", 'deployments.apps "nope" not found') in w.events()


def test_v1_hpa_scales_too() -> None:
    w = World()
    w.pod("a", 100)
    w.pod("b", 100)
    w.registry.create(
        {
            "apiVersion": "autoscaling/v1",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "maxReplicas": 3,
                "targetCPUUtilizationPercentage": 50,
            },
        }
    )
    w.sync()
    assert w.replicas() == 3


@pytest.mark.parametrize(
    ("milli", "text"),
    [(0, "0"), (6, "6m"), (1000, "1"), (1500, "1500m"), (2_000_000, "2k"), (10**11, "100M")],
)
def test_milli_quantity(milli: int, text: str) -> None:
    assert milli_quantity(milli) == text
