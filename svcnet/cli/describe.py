"""`describe`: kubectl's describe layouts for services, pods, replicasets, endpoints,
deployments, statefulsets, daemonsets, jobs, cronjobs, claims, volumes and
storage classes.

Unlike `get`, kubectl renders describe output on the client from the full
object, so the layouts are transcribed here from kubectl's ``describe.go``
(``describeService``, ``describePod``, ``describeReplicaSet``,
``describeEndpoints``). Each writes tab-separated lines at indentation levels
of two spaces; the text then goes through describe's tabwriter (minwidth 0,
padding 2) in segments, because kubectl flushes the writer before the Events
table, which is therefore aligned on its own.
"""

from __future__ import annotations

import argparse
import base64
import sys
from collections.abc import Callable

from svcnet.cli.client import ApiStatusError, Client
from svcnet.cli.printer import (
    DESCRIBE_WRITER,
    age,
    format_labels,
    rfc1123z,
    status_error_text,
    tabwrite,
)
from svcnet.cli.rollout import owned_replicasets, strip_template_hash
from svcnet.k8s import kinds
from svcnet.k8s.durations import human_duration
from svcnet.k8s.kinds import Kind
from svcnet.k8s.labels import format_label_selector
from svcnet.k8s.objects import Obj
from svcnet.k8s.owners import controller_of, is_owned_by
from svcnet.k8s.timestamps import parse_time
from svcnet.k8s.wellknown import DEFAULT_STORAGE_CLASS, LAST_APPLIED


class Writer:
    """kubectl's PrefixWriter over a tabwriter, with Flush splitting segments."""

    def __init__(self) -> None:
        self.segments: list[list[str]] = [[]]

    def line(self, level: int, text: str) -> None:
        self.segments[-1].append("  " * level + text)

    def flush(self) -> None:
        self.segments.append([])

    def render(self) -> str:
        return "".join(
            tabwrite("\n".join(seg) + "\n", *DESCRIBE_WRITER) for seg in self.segments if seg
        )


