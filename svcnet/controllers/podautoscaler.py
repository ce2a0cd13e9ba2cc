"""HorizontalPodAutoscaler controller (k/k pkg/controller/podautoscaler:
horizontal.go and replica_calculator.go), for Resource and ContainerResource
metrics read from the node's usage figures, the ones metrics.k8s.io serves.

Every sync period (15 s, kube-controller-manager's
--horizontal-pod-autoscaler-sync-period) each HPA reads its target through the
scale subresource, computes the replicas each metric asks for (usage over
request, within the 10% tolerance; unready pods and pods without a figure
handled as replica_calculator.go handles them), takes the largest, stabilizes a
scale-down over the last five minutes' recommendations (or the behavior's
windows and rate policies), clamps to minReplicas..maxReplicas and writes the
new size through the same `Registry.update_scale` that `kubectl scale` goes
through. Status, conditions and Events carry the real controller's reasons and
messages, so `kubectl describe hpa` reads as on a cluster.

Pods, Object and External metrics need a custom metrics API that svcnet does not
serve: they fail as they do on a cluster without one.

Time comes from `clock` and usage from `metrics`, so tests decide both.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from svcnet.controllers.base import Controller, Key
from svcnet.events import record
from svcnet.k8s import kinds, labels, quantity
from svcnet.k8s.objects import Obj
from svcnet.k8s.timestamps import parse_time, rfc3339
from svcnet.nodeapi import PodUsage
from svcnet.registry import ApiError, Registry
from svcnet.registry.scale import SCALABLE, scale_of
from svcnet.store import Event

SYNC_PERIOD = 15.0
"""--horizontal-pod-autoscaler-sync-period."""
DOWNSCALE_STABILIZATION = 300.0
"""--horizontal-pod-autoscaler-downscale-stabilization."""
TOLERANCE = 0.1
"""--horizontal-pod-autoscaler-tolerance."""
CPU_INITIALIZATION_PERIOD = 300.0
"""--horizontal-pod-autoscaler-cpu-initialization-period."""
INITIAL_READINESS_DELAY = 30.0
"""--horizontal-pod-autoscaler-initial-readiness-delay."""
COMPONENT = "horizontal-pod-autoscaler"
FIELD_MANAGER = "kube-controller-manager"

MetricsSource = Callable[[], Iterable[PodUsage]]
"""The node's usage of every running pod (NodeApi.usage): what metrics-server serves."""


class MetricError(Exception):
    """A metric could not give a replica count; the message is the controller's."""


@dataclass(frozen=True)
class PodMetric:
    value: int  # milli-units: millicores, or milli-bytes as MilliValue() gives them
    timestamp: float
    window: float


