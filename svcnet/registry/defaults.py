"""Kubernetes defaulting (SetDefaults_* in k/k pkg/apis/*/v1/defaults.go)."""

from __future__ import annotations

import base64
import copy

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
    # SetDefaults_EphemeralContainer applies SetDefaults_Container to them too.
    ephemeral = spec.get("ephemeralContainers") or []
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or []), *ephemeral]:
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
    volumes(spec)


def _probe(probe: Obj) -> None:
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    http = probe.get("httpGet")
    if isinstance(http, dict):
        http.setdefault("path", "/")
        http.setdefault("scheme", "HTTP")


def volumes(spec: Obj) -> None:
    """SetDefaults_Volume and friends: the modes and fields the API server fills in."""
    for v in spec.get("volumes") or ():
        if not isinstance(v, dict):
            continue
        for src in ("configMap", "secret", "downwardAPI"):
            if isinstance(v.get(src), dict):
                v[src].setdefault("defaultMode", 420)
        if isinstance(v.get("hostPath"), dict):
            v["hostPath"].setdefault("type", "")
        for item in (v.get("downwardAPI") or {}).get("items") or ():
            if isinstance(item, dict) and isinstance(item.get("fieldRef"), dict):
                item["fieldRef"].setdefault("apiVersion", "v1")


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


def endpoints(obj: Obj) -> None:
    """SetDefaults_EndpointPort: a port's protocol is TCP unless given."""
    for subset in obj.get("subsets") or ():
        for p in subset.get("ports") or ():
            p.setdefault("protocol", "TCP")


def endpointslice(obj: Obj) -> None:
    """discovery/v1 SetDefaults_EndpointPort: name "" and protocol TCP unless given."""
    for p in obj.get("ports") or ():
        if p.get("name") is None:
            p["name"] = ""
        p.setdefault("protocol", "TCP")


def secret(obj: Obj) -> None:
    """SetDefaults_Secret, and the conversion that folds stringData into data."""
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if string_data:
        data = obj.get("data") or {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        obj["data"] = data


def _pod_template(tmpl: object) -> None:
    if isinstance(tmpl, dict):
        pod_spec(tmpl.setdefault("spec", {}))
        tmpl.setdefault("metadata", {})


def persistentvolumeclaim_spec(spec: Obj) -> None:
    spec.setdefault("volumeMode", "Filesystem")


def statefulset(obj: Obj) -> None:
    """SetDefaults_StatefulSet (apps/v1)."""
    template_spec(obj)
    spec = obj["spec"]
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    policy = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    policy.setdefault("whenDeleted", "Retain")
    policy.setdefault("whenScaled", "Retain")
    for vct in spec.get("volumeClaimTemplates") or []:
        if isinstance(vct, dict):
            vct.setdefault("apiVersion", "v1")
            vct.setdefault("kind", "PersistentVolumeClaim")
            persistentvolumeclaim_spec(vct.setdefault("spec", {}))
            vct.setdefault("status", {"phase": "Pending"})
    obj.setdefault("status", {"replicas": 0, "availableReplicas": 0})


def daemonset(obj: Obj) -> None:
    """SetDefaults_DaemonSet (apps/v1)."""
    spec = obj.setdefault("spec", {})
    _pod_template(spec.get("template"))
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {})
        ru.setdefault("maxUnavailable", 1)
        ru.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    obj.setdefault(
        "status",
        {
            "currentNumberScheduled": 0,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": 0,
            "numberReady": 0,
        },
    )