def _md(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def labels_multiline(w: Writer, title: str, labels: dict[str, str] | None, level: int = 0) -> None:
    if not labels:
        w.line(level, f"{title}:\t<none>")
        return
    for i, key in enumerate(sorted(labels)):
        w.line(level, f"{title}:\t{key}={labels[key]}" if i == 0 else f"\t{key}={labels[key]}")


def annotations_multiline(w: Writer, title: str, annotations: dict[str, str] | None) -> None:
    shown = {k: v for k, v in (annotations or {}).items() if k != LAST_APPLIED}
    if not shown:
        w.line(0, f"{title}:\t<none>")
        return
    for i, key in enumerate(sorted(shown)):
        w.line(0, f"{title}:\t{key}: {shown[key]}" if i == 0 else f"\t{key}: {shown[key]}")


def object_header(w: Writer, md: Obj) -> None:
    """Name, Namespace, Labels and Annotations: how most of kubectl's describers open."""
    w.line(0, f"Name:\t{md.get('name', '')}")
    w.line(0, f"Namespace:\t{md.get('namespace', '')}")
    labels_multiline(w, "Labels", md.get("labels"))
    annotations_multiline(w, "Annotations", md.get("annotations"))


def events(w: Writer, items: list[Obj]) -> None:
    if not items:
        w.line(0, "Events:\t<none>")
        return
    w.flush()
    w.line(0, "Events:")
    w.line(0, "  Type\tReason\tAge\tFrom\tMessage")
    w.line(1, "----\t------\t----\t----\t-------")

    def when(e: Obj) -> tuple[str, int]:
        # Timestamps have one-second resolution; within a second the
        # resourceVersion keeps the order in which things happened.
        rv = str((e.get("metadata") or {}).get("resourceVersion") or "0")
        ts = str(e.get("lastTimestamp") or e.get("eventTime") or "")
        return ts, int(rv) if rv.isdigit() else 0

    for e in sorted(items, key=when):
        first = age(e.get("eventTime") or e.get("firstTimestamp"))
        count = int(e.get("count") or 0)
        interval = f"{age(e.get('lastTimestamp'))} (x{count} over {first})" if count > 1 else first
        source = (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""
        w.line(
            1,
            f"{e.get('type', '')}\t{e.get('reason', '')}\t{interval}\t{source}\t"
            f"{str(e.get('message') or '').strip()}",
        )


def _events_for(client: Client, obj: Obj, kind: Kind) -> list[Obj]:
    md = _md(obj)
    selector = (
        f"involvedObject.name={md.get('name')},involvedObject.namespace={md.get('namespace')}"
    )
    selector += f",involvedObject.kind={kind.kind}"
    if md.get("uid"):
        selector += f",involvedObject.uid={md['uid']}"
    path = kinds.BY_KIND["Event"].collection_path(str(md.get("namespace") or "default"))
    try:
        data = client.get(path, query={"fieldSelector": selector, "limit": 500}) or {}
    except ApiStatusError:
        return []  # a server without events still describes the object
    return list(data.get("items") or [])


# --- services -----------------------------------------------------------------


def _endpoint_list(endpoints: Obj | None, port_name: str) -> str:
    """formatEndpoints: ready `ip:port` for one Service port, at most 3 then `+ N more...`."""
    found: list[str] = []
    for subset in (endpoints or {}).get("subsets") or []:
        for port in subset.get("ports") or []:
            if str(port.get("name") or "") != port_name:
                continue
            found.extend(f"{a.get('ip')}:{port.get('port')}" for a in subset.get("addresses") or [])
    if not found:
        return "<none>"
    text = ",".join(found[:3])
    return text + (f" + {len(found) - 3} more..." if len(found) > 3 else "")


def describe_service(svc: Obj, endpoints: Obj | None, event_items: list[Obj]) -> str:
    md, spec = _md(svc), svc.get("spec") or {}
    w = Writer()
    object_header(w, md)
    w.line(0, f"Selector:\t{format_labels(spec.get('selector'))}")
    w.line(0, f"Type:\t{spec.get('type', 'ClusterIP')}")
    if spec.get("ipFamilyPolicy"):
        w.line(0, f"IP Family Policy:\t{spec['ipFamilyPolicy']}")
    w.line(0, f"IP Families:\t{','.join(spec.get('ipFamilies') or []) or '<none>'}")
    w.line(0, f"IP:\t{spec.get('clusterIP', '')}")
    w.line(0, f"IPs:\t{','.join(spec.get('clusterIPs') or []) or '<none>'}")
    if spec.get("externalIPs"):
        w.line(0, f"External IPs:\t{','.join(spec['externalIPs'])}")
    if spec.get("loadBalancerIP"):
        w.line(0, f"IP:\t{spec['loadBalancerIP']}")
    if spec.get("externalName"):
        w.line(0, f"External Name:\t{spec['externalName']}")
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    if ingress:
        text = ", ".join(str(i.get("ip") or i.get("hostname") or "") for i in ingress)
        w.line(0, f"LoadBalancer Ingress:\t{text}")
    for p in spec.get("ports") or []:
        name = p.get("name") or "<unset>"
        protocol = p.get("protocol") or "TCP"
        w.line(0, f"Port:\t{name}\t{p.get('port')}/{protocol}")
        w.line(0, f"TargetPort:\t{p.get('targetPort', p.get('port'))}/{protocol}")
        if p.get("nodePort"):
            w.line(0, f"NodePort:\t{name}\t{p['nodePort']}/{protocol}")
        w.line(0, f"Endpoints:\t{_endpoint_list(endpoints, str(p.get('name') or ''))}")
    w.line(0, f"Session Affinity:\t{spec.get('sessionAffinity', 'None')}")
    if spec.get("externalTrafficPolicy"):
        w.line(0, f"External Traffic Policy:\t{spec['externalTrafficPolicy']}")
    if spec.get("internalTrafficPolicy"):
        w.line(0, f"Internal Traffic Policy:\t{spec['internalTrafficPolicy']}")
    if spec.get("healthCheckNodePort"):
        w.line(0, f"HealthCheck NodePort:\t{spec['healthCheckNodePort']}")
    if spec.get("loadBalancerSourceRanges"):
        w.line(0, f"LoadBalancer Source Ranges:\t{','.join(spec['loadBalancerSourceRanges'])}")
    events(w, event_items)
    return w.render()


# --- pods -------------------------------------------------------------------------


def _ports(container: Obj, host: bool) -> str:
    return ",".join(
        f"{p.get('hostPort', 0) if host else p.get('containerPort')}/{p.get('protocol', 'TCP')}"
        for p in container.get("ports") or []
    )


def _container_state(w: Writer, title: str, state: Obj) -> None:
    if state.get("running") is not None:
        w.line(2, f"{title}:\tRunning")
        w.line(3, f"Started:\t{rfc1123z(state['running'].get('startedAt'))}")
    elif state.get("terminated") is not None:
        t = state["terminated"]
        w.line(2, f"{title}:\tTerminated")
        if t.get("reason"):
            w.line(3, f"Reason:\t{t['reason']}")
        if t.get("message"):
            w.line(3, f"Message:\t{t['message']}")
        w.line(3, f"Exit Code:\t{t.get('exitCode', 0)}")
        if t.get("signal"):
            w.line(3, f"Signal:\t{t['signal']}")
        w.line(3, f"Started:\t{rfc1123z(t.get('startedAt'))}")
        w.line(3, f"Finished:\t{rfc1123z(t.get('finishedAt'))}")
    else:
        w.line(2, f"{title}:\tWaiting")
        reason = (state.get("waiting") or {}).get("reason")
        if reason:
            w.line(3, f"Reason:\t{reason}")


def _containers(
    w: Writer, title: str, containers: list[Obj], statuses: list[Obj], level: int
) -> None:
    by_name = {str(s.get("name")): s for s in statuses}
    w.line(level, f"{title}:")
    for c in containers:
        status = by_name.get(str(c.get("name")))
        # kubectl indents a pod template's container names by one extra space.
        w.line(1, f"{' ' if level else ''}{c.get('name')}:")
        inner = 2
        if status is not None:
            w.line(inner, f"Container ID:\t{status.get('containerID', '')}")
        w.line(inner, f"Image:\t{c.get('image', '')}")
        if status is not None:
            w.line(inner, f"Image ID:\t{status.get('imageID', '')}")
        ports, host_ports = _ports(c, host=False), _ports(c, host=True)
        w.line(inner, f"Ports:\t{ports}" if "," in ports else f"Port:\t{ports or '<none>'}")
        w.line(
            inner,
            f"Host Ports:\t{host_ports}"
            if "," in host_ports
            else f"Host Port:\t{host_ports or '<none>'}",
        )
        for field, label in (("command", "Command"), ("args", "Args")):
            if c.get(field):
                w.line(inner, f"{label}:")
                for arg in c[field]:
                    for part in str(arg).split("\n"):
                        w.line(inner + 1, part)
        if status is not None:
            _container_state(w, "State", status.get("state") or {})
            last = status.get("lastState") or {}
            if last.get("terminated"):
                _container_state(w, "Last State", last)
            w.line(inner, f"Ready:\t{'True' if status.get('ready') else 'False'}")
            w.line(inner, f"Restart Count:\t{status.get('restartCount', 0)}")
        resources = c.get("resources") or {}
        for field, label in (("limits", "Limits"), ("requests", "Requests")):
            if resources.get(field):
                w.line(inner, f"{label}:")
                for name, quantity in sorted(resources[field].items()):
                    w.line(inner + 1, f"{name}:\t{quantity}")
        for field, label in (
            ("livenessProbe", "Liveness"),
            ("readinessProbe", "Readiness"),
            ("startupProbe", "Startup"),
        ):
            if c.get(field):
                w.line(inner, f"{label}:\t{describe_probe(c[field])}")
        if c.get("envFrom"):
            w.line(inner, "Environment Variables from:")
            for src in c["envFrom"]:
                kind, ref = (
                    ("ConfigMap", src["configMapRef"])
                    if src.get("configMapRef")
                    else ("Secret", src.get("secretRef") or {})
                )
                optional = "true" if ref.get("optional") else "false"
                prefix = f" with prefix '{src['prefix']}'" if src.get("prefix") else ""
                w.line(inner + 1, f"{ref.get('name')}\t{kind}{prefix}\tOptional: {optional}")
        env = c.get("env") or []
        w.line(inner, "Environment:" + ("" if env else "\t<none>"))
        for e in env:
            if "valueFrom" in e:
                w.line(inner + 1, f"{e.get('name')}:\t{_value_from(e['valueFrom'] or {})}")
                continue
            for i, part in enumerate(str(e.get("value", "")).split("\n")):
                w.line(inner + 1, f"{e.get('name')}:\t{part}" if i == 0 else f"\t{part}")
        mounts = c.get("volumeMounts") or []
        w.line(inner, "Mounts:" + ("" if mounts else "\t<none>"))
        for m in mounts:
            mode = "ro" if m.get("readOnly") else "rw"
            w.line(inner + 1, f"{m.get('mountPath')} from {m.get('name')} ({mode})")


def volume_lines(v: Obj) -> list[str]:
    """kubectl's describeVolumes: what each volume source says about itself."""

    def b(value: object) -> str:
        return "true" if value else "false"

    if isinstance(v.get("emptyDir"), dict):
        e = v["emptyDir"]
        return [
            "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)",
            f"Medium:\t{e.get('medium') or ''}",
            f"SizeLimit:\t{e.get('sizeLimit') or '<unset>'}",
        ]
    if isinstance(v.get("hostPath"), dict):
        h = v["hostPath"]
        return [
            "Type:\tHostPath (bare host directory volume)",
            f"Path:\t{h.get('path') or ''}",
            f"HostPathType:\t{h.get('type') or ''}",
        ]
    if isinstance(v.get("secret"), dict):
        s = v["secret"]
        return [
            "Type:\tSecret (a volume populated by a Secret)",
            f"SecretName:\t{s.get('secretName') or ''}",
            f"Optional:\t{b(s.get('optional'))}",
        ]
    if isinstance(v.get("configMap"), dict):
        c = v["configMap"]
        return [
            "Type:\tConfigMap (a volume populated by a ConfigMap)",
            f"Name:\t{c.get('name') or ''}",
            f"Optional:\t{b(c.get('optional'))}",
        ]
    if isinstance(v.get("persistentVolumeClaim"), dict):
        p = v["persistentVolumeClaim"]
        return [
            "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same "
            "namespace)",
            f"ClaimName:\t{p.get('claimName') or ''}",
            f"ReadOnly:\t{b(p.get('readOnly'))}",
        ]
    if isinstance(v.get("downwardAPI"), dict):
        out = ["Type:\tDownwardAPI (a volume populated by information about the pod)", "Items:"]
        for item in v["downwardAPI"].get("items") or ():
            ref = item.get("fieldRef") or {}
            res = item.get("resourceFieldRef") or {}
            source = ref.get("fieldPath") or res.get("resource") or ""
            out.append(f"  {source} -> {item.get('path') or ''}")
        return out
    kinds = [k for k in v if k != "name"]
    return [f"Type:\t{kinds[0] if kinds else '<unknown>'}"] if kinds else []


def describe_probe(probe: Obj) -> str:
    """kubectl's DescribeProbe: the handler, then its timing."""
    attrs = (
        f"delay={probe.get('initialDelaySeconds', 0)}s timeout={probe.get('timeoutSeconds', 1)}s"
        f" period={probe.get('periodSeconds', 10)}s #success={probe.get('successThreshold', 1)}"
        f" #failure={probe.get('failureThreshold', 3)}"
    )
    if probe.get("exec") is not None:
        return f"exec [{' '.join(str(a) for a in probe['exec'].get('command') or [])}] {attrs}"
    if probe.get("httpGet") is not None:
        h = probe["httpGet"]
        host, port = str(h.get("host") or ""), str(h.get("port", ""))
        hostport = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
        scheme = str(h.get("scheme") or "HTTP").lower()
        return f"http-get {scheme}://{hostport}{h.get('path', '')} {attrs}"
    if probe.get("tcpSocket") is not None:
        t = probe["tcpSocket"]
        return f"tcp-socket {t.get('host', '')}:{t.get('port', '')} {attrs}"
    if probe.get("grpc") is not None:
        g = probe["grpc"]
        return f"grpc <pod>:{g.get('port')} {g.get('service', '')} {attrs}"
    return f"unknown {attrs}"


def _value_from(src: Obj) -> str:
    """An env var's valueFrom as kubectl describes it (no value is resolved)."""
    if src.get("secretKeyRef") is not None:
        r = src["secretKeyRef"]
        optional = "true" if r.get("optional") else "false"
        return (
            f"<set to the key '{r.get('key')}' in secret '{r.get('name')}'>\tOptional: {optional}"
        )
    if src.get("configMapKeyRef") is not None:
        r = src["configMapKeyRef"]
        optional = "true" if r.get("optional") else "false"
        return (
            f"<set to the key '{r.get('key')}' of config map '{r.get('name')}'>\t"
            f"Optional: {optional}"
        )
    if src.get("fieldRef") is not None:
        f = src["fieldRef"]
        return f" ({f.get('apiVersion', 'v1')}:{f.get('fieldPath')})"
    return "<set from valueFrom>"


def controlled_by_text(md: Obj) -> str:
    ref = controller_of({"metadata": md})
    return f"{ref.get('kind')}/{ref.get('name')}" if ref else ""


def describe_pod(pod: Obj, event_items: list[Obj]) -> str:
    md, spec, status = _md(pod), pod.get("spec") or {}, pod.get("status") or {}
    w = Writer()
    w.line(0, f"Name:\t{md.get('name', '')}")
    w.line(0, f"Namespace:\t{md.get('namespace', '')}")
    if spec.get("priority") is not None:
        w.line(0, f"Priority:\t{spec['priority']}")
    if spec.get("serviceAccountName"):
        w.line(0, f"Service Account:\t{spec['serviceAccountName']}")
    node = spec.get("nodeName")
    w.line(0, f"Node:\t{node}/{status.get('hostIP', '')}" if node else "Node:\t<none>")
    if status.get("startTime"):
        w.line(0, f"Start Time:\t{rfc1123z(status['startTime'])}")
    labels_multiline(w, "Labels", md.get("labels"))
    annotations_multiline(w, "Annotations", md.get("annotations"))
    if md.get("deletionTimestamp") and status.get("phase") not in ("Succeeded", "Failed"):
        w.line(0, f"Status:\tTerminating (lasts {age(md['deletionTimestamp'])})")
    else:
        w.line(0, f"Status:\t{status.get('phase', '')}")
    if status.get("reason"):
        w.line(0, f"Reason:\t{status['reason']}")
    if status.get("message"):
        w.line(0, f"Message:\t{status['message']}")
    w.line(0, f"IP:\t{status.get('podIP', '')}")
    ips = status.get("podIPs") or []
    if ips:
        w.line(0, "IPs:")
        for ip in ips:
            w.line(1, f"IP:\t{ip.get('ip', '')}")
    else:
        w.line(0, "IPs:\t<none>")
    controlled_by = controlled_by_text(md)
    if controlled_by:
        w.line(0, f"Controlled By:\t{controlled_by}")
    if spec.get("initContainers"):
        _containers(
            w,
            "Init Containers",
            spec["initContainers"],
            status.get("initContainerStatuses") or [],
            0,
        )
    _containers(
        w, "Containers", spec.get("containers") or [], status.get("containerStatuses") or [], 0
    )
    if spec.get("ephemeralContainers"):
        _containers(
            w,
            "Ephemeral Containers",
            spec["ephemeralContainers"],
            status.get("ephemeralContainerStatuses") or [],
            0,
        )
    conditions = status.get("conditions") or []
    if conditions:
        w.line(0, "Conditions:")
        w.line(0, "  Type\tStatus")
        for c in conditions:
            w.line(1, f"{c.get('type')} \t{c.get('status')} ")
    volumes = spec.get("volumes") or []
    if volumes:
        w.line(0, "Volumes:")
        for v in volumes:
            w.line(1, f"{v.get('name')}:")
            for text in volume_lines(v):
                w.line(2, text)
    else:
        w.line(0, "Volumes:\t<none>")
    w.line(0, "QoS Class:\tBestEffort")
    labels_multiline(w, "Node-Selectors", spec.get("nodeSelector"))
    w.line(0, "Tolerations:\t<none>")
    events(w, event_items)
    return w.render()


# --- replicasets and endpoints -----------------------------------------------------


def describe_replicaset(rs: Obj, pods: list[Obj], event_items: list[Obj]) -> str:
    md, spec, status = _md(rs), rs.get("spec") or {}, rs.get("status") or {}
    w = Writer()
    w.line(0, f"Name:\t{md.get('name', '')}")
    w.line(0, f"Namespace:\t{md.get('namespace', '')}")
    w.line(0, f"Selector:\t{format_label_selector(spec.get('selector'))}")
    labels_multiline(w, "Labels", md.get("labels"))
    annotations_multiline(w, "Annotations", md.get("annotations"))
    controlled_by = controlled_by_text(md)
    if controlled_by:
        w.line(0, f"Controlled By:\t{controlled_by}")
    w.line(0, f"Replicas:\t{status.get('replicas', 0)} current / {spec.get('replicas', 1)} desired")
    phases = [str((p.get("status") or {}).get("phase") or "") for p in pods]
    running, waiting = phases.count("Running"), phases.count("Pending")
    w.line(
        0,
        f"Pods Status:\t{running} Running / {waiting} Waiting / {phases.count('Succeeded')} "
        f"Succeeded / {phases.count('Failed')} Failed",
    )
    pod_template(w, spec.get("template") or {})
    events(w, event_items)
    return w.render()


def pod_template(w: Writer, template: Obj) -> None:
    """kubectl's DescribePodTemplate (ReplicaSets and Deployments)."""
    tmd, tspec = template.get("metadata") or {}, template.get("spec") or {}
    w.line(0, "Pod Template:")
    labels_multiline(w, "Labels", tmd.get("labels"), level=1)
    if tmd.get("annotations"):
        annotations_multiline(w, "  Annotations", tmd.get("annotations"))
    if tspec.get("serviceAccountName"):
        w.line(1, f"Service Account:\t{tspec['serviceAccountName']}")
    if tspec.get("initContainers"):
        _containers(w, "Init Containers", tspec["initContainers"], [], 1)
    _containers(w, "Containers", tspec.get("containers") or [], [], 1)
    w.line(1, "Volumes:\t<none>")
    labels_multiline(w, "Node-Selectors", tspec.get("nodeSelector"), level=1)
    w.line(1, "Tolerations:\t<none>")


def _replicasets_by_labels(rss: list[Obj]) -> str:
    """printReplicaSetsByLabels."""
    out = [
        f"{_md(rs).get('name')} ({(rs.get('status') or {}).get('replicas', 0)}/"
        f"{(rs.get('spec') or {}).get('replicas', 1)} replicas created)"
        for rs in rss
    ]
    return ", ".join(out) or "<none>"


def describe_deployment(d: Obj, rss: list[Obj], event_items: list[Obj]) -> str:
    md, spec, status = _md(d), d.get("spec") or {}, d.get("status") or {}
    w = Writer()
    w.line(0, f"Name:\t{md.get('name', '')}")
    w.line(0, f"Namespace:\t{md.get('namespace', '')}")
    w.line(0, f"CreationTimestamp:\t{rfc1123z(md.get('creationTimestamp'))}")
    labels_multiline(w, "Labels", md.get("labels"))
    annotations_multiline(w, "Annotations", md.get("annotations"))
    w.line(0, f"Selector:\t{format_label_selector(spec.get('selector'))}")
    w.line(
        0,
        f"Replicas:\t{spec.get('replicas', 1)} desired | {status.get('updatedReplicas', 0)} "
        f"updated | {status.get('replicas', 0)} total | {status.get('availableReplicas', 0)} "
        f"available | {status.get('unavailableReplicas', 0)} unavailable",
    )
    strategy = spec.get("strategy") or {}
    w.line(0, f"StrategyType:\t{strategy.get('type', '')}")
    w.line(0, f"MinReadySeconds:\t{spec.get('minReadySeconds', 0)}")
    ru = strategy.get("rollingUpdate")
    if ru is not None:
        w.line(
            0,
            f"RollingUpdateStrategy:\t{ru.get('maxUnavailable')} max unavailable, "
            f"{ru.get('maxSurge')} max surge",
        )
    pod_template(w, spec.get("template") or {})
    conditions = status.get("conditions") or []
    if conditions:
        w.line(0, "Conditions:")
        w.line(1, "Type\tStatus\tReason")
        w.line(1, "----\t------\t------")
        for c in conditions:
            w.line(1, f"{c.get('type')} \t{c.get('status')}\t{c.get('reason')}")
    new = [rs for rs in rss if _same_template(rs, d)]
    old = [rs for rs in rss if rs not in new]
    if rss:
        w.line(0, f"OldReplicaSets:\t{_replicasets_by_labels(old)}")
        w.line(0, f"NewReplicaSet:\t{_replicasets_by_labels(new[:1])}")
    events(w, event_items)
    return w.render()


def _same_template(rs: Obj, d: Obj) -> bool:
    """FindNewReplicaSet: the ReplicaSet whose template is the Deployment's, hash aside."""
    template = strip_template_hash((rs.get("spec") or {}).get("template") or {})
    return template == ((d.get("spec") or {}).get("template") or {})


def describe_endpoints(ep: Obj, event_items: list[Obj]) -> str:
    md = _md(ep)
    w = Writer()
    object_header(w, md)
    w.line(0, "Subsets:")
    for subset in ep.get("subsets") or []:
        ready = ",".join(str(a.get("ip")) for a in subset.get("addresses") or []) or "<none>"
        not_ready = ",".join(str(a.get("ip")) for a in subset.get("notReadyAddresses") or [])
        w.line(1, f"Addresses:\t{ready}")
        w.line(1, f"NotReadyAddresses:\t{not_ready or '<none>'}")
        ports = subset.get("ports") or []
        if ports:
            w.line(1, "Ports:")
            w.line(2, "Name\tPort\tProtocol")
            w.line(2, "----\t----\t--------")
            for p in ports:
                w.line(
                    2, f"{p.get('name') or '<unset>'}\t{p.get('port')}\t{p.get('protocol', 'TCP')}"
                )
        w.line(0, "")
    events(w, event_items)
    return w.render()


def describe_configmap(cm: Obj, event_items: list[Obj]) -> str:
    md = _md(cm)
    w = Writer()
    object_header(w, md)
    w.line(0, "")
    w.line(0, "Data")
    w.line(0, "====")
    # kubectl walks a Go map (any order); sorted keys keep svcnet's output stable.
    for k, v in sorted((cm.get("data") or {}).items()):
        w.line(0, f"{k}:")
        w.line(0, "----")
        w.line(0, str(v))
        w.line(0, "")
    w.line(0, "")
    w.line(0, "BinaryData")
    w.line(0, "====")
    for k, v in sorted((cm.get("binaryData") or {}).items()):
        w.line(0, f"{k}: {len(base64.b64decode(str(v)))} bytes")
    w.line(0, "")
    events(w, event_items)
    return w.render()


def describe_secret(secret: Obj) -> str:
    """kubectl's describeSecret: sizes, never values (and no events)."""
    md = _md(secret)
    w = Writer()
    object_header(w, md)
    w.line(0, "")
    w.line(0, f"Type:\t{secret.get('type', '')}")
    w.line(0, "")
    w.line(0, "Data")
    w.line(0, "====")
    for k, v in sorted((secret.get("data") or {}).items()):
        w.line(0, f"{k}:\t{len(base64.b64decode(str(v)))} bytes")
    return w.render()


# --- ingresses ----------------------------------------------------------------------


def service_backend_text(backend: Obj) -> str:
    """serviceBackendStringer: ``name:port`` (the port's number, else its name)."""
    port = backend.get("port") or {}
    return f"{backend.get('name', '')}:{port.get('number') or port.get('name') or ''}"


BackendText = Callable[[Obj], str]
"""An IngressBackend as describe shows it (with the Service's endpoints)."""


def ingress_backend_text(backend: Obj | None, service: Obj | str, endpoints: Obj | str) -> str:
    """describeBackendV1: ``svc:port (endpoints)``, or the error that kept them from
    being found (a str in place of the object), or a resource reference."""
    if not backend:
        return ""
    svc_backend = backend.get("service")
    if svc_backend is not None:
        text = service_backend_text(svc_backend)
        if isinstance(endpoints, str):
            return f"{text} (<error: {endpoints}>)"
        if isinstance(service, str):
            return f"{text} (<error: {service}>)"
        want = svc_backend.get("port") or {}
        port_name = ""
        for sp in (service.get("spec") or {}).get("ports") or []:
            if (want.get("number") and want.get("number") == sp.get("port")) or (
                want.get("name") and want.get("name") == sp.get("name")
            ):
                port_name = str(sp.get("name") or "")
        return f"{text} ({_endpoint_list(endpoints, port_name)})"
    res = backend.get("resource")
    if res is not None:
        group = res.get("apiGroup") if res.get("apiGroup") is not None else "<none>"
        return f"APIGroup: {group}, Kind: {res.get('kind', '')}, Name: {res.get('name', '')}"
    return ""


def describe_ingress(ing: Obj, backend_text: BackendText, event_items: list[Obj]) -> str:
    """describeIngressV1."""
    md, spec = _md(ing), ing.get("spec") or {}
    lb = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    address = ",".join(sorted({str(e.get("ip") or e.get("hostname") or "") for e in lb} - {""}))
    w = Writer()
    w.line(0, f"Name:\t{md.get('name', '')}")
    labels_multiline(w, "Labels", md.get("labels"))
    w.line(0, f"Namespace:\t{md.get('namespace', '')}")
    w.line(0, f"Address:\t{address}")
    w.line(0, f"Ingress Class:\t{spec.get('ingressClassName') or '<none>'}")
    default = spec.get("defaultBackend")
    w.line(0, f"Default backend:\t{backend_text(default) if default else '<default>'}")
    if spec.get("tls"):
        w.line(0, "TLS:")
        for t in spec["tls"]:
            hosts = ",".join(t.get("hosts") or [])
            if t.get("secretName"):
                w.line(1, f"{t['secretName']} terminates {hosts}")
            else:
                w.line(1, f"SNI routes {hosts}")
    w.line(0, "Rules:")
    w.line(0, "  Host\tPath\tBackends")
    w.line(1, "----\t----\t--------")
    count = 0
    for rule in spec.get("rules") or []:
        http = rule.get("http")
        if http is None:
            continue
        count += 1
        w.line(1, f"{rule.get('host') or '*'}\t")
        for p in http.get("paths") or []:
            w.line(2, f"\t{p.get('path', '')} \t{backend_text(p.get('backend') or {})}")
    if count == 0:
        w.line(1, f"*\t*\t{backend_text(default) if default else ''}")
    annotations_multiline(w, "Annotations", md.get("annotations"))
    events(w, event_items)
    return w.render()


def describe_ingressclass(ic: Obj, event_items: list[Obj]) -> str:
    md, spec = _md(ic), ic.get("spec") or {}
    w = Writer()
    w.line(0, f"Name:\t{md.get('name', '')}")
    labels_multiline(w, "Labels", md.get("labels"))
    annotations_multiline(w, "Annotations", md.get("annotations"))
    w.line(0, f"Controller:\t{spec.get('controller', '')}")
    params = spec.get("parameters")
    if params:
        w.line(0, "Parameters:")
        if params.get("apiGroup") is not None:
            w.line(1, f"APIGroup:\t{params['apiGroup']}")
        w.line(1, f"Kind:\t{params.get('kind', '')}")
        w.line(1, f"Name:\t{params.get('name', '')}")
    events(w, event_items)
    return w.render()


def _ingress_backend_fetcher(client: Client, ns: str) -> BackendText:
    """describeBackendV1's lookups: the Endpoints, then the Service, of a backend."""

    def fetch(kind: str, name: str) -> Obj | str:
        try:
            return client.get(kinds.BY_KIND[kind].object_path(ns, name)) or {}
        except ApiStatusError as e:
            return str(e.status.get("message") or e)

    def text(backend: Obj) -> str:
        svc = backend.get("service") if backend else None
        if svc is None:
            return ingress_backend_text(backend, {}, {})
        name = str(svc.get("name") or "")
        endpoints = fetch("Endpoints", name)
        service = fetch("Service", name) if not isinstance(endpoints, str) else {}
        return ingress_backend_text(backend, service, endpoints)

    return text


# --- network policies ---------------------------------------------------------------


def go_time(ts: str | None) -> str:
    """metav1.Time's String(): Go's time.Time.String() in this machine's zone, as
    kubectl decodes timestamps into local time."""
    when = parse_time(ts) if ts else None
    if when is None:
        return "0001-01-01 00:00:00 +0000 UTC"
    local = when.astimezone()
    return f"{local:%Y-%m-%d %H:%M:%S %z} {local.tzname()}"


def _policy_ports(w: Writer, indent: str, ports: list[Obj]) -> None:
    if not ports:
        w.line(0, f"{indent}To Port: <any> (traffic allowed to all ports)")
        return
    for port in ports:
        proto = port.get("protocol") or "TCP"
        # %s of a nil *IntOrString.
        number = "<nil>" if port.get("port") is None else str(port["port"])
        if port.get("endPort") is None:
            w.line(0, f"{indent}To Port: {number}/{proto}")
        else:
            w.line(0, f"{indent}To Port Range: {number}-{port['endPort']}/{proto}")


def _policy_peers(w: Writer, indent: str, title: str, peers: list[Obj], anyone: str) -> None:
    if not peers:
        w.line(0, f"{indent}{title}: <any> ({anyone})")
        return
    for peer in peers:
        w.line(0, f"{indent}{title}:")
        pods, nss = peer.get("podSelector"), peer.get("namespaceSelector")
        block = peer.get("ipBlock")
        if pods is not None and nss is not None:
            w.line(1, f"{indent}NamespaceSelector: {format_label_selector(nss)}")
            w.line(1, f"{indent}PodSelector: {format_label_selector(pods)}")
        elif pods is not None:
            w.line(1, f"{indent}PodSelector: {format_label_selector(pods)}")
        elif nss is not None:
            w.line(1, f"{indent}NamespaceSelector: {format_label_selector(nss)}")
        elif block is not None:
            w.line(1, f"{indent}IPBlock:")
            w.line(2, f"{indent}CIDR: {block.get('cidr', '')}")
            w.line(2, f"{indent}Except: {', '.join(block.get('except') or [])}")


def _policy_rules(w: Writer, rules: list[Obj], peers: str, direction: str) -> None:
    """printNetworkPolicySpecIngressFrom / EgressTo."""
    indent = "    "
    if not rules:
        w.line(0, f"{indent}<none> (Selected pods are isolated for {direction} connectivity)")
        return
    title = "From" if peers == "from" else "To"
    anyone = "traffic not restricted by " + ("source" if peers == "from" else "destination")
    for i, rule in enumerate(rules):
        _policy_ports(w, indent, rule.get("ports") or [])
        _policy_peers(w, indent, title, rule.get(peers) or [], anyone)
        if i != len(rules) - 1:
            w.line(0, f"{indent}----------")


def describe_networkpolicy(np: Obj) -> str:
    """describeNetworkPolicy (kubectl shows no events for NetworkPolicies)."""
    md, spec = _md(np), np.get("spec") or {}
    w = Writer()
    w.line(0, f"Name:\t{md.get('name', '')}")
    w.line(0, f"Namespace:\t{md.get('namespace', '')}")
    w.line(0, f"Created on:\t{go_time(md.get('creationTimestamp'))}")
    labels_multiline(w, "Labels", md.get("labels"))
    annotations_multiline(w, "Annotations", md.get("annotations"))
    w.line(0, "Spec:")
    selector = spec.get("podSelector") or {}
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        shown = "<none> (Allowing the specific traffic to all pods in this namespace)"
    else:
        shown = format_label_selector(selector)
    # PodSelector at level 1, then its value at level 2: kubectl's own spacing.
    w.line(1, "PodSelector: " + "    " + shown)
    types = [str(t) for t in spec.get("policyTypes") or []]
    if "Ingress" in types:
        w.line(1, "Allowing ingress traffic:")
        _policy_rules(w, spec.get("ingress") or [], "from", "ingress")
    else:
        w.line(1, "Not affecting ingress traffic")
    if "Egress" in types:
        w.line(1, "Allowing egress traffic:")
        _policy_rules(w, spec.get("egress") or [], "to", "egress")
    else:
        w.line(1, "Not affecting egress traffic")
    w.line(1, f"Policy Types: {', '.join(types)}")
    return w.render()


# --- workloads and storage -------------------------------------------------------------


def _pods_status(w: Writer, pods: list[Obj], title: str = "Pods Status") -> None:
    phases = [str((p.get("status") or {}).get("phase") or "") for p in pods]
    w.line(
        0,
        f"{title}:\t{phases.count('Running')} Running / {phases.count('Pending')} Waiting / "
        f"{phases.count('Succeeded')} Succeeded / {phases.count('Failed')} Failed",
    )


def _go_strings(values: list[str] | None) -> str:
    """Go's %v of a []string: `[a b]`."""
    return "[" + " ".join(str(v) for v in values or []) + "]"


def _bool_ptr(value: object) -> str:
    """printBoolPtr."""
    return "<unset>" if value is None else ("True" if value else "False")


def _access_modes(modes: list[str] | None) -> str:
    """GetAccessModesAsString."""
    short = {
        "ReadWriteOnce": "RWO",
        "ReadOnlyMany": "ROX",
        "ReadWriteMany": "RWX",
        "ReadWriteOncePod": "RWOP",
    }
    return ",".join(short[m] for m in short if m in (modes or []))


def describe_statefulset(sts: Obj, pods: list[Obj], event_items: list[Obj]) -> str:
    """describeStatefulSet."""
    md, spec, status = _md(sts), sts.get("spec") or {}, sts.get("status") or {}
    w = Writer()
    w.line(0, f"Name:\t{md.get('name', '')}")
    w.line(0, f"Namespace:\t{md.get('namespace', '')}")
    w.line(0, f"CreationTimestamp:\t{rfc1123z(md.get('creationTimestamp'))}")
    w.line(0, f"Selector:\t{format_label_selector(spec.get('selector'))}")
    labels_multiline(w, "Labels", md.get("labels"))
    annotations_multiline(w, "Annotations", md.get("annotations"))
    w.line(0, f"Replicas:\t{spec.get('replicas', 1)} desired | {status.get('replicas', 0)} total")
    strategy = spec.get("updateStrategy") or {}
    w.line(0, f"Update Strategy:\t{strategy.get('type', '')}")
    ru = strategy.get("rollingUpdate")
    if ru is not None and ru.get("partition") is not None:
        w.line(1, f"Partition:\t{ru['partition']}")
        if ru.get("maxUnavailable") is not None:
            w.line(1, f"MaxUnavailable:\t{ru['maxUnavailable']}")
    _pods_status(w, pods)
    pod_template(w, spec.get("template") or {})
    templates = spec.get("volumeClaimTemplates") or []
    if not templates:
        w.line(0, "Volume Claims:\t<none>")
    else:
        w.line(0, "Volume Claims:")
        for pvc in templates:
            pmd, pspec = pvc.get("metadata") or {}, pvc.get("spec") or {}
            w.line(1, f"Name:\t{pmd.get('name', '')}")
            w.line(1, f"StorageClass:\t{pspec.get('storageClassName') or ''}")
            labels_multiline(w, "Labels", pmd.get("labels"), level=1)
            labels_multiline(w, "Annotations", pmd.get("annotations"), level=1)
            storage = ((pspec.get("resources") or {}).get("requests") or {}).get("storage")
            w.line(1, f"Capacity:\t{storage if storage is not None else '<default>'}")
            w.line(1, f"Access Modes:\t{_go_strings(pspec.get('accessModes'))}")
    events(w, event_items)
    return w.render()


def describe_daemonset(ds: Obj, pods: list[Obj], event_items: list[Obj]) -> str:
    """describeDaemonSet (no Namespace line, as kubectl's)."""
    md, spec, status = _md(ds), ds.get("spec") or {}, ds.get("status") or {}
    tspec = (spec.get("template") or {}).get("spec") or {}
    w = Writer()
    w.line(0, f"Name:\t{md.get('name', '')}")
    w.line(0, f"Selector:\t{format_label_selector(spec.get('selector'))}")
    w.line(0, f"Node-Selector:\t{format_labels(tspec.get('nodeSelector'))}")
    labels_multiline(w, "Labels", md.get("labels"))
    annotations_multiline(w, "Annotations", md.get("annotations"))
    for title, field in (
        ("Desired Number of Nodes Scheduled", "desiredNumberScheduled"),
        ("Current Number of Nodes Scheduled", "currentNumberScheduled"),
        ("Number of Nodes Scheduled with Up-to-date Pods", "updatedNumberScheduled"),
        ("Number of Nodes Scheduled with Available Pods", "numberAvailable"),
        ("Number of Nodes Misscheduled", "numberMisscheduled"),
    ):
        w.line(0, f"{title}: {int(status.get(field) or 0)}")
    _pods_status(w, pods)
    pod_template(w, spec.get("template") or {})
    events(w, event_items)
    return w.render()


def describe_job(job: Obj, event_items: list[Obj]) -> str:
    """describeJob."""
    md, spec, status = _md(job), job.get("spec") or {}, job.get("status") or {}
    w = Writer()
    w.line(0, f"Name:\t{md.get('name', '')}")
    w.line(0, f"Namespace:\t{md.get('namespace', '')}")
    w.line(0, f"Selector:\t{format_label_selector(spec.get('selector'))}")
    labels_multiline(w, "Labels", md.get("labels"))
    annotations_multiline(w, "Annotations", md.get("annotations"))
    controlled_by = controlled_by_text(md)
    if controlled_by:
        w.line(0, f"Controlled By:\t{controlled_by}")
    if spec.get("parallelism") is not None:
        w.line(0, f"Parallelism:\t{spec['parallelism']}")
    completions = spec.get("completions")
    w.line(0, f"Completions:\t{completions if completions is not None else '<unset>'}")
    if spec.get("completionMode") is not None:
        w.line(0, f"Completion Mode:\t{spec['completionMode']}")
    if spec.get("suspend") is not None:
        w.line(0, f"Suspend:\t{'true' if spec['suspend'] else 'false'}")
    if spec.get("backoffLimit") is not None:
        w.line(0, f"Backoff Limit:\t{spec['backoffLimit']}")
    if spec.get("ttlSecondsAfterFinished") is not None:
        w.line(0, f"TTL Seconds After Finished:\t{spec['ttlSecondsAfterFinished']}")
    start, done = status.get("startTime"), status.get("completionTime")
    if start:
        w.line(0, f"Start Time:\t{rfc1123z(start)}")
    if done:
        w.line(0, f"Completed At:\t{rfc1123z(done)}")
    started, finished = parse_time(start), parse_time(done)
    if started is not None and finished is not None:
        w.line(0, f"Duration:\t{human_duration((finished - started).total_seconds())}")
    if spec.get("activeDeadlineSeconds") is not None:
        w.line(0, f"Active Deadline Seconds:\t{spec['activeDeadlineSeconds']}s")
    counts = [int(status.get(f) or 0) for f in ("active", "succeeded", "failed")]
    if status.get("ready") is None:
        text = f"{counts[0]} Active / {counts[1]} Succeeded / {counts[2]} Failed"
    else:
        text = (
            f"{counts[0]} Active ({int(status['ready'])} Ready) / {counts[1]} Succeeded / "
            f"{counts[2]} Failed"
        )
    w.line(0, f"Pods Statuses:\t{text}")
    if spec.get("completionMode") == "Indexed":
        w.line(0, f"Completed Indexes:\t{status.get('completedIndexes') or '<none>'}")
    pod_template(w, spec.get("template") or {})
    events(w, event_items)
    return w.render()


def describe_cronjob(cj: Obj, event_items: list[Obj]) -> str:
    """describeCronJob."""
    md, spec, status = _md(cj), cj.get("spec") or {}, cj.get("status") or {}
    w = Writer()
    w.line(0, f"Name:\t{md.get('name', '')}")
    w.line(0, f"Namespace:\t{md.get('namespace', '')}")
    labels_multiline(w, "Labels", md.get("labels"))
    annotations_multiline(w, "Annotations", md.get("annotations"))
    w.line(0, f"Schedule:\t{spec.get('schedule', '')}")
    w.line(0, f"Concurrency Policy:\t{spec.get('concurrencyPolicy', '')}")
    w.line(0, f"Suspend:\t{_bool_ptr(spec.get('suspend'))}")
    for title, field in (
        ("Successful Job History Limit", "successfulJobsHistoryLimit"),
        ("Failed Job History Limit", "failedJobsHistoryLimit"),
    ):
        value = spec.get(field)
        w.line(0, f"{title}:\t{value if value is not None else '<unset>'}")
    deadline = spec.get("startingDeadlineSeconds")
    w.line(
        0, f"Starting Deadline Seconds:\t{f'{deadline}s' if deadline is not None else '<unset>'}"
    )
    jspec = (spec.get("jobTemplate") or {}).get("spec") or {}
    selector = jspec.get("selector")
    w.line(0, f"Selector:\t{format_label_selector(selector) if selector else '<unset>'}")
    for title, field in (("Parallelism", "parallelism"), ("Completions", "completions")):
        value = jspec.get(field)
        w.line(0, f"{title}:\t{value if value is not None else '<unset>'}")
    if jspec.get("activeDeadlineSeconds") is not None:
        w.line(0, f"Active Deadline Seconds:\t{jspec['activeDeadlineSeconds']}s")
    pod_template(w, jspec.get("template") or {})
    last = status.get("lastScheduleTime")
    w.line(0, f"Last Schedule Time:\t{rfc1123z(last) if last else '<unset>'}")
    active = ", ".join(str(j.get("name") or "") for j in status.get("active") or [])
    w.line(0, f"Active Jobs:\t{active or '<none>'}")
    events(w, event_items)
    return w.render()


def describe_persistentvolumeclaim(pvc: Obj, users: list[str], event_items: list[Obj]) -> str:
    """describePersistentVolumeClaim; `users`: the pods that mount it."""
    md, spec, status = _md(pvc), pvc.get("spec") or {}, pvc.get("status") or {}
    w = Writer()
    w.line(0, f"Name:\t{md.get('name', '')}")
    w.line(0, f"Namespace:\t{md.get('namespace', '')}")
    w.line(0, f"StorageClass:\t{spec.get('storageClassName') or ''}")
    if md.get("deletionTimestamp"):
        w.line(0, f"Status:\tTerminating (lasts {age(md['deletionTimestamp'])})")
    else:
        w.line(0, f"Status:\t{status.get('phase', '')}")
    w.line(0, f"Volume:\t{spec.get('volumeName') or ''}")
    labels_multiline(w, "Labels", md.get("labels"))
    annotations_multiline(w, "Annotations", md.get("annotations"))
    w.line(0, f"Finalizers:\t{_go_strings(md.get('finalizers'))}")
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = _access_modes(status.get("accessModes"))
        capacity = str((status.get("capacity") or {}).get("storage") or "0")
    w.line(0, f"Capacity:\t{capacity}")
    w.line(0, f"Access Modes:\t{modes}")
    if spec.get("volumeMode") is not None:
        w.line(0, f"VolumeMode:\t{spec['volumeMode']}")
    if not users:
        w.line(0, "Used By:\t<none>")
    for i, name in enumerate(sorted(users)):
        w.line(0, f"Used By:\t{name}" if i == 0 else f"\t{name}")
    conditions = status.get("conditions") or []
    if conditions:
        w.line(0, "Conditions:")
        w.line(1, "Type\tStatus\tLastProbeTime\tLastTransitionTime\tReason\tMessage")
        w.line(1, "----\t------\t-----------------\t------------------\t------\t-------")
        for c in conditions:
            w.line(
                1,
                f"{c.get('type')} \t{c.get('status')} \t{rfc1123z(c.get('lastProbeTime'))} \t"
                f"{rfc1123z(c.get('lastTransitionTime'))} \t{c.get('reason', '')} \t"
                f"{c.get('message', '')} ",
            )
    events(w, event_items)
    return w.render()


def describe_persistentvolume(pv: Obj, event_items: list[Obj]) -> str:
    """describePersistentVolume."""
    md, spec, status = _md(pv), pv.get("spec") or {}, pv.get("status") or {}
    w = Writer()
    w.line(0, f"Name:\t{md.get('name', '')}")
    labels_multiline(w, "Labels", md.get("labels"))
    annotations_multiline(w, "Annotations", md.get("annotations"))
    w.line(0, f"Finalizers:\t{_go_strings(md.get('finalizers'))}")
    w.line(0, f"StorageClass:\t{spec.get('storageClassName') or ''}")
    if md.get("deletionTimestamp"):
        w.line(0, f"Status:\tTerminating (lasts {age(md['deletionTimestamp'])})")
    else:
        w.line(0, f"Status:\t{status.get('phase', '')}")
    ref = spec.get("claimRef")
    w.line(0, f"Claim:\t{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else "Claim:\t")
    w.line(0, f"Reclaim Policy:\t{spec.get('persistentVolumeReclaimPolicy', '')}")
    w.line(0, f"Access Modes:\t{_access_modes(spec.get('accessModes'))}")
    if spec.get("volumeMode") is not None:
        w.line(0, f"VolumeMode:\t{spec['volumeMode']}")
    w.line(0, f"Capacity:\t{(spec.get('capacity') or {}).get('storage') or '0'}")
    required = ((spec.get("nodeAffinity") or {}).get("required")) or None
    if required is None:
        w.line(0, "Node Affinity:\t<none>")
    else:
        w.line(0, "Node Affinity:\t")
        terms = required.get("nodeSelectorTerms") or []
        w.line(1, "Required Terms:\t" + ("" if terms else "<none>"))
        for i, term in enumerate(terms):
            reqs = term.get("matchExpressions") or []
            if not reqs:
                w.line(2, f"Term {i}:\t<none>")
            for j, req in enumerate(reqs):
                text = f"{req.get('key')} {str(req.get('operator', '')).lower()}"
                if req.get("values"):
                    text += f" [{', '.join(req['values'])}]"
                w.line(2, f"Term {i}:\t{text}" if j == 0 else f"\t{text}")
    w.line(0, f"Message:\t{status.get('message', '')}")
    w.line(0, "Source:")
    for text in volume_lines(spec):
        w.line(2, text)
    events(w, event_items)
    return w.render()


def describe_storageclass(sc: Obj, event_items: list[Obj]) -> str:
    """describeStorageClass."""
    md = _md(sc)
    annotations = md.get("annotations") or {}
    default = "Yes" if annotations.get(DEFAULT_STORAGE_CLASS) == "true" else "No"
    w = Writer()
    w.line(0, f"Name:\t{md.get('name', '')}")
    w.line(0, f"IsDefaultClass:\t{default}")
    w.line(0, f"Annotations:\t{format_labels(annotations)}")
    w.line(0, f"Provisioner:\t{sc.get('provisioner', '')}")
    w.line(0, f"Parameters:\t{format_labels(sc.get('parameters'))}")
    w.line(0, f"AllowVolumeExpansion:\t{_bool_ptr(sc.get('allowVolumeExpansion'))}")
    options = sc.get("mountOptions") or []
    w.line(0, "MountOptions:" + ("" if options else "\t<none>"))
    for option in options:
        w.line(1, str(option))
    if sc.get("reclaimPolicy") is not None:
        w.line(0, f"ReclaimPolicy:\t{sc['reclaimPolicy']}")
    if sc.get("volumeBindingMode") is not None:
        w.line(0, f"VolumeBindingMode:\t{sc['volumeBindingMode']}")
    events(w, event_items)
    return w.render()


def _hpa_metric_lines(w: Writer, hpa: Obj) -> None:
    """The Metrics block of describeHorizontalPodAutoscalerV2: `( current / target )`
    per metric, `<unknown>` until the controller has measured it."""
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    current_metrics = status.get("currentMetrics") or []

    def current(i: int, field: str) -> Obj | None:
        if i < len(current_metrics) and isinstance(current_metrics[i], dict):
            got = current_metrics[i].get(field)
            if isinstance(got, dict):
                return got.get("current") or {}
        return None

    for i, m in enumerate(spec.get("metrics") or []):
        typ = m.get("type")
        if typ in ("Resource", "ContainerResource"):
            field = "resource" if typ == "Resource" else "containerResource"
            src = m.get(field) or {}
            target = src.get("target") or {}
            head = f"resource {src.get('name', '')}"
            if typ == "ContainerResource":
                head += f' of container "{src.get("container", "")}"'
            cur = current(i, field)
            if target.get("averageValue") is not None:
                now = str(cur.get("averageValue") or "0") if cur is not None else "<unknown>"
                w.line(1, f"{head} on pods:\t{now} / {target['averageValue']}")
            else:
                util = (cur or {}).get("averageUtilization")
                now = (
                    f"{util}% ({(cur or {}).get('averageValue') or '0'})"
                    if util is not None
                    else "<unknown>"
                )
                want = target.get("averageUtilization")
                want_text = f"{want}%" if want is not None else "<auto>"
                w.line(1, f"{head} on pods  (as a percentage of request):\t{now} / {want_text}")
        elif typ == "Pods":
            src = m.get("pods") or {}
            cur = current(i, "pods")
            now = str(cur.get("averageValue") or "0") if cur is not None else "<unknown>"
            name = (src.get("metric") or {}).get("name", "")
            w.line(1, f'"{name}" on pods:\t{now} / {(src.get("target") or {}).get("averageValue")}')
        elif typ in ("Object", "External"):
            field = typ.lower()
            src = m.get(field) or {}
            target = src.get("target") or {}
            cur = current(i, field) or {}
            name = (src.get("metric") or {}).get("name", "")
            if typ == "Object":
                ref = src.get("describedObject") or {}
                head = f'"{name}" on {ref.get("kind", "")}/{ref.get("name", "")} '
            else:
                head = f'"{name}" '
            if target.get("type") == "AverageValue" or (
                typ == "External" and target.get("averageValue") is not None
            ):
                now = str(cur.get("averageValue") or "<unknown>")
                w.line(1, f"{head}(target average value):\t{now} / {target.get('averageValue')}")
            else:
                now = str(cur.get("value") or "<unknown>")
                w.line(1, f"{head}(target value):\t{now} / {target.get('value')}")
        else:
            w.line(1, f'<unknown metric type "{typ}">')


def _hpa_direction(w: Writer, title: str, rules: Obj | None) -> None:
    """printDirectionBehavior."""
    if not isinstance(rules, dict):
        return
    w.line(1, f"{title}:")
    if rules.get("stabilizationWindowSeconds") is not None:
        w.line(2, f"Stabilization Window: {rules['stabilizationWindowSeconds']} seconds")
    policies = rules.get("policies") or []
    if policies:
        w.line(2, f"Select Policy: {rules.get('selectPolicy') or 'Max'}")
        w.line(2, "Policies:")
        for p in policies:
            w.line(
                3,
                f"- Type={p.get('type', '')}  Value={p.get('value', 0)}  "
                f"Period={p.get('periodSeconds', 0)} seconds",
            )


def describe_horizontalpodautoscaler(hpa: Obj, event_items: list[Obj]) -> str:
    """describeHorizontalPodAutoscalerV2."""
    md, spec, status = _md(hpa), hpa.get("spec") or {}, hpa.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    w = Writer()
    object_header(w, md)
    w.line(0, f"CreationTimestamp:\t{rfc1123z(md.get('creationTimestamp'))}")
    w.line(0, f"Reference:\t{ref.get('kind', '')}/{ref.get('name', '')}")
    w.line(0, "Metrics:\t( current / target )")
    _hpa_metric_lines(w, hpa)
    min_r = spec.get("minReplicas")
    w.line(0, f"Min replicas:\t{min_r if min_r is not None else '<unset>'}")
    w.line(0, f"Max replicas:\t{spec.get('maxReplicas', 0)}")
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        w.line(0, "Behavior:")
        _hpa_direction(w, "Scale Up", behavior.get("scaleUp"))
        _hpa_direction(w, "Scale Down", behavior.get("scaleDown"))
    w.line(
        0,
        f"{ref.get('kind', '')} pods:\t{status.get('currentReplicas', 0)} current / "
        f"{status.get('desiredReplicas', 0)} desired",
    )
    conditions = status.get("conditions") or []
    if conditions:
        w.line(0, "Conditions:")
        w.line(1, "Type\tStatus\tReason\tMessage")
        w.line(1, "----\t------\t------\t-------")
        for c in conditions:
            w.line(
                1,
                f"{c.get('type', '')}\t{c.get('status', '')}\t{c.get('reason', '')}\t"
                f"{c.get('message', '')}",
            )
    events(w, event_items)
    return w.render()


def _describe_storage_or_workload(client: Client, kind: Kind, obj: Obj, items: list[Obj]) -> str:
    """The StatefulSet, DaemonSet, Job, CronJob and storage describers, with what
    they look up."""
    ns = str(_md(obj).get("namespace") or "")
    if kind.kind in ("StatefulSet", "DaemonSet", "PersistentVolumeClaim"):
        pods = (client.get(kinds.BY_KIND["Pod"].collection_path(ns)) or {}).get("items") or []
        if kind.kind == "PersistentVolumeClaim":
            name = _md(obj).get("name")
            users = [
                str(_md(p).get("name"))
                for p in pods
                if any(
                    (v.get("persistentVolumeClaim") or {}).get("claimName") == name
                    for v in (p.get("spec") or {}).get("volumes") or []
                )
            ]
            return describe_persistentvolumeclaim(obj, users, items)
        owned = [p for p in pods if is_owned_by(p, obj)]
        if kind.kind == "StatefulSet":
            return describe_statefulset(obj, owned, items)
        return describe_daemonset(obj, owned, items)
    if kind.kind == "Job":
        return describe_job(obj, items)
    if kind.kind == "CronJob":
        return describe_cronjob(obj, items)
    if kind.kind == "PersistentVolume":
        return describe_persistentvolume(obj, items)
    return describe_storageclass(obj, items)


WORKLOAD_AND_STORAGE = (
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "PersistentVolumeClaim",
    "PersistentVolume",
    "StorageClass",
)


# --- the verb ----------------------------------------------------------------------


def _describe_one(client: Client, kind: Kind, obj: Obj) -> str:
    md = _md(obj)
    ns, name = str(md.get("namespace") or ""), str(md.get("name") or "")
    event_items = _events_for(client, obj, kind)
    if kind.kind == "Service":
        try:
            endpoints = client.get(kinds.BY_KIND["Endpoints"].object_path(ns, name))
        except ApiStatusError:
            endpoints = None
        return describe_service(obj, endpoints, event_items)
    if kind.kind == "Pod":
        return describe_pod(obj, event_items)
    if kind.kind == "ReplicaSet":
        pods_path = kinds.BY_KIND["Pod"].collection_path(ns)
        pods = (client.get(pods_path) or {}).get("items") or []
        owned = [p for p in pods if is_owned_by(p, obj)]
        return describe_replicaset(obj, owned, event_items)
    if kind.kind == "Endpoints":
        return describe_endpoints(obj, event_items)
    if kind.kind == "Deployment":
        rss = owned_replicasets(client, obj, ns)
        rss.sort(key=lambda rs: str(_md(rs).get("creationTimestamp") or ""))
        return describe_deployment(obj, rss, event_items)
    if kind.kind == "ConfigMap":
        return describe_configmap(obj, event_items)
    if kind.kind == "Secret":
        return describe_secret(obj)
    if kind.kind == "Ingress":
        return describe_ingress(obj, _ingress_backend_fetcher(client, ns), event_items)
    if kind.kind == "IngressClass":
        return describe_ingressclass(obj, event_items)
    if kind.kind == "NetworkPolicy":
        return describe_networkpolicy(obj)
    if kind.kind == "HorizontalPodAutoscaler":
        return describe_horizontalpodautoscaler(obj, event_items)
    if kind.kind in WORKLOAD_AND_STORAGE:
        return _describe_storage_or_workload(client, kind, obj, event_items)
    w = Writer()
    object_header(w, md)
    events(w, event_items)
    return w.render()


def describe(args: argparse.Namespace, client: Client) -> int:
    from svcnet.cli.get import UsageError, parse_resources

    try:
        queries = parse_resources(args.resources)
    except UsageError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    namespace = None if args.all_namespaces else args.namespace
    outputs: list[str] = []
    errors: list[ApiStatusError] = []
    for q in queries:
        ns = namespace if q.kind.namespaced else None
        if q.names:
            for name in q.names:
                try:
                    outputs.append(
                        _describe_one(client, q.kind, client.get(q.kind.object_path(ns, name)))
                    )
                except ApiStatusError as e:
                    errors.append(e)
        else:
            data = client.get(q.kind.collection_path(ns), query={"labelSelector": args.selector})
            outputs.extend(
                _describe_one(client, q.kind, o) for o in (data or {}).get("items") or []
            )
    # kubectl writes "\n\n" before every description but the first.
    sys.stdout.write("\n\n".join(outputs))
    if not outputs and not errors:
        where = "" if args.all_namespaces else f" in {args.namespace} namespace"
        sys.stderr.write(f"No resources found{where}.\n")
    for err in errors:
        sys.stderr.write(status_error_text(err.status))
    return 1 if errors else 0
