"""Kubernetes defaulting (SetDefaults_* in k/k pkg/apis/*/v1/defaults.go)."""

from __future__ import annotations

import base64

from svcnet.k8s.objects import Obj


def _image_pull_policy(image: str) -> str:
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    tag = tail.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if not isinstance(c, dict):
            continue
        c.setdefault("imagePullPolicy", _image_pull_policy(str(c.get("image") or "")))
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for p in c.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
        for k in ("livenessProbe", "readinessProbe", "startupProbe"):
            probe = c.get(k)
            if isinstance(probe, dict):
                _probe(probe)
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("fieldRef") if isinstance(e, dict) else None
            if isinstance(ref, dict):
                ref.setdefault("apiVersion", "v1")


def _probe(probe: Obj) -> None:
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    http = probe.get("httpGet")
    if isinstance(http, dict):
        http.setdefault("path", "/")
        http.setdefault("scheme", "HTTP")


def pod(obj: Obj) -> None:
    pod_spec(obj.setdefault("spec", {}))
    obj.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})


def service(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["sessionAffinity"] == "ClientIP":
        cfg = spec.setdefault("sessionAffinityConfig", {}).setdefault("clientIP", {})
        if not cfg.get("timeoutSeconds"):
            cfg["timeoutSeconds"] = 10800
    for p in spec.get("ports") or []:
        if not isinstance(p, dict):
            continue
        p.setdefault("protocol", "TCP")
        if p.get("targetPort") in (None, 0, ""):
            p["targetPort"] = p.get("port")
    if spec["type"] != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    obj.setdefault("status", {"loadBalancer": {}})


def template_spec(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    tmpl = spec.get("template")
    if isinstance(tmpl, dict):
        pod_spec(tmpl.setdefault("spec", {}))
        tmpl.setdefault("metadata", {})


def replicaset(obj: Obj) -> None:
    template_spec(obj)
    obj.setdefault("status", {"replicas": 0})


def deployment(obj: Obj) -> None:
    template_spec(obj)
    spec = obj["spec"]
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {})
        ru.setdefault("maxUnavailable", "25%")
        ru.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    obj.setdefault("status", {})


def namespace(obj: Obj) -> None:
    obj.setdefault("spec", {"finalizers": ["kubernetes"]})
    obj.setdefault("status", {"phase": "Active"})
    name = obj["metadata"].get("name")
    labels = obj["metadata"].setdefault("labels", {})
    if name:
        labels.setdefault("kubernetes.io/metadata.name", name)


def secret(obj: Obj) -> None:
    """SetDefaults_Secret, and the conversion that folds stringData into data."""
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if string_data:
        data = obj.get("data") or {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        obj["data"] = data


def ingress(obj: Obj) -> None:
    obj.setdefault("spec", {})
    obj.setdefault("status", {"loadBalancer": {}})


def ingressclass(obj: Obj) -> None:
    """SetDefaults_IngressClass: parameters without a scope are cluster-scoped."""
    params = (obj.get("spec") or {}).get("parameters")
    if isinstance(params, dict):
        params.setdefault("scope", "Cluster")


BY_KIND = {
    "Secret": secret,
    "Pod": pod,
    "Service": service,
    "ReplicaSet": replicaset,
    "Deployment": deployment,
    "Namespace": namespace,
    "Ingress": ingress,
    "IngressClass": ingressclass,
}


def apply(obj: Obj) -> None:
    fn = BY_KIND.get(str(obj.get("kind")))
    if fn is not None:
        fn(obj)
