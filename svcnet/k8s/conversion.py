"""Conversion between the served versions of one kind, as kube-apiserver's scheme
converts them (k/k pkg/apis/<group>/<version>/conversion.go).

A kind served in several versions is stored in one (its Kind entry without
``storage_version``); the API converts a request's body to it before admission
and every answer back to the version the client asked for. Only the
HorizontalPodAutoscaler has two versions here: autoscaling/v2, stored, and
autoscaling/v1, whose one metric field is the CPU utilization target. What v1
cannot say (other metrics, their statuses, the conditions) rides in annotations,
as the API server writes them, so a v1 read-modify-write keeps it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from svcnet.k8s.kinds import Kind
from svcnet.k8s.objects import Obj

METRIC_SPECS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
METRIC_STATUSES_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
DEFAULT_CPU_UTILIZATION = 80
"""autoscaling.DefaultCPUUtilization: v1's implicit target, explicit in v2."""


class ConversionError(ValueError):
    """A body that cannot be converted (a round-trip annotation that is not the JSON
    it must be); the message names the annotation."""


def to_version(obj: Obj, kind: Kind) -> Obj:
    """A stored object as `kind`'s version shows it (the object itself if that is
    the storage version)."""
    if not kind.storage_version or obj.get("apiVersion") == kind.api_version:
        return obj
    if kind.kind == "HorizontalPodAutoscaler" and kind.version == "v1":
        return _hpa_v2_to_v1(obj)
    return obj


def to_storage(obj: Obj, kind: Kind) -> Obj:
    """A body of `kind`'s version as the storage version holds it. Raises
    ConversionError."""
    if not kind.storage_version:
        return obj
    if kind.kind == "HorizontalPodAutoscaler" and kind.version == "v1":
        return _hpa_v1_to_v2(obj, f"{kind.group}/{kind.storage_version}")
    return obj


def _compact(value: Any) -> str:
    """encoding/json's Marshal: no spaces, keys in the Go struct's order (the
    dictionaries below are built in that order)."""
    return json.dumps(value, separators=(",", ":"))


def _drop_none(d: Obj) -> Obj:
    return {k: v for k, v in d.items() if v is not None}


# --- autoscaling/v2 -> autoscaling/v1 ------------------------------------------------


def _is_cpu_utilization(m: Obj) -> bool:
    res = m.get("resource") or {}
    return (
        m.get("type") == "Resource"
        and res.get("name") == "cpu"
        and (res.get("target") or {}).get("averageUtilization") is not None
    )


def _metric_spec_v1(m: Obj) -> Obj:
    t = m.get("type", "")
    out: Obj = {"type": t}
    if m.get("object") is not None:
        src = m["object"]
        target = src.get("target") or {}
        out["object"] = _drop_none(
            {
                "target": src.get("describedObject") or {},
                "metricName": (src.get("metric") or {}).get("name", ""),
                "targetValue": target.get("value") or "0",
                "selector": (src.get("metric") or {}).get("selector"),
                "averageValue": target.get("averageValue"),
            }
        )
    if m.get("pods") is not None:
        src = m["pods"]
        out["pods"] = _drop_none(
            {
                "metricName": (src.get("metric") or {}).get("name", ""),
                "targetAverageValue": (src.get("target") or {}).get("averageValue") or "0",
                "selector": (src.get("metric") or {}).get("selector"),
            }
        )
    for field in ("resource", "containerResource"):
        if m.get(field) is not None:
            src = m[field]
            target = src.get("target") or {}
            one: Obj = {
                "name": src.get("name", ""),
                "targetAverageUtilization": target.get("averageUtilization"),
                "targetAverageValue": target.get("averageValue"),
            }
            if field == "containerResource":
                one["container"] = src.get("container", "")
            out[field] = _drop_none(one)
    if m.get("external") is not None:
        src = m["external"]
        target = src.get("target") or {}
        out["external"] = _drop_none(
            {
                "metricName": (src.get("metric") or {}).get("name", ""),
                "metricSelector": (src.get("metric") or {}).get("selector"),
                "targetValue": target.get("value"),
                "targetAverageValue": target.get("averageValue"),
            }
        )
    return out