def job_spec(spec: Obj) -> None:
    """SetDefaults_Job's spec part."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    if spec.get("podFailurePolicy") is None:
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    else:
        spec.setdefault("podReplacementPolicy", "Failed")


def job(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    job_spec(spec)
    _pod_template(spec.get("template"))
    obj.setdefault("status", {})


def job_selector(obj: Obj, uid: str) -> None:
    """The Job strategy's generateSelector: without manualSelector, the server picks
    the selector (the Job's uid) and labels the template with it."""
    spec = obj["spec"]
    if spec.get("manualSelector"):
        return
    name = str(obj["metadata"].get("name") or "")
    tmd = spec.setdefault("template", {}).setdefault("metadata", {})
    tlabels = tmd.setdefault("labels", {})
    tlabels.update(
        {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
    )
    if not spec.get("selector"):
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}


def cronjob(obj: Obj) -> None:
    """SetDefaults_CronJob (batch/v1); the job template's pod spec is defaulted too."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    jt = spec.get("jobTemplate")
    if isinstance(jt, dict):
        _pod_template((jt.get("spec") or {}).get("template"))
    obj.setdefault("status", {})


def persistentvolumeclaim(obj: Obj) -> None:
    persistentvolumeclaim_spec(obj.setdefault("spec", {}))
    obj.setdefault("status", {"phase": "Pending"})


def persistentvolume(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    obj.setdefault("status", {"phase": "Pending"})


def storageclass(obj: Obj) -> None:
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


def ingress(obj: Obj) -> None:
    obj.setdefault("spec", {})
    obj.setdefault("status", {"loadBalancer": {}})


def ingressclass(obj: Obj) -> None:
    """SetDefaults_IngressClass: parameters without a scope are cluster-scoped."""
    params = (obj.get("spec") or {}).get("parameters")
    if isinstance(params, dict):
        params.setdefault("scope", "Cluster")


def networkpolicy(obj: Obj) -> None:
    """SetDefaults_NetworkPolicy and _NetworkPolicyPort: Ingress always, Egress too when
    egress rules are given, unless policyTypes says; a port's protocol is TCP. An
    absent podSelector decodes as the empty one (every pod of the namespace)."""
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("podSelector", {})
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", *(["Egress"] if spec.get("egress") else [])]
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or ():
            for port in (rule.get("ports") if isinstance(rule, dict) else None) or ():
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


def _scaling_rules(given: object, default: Obj) -> Obj:
    """copyHPAScalingRules: the default rules with what was given over them."""
    out = copy.deepcopy(default)
    if isinstance(given, dict):
        for f in ("stabilizationWindowSeconds", "selectPolicy", "policies"):
            if given.get(f) is not None:
                out[f] = given[f]
    return out


HPA_SCALE_UP_RULES: Obj = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
"""The v2 defaults for spec.behavior.scaleUp: the controller's rate before behaviors."""
HPA_SCALE_DOWN_RULES: Obj = {
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}
"""The v2 defaults for scaleDown; the stabilization window stays unset so that the
controller's --horizontal-pod-autoscaler-downscale-stabilization (5 min) applies."""


def horizontalpodautoscaler(obj: Obj) -> None:
    """SetDefaults_HorizontalPodAutoscaler (autoscaling/v2): minReplicas 1, a CPU
    utilization target of 80% when no metric is given, and both directions' rules
    filled in once a behavior is given at all."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }
        ]
    # Go's int32 fields of the status are always written: a new HPA shows 0 and 0.
    status = obj.setdefault("status", {})
    if isinstance(status, dict):
        status.setdefault("currentReplicas", 0)
        status.setdefault("desiredReplicas", 0)
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        behavior["scaleUp"] = _scaling_rules(behavior.get("scaleUp"), HPA_SCALE_UP_RULES)
        behavior["scaleDown"] = _scaling_rules(behavior.get("scaleDown"), HPA_SCALE_DOWN_RULES)


BY_KIND = {
    "HorizontalPodAutoscaler": horizontalpodautoscaler,
    "StatefulSet": statefulset,
    "DaemonSet": daemonset,
    "Job": job,
    "CronJob": cronjob,
    "PersistentVolumeClaim": persistentvolumeclaim,
    "PersistentVolume": persistentvolume,
    "StorageClass": storageclass,
    "Secret": secret,
    "Endpoints": endpoints,
    "EndpointSlice": endpointslice,
    "Pod": pod,
    "Service": service,
    "ReplicaSet": replicaset,
    "Deployment": deployment,
    "Namespace": namespace,
    "Ingress": ingress,
    "IngressClass": ingressclass,
    "NetworkPolicy": networkpolicy,
}


def apply(obj: Obj) -> None:
    fn = BY_KIND.get(str(obj.get("kind")))
    if fn is not None:
        fn(obj)