def milli_quantity(milli: int) -> str:
    """resource.NewMilliQuantity(v, DecimalSI).String(): `250m`, `2`, `100M`."""
    if milli % 1000:
        return f"{milli}m"
    v = milli // 1000
    if v == 0:
        return "0"
    for exp, suffix in ((18, "E"), (15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k")):
        if v % 10**exp == 0:
            return f"{v // 10**exp}{suffix}"
    return str(v)


def _milli(value: object) -> int:
    """Quantity.MilliValue(), rounded up."""
    return math.ceil(quantity.parse(value) * 1000)


def set_condition(hpa: Obj, ctype: str, status: str, reason: str, message: str, now: float) -> None:
    """setConditionInList: the transition time moves only when the status does."""
    conds = hpa.setdefault("status", {}).setdefault("conditions", [])
    for c in conds:
        if c.get("type") == ctype:
            break
    else:
        c = {"type": ctype}
        conds.append(c)
    if c.get("status") != status:
        c["lastTransitionTime"] = rfc3339(now)
    c["status"] = status
    c["reason"] = reason
    c["message"] = message
    order = ("type", "status", "lastTransitionTime", "reason", "message")
    reordered = {k: c[k] for k in order if k in c}
    c.clear()
    c.update(reordered)


_ABLE_TO_SCALE = {
    "ScaleUpStabilized": "recent recommendations were lower than current one, applying the "
    "lowest recent recommendation",
    "ScaleDownStabilized": "recent recommendations were higher than current one, applying the "
    "highest recent recommendation",
    "ReadyForNewScale": "recommended size matches current size",
}
"""The AbleToScale condition's message for each reason the stabilization gives."""


def _remember(recs: list[tuple[float, int]], old: int, now: float, desired: int) -> None:
    """Keep this recommendation, in the slot of one that left every window if any."""
    if old >= 0:
        recs[old] = (now, desired)
    else:
        recs.append((now, desired))


class HorizontalPodAutoscalerController(Controller):
    name = COMPONENT
    owns = "HorizontalPodAutoscaler"

    def __init__(
        self,
        registry: Registry,
        metrics: MetricsSource,
        *,
        sync_period: float = SYNC_PERIOD,
        clock: Callable[[], float] = time.time,
        downscale_stabilization: float = DOWNSCALE_STABILIZATION,
        tolerance: float = TOLERANCE,
    ) -> None:
        super().__init__(registry)
        self.metrics = metrics
        self.sync_period = sync_period
        self.clock = clock
        self.downscale_stabilization = downscale_stabilization
        self.tolerance = tolerance
        self._recommendations: dict[Key, list[tuple[float, int]]] = {}
        """Recent unstabilized recommendations per HPA: (when, replicas)."""
        self._scale_events: dict[Key, dict[str, list[tuple[float, int]]]] = {}
        """Per HPA and direction ("up", "down"): (when, replicas changed), for the
        behavior's rate policies."""

    def keys_for(self, ev: Event) -> Iterable[Key]:
        if ev.kind != "HorizontalPodAutoscaler":
            return ()
        key = (ev.namespace, ev.name)
        if ev.type == "DELETED":
            self._recommendations.pop(key, None)
            self._scale_events.pop(key, None)
            return (key,)
        old = ev.old or {}
        # A status write (ours) waits for the next period, as the real controller's
        # rate-limited queue makes every resync wait; a new or changed spec is looked
        # at now.
        if ev.type == "ADDED" or old.get("spec") != ev.obj.get("spec"):
            return (key,)
        return ()

    def sync(self, key: Key) -> None:
        ns, name = key
        hpa = self.store.get("HorizontalPodAutoscaler", ns, name)
        if hpa is None or hpa["metadata"].get("deletionTimestamp"):
            self._recommendations.pop(key, None)
            self._scale_events.pop(key, None)
            return
        try:
            self.reconcile(key, hpa)
        finally:
            self.enqueue_after(key, self.sync_period)

    # --- one reconcile (reconcileAutoscaler) ------------------------------------------

    def reconcile(self, key: Key, live: Obj) -> None:
        hpa = copy.deepcopy(live)
        now = self.clock()
        spec = hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        given_min = spec.get("minReplicas")
        min_replicas = int(given_min) if given_min is not None else 1
        max_replicas = int(spec.get("maxReplicas") or 0)
        try:
            target_kind, scale = self._get_scale(hpa)
        except MetricError as e:
            self._event(hpa, "Warning", "FailedGetScale", str(e))
            set_condition(
                hpa,
                "AbleToScale",
                "False",
                "FailedGetScale",
                f"the HPA controller was unable to get the target's current scale: {e}",
                now,
            )
            self._put_status(live, hpa)
            return
        set_condition(
            hpa,
            "AbleToScale",
            "True",
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
            now,
        )
        current = int(scale["spec"]["replicas"])
        self._recommendations.setdefault(key, [(now, current)])
        statuses: list[Obj] = []
        rescale_reason = ""
        desired = 0
        rescale = True
        if current == 0 and min_replicas != 0:
            desired, rescale = 0, False
            set_condition(
                hpa,
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
                now,
            )
        elif current > max_replicas:
            rescale_reason = "Current number of replicas above Spec.MaxReplicas"
            desired = max_replicas
        elif current < min_replicas:
            rescale_reason = "Current number of replicas below Spec.MinReplicas"
            desired = min_replicas
        else:
            proposed, metric_name, statuses, error = self._compute_replicas(hpa, scale, now)
            if proposed < 0:
                self._set_replicas_and_metrics(hpa, current, statuses)
                self._put_status(live, hpa)
                self._event(hpa, "Warning", "FailedComputeMetricsReplicas", error)
                return
            rescale_metric = ""
            if proposed > desired:
                desired, rescale_metric = proposed, metric_name
            if desired > current:
                rescale_reason = f"{rescale_metric} above target"
            if desired < current:
                rescale_reason = "All metrics below target"
            if spec.get("behavior") is None:
                desired = self._normalize(hpa, key, current, desired, min_replicas, now)
            else:
                desired = self._normalize_with_behaviors(
                    hpa, key, current, desired, min_replicas, now
                )
            rescale = desired != current
        if rescale:
            try:
                self.registry.update_scale(
                    target_kind,
                    hpa["metadata"]["namespace"],
                    str(ref.get("name")),
                    desired,
                    field_manager=FIELD_MANAGER,
                )
            except ApiError as e:
                self._event(
                    hpa,
                    "Warning",
                    "FailedRescale",
                    f"New size: {desired}; reason: {rescale_reason}; error: {e}",
                )
                set_condition(
                    hpa,
                    "AbleToScale",
                    "False",
                    "FailedUpdateScale",
                    f"the HPA controller was unable to update the target scale: {e}",
                    now,
                )
                self._set_replicas_and_metrics(hpa, current, statuses)
                self._put_status(live, hpa)
                return
            set_condition(
                hpa,
                "AbleToScale",
                "True",
                "SucceededRescale",
                f"the HPA controller was able to update the target scale to {desired}",
                now,
            )
            self._event(
                hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {rescale_reason}"
            )
            self._store_scale_event(hpa, key, current, desired, now)
        else:
            desired = current
        st = hpa.setdefault("status", {})
        last = st.get("lastScaleTime")
        new_status: Obj = {}
        if rescale:
            last = rfc3339(now)
        if last:
            new_status["lastScaleTime"] = last
        new_status["currentReplicas"] = current
        new_status["desiredReplicas"] = desired
        if statuses:
            new_status["currentMetrics"] = statuses
        new_status["conditions"] = st.get("conditions") or []
        hpa["status"] = new_status
        self._put_status(live, hpa)

    def _event(self, hpa: Obj, type_: str, reason: str, message: str) -> None:
        record(self.registry, hpa, type_, reason, message, COMPONENT)

    def _set_replicas_and_metrics(self, hpa: Obj, current: int, statuses: list[Obj]) -> None:
        """setCurrentReplicasAndMetricsInStatus: desiredReplicas kept as it was."""
        st = hpa.setdefault("status", {})
        st["currentReplicas"] = current
        st.setdefault("desiredReplicas", 0)
        if statuses:
            st["currentMetrics"] = statuses
        else:
            st.pop("currentMetrics", None)

    def _put_status(self, live: Obj, hpa: Obj) -> None:
        """updateStatusIfNeeded."""
        if hpa.get("status") == live.get("status"):
            return
        md = live["metadata"]
        status = hpa["status"]

        def put(o: Obj) -> None:
            o["status"] = status

        try:
            self.registry.update_status(self.owns, md["namespace"], md["name"], put)
        except ApiError:
            pass  # deleted meanwhile: nothing left to report on

    # --- the target --------------------------------------------------------------------

    def _get_scale(self, hpa: Obj) -> tuple[kinds.Kind, Obj]:
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        api_version, kind_name = str(ref.get("apiVersion") or ""), str(ref.get("kind") or "")
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        kind = kinds.for_api_version(api_version, kind_name)
        if kind is None or kind.kind not in SCALABLE:
            raise MetricError(f'no matches for kind "{kind_name}" in group "{group}"')
        try:
            obj = self.registry.get(kind, hpa["metadata"]["namespace"], str(ref.get("name")))
        except ApiError as e:
            raise MetricError(str(e)) from None
        return kind, scale_of(obj)

    # --- metrics (computeReplicasForMetrics) -----------------------------------------

    def _compute_replicas(
        self, hpa: Obj, scale: Obj, now: float
    ) -> tuple[int, str, list[Obj], str]:
        """(replicas, the metric that asked for them, statuses, error); replicas is -1
        when no metric could be used (or some failed and the rest would scale down)."""
        selector_text = str(scale["status"].get("selector") or "")
        if not selector_text:
            self._event(hpa, "Warning", "SelectorRequired", "selector is required")
            set_condition(
                hpa,
                "ScalingActive",
                "False",
                "InvalidSelector",
                "the HPA target's scale is missing a selector",
                now,
            )
            return -1, "", [], "selector is required"
        try:
            selector = labels.parse(selector_text)
        except labels.SelectorError as e:
            message = (
                f"couldn't convert selector into a corresponding internal selector object: {e}"
            )
            self._event(hpa, "Warning", "InvalidSelector", message)
            set_condition(hpa, "ScalingActive", "False", "InvalidSelector", message, now)
            return -1, "", [], message
        specs = (hpa.get("spec") or {}).get("metrics") or []
        spec_replicas = int(scale["spec"]["replicas"])
        statuses: list[Obj] = [{"type": ""} for _ in specs]
        replicas, metric = 0, ""
        invalid = 0
        first_error = ""
        first_condition: tuple[str, str, str, str] | None = None
        ns = hpa["metadata"]["namespace"]
        pods = [
            p for p in self.store.list("Pod", ns) if selector.matches(p["metadata"].get("labels"))
        ]
        for i, m in enumerate(specs):
            try:
                proposal, name, statuses[i] = self._compute_metric(m, spec_replicas, pods, ns, now)
            except MetricError as e:
                reason, err = e.args[0], e.args[1]
                self._event(hpa, "Warning", reason, err)
                if invalid == 0:
                    first_error = err
                    first_condition = (
                        "ScalingActive",
                        "False",
                        reason,
                        f"the HPA was unable to compute the replica count: {err}",
                    )
                invalid += 1
                continue
            if replicas == 0 or proposal > replicas:
                replicas, metric = proposal, name
        error = (
            f"invalid metrics ({invalid} invalid out of {len(specs)}), first error is: "
            f"{first_error}"
            if invalid
            else ""
        )
        if invalid >= len(specs) or (invalid > 0 and replicas < spec_replicas):
            if first_condition is not None:
                set_condition(hpa, *first_condition, now)
            return -1, "", statuses, error
        set_condition(
            hpa,
            "ScalingActive",
            "True",
            "ValidMetricFound",
            f"the HPA was able to successfully calculate a replica count from {metric}",
            now,
        )
        return replicas, metric, statuses, error

    def _compute_metric(
        self, m: Obj, current: int, pods: list[Obj], ns: str, now: float
    ) -> tuple[int, str, Obj]:
        """computeReplicasForMetric: raises MetricError(reason, message)."""
        typ = m.get("type")
        if typ not in ("Resource", "ContainerResource"):
            # Pods, Object and External metrics come from a custom or external metrics
            # API, which svcnet does not serve (as a cluster without an adapter).
            reason = {
                "Pods": "FailedGetPodsMetric",
                "Object": "FailedGetObjectMetric",
                "External": "FailedGetExternalMetric",
            }.get(str(typ))
            if reason is None:
                raise MetricError(
                    "InvalidMetricSourceType",
                    f'failed to compute desired number of replicas based on metric type "{typ}"'
                    f": unknown metric source type {typ!r}",
                )
            api = "custom.metrics.k8s.io" if typ != "External" else "external.metrics.k8s.io"
            raise MetricError(
                reason,
                f"failed to get {str(typ).lower()} metric value: unable to get metric: "
                f"the server could not find the requested resource (get {api})",
            )
        field = "resource" if typ == "Resource" else "containerResource"
        src = m.get(field) or {}
        resource = str(src.get("name") or "")
        container = str(src.get("container") or "") if typ == "ContainerResource" else ""
        target = src.get("target") or {}
        reason = (
            "FailedGetResourceMetric" if typ == "Resource" else "FailedGetContainerResourceMetric"
        )
        prefix = (
            f"failed to get {resource} resource metric value"
            if typ == "Resource"
            else (f"failed to get {resource} container metric value")
        )
        try:
            if target.get("averageValue") is not None:
                try:
                    replicas, raw = self._raw_replicas(
                        current, _milli(target["averageValue"]), resource, container, pods, ns, now
                    )
                except MetricError as e:
                    raise MetricError(f"failed to get {resource} usage: {e}") from None
                status: Obj = {"averageValue": milli_quantity(raw)}
                name = (
                    f"{resource} resource" if not container else (f"{resource} container resource")
                )
            elif target.get("averageUtilization") is not None:
                try:
                    replicas, util, raw = self._utilization_replicas(
                        current,
                        int(target["averageUtilization"]),
                        resource,
                        container,
                        pods,
                        ns,
                        now,
                    )
                except MetricError as e:
                    raise MetricError(f"failed to get {resource} utilization: {e}") from None
                status = {"averageValue": milli_quantity(raw), "averageUtilization": util}
                name = (
                    f"{resource} resource utilization (percentage of request)"
                    if not container
                    else f"{resource} container resource utilization (percentage of request)"
                )
            else:
                raise MetricError(
                    "invalid resource metric source: neither an average utilization target "
                    "nor an average value (usage) target was set"
                )
        except MetricError as e:
            raise MetricError(reason, f"{prefix}: {e.args[0]}") from None
        one: Obj = {"name": resource, "current": status}
        if container:
            one = {"name": resource, "current": status, "container": container}
        return replicas, name, {"type": typ, field: one}

    # --- replica_calculator.go -------------------------------------------------------

    def _pod_metrics(self, resource: str, container: str, ns: str) -> dict[str, PodMetric]:
        """metricsClient.GetResourceMetric: the usage metrics-server reports."""
        out: dict[str, PodMetric] = {}
        for u in self.metrics():
            if u.namespace != ns:
                continue
            total, found = 0, False
            for c in u.containers:
                if container and c.name != container:
                    continue
                found = True
                if resource == "cpu":
                    total += math.ceil(c.cpu_nanocores / 1_000_000)
                elif resource == "memory":
                    total += c.memory_bytes * 1000
            if found and resource in ("cpu", "memory"):
                out[u.name] = PodMetric(total, u.timestamp, u.window)
        if not out:
            raise MetricError(
                f"unable to get metrics for resource {resource}: no metrics returned from "
                "resource metrics API"
            )
        return out

    def _group_pods(
        self, pods: list[Obj], metrics: dict[str, PodMetric], resource: str, now: float
    ) -> tuple[int, set[str], set[str], set[str]]:
        """groupPods: (ready count, unready, missing, ignored)."""
        ready, unready, missing, ignored = 0, set(), set(), set()
        for pod in pods:
            name = pod["metadata"]["name"]
            st = pod.get("status") or {}
            if pod["metadata"].get("deletionTimestamp") or st.get("phase") == "Failed":
                ignored.add(name)
                continue
            if st.get("phase") == "Pending":
                unready.add(name)
                continue
            metric = metrics.get(name)
            if metric is None:
                missing.add(name)
                continue
            if resource == "cpu":
                cond = next(
                    (c for c in st.get("conditions") or [] if c.get("type") == "Ready"), None
                )
                start = parse_time(st.get("startTime"))
                if cond is None or start is None:
                    is_unready = True
                else:
                    changed = parse_time(cond.get("lastTransitionTime"))
                    changed_at = changed.timestamp() if changed is not None else 0.0
                    started = start.timestamp()
                    if started + CPU_INITIALIZATION_PERIOD > now:
                        # A sample that began before the pod became ready is not its own.
                        is_unready = (
                            cond.get("status") == "False"
                            or metric.timestamp < changed_at + metric.window
                        )
                    else:
                        is_unready = (
                            cond.get("status") == "False"
                            and started + INITIAL_READINESS_DELAY > changed_at
                        )
                if is_unready:
                    unready.add(name)
                    continue
            ready += 1
        return ready, unready, missing, ignored

    @staticmethod
    def _requests(pods: list[Obj], container: str, resource: str) -> dict[str, int]:
        """calculatePodRequests: milli-units per pod; a container without a request is
        an error naming it."""
        out: dict[str, int] = {}
        for pod in pods:
            spec = pod.get("spec") or {}
            containers = list(spec.get("containers") or []) + [
                c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"
            ]
            total = 0
            for c in containers:
                if container and c.get("name") != container:
                    continue
                requests = (c.get("resources") or {}).get("requests") or {}
                if resource not in requests:
                    raise MetricError(
                        f"missing request for {resource} in container {c.get('name')} of Pod "
                        f"{pod['metadata']['name']}"
                    )
                total += _milli(requests[resource])
            out[pod["metadata"]["name"]] = total
        return out

    @staticmethod
    def _utilization_ratio(
        metrics: dict[str, PodMetric], requests: dict[str, int], target: int
    ) -> tuple[float, int, int]:
        """GetResourceUtilizationRatio: (ratio, utilization %, raw average)."""
        total, requested, n = 0, 0, 0
        for name, m in metrics.items():
            if name not in requests:
                continue
            total += m.value
            requested += requests[name]
            n += 1
        if requested == 0:
            raise MetricError("no metrics returned matched known pods")
        util = total * 100 // requested
        return util / target, util, total // n

    def _utilization_replicas(
        self,
        current: int,
        target: int,
        resource: str,
        container: str,
        pods: list[Obj],
        ns: str,
        now: float,
    ) -> tuple[int, int, int]:
        """GetResourceReplicas: (replicas, utilization %, raw average)."""
        metrics = self._pod_metrics(resource, container, ns)
        if not pods:
            raise MetricError("no pods returned by selector while calculating replica count")
        ready, unready, missing, ignored = self._group_pods(pods, metrics, resource, now)
        for name in ignored | unready:
            metrics.pop(name, None)
        if not metrics:
            raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
        requests = self._requests(pods, container, resource)
        ratio, util, raw = self._utilization_ratio(metrics, requests, target)
        up_with_unready = bool(unready) and ratio > 1.0
        if not up_with_unready and not missing:
            if abs(1.0 - ratio) <= self.tolerance:
                return current, util, raw
            return math.ceil(ratio * ready), util, raw
        if missing:
            for name in missing:
                fill = requests[name] * max(100, target) // 100 if ratio < 1.0 else 0
                if ratio != 1.0:
                    metrics[name] = PodMetric(fill, now, 0.0)
        if up_with_unready:
            for name in unready:
                metrics[name] = PodMetric(0, now, 0.0)
        new_ratio, _, _ = self._utilization_ratio(metrics, requests, target)
        if (
            abs(1.0 - new_ratio) <= self.tolerance
            or (ratio < 1.0 < new_ratio)
            or (ratio > 1.0 > new_ratio)
        ):
            return current, util, raw
        proposal = math.ceil(new_ratio * len(metrics))
        if (new_ratio < 1.0 and proposal > current) or (new_ratio > 1.0 and proposal < current):
            return current, util, raw
        return proposal, util, raw

    def _raw_replicas(
        self,
        current: int,
        target: int,
        resource: str,
        container: str,
        pods: list[Obj],
        ns: str,
        now: float,
    ) -> tuple[int, int]:
        """GetRawResourceReplicas -> calcPlainMetricReplicas: (replicas, raw average)."""
        metrics = self._pod_metrics(resource, container, ns)
        if not pods:
            raise MetricError("no pods returned by selector while calculating replica count")
        ready, unready, missing, ignored = self._group_pods(pods, metrics, resource, now)
        for name in ignored | unready:
            metrics.pop(name, None)
        if not metrics:
            raise MetricError("did not receive metrics for targeted pods (pods might be unready)")

        def ratio_of(ms: dict[str, PodMetric]) -> tuple[float, int]:
            total = sum(m.value for m in ms.values())
            return total / (target * len(ms)), total // len(ms)

        ratio, raw = ratio_of(metrics)
        up_with_unready = bool(unready) and ratio > 1.0
        if not up_with_unready and not missing:
            if abs(1.0 - ratio) <= self.tolerance:
                return current, raw
            return math.ceil(ratio * ready), raw
        if missing:
            for name in missing:
                if ratio < 1.0:
                    metrics[name] = PodMetric(target, now, 0.0)
                elif ratio > 1.0:
                    metrics[name] = PodMetric(0, now, 0.0)
        if up_with_unready:
            for name in unready:
                metrics[name] = PodMetric(0, now, 0.0)
        new_ratio, _ = ratio_of(metrics)
        if (
            abs(1.0 - new_ratio) <= self.tolerance
            or (ratio < 1.0 < new_ratio)
            or (ratio > 1.0 > new_ratio)
        ):
            return current, raw
        proposal = math.ceil(new_ratio * len(metrics))
        if (new_ratio < 1.0 and proposal > current) or (new_ratio > 1.0 and proposal < current):
            return current, raw
        return proposal, raw

    # --- normalization (horizontal.go) -----------------------------------------------

    def _normalize(
        self, hpa: Obj, key: Key, current: int, desired: int, min_replicas: int, now: float
    ) -> int:
        """normalizeDesiredReplicas: the highest recommendation of the stabilization
        window, then the min/max clamp and the old fixed scale-up rate."""
        stabilized = desired
        recs = self._recommendations.setdefault(key, [])
        cutoff = now - self.downscale_stabilization
        old = -1
        for i, (when, rec) in enumerate(recs):
            if when < cutoff:
                old = i
            elif rec > stabilized:
                stabilized = rec
        _remember(recs, old, now, desired)
        stable = "ScaleDownStabilized" if stabilized != desired else "ReadyForNewScale"
        set_condition(hpa, "AbleToScale", "True", stable, _ABLE_TO_SCALE[stable], now)
        max_replicas = int((hpa.get("spec") or {}).get("maxReplicas") or 0)
        scale_up_limit = max(2 * current, 4)
        if max_replicas > scale_up_limit:
            allowed_max, reason = scale_up_limit, "ScaleUpLimit"
            message = "the desired replica count is increasing faster than the maximum scale rate"
        else:
            allowed_max, reason = max_replicas, "TooManyReplicas"
            message = "the desired replica count is more than the maximum replica count"
        if stabilized < min_replicas:
            result, reason = min_replicas, "TooFewReplicas"
            message = "the desired replica count is less than the minimum replica count"
        elif stabilized > allowed_max:
            result = allowed_max
        else:
            result, reason = stabilized, "DesiredWithinRange"
            message = "the desired count is within the acceptable range"
        limited = "False" if result == stabilized else "True"
        set_condition(hpa, "ScalingLimited", limited, reason, message, now)
        return result

    def _normalize_with_behaviors(
        self, hpa: Obj, key: Key, current: int, desired: int, min_replicas: int, now: float
    ) -> int:
        """normalizeDesiredReplicasWithBehaviors: each direction's stabilization
        window, then its rate policies."""
        behavior = (hpa.get("spec") or {}).get("behavior") or {}
        up = behavior.get("scaleUp") or {}
        down = behavior.get("scaleDown") or {}
        up_window = float(up.get("stabilizationWindowSeconds") or 0)
        down_window = down.get("stabilizationWindowSeconds")
        down_window = (
            float(down_window) if down_window is not None else self.downscale_stabilization
        )
        recs = self._recommendations.setdefault(key, [])
        up_rec, down_rec = desired, desired
        up_cut, down_cut = now - up_window, now - down_window
        old = -1
        for i, (when, rec) in enumerate(recs):
            if when > up_cut:
                up_rec = min(rec, up_rec)
            if when > down_cut:
                down_rec = max(rec, down_rec)
            if when < up_cut and when < down_cut:
                old = i
        stabilized = max(current, up_rec)
        stabilized = min(stabilized, down_rec)
        _remember(recs, old, now, desired)
        if stabilized == desired:
            stable = "ReadyForNewScale"
        else:
            stable = "ScaleUpStabilized" if desired >= current else "ScaleDownStabilized"
        set_condition(hpa, "AbleToScale", "True", stable, _ABLE_TO_SCALE[stable], now)
        max_replicas = int((hpa.get("spec") or {}).get("maxReplicas") or 0)
        events = self._scale_events.get(key) or {}
        result = stabilized
        reason, message = "DesiredWithinRange", "the desired count is within the acceptable range"
        if stabilized > current:
            limit = max(self._up_limit(current, events, up, now), current)
            if max_replicas > limit:
                allowed, reason = limit, "ScaleUpLimit"
                message = (
                    "the desired replica count is increasing faster than the maximum scale rate"
                )
            else:
                allowed, reason = max_replicas, "TooManyReplicas"
                message = "the desired replica count is more than the maximum replica count"
            if stabilized > allowed:
                result = allowed
            else:
                reason = "DesiredWithinRange"
                message = "the desired count is within the acceptable range"
        elif stabilized < current:
            limit = min(self._down_limit(current, events, down, now), current)
            if min_replicas < limit:
                allowed, reason = limit, "ScaleDownLimit"
                message = (
                    "the desired replica count is decreasing faster than the maximum scale rate"
                )
            else:
                allowed, reason = min_replicas, "TooFewReplicas"
                message = "the desired replica count is less than the minimum replica count"
            if stabilized < allowed:
                result = allowed
            else:
                reason = "DesiredWithinRange"
                message = "the desired count is within the acceptable range"
        limited = "False" if result == stabilized else "True"
        set_condition(hpa, "ScalingLimited", limited, reason, message, now)
        return result

    @staticmethod
    def _changed_in(period: float, events: list[tuple[float, int]], now: float) -> int:
        """getReplicasChangePerPeriod."""
        return sum(change for when, change in events if when > now - period)

    def _up_limit(
        self, current: int, events: dict[str, list[tuple[float, int]]], rules: Obj, now: float
    ) -> int:
        """calculateScaleUpLimitWithScalingRules."""
        return self._limit(current, events, rules, now, up=True)

    def _down_limit(
        self, current: int, events: dict[str, list[tuple[float, int]]], rules: Obj, now: float
    ) -> int:
        """calculateScaleDownLimitWithBehaviors: Max picks the policy that allows the
        biggest change, the lowest count."""
        return self._limit(current, events, rules, now, up=False)

    def _limit(
        self,
        current: int,
        events: dict[str, list[tuple[float, int]]],
        rules: Obj,
        now: float,
        *,
        up: bool,
    ) -> int:
        """Each policy's bound from the replica count its period started with (the
        changes within it undone); selectPolicy Max allows the biggest change."""
        select = rules.get("selectPolicy") or "Max"
        if select == "Disabled":
            return current
        proposals = []
        for p in rules.get("policies") or []:
            period = float(p.get("periodSeconds") or 0)
            start = (
                current
                - self._changed_in(period, events.get("up", []), now)
                + self._changed_in(period, events.get("down", []), now)
            )
            value = int(p.get("value") or 0)
            if p.get("type") == "Pods":
                proposals.append(start + value if up else start - value)
            elif up:
                proposals.append(math.ceil(start * (1 + value / 100)))
            else:
                proposals.append(int(start * (1 - value / 100)))
        if not proposals:
            return current
        biggest = max if up else min
        return biggest(proposals) if select == "Max" else (min if up else max)(proposals)

    def _store_scale_event(self, hpa: Obj, key: Key, before: int, after: int, now: float) -> None:
        """storeScaleEvent: only behaviors' rate policies look back at changes; events
        older than the direction's longest policy period are dropped."""
        behavior = (hpa.get("spec") or {}).get("behavior")
        if not isinstance(behavior, dict):
            return
        direction = "up" if after > before else "down"
        rules = behavior.get("scaleUp" if direction == "up" else "scaleDown") or {}
        longest = max(
            (float(p.get("periodSeconds") or 0) for p in rules.get("policies") or []), default=0.0
        )
        events = self._scale_events.setdefault(key, {}).setdefault(direction, [])
        events[:] = [(w, c) for w, c in events if w > now - longest]
        events.append((now, abs(after - before)))