def _metric_status_v1(m: Obj) -> Obj:
    out: Obj = {"type": m.get("type", "")}
    if m.get("object") is not None:
        src = m["object"]
        cur = src.get("current") or {}
        out["object"] = _drop_none(
            {
                "target": src.get("describedObject") or {},
                "metricName": (src.get("metric") or {}).get("name", ""),
                "currentValue": cur.get("value") or "0",
                "selector": (src.get("metric") or {}).get("selector"),
                "averageValue": cur.get("averageValue"),
            }
        )
    if m.get("pods") is not None:
        src = m["pods"]
        out["pods"] = _drop_none(
            {
                "metricName": (src.get("metric") or {}).get("name", ""),
                "currentAverageValue": (src.get("current") or {}).get("averageValue") or "0",
                "selector": (src.get("metric") or {}).get("selector"),
            }
        )
    for field in ("resource", "containerResource"):
        if m.get(field) is not None:
            src = m[field]
            cur = src.get("current") or {}
            one: Obj = {
                "name": src.get("name", ""),
                "currentAverageUtilization": cur.get("averageUtilization"),
                "currentAverageValue": cur.get("averageValue") or "0",
            }
            if field == "containerResource":
                one["container"] = src.get("container", "")
            out[field] = _drop_none(one)
    if m.get("external") is not None:
        src = m["external"]
        cur = src.get("current") or {}
        out["external"] = _drop_none(
            {
                "metricName": (src.get("metric") or {}).get("name", ""),
                "metricSelector": (src.get("metric") or {}).get("selector"),
                "currentValue": cur.get("value") or "0",
                "currentAverageValue": cur.get("averageValue"),
            }
        )
    return out


def _condition_v1(c: Obj) -> Obj:
    return _drop_none(
        {
            "type": c.get("type", ""),
            "status": c.get("status", ""),
            "lastTransitionTime": c.get("lastTransitionTime"),
            "reason": c.get("reason") or None,
            "message": c.get("message") or None,
        }
    )


def _hpa_v2_to_v1(obj: Obj) -> Obj:
    md = copy.deepcopy(obj.get("metadata") or {})
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    metrics = spec.get("metrics") or []
    v1spec: Obj = {"scaleTargetRef": copy.deepcopy(spec.get("scaleTargetRef") or {})}
    if spec.get("minReplicas") is not None:
        v1spec["minReplicas"] = spec["minReplicas"]
    v1spec["maxReplicas"] = spec.get("maxReplicas", 0)
    for m in metrics:
        if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu":
            target = m["resource"].get("target") or {}
            if target.get("averageUtilization") is not None:
                v1spec["targetCPUUtilizationPercentage"] = target["averageUtilization"]
            break
    v1status: Obj = {}
    for f in ("observedGeneration", "lastScaleTime"):
        if status.get(f) is not None:
            v1status[f] = status[f]
    v1status["currentReplicas"] = status.get("currentReplicas", 0)
    v1status["desiredReplicas"] = status.get("desiredReplicas", 0)
    current = status.get("currentMetrics") or []
    for m in current:
        res = m.get("resource") or {}
        if m.get("type") == "Resource" and res.get("name") == "cpu":
            util = (res.get("current") or {}).get("averageUtilization")
            if util is not None:
                v1status["currentCPUUtilizationPercentage"] = util
    other = [_metric_spec_v1(m) for m in metrics if not _is_cpu_utilization(m)]
    conditions = status.get("conditions") or []
    if other or current or conditions:
        ann = md.setdefault("annotations", {})
        if other:
            ann[METRIC_SPECS_ANNOTATION] = _compact(other)
        if current:
            ann[METRIC_STATUSES_ANNOTATION] = _compact([_metric_status_v1(m) for m in current])
        if conditions:
            ann[CONDITIONS_ANNOTATION] = _compact([_condition_v1(c) for c in conditions])
    out: Obj = {
        "kind": "HorizontalPodAutoscaler",
        "apiVersion": "autoscaling/v1",
        "metadata": md,
        "spec": v1spec,
        "status": v1status,
    }
    return out


# --- autoscaling/v1 -> autoscaling/v2 ------------------------------------------------


def _target(utilization: Any, average: Any, value: Any = None) -> Obj:
    if utilization is not None:
        return {"type": "Utilization", "averageUtilization": utilization}
    if average is not None:
        return {"type": "AverageValue", "averageValue": average}
    return _drop_none({"type": "Value", "value": value})


def _metric_spec_v2(m: Any) -> Obj:
    if not isinstance(m, dict):
        raise ConversionError(f"{METRIC_SPECS_ANNOTATION}: each metric must be an object")
    out: Obj = {"type": m.get("type", "")}
    if isinstance(m.get("object"), dict):
        src = m["object"]
        out["object"] = {
            "metric": _drop_none(
                {"name": src.get("metricName", ""), "selector": src.get("selector")}
            ),
            "target": _target(None, src.get("averageValue"), src.get("targetValue")),
            "describedObject": src.get("target") or {},
        }
    if isinstance(m.get("pods"), dict):
        src = m["pods"]
        out["pods"] = {
            "metric": _drop_none(
                {"name": src.get("metricName", ""), "selector": src.get("selector")}
            ),
            "target": {"type": "AverageValue", "averageValue": src.get("targetAverageValue", "0")},
        }
    for field in ("resource", "containerResource"):
        if isinstance(m.get(field), dict):
            src = m[field]
            one: Obj = {
                "name": src.get("name", ""),
                "target": _target(
                    src.get("targetAverageUtilization"), src.get("targetAverageValue")
                ),
            }
            if field == "containerResource":
                one["container"] = src.get("container", "")
            out[field] = one
    if isinstance(m.get("external"), dict):
        src = m["external"]
        out["external"] = {
            "metric": _drop_none(
                {"name": src.get("metricName", ""), "selector": src.get("metricSelector")}
            ),
            "target": _target(None, src.get("targetAverageValue"), src.get("targetValue")),
        }
    return out


def _metric_status_v2(m: Any) -> Obj:
    if not isinstance(m, dict):
        raise ConversionError(f"{METRIC_STATUSES_ANNOTATION}: each metric must be an object")
    out: Obj = {"type": m.get("type", "")}
    for field in ("resource", "containerResource"):
        if isinstance(m.get(field), dict):
            src = m[field]
            one: Obj = {
                "name": src.get("name", ""),
                "current": _drop_none(
                    {
                        "averageValue": src.get("currentAverageValue"),
                        "averageUtilization": src.get("currentAverageUtilization"),
                    }
                ),
            }
            if field == "containerResource":
                one["container"] = src.get("container", "")
            out[field] = one
    if isinstance(m.get("pods"), dict):
        src = m["pods"]
        out["pods"] = {
            "metric": _drop_none(
                {"name": src.get("metricName", ""), "selector": src.get("selector")}
            ),
            "current": {"averageValue": src.get("currentAverageValue", "0")},
        }
    if isinstance(m.get("object"), dict):
        src = m["object"]
        out["object"] = {
            "metric": _drop_none(
                {"name": src.get("metricName", ""), "selector": src.get("selector")}
            ),
            "current": _drop_none(
                {"value": src.get("currentValue"), "averageValue": src.get("averageValue")}
            ),
            "describedObject": src.get("target") or {},
        }
    if isinstance(m.get("external"), dict):
        src = m["external"]
        out["external"] = {
            "metric": _drop_none(
                {"name": src.get("metricName", ""), "selector": src.get("metricSelector")}
            ),
            "current": _drop_none(
                {"value": src.get("currentValue"), "averageValue": src.get("currentAverageValue")}
            ),
        }
    return out


def _annotation_list(ann: dict[str, Any], key: str) -> list[Any] | None:
    if key not in ann:
        return None
    raw = ann.pop(key)
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, list):
        raise ConversionError(f"metadata.annotations[{key}]: must be a JSON list")
    return value


def _hpa_v1_to_v2(obj: Obj, api_version: str) -> Obj:
    out = copy.deepcopy(obj)
    out["apiVersion"] = api_version
    md = out.get("metadata")
    ann = md.get("annotations") if isinstance(md, dict) else None
    ann = ann if isinstance(ann, dict) else {}
    spec = out.get("spec")
    if isinstance(spec, dict):
        cpu = spec.pop("targetCPUUtilizationPercentage", None)
        metrics: list[Obj] = [
            _metric_spec_v2(m) for m in _annotation_list(ann, METRIC_SPECS_ANNOTATION) or []
        ]
        if cpu is not None:
            metrics.append(
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": cpu},
                    },
                }
            )
        if not metrics:
            metrics = [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": DEFAULT_CPU_UTILIZATION,
                        },
                    },
                }
            ]
        spec["metrics"] = metrics
    status = out.get("status")
    current = _annotation_list(ann, METRIC_STATUSES_ANNOTATION)
    conditions = _annotation_list(ann, CONDITIONS_ANNOTATION)
    if isinstance(status, dict):
        cpu_now = status.pop("currentCPUUtilizationPercentage", None)
        if current is not None:
            status["currentMetrics"] = [_metric_status_v2(m) for m in current]
        elif cpu_now is not None:
            status["currentMetrics"] = [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "current": {"averageUtilization": cpu_now}},
                }
            ]
        if conditions is not None:
            status["conditions"] = [c for c in conditions if isinstance(c, dict)]
    if isinstance(md, dict) and "annotations" in md and not ann:
        md.pop("annotations")
    return out
