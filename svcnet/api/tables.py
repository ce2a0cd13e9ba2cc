"""Server-side Table rendering: kubectl's columns, computed once, here.

kubectl prints only what the server sends as a ``meta.k8s.io/v1`` Table, and
the svcnet CLI prints the same Tables, so every cell kubectl users know
(``1/1``, ``Running``, ``3 (41s ago)``, ``80:30026/TCP``, ``<pending>``,
``2m47s``) is computed in this module and nowhere else.

The functions mirror k/k ``pkg/printers/internalversion/printers.go`` one to
one: each ``*_cells`` takes an object dict and "now" and returns the row's
cells, including the ``priority: 1`` (``-o wide``) ones. kube-apiserver always
renders with ``Wide: true`` and lets the client hide the wide columns, so the
server calls these with ``wide=True``; ``wide=False`` exists for the one cell
that differs (a LoadBalancer's ingress list cut to 16 characters).

Everything here is pure: no IO, no clock reads (``now`` is a parameter), so
tables are table-tested.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from svcnet.k8s import labels
from svcnet.k8s.durations import human_duration
from svcnet.k8s.objects import Obj
from svcnet.k8s.timestamps import parse_time

Cell = str | int

LOAD_BALANCER_WIDTH = 16

_NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_AGE_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is "
    "in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "string"
    description: str = ""
    priority: int = 0
    format: str = ""

    def definition(self) -> Obj:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


def _name() -> Column:
    return Column("Name", format="name", description=_NAME_DOC)


def _age() -> Column:
    return Column("Age", description=_AGE_DOC)


def _wide(name: str, description: str) -> Column:
    return Column(name, description=description, priority=1)


# ---------------------------------------------------------------------------
# Durations and timestamps


def since(timestamp: Any, now: dt.datetime) -> str:
    """translateTimestampSince: ``<unknown>`` for a zero timestamp, else HumanDuration."""
    t = parse_time(timestamp)
    if t is None:
        return "<unknown>"
    return human_duration((now - t).total_seconds())


# ---------------------------------------------------------------------------
# Pods


def _pod_cells(pod: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    phase = str(status.get("phase") or "")
    reason = str(status.get("reason") or phase)
    for cond in status.get("conditions") or ():
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_specs = {c.get("name"): c for c in spec.get("initContainers") or ()}

    def restartable(name: Any) -> bool:
        return (init_specs.get(name) or {}).get("restartPolicy") == "Always"

    total = len(spec.get("containers") or ()) + sum(1 for n in init_specs if restartable(n))
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: dt.datetime | None = None
    last_sidecar_restart: dt.datetime | None = None

    def later(a: dt.datetime | None, cs: Mapping[str, Any]) -> dt.datetime | None:
        term = (cs.get("lastState") or {}).get("terminated")
        if term is None:
            return a
        t = parse_time(term.get("finishedAt"))
        if t is None:
            return a
        return t if a is None or a < t else a

    initializing = False
    init_statuses = status.get("initContainerStatuses") or ()
    for i, cs in enumerate(init_statuses):
        restarts += int(cs.get("restartCount") or 0)
        last_restart = later(last_restart, cs)
        if restartable(cs.get("name")):
            sidecar_restarts += int(cs.get("restartCount") or 0)
            last_sidecar_restart = later(last_sidecar_restart, cs)
        state = cs.get("state") or {}
        term = state.get("terminated")
        waiting = state.get("waiting")
        if term is not None and int(term.get("exitCode") or 0) == 0:
            continue
        if restartable(cs.get("name")) and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            if not term.get("reason"):
                if term.get("signal"):
                    reason = f"Init:Signal:{term['signal']}"
                else:
                    reason = f"Init:ExitCode:{int(term.get('exitCode') or 0)}"
            else:
                reason = "Init:" + str(term["reason"])
        elif (
            waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing"
        ):
            reason = "Init:" + str(waiting["reason"])
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or ())}"
        initializing = True
        break

    initialized = any(
        c.get("type") == "Initialized" and c.get("status") == "True"
        for c in status.get("conditions") or ()
    )
    if not initializing or initialized:
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or ()):
            restarts += int(cs.get("restartCount") or 0)
            last_restart = later(last_restart, cs)
            state = cs.get("state") or {}
            waiting = state.get("waiting")
            term = state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif term is not None and term.get("reason"):
                reason = str(term["reason"])
            elif term is not None:
                if term.get("signal"):
                    reason = f"Signal:{term['signal']}"
                else:
                    reason = f"ExitCode:{int(term.get('exitCode') or 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or ()
            )
            reason = "Running" if pod_ready else "NotReady"

    if md.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif md.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts != 0 and last_restart is not None:
        ago = human_duration((now - last_restart).total_seconds())
        restarts_cell = f"{restarts} ({ago} ago)"

    cells: list[Cell] = [
        str(md.get("name", "")),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        since(md.get("creationTimestamp"), now),
    ]
    if wide:
        pod_ips = status.get("podIPs") or ()
        ip = str(pod_ips[0].get("ip") or "") if pod_ips else ""
        gates = spec.get("readinessGates") or ()
        gates_cell = "<none>"
        if gates:
            conds = status.get("conditions") or ()
            true = 0
            for g in gates:
                for c in conds:
                    if c.get("type") == g.get("conditionType"):
                        true += c.get("status") == "True"
                        break
            gates_cell = f"{true}/{len(gates)}"
        cells += [
            ip or "<none>",
            str(spec.get("nodeName") or "<none>"),
            str(status.get("nominatedNodeName") or "<none>"),
            gates_cell,
        ]
    return cells


def pod_row_conditions(pod: Obj) -> list[Obj]:
    """Row conditions kube-apiserver attaches to finished pods."""
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Succeeded":
        msg = "The pod has completed successfully."
    elif phase == "Failed":
        msg = "The pod failed."
    else:
        return []
    return [{"type": "Completed", "status": "True", "reason": phase, "message": msg}]


# ---------------------------------------------------------------------------
# Services


def _load_balancer_ips(svc: Obj, wide: bool) -> str:
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ()
    found = {str(i.get("ip") or i.get("hostname") or "") for i in ingress} - {""}
    r = ",".join(sorted(found))
    if not wide and len(r) > LOAD_BALANCER_WIDTH:
        r = r[: LOAD_BALANCER_WIDTH - 3] + "..."
    return r


def service_external_ip(svc: Obj, wide: bool = True) -> str:
    spec = svc.get("spec") or {}
    svc_type = spec.get("type") or "ClusterIP"
    external = [str(i) for i in spec.get("externalIPs") or ()]
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if svc_type == "LoadBalancer":
        lb = _load_balancer_ips(svc, wide)
        if external:
            return ",".join(([*lb.split(",")] if lb else []) + external)
        return lb or "<pending>"
    if svc_type == "ExternalName":
        return str(spec.get("externalName") or "")
    return "<unknown>"


def service_ports(svc: Obj) -> str:
    pieces = []
    for p in (svc.get("spec") or {}).get("ports") or ():
        proto = p.get("protocol") or "TCP"
        node_port = int(p.get("nodePort") or 0)
        if node_port > 0:
            pieces.append(f"{p.get('port')}:{node_port}/{proto}")
        else:
            pieces.append(f"{p.get('port')}/{proto}")
    return ",".join(pieces) or "<none>"


def _service_cells(svc: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = svc.get("metadata") or {}
    spec = svc.get("spec") or {}
    cluster_ips = spec.get("clusterIPs") or ()
    cells: list[Cell] = [
        str(md.get("name", "")),
        str(spec.get("type") or "ClusterIP"),
        str(cluster_ips[0]) if cluster_ips else "<none>",
        service_external_ip(svc, wide),
        service_ports(svc),
        since(md.get("creationTimestamp"), now),
    ]
    if wide:
        cells.append(labels.format_map(spec.get("selector")))
    return cells


# ---------------------------------------------------------------------------
# Endpoints and EndpointSlices


def _join_host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def format_endpoints(ep: Obj) -> str:
    """Ready addresses as ``ip:port``, at most 3, then `` + N more...``."""
    subsets = ep.get("subsets") or ()
    if not subsets:
        return "<none>"
    shown: list[str] = []
    limit = 3
    more = False
    count = 0
    for ss in subsets:
        addrs = [str(a.get("ip") or "") for a in ss.get("addresses") or ()]
        ports = ss.get("ports") or ()
        # Headless Services without ports list bare IPs.
        targets: Sequence[Any] = ports if ports else (None,)
        for port in targets:
            count += len(addrs)
            for ip in addrs:
                if len(shown) == limit:
                    more = True
                    break
                shown.append(ip if port is None else _join_host_port(ip, port.get("port")))
    ret = ",".join(shown)
    if more:
        return f"{ret} + {count - limit} more..."
    return ret


def _list_with_more(items: list[str], more: bool, count: int, limit: int) -> str:
    ret = ",".join(items)
    if more:
        return f"{ret} + {count - limit} more..."
    return ret or "<unset>"


def _slice_ports(ports: Sequence[Mapping[str, Any]]) -> str:
    shown: list[str] = []
    more = False
    for p in ports:
        if len(shown) < 3:
            if p.get("port") is not None:
                shown.append(str(p["port"]))
            elif p.get("name") is not None:
                shown.append(str(p["name"]))
            else:
                shown.append("*")
        else:
            more = True
    return _list_with_more(shown, more, len(ports), 3)


def _slice_endpoints(endpoints: Sequence[Mapping[str, Any]]) -> str:
    shown: list[str] = []
    more = False
    count = 0
    for e in endpoints:
        for a in e.get("addresses") or ():
            if len(shown) < 3:
                shown.append(str(a))
            else:
                more = True
            count += 1
    return _list_with_more(shown, more, count, 3)


def _endpoints_cells(ep: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = ep.get("metadata") or {}
    return [str(md.get("name", "")), format_endpoints(ep), since(md.get("creationTimestamp"), now)]


def _endpointslice_cells(es: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = es.get("metadata") or {}
    return [
        str(md.get("name", "")),
        str(es.get("addressType") or ""),
        _slice_ports(es.get("ports") or ()),
        _slice_endpoints(es.get("endpoints") or ()),
        since(md.get("creationTimestamp"), now),
    ]


# ---------------------------------------------------------------------------
# ReplicaSets and Deployments


def _containers(obj: Obj) -> tuple[str, str]:
    cs = ((((obj.get("spec") or {}).get("template") or {}).get("spec")) or {}).get("containers")
    cs = cs or ()
    return ",".join(str(c.get("name", "")) for c in cs), ",".join(
        str(c.get("image", "")) for c in cs
    )


def _replicaset_cells(rs: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = rs.get("metadata") or {}
    spec = rs.get("spec") or {}
    status = rs.get("status") or {}
    cells: list[Cell] = [
        str(md.get("name", "")),
        int(spec["replicas"]) if spec.get("replicas") is not None else 1,
        int(status.get("replicas") or 0),
        int(status.get("readyReplicas") or 0),
        since(md.get("creationTimestamp"), now),
    ]
    if wide:
        names, images = _containers(rs)
        cells += [names, images, labels.format_label_selector(spec.get("selector"))]
    return cells


def _deployment_cells(d: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = d.get("metadata") or {}
    spec = d.get("spec") or {}
    status = d.get("status") or {}
    desired = int(spec["replicas"]) if spec.get("replicas") is not None else 1
    cells: list[Cell] = [
        str(md.get("name", "")),
        f"{int(status.get('readyReplicas') or 0)}/{desired}",
        int(status.get("updatedReplicas") or 0),
        int(status.get("availableReplicas") or 0),
        since(md.get("creationTimestamp"), now),
    ]
    if wide:
        names, images = _containers(d)
        selector = spec.get("selector")
        # LabelSelectorAsSelector(...).String(): empty for an empty selector.
        sel = "" if not selector else str(labels.from_label_selector(selector))
        cells += [names, images, sel]
    return cells


# ---------------------------------------------------------------------------
# StatefulSets, DaemonSets, Jobs and CronJobs


def _statefulset_cells(sts: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = sts.get("metadata") or {}
    spec = sts.get("spec") or {}
    status = sts.get("status") or {}
    desired = int(spec.get("replicas") or 0)
    cells: list[Cell] = [
        str(md.get("name", "")),
        f"{int(status.get('readyReplicas') or 0)}/{desired}",
        since(md.get("creationTimestamp"), now),
    ]
    if wide:
        cells += list(_containers(sts))
    return cells


def _daemonset_cells(ds: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = ds.get("metadata") or {}
    spec = ds.get("spec") or {}
    st = ds.get("status") or {}
    node_selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector")
    cells: list[Cell] = [
        str(md.get("name", "")),
        int(st.get("desiredNumberScheduled") or 0),
        int(st.get("currentNumberScheduled") or 0),
        int(st.get("numberReady") or 0),
        int(st.get("updatedNumberScheduled") or 0),
        int(st.get("numberAvailable") or 0),
        labels.format_map(node_selector),
        since(md.get("creationTimestamp"), now),
    ]
    if wide:
        names, images = _containers(ds)
        cells += [names, images, labels.format_label_selector(spec.get("selector"))]
    return cells


def job_condition(job: Obj, ctype: str) -> bool:
    """hasJobCondition: the first condition of that type, True."""
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") == ctype:
            return bool(c.get("status") == "True")
    return False


def job_status(job: Obj) -> str:
    """printJob's STATUS cell."""
    if job_condition(job, "Complete"):
        return "Complete"
    if job_condition(job, "Failed"):
        return "Failed"
    if (job.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    if job_condition(job, "Suspended"):
        return "Suspended"
    if job_condition(job, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def job_completions(job: Obj) -> str:
    spec = job.get("spec") or {}
    succeeded = int((job.get("status") or {}).get("succeeded") or 0)
    if spec.get("completions") is not None:
        return f"{succeeded}/{int(spec['completions'])}"
    parallelism = int(spec.get("parallelism") or 0)
    if parallelism > 1:
        return f"{succeeded}/1 of {parallelism}"
    return f"{succeeded}/1"


def job_duration(job: Obj, now: dt.datetime) -> str:
    st = job.get("status") or {}
    start = parse_time(st.get("startTime"))
    if start is None:
        return ""
    end = parse_time(st.get("completionTime")) or now
    return human_duration((end - start).total_seconds())


def _job_cells(job: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = job.get("metadata") or {}
    cells: list[Cell] = [
        str(md.get("name", "")),
        job_status(job),
        job_completions(job),
        job_duration(job, now),
        since(md.get("creationTimestamp"), now),
    ]
    if wide:
        names, images = _containers(job)
        selector = (job.get("spec") or {}).get("selector")
        cells += [names, images, labels.format_label_selector(selector)]
    return cells


def _cronjob_cells(cj: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = cj.get("metadata") or {}
    spec = cj.get("spec") or {}
    st = cj.get("status") or {}
    last = st.get("lastScheduleTime")
    suspend = spec.get("suspend")
    cells: list[Cell] = [
        str(md.get("name", "")),
        str(spec.get("schedule") or ""),
        str(spec.get("timeZone") or "<none>"),
        "<unset>" if suspend is None else ("True" if suspend else "False"),
        len(st.get("active") or ()),
        since(last, now) if last else "<none>",
        since(md.get("creationTimestamp"), now),
    ]
    if wide:
        jt_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
        names, images = _containers({"spec": jt_spec})
        cells += [names, images, labels.format_label_selector(jt_spec.get("selector"))]
    return cells


# ---------------------------------------------------------------------------
# Storage: PersistentVolumes, PersistentVolumeClaims, StorageClasses

_ACCESS_MODES = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)


def access_modes(modes: Any) -> str:
    """GetAccessModesAsString: abbreviations in a fixed order."""
    have = set(modes or ())
    return ",".join(short for mode, short in _ACCESS_MODES if mode in have)


def _pv_cells(pv: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = pv.get("metadata") or {}
    spec = pv.get("spec") or {}
    st = pv.get("status") or {}
    ref = spec.get("claimRef")
    claim = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""
    phase = "Terminating" if md.get("deletionTimestamp") else str(st.get("phase") or "")
    return [
        str(md.get("name", "")),
        str((spec.get("capacity") or {}).get("storage") or "0"),
        access_modes(spec.get("accessModes")),
        str(spec.get("persistentVolumeReclaimPolicy") or ""),
        phase,
        claim,
        str(spec.get("storageClassName") or ""),
        str(spec.get("volumeAttributesClassName") or "<unset>"),
        str(st.get("reason") or ""),
        since(md.get("creationTimestamp"), now),
        str(spec.get("volumeMode") or "<unset>"),
    ]


def _pvc_cells(pvc: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = pvc.get("metadata") or {}
    spec = pvc.get("spec") or {}
    st = pvc.get("status") or {}
    phase = "Terminating" if md.get("deletionTimestamp") else str(st.get("phase") or "")
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = access_modes(st.get("accessModes"))
        capacity = str((st.get("capacity") or {}).get("storage") or "0")
    return [
        str(md.get("name", "")),
        phase,
        str(spec.get("volumeName") or ""),
        capacity,
        modes,
        str(spec.get("storageClassName") or ""),
        str(spec.get("volumeAttributesClassName") or "<unset>"),
        since(md.get("creationTimestamp"), now),
        str(spec.get("volumeMode") or "<unset>"),
    ]


def _storageclass_cells(sc: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = sc.get("metadata") or {}
    ann = md.get("annotations") or {}
    name = str(md.get("name", ""))
    if "true" in (
        ann.get("storageclass.kubernetes.io/is-default-class"),
        ann.get("storageclass.beta.kubernetes.io/is-default-class"),
    ):
        name += " (default)"
    return [
        name,
        str(sc.get("provisioner") or ""),
        str(sc.get("reclaimPolicy") or "Delete"),
        str(sc.get("volumeBindingMode") or "Immediate"),
        "true" if sc.get("allowVolumeExpansion") else "false",
        since(md.get("creationTimestamp"), now),
    ]


# ---------------------------------------------------------------------------
# Namespaces and Events


def _namespace_cells(ns: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = ns.get("metadata") or {}
    return [
        str(md.get("name", "")),
        str((ns.get("status") or {}).get("phase") or ""),
        since(md.get("creationTimestamp"), now),
    ]


def _node_cells(node: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    """kubectl's node printer: NotReady/Unknown unless Ready, roles from the labels."""
    md, spec, st = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    ready = next((c for c in st.get("conditions") or () if c.get("type") == "Ready"), None)
    status = {"True": "Ready", "False": "NotReady"}.get(str((ready or {}).get("status")), "Unknown")
    if spec.get("unschedulable"):
        status += ",SchedulingDisabled"
    roles = sorted(
        k.removeprefix("node-role.kubernetes.io/")
        for k in md.get("labels") or {}
        if k.startswith("node-role.kubernetes.io/")
    )
    info = st.get("nodeInfo") or {}
    addrs = {a.get("type"): a.get("address") for a in st.get("addresses") or ()}
    return [
        str(md.get("name", "")),
        status,
        ",".join(roles) or "<none>",
        since(md.get("creationTimestamp"), now),
        str(info.get("kubeletVersion") or ""),
        str(addrs.get("InternalIP") or "<none>"),
        str(addrs.get("ExternalIP") or "<none>"),
        str(info.get("osImage") or "<unknown>"),
        str(info.get("kernelVersion") or "<unknown>"),
        str(info.get("containerRuntimeVersion") or "<unknown>"),
    ]


def _configmap_cells(cm: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = cm.get("metadata") or {}
    n = len(cm.get("data") or {}) + len(cm.get("binaryData") or {})
    return [str(md.get("name", "")), n, since(md.get("creationTimestamp"), now)]


def _secret_cells(secret: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = secret.get("metadata") or {}
    return [
        str(md.get("name", "")),
        str(secret.get("type") or ""),
        len(secret.get("data") or {}),
        since(md.get("creationTimestamp"), now),
    ]


def _event_cells(ev: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    first = (
        since(ev.get("firstTimestamp"), now)
        if parse_time(ev.get("firstTimestamp"))
        else since(ev.get("eventTime"), now)
    )
    last = since(ev.get("lastTimestamp"), now) if parse_time(ev.get("lastTimestamp")) else first
    count = int(ev.get("count") or 0)
    series = ev.get("series")
    if series is not None:
        last = since(series.get("lastObservedTime"), now)
        count = int(series.get("count") or 0)
    elif count == 0:
        count = 1  # singleton events of the events.k8s.io API carry no count
    inv = ev.get("involvedObject") or {}
    kind = str(inv.get("kind") or "").lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    message = str(ev.get("message") or "").strip()
    if not wide:
        return [last, str(ev.get("type") or ""), str(ev.get("reason") or ""), target, message]
    source = ev.get("source") or {}
    component = source.get("component") or ev.get("reportingComponent") or ""
    instance = source.get("host") or ev.get("reportingInstance") or ""
    return [
        last,
        str(ev.get("type") or ""),
        str(ev.get("reason") or ""),
        target,
        str(inv.get("fieldPath") or ""),
        f"{component}, {instance}" if instance else str(component),
        message,
        first,
        count,
        str((ev.get("metadata") or {}).get("name", "")),
    ]


# ---------------------------------------------------------------------------
# Ingresses and IngressClasses


def ingress_hosts(ingress: Obj) -> str:
    """formatHosts: the rules' hosts, at most 3 then `` + N more...``; ``*`` for none."""
    rules = (ingress.get("spec") or {}).get("rules") or []
    shown: list[str] = []
    more = False
    for rule in rules:
        if len(shown) == 3:
            more = True
        if not more and rule.get("host"):
            shown.append(str(rule["host"]))
    if not shown:
        return "*"
    text = ",".join(shown)
    return f"{text} + {len(rules) - 3} more..." if more else text


def ingress_address(ingress: Obj, wide: bool = True) -> str:
    """ingressLoadBalancerStatusStringer: IPs (or hostnames), sorted, unique."""
    entries = (((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress")) or []
    found = {str(e.get("ip") or e.get("hostname") or "") for e in entries} - {""}
    text = ",".join(sorted(found))
    if not wide and len(text) > LOAD_BALANCER_WIDTH:
        text = text[: LOAD_BALANCER_WIDTH - 1] + "..."
    return text


def _ingress_cells(ing: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md, spec = ing.get("metadata") or {}, ing.get("spec") or {}
    return [
        str(md.get("name", "")),
        str(spec.get("ingressClassName") or "<none>"),
        ingress_hosts(ing),
        ingress_address(ing, wide),
        "80, 443" if spec.get("tls") else "80",
        since(md.get("creationTimestamp"), now),
    ]


def ingressclass_parameters(ic: Obj) -> str:
    """printIngressClass's PARAMETERS: ``Kind[.apiGroup]/name`` or ``<none>``."""
    params = (ic.get("spec") or {}).get("parameters")
    if not params:
        return "<none>"
    text = str(params.get("kind") or "")
    if params.get("apiGroup") is not None:
        text += "." + str(params["apiGroup"])
    return f"{text}/{params.get('name') or ''}"


def _ingressclass_cells(ic: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = ic.get("metadata") or {}
    return [
        str(md.get("name", "")),
        str((ic.get("spec") or {}).get("controller") or ""),
        ingressclass_parameters(ic),
        since(md.get("creationTimestamp"), now),
    ]


def _networkpolicy_cells(np: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = np.get("metadata") or {}
    return [
        str(md.get("name", "")),
        labels.format_label_selector((np.get("spec") or {}).get("podSelector")),
        since(md.get("creationTimestamp"), now),
    ]


# ---------------------------------------------------------------------------
# The table per kind

RowFn = Callable[[Obj, dt.datetime, bool], list[Cell]]


@dataclass(frozen=True)
class Printer:
    columns: tuple[Column, ...]
    cells: RowFn


# ---------------------------------------------------------------------------
# HorizontalPodAutoscalers


def _hpa_current(statuses: list[Any], i: int, field: str) -> Obj | None:
    """The status of metric i, when the controller could compute it."""
    if i < len(statuses) and isinstance(statuses[i], dict):
        got = statuses[i].get(field)
        return got if isinstance(got, dict) else None
    return None


def format_hpa_metrics(specs: list[Any], statuses: list[Any]) -> str:
    """formatHPAMetrics (printers.go): `cpu: 12%/50%` per metric, the first two, then
    `+ N more...`; `<unknown>` until the controller has a figure."""
    if not specs:
        return "<none>"
    out: list[str] = []
    for i, spec in enumerate(specs):
        spec = spec if isinstance(spec, dict) else {}
        typ = spec.get("type")
        field = {
            "External": "external",
            "Pods": "pods",
            "Object": "object",
            "Resource": "resource",
            "ContainerResource": "containerResource",
        }.get(str(typ))
        src = spec.get(field) if field else None
        if field is None or not isinstance(src, dict):
            out.append("<unknown type>")
            continue
        target = src.get("target") or {}
        cur = (_hpa_current(statuses, i, field) or {}).get("current") or {}
        has_status = _hpa_current(statuses, i, field) is not None
        name = str(src.get("name") or (src.get("metric") or {}).get("name") or "")
        if field in ("resource", "containerResource"):
            if target.get("averageValue") is not None:
                current = str(cur.get("averageValue") or "0") if has_status else "<unknown>"
                out.append(f"{name}: {current}/{target['averageValue']}")
            else:
                util = cur.get("averageUtilization")
                current = f"{util}%" if has_status and util is not None else "<unknown>"
                want = target.get("averageUtilization")
                out.append(f"{name}: {current}/{f'{want}%' if want is not None else '<auto>'}")
        elif field == "pods":
            current = str(cur.get("averageValue") or "0") if has_status else "<unknown>"
            out.append(f"{name}: {current}/{target.get('averageValue')}")
        else:
            if target.get("averageValue") is not None:
                current = str(cur.get("averageValue") or "0") if has_status else "<unknown>"
                out.append(f"{name}: {current}/{target['averageValue']} (avg)")
            else:
                current = str(cur.get("value") or "0") if has_status else "<unknown>"
                out.append(f"{name}: {current}/{target.get('value')}")
    if len(out) > 2:
        return f"{', '.join(out[:2])} + {len(out) - 2} more..."
    return ", ".join(out)


def _hpa_cells(hpa: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    md = hpa.get("metadata") or {}
    spec = hpa.get("spec") or {}
    st = hpa.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    min_pods = spec.get("minReplicas")
    return [
        str(md.get("name", "")),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        format_hpa_metrics(spec.get("metrics") or [], st.get("currentMetrics") or []),
        "<unset>" if min_pods is None else str(min_pods),
        int(spec.get("maxReplicas") or 0),
        int(st.get("currentReplicas") or 0),
        since(md.get("creationTimestamp"), now),
    ]


_CONTAINERS_DOC = "Names of each container in the template."
_IMAGES_DOC = "Images referenced by each container in the template."


def _controllerrevision_cells(cr: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
    """printControllerRevision: the controller as `statefulset.apps/web`."""
    md = cr.get("metadata") or {}
    controller = "<none>"
    for ref in md.get("ownerReferences") or []:
        if ref.get("controller"):
            group = str(ref.get("apiVersion") or "").rpartition("/")[0]
            kind = str(ref.get("kind") or "").lower() + (f".{group}" if group else "")
            controller = f"{kind}/{ref.get('name', '')}"
    return [
        str(md.get("name", "")),
        controller,
        int(cr.get("revision") or 0),
        since(md.get("creationTimestamp"), now),
    ]


PRINTERS: dict[str, Printer] = {
    "Pod": Printer(
        (
            _name(),
            Column(
                "Ready",
                description="The aggregate readiness state of this pod for accepting traffic.",
            ),
            Column("Status", description="The aggregate status of the containers in this pod."),
            Column(
                "Restarts",
                description="The number of times the containers in this pod "
                "have been restarted and when the last container in this pod has restarted.",
            ),
            _age(),
            _wide(
                "IP",
                "podIP address allocated to the pod. Routable at least within the "
                "cluster. Empty if not yet allocated.",
            ),
            _wide("Node", "NodeName indicates in which node this pod is scheduled."),
            _wide(
                "Nominated Node",
                "nominatedNodeName is set only when this pod preempts other pods on the node.",
            ),
            _wide(
                "Readiness Gates",
                "If specified, all readiness gates will be evaluated for pod readiness.",
            ),
        ),
        _pod_cells,
    ),
    "Service": Printer(
        (
            _name(),
            Column("Type", description="type determines how the Service is exposed."),
            Column("Cluster-IP", description="clusterIP is the IP address of the service."),
            Column(
                "External-IP",
                description="externalIPs is a list of IP addresses for "
                "which nodes in the cluster will also accept traffic for this service.",
            ),
            Column("Port(s)", description="The list of ports that are exposed by this service."),
            _age(),
            _wide(
                "Selector",
                "Route service traffic to pods with label keys and values matching this selector.",
            ),
        ),
        _service_cells,
    ),
    "Endpoints": Printer(
        (
            _name(),
            Column(
                "Endpoints", description="The set of all endpoints is the union of all subsets."
            ),
            _age(),
        ),
        _endpoints_cells,
    ),
    "EndpointSlice": Printer(
        (
            _name(),
            Column(
                "AddressType",
                description="addressType specifies the type of address "
                "carried by this EndpointSlice.",
            ),
            Column(
                "Ports",
                description="ports specifies the list of network ports exposed "
                "by each endpoint in this slice.",
            ),
            Column(
                "Endpoints", description="endpoints is a list of unique endpoints in this slice."
            ),
            _age(),
        ),
        _endpointslice_cells,
    ),
    "ReplicaSet": Printer(
        (
            _name(),
            Column("Desired", "integer", "Replicas is the number of desired replicas."),
            Column(
                "Current", "integer", "Replicas is the most recently observed number of replicas."
            ),
            Column("Ready", "integer", "The number of ready replicas for this replica set."),
            _age(),
            _wide("Containers", _CONTAINERS_DOC),
            _wide("Images", _IMAGES_DOC),
            _wide(
                "Selector",
                "Selector is a label query over pods that should match the replica count.",
            ),
        ),
        _replicaset_cells,
    ),
    "Deployment": Printer(
        (
            _name(),
            Column("Ready", description="Number of the pod with ready state"),
            Column(
                "Up-to-date",
                description="Total number of non-terminated pods targeted "
                "by this deployment that have the desired template spec.",
            ),
            Column(
                "Available",
                description="Total number of available pods (ready for at "
                "least minReadySeconds) targeted by this deployment.",
            ),
            _age(),
            _wide("Containers", _CONTAINERS_DOC),
            _wide("Images", _IMAGES_DOC),
            _wide("Selector", "Label selector for pods."),
        ),
        _deployment_cells,
    ),
    "StatefulSet": Printer(
        (
            _name(),
            Column("Ready", description="Number of the pod with ready state"),
            _age(),
            _wide("Containers", _CONTAINERS_DOC),
            _wide("Images", _IMAGES_DOC),
        ),
        _statefulset_cells,
    ),
    "DaemonSet": Printer(
        (
            _name(),
            Column(
                "Desired",
                "integer",
                "The total number of nodes that should be running the daemon pod (including "
                "nodes correctly running the daemon pod).",
            ),
            Column(
                "Current",
                "integer",
                "The number of nodes that are running at least 1 daemon pod and are supposed "
                "to run the daemon pod.",
            ),
            Column(
                "Ready",
                "integer",
                "numberReady is the number of nodes that should be running the daemon pod and "
                "have one or more of the daemon pod running with a Ready Condition.",
            ),
            Column(
                "Up-to-date",
                "integer",
                "The total number of nodes that are running updated daemon pod",
            ),
            Column(
                "Available",
                "integer",
                "The number of nodes that should be running the daemon pod and have one or "
                "more of the daemon pod running and available (ready for at least "
                "spec.minReadySeconds)",
            ),
            Column(
                "Node Selector",
                description="NodeSelector is a selector which must be true for the pod to fit "
                "on a node.",
            ),
            _age(),
            _wide("Containers", _CONTAINERS_DOC),
            _wide("Images", _IMAGES_DOC),
            _wide(
                "Selector",
                "A label query over pods that are managed by the daemon set.",
            ),
        ),
        _daemonset_cells,
    ),
    "Job": Printer(
        (
            _name(),
            Column("Status", description="Status of the job."),
            Column(
                "Completions",
                description="The number of pods which reached phase Succeeded.",
            ),
            Column("Duration", description="Time required to complete the job."),
            _age(),
            _wide("Containers", _CONTAINERS_DOC),
            _wide("Images", _IMAGES_DOC),
            _wide("Selector", "A label query over pods that should match the pod count."),
        ),
        _job_cells,
    ),
    "CronJob": Printer(
        (
            _name(),
            Column("Schedule", description="The schedule in Cron format."),
            Column("Timezone", description="The time zone name for the given schedule."),
            Column(
                "Suspend",
                "boolean",
                "This flag tells the controller to suspend subsequent executions.",
            ),
            Column("Active", "integer", "A list of pointers to currently running jobs."),
            Column(
                "Last Schedule",
                description="Information when was the last time the job was successfully "
                "scheduled.",
            ),
            _age(),
            _wide("Containers", _CONTAINERS_DOC),
            _wide("Images", _IMAGES_DOC),
            _wide("Selector", "A label query over pods that should match the pod count."),
        ),
        _cronjob_cells,
    ),
    "PersistentVolume": Printer(
        (
            _name(),
            Column(
                "Capacity",
                description="capacity is the description of the persistent volume's resources and "
                "capacity.",
            ),
            Column(
                "Access Modes",
                description="accessModes contains all ways the volume can be mounted.",
            ),
            Column(
                "Reclaim Policy",
                description="persistentVolumeReclaimPolicy defines what happens to a persistent "
                "volume when released from its claim.",
            ),
            Column(
                "Status",
                description="phase indicates if a volume is available, bound to a claim, or "
                "released by a claim.",
            ),
            Column(
                "Claim",
                description="claimRef is part of a bi-directional binding between "
                "PersistentVolume and PersistentVolumeClaim.",
            ),
            Column("StorageClass", description="StorageClass of the pv"),
            Column("VolumeAttributesClass", description="VolumeAttributesClass of the pv"),
            Column(
                "Reason",
                description="reason is a brief CamelCase string that describes any failure and is "
                "meant for machine parsing and tidy display in the CLI.",
            ),
            _age(),
            _wide(
                "VolumeMode",
                "volumeMode defines if a volume is intended to be used with a formatted "
                "filesystem or to remain in raw block state.",
            ),
        ),
        _pv_cells,
    ),
    "PersistentVolumeClaim": Printer(
        (
            _name(),
            Column(
                "Status", description="phase represents the current phase of PersistentVolumeClaim."
            ),
            Column(
                "Volume",
                description="volumeName is the binding reference to the PersistentVolume backing "
                "this claim.",
            ),
            Column(
                "Capacity",
                description="capacity represents the actual resources of the underlying volume.",
            ),
            Column(
                "Access Modes",
                description="accessModes contains the actual access modes the volume backing the "
                "PVC has.",
            ),
            Column("StorageClass", description="StorageClass of the pvc"),
            Column("VolumeAttributesClass", description="VolumeAttributesClass of the pvc"),
            _age(),
            _wide("VolumeMode", "volumeMode defines what type of volume is required by the claim."),
        ),
        _pvc_cells,
    ),
    "StorageClass": Printer(
        (
            _name(),
            Column("Provisioner", description="provisioner indicates the type of the provisioner."),
            Column(
                "ReclaimPolicy",
                description="reclaimPolicy controls the reclaimPolicy for dynamically provisioned "
                "PersistentVolumes of this storage class.",
            ),
            Column(
                "VolumeBindingMode",
                description="volumeBindingMode indicates how PersistentVolumeClaims should be "
                "provisioned and bound.",
            ),
            Column(
                "AllowVolumeExpansion",
                description="allowVolumeExpansion shows whether the storage class allow volume "
                "expand.",
            ),
            _age(),
        ),
        _storageclass_cells,
    ),
    "Namespace": Printer(
        (_name(), Column("Status", description="The status of the namespace"), _age()),
        _namespace_cells,
    ),
    "Node": Printer(
        (
            _name(),
            Column("Status", description="The status of the node"),
            Column("Roles", description="The roles of the node"),
            _age(),
            Column("Version", description="Kubelet Version reported by the node."),
            _wide("Internal-IP", "List of internal IPs for the node."),
            _wide("External-IP", "List of external IPs for the node."),
            _wide("OS-Image", "OS Image reported by the node from /etc/os-release."),
            _wide("Kernel-Version", "Kernel Version reported by the node from 'uname -r'."),
            _wide("Container-Runtime", "Container Runtime Version reported by the node."),
        ),
        _node_cells,
    ),
    "ConfigMap": Printer(
        (
            _name(),
            Column("Data", type="integer", description="Number of data in configmap"),
            _age(),
        ),
        _configmap_cells,
    ),
    "Secret": Printer(
        (
            _name(),
            Column("Type", description="The type of the secret"),
            Column("Data", type="integer", description="Number of data in secret"),
            _age(),
        ),
        _secret_cells,
    ),
    "Ingress": Printer(
        (
            _name(),
            Column(
                "Class",
                description="The name of the IngressClass resource that should be used for ingress",
            ),
            Column(
                "Hosts",
                description="Hosts that incoming requests are matched against before the "
                "ingress rule",
            ),
            Column(
                "Address",
                description="Address is a list containing ingress points for the load-balancer",
            ),
            Column("Ports", description="Ports of TLS configurations that open"),
            _age(),
        ),
        _ingress_cells,
    ),
    "IngressClass": Printer(
        (
            _name(),
            Column(
                "Controller", description="Controller that is responsible for handling this class"
            ),
            Column(
                "Parameters", description="A reference to a resource with additional parameters"
            ),
            _age(),
        ),
        _ingressclass_cells,
    ),
    "NetworkPolicy": Printer(
        (
            _name(),
            Column(
                "Pod-Selector",
                # printers.go describes the column with extensions/v1beta1's doc string.
                description="Selects the pods to which this NetworkPolicy object applies. The "
                "array of ingress rules is applied to any pods selected by this field. Multiple "
                "network policies can select the same set of pods. In this case, the ingress "
                "rules for each are combined additively. This field is NOT optional and follows "
                "standard label selector semantics. An empty podSelector matches all pods in "
                "this namespace.",
            ),
            _age(),
        ),
        _networkpolicy_cells,
    ),
    "Event": Printer(
        (
            Column(
                "Last Seen",
                description="The time at which the most recent occurrence "
                "of this event was recorded.",
            ),
            Column("Type", description="Type of this event (Normal, Warning)."),
            Column(
                "Reason",
                description="This should be a short, machine understandable "
                "string that gives the reason for the transition into the object's "
                "current status.",
            ),
            Column("Object", description="The object that this event is about."),
            _wide(
                "Subobject",
                "If referring to a piece of an object instead of an entire "
                "object, this string should contain a valid JSON/Go field access "
                "statement.",
            ),
            _wide("Source", "The component reporting this event."),
            Column(
                "Message",
                description="A human-readable description of the status of this operation.",
            ),
            _wide("First Seen", "The time at which the event was first recorded."),
            _wide("Count", "The number of times this event has occurred."),
            Column("Name", format="name", description=_NAME_DOC, priority=1),
        ),
        _event_cells,
    ),
    "HorizontalPodAutoscaler": Printer(
        (
            _name(),
            Column(
                "Reference",
                description="scaleTargetRef points to the target resource to scale, and is "
                "used to the pods for which metrics should be collected, as well as to "
                "actually change the replica count.",
            ),
            Column(
                "Targets",
                description="metrics contains the specifications for which to use to calculate "
                "the desired replica count (the maximum replica count across all metrics will "
                "be used).  The desired replica count is calculated multiplying the ratio "
                "between the target value and the current value by the current number of "
                "pods.  Ergo, metrics used must decrease as the pod count is increased, and "
                "vice-versa.  See the individual metric source types for more information "
                "about how each type of metric must respond.",
            ),
            Column(
                "MinPods",
                description="minReplicas is the lower limit for the number of replicas to which "
                "the autoscaler can scale down.  It defaults to 1 pod.  minReplicas is allowed "
                "to be 0 if the alpha feature gate HPAScaleToZero is enabled and at least one "
                "Object or External metric is configured.  Scaling is active as long as at "
                "least one metric value is available.",
            ),
            Column(
                "MaxPods",
                description="maxReplicas is the upper limit for the number of replicas to "
                "which the autoscaler can scale up. It cannot be less that minReplicas.",
            ),
            Column(
                "Replicas",
                description="currentReplicas is current number of replicas of pods managed by "
                "this autoscaler, as last seen by the autoscaler.",
            ),
            _age(),
        ),
        _hpa_cells,
    ),
    "ControllerRevision": Printer(
        (
            _name(),
            Column("Controller", description="Controller of the object"),
            Column(
                "Revision",
                description="Revision indicates the revision of the state represented by Data.",
            ),
            _age(),
        ),
        _controllerrevision_cells,
    ),
}


def _default_printer() -> Printer:
    """What kube-apiserver uses for kinds without a printer: Name and Created At."""

    def cells(obj: Obj, now: dt.datetime, wide: bool) -> list[Cell]:
        md = obj.get("metadata") or {}
        return [str(md.get("name", "")), str(md.get("creationTimestamp") or "")]

    return Printer(
        (_name(), Column("Created At", "date", _AGE_DOC)),
        cells,
    )


def printer_for(kind: str) -> Printer:
    return PRINTERS.get(kind) or _default_printer()


def column_definitions(kind: str) -> list[Obj]:
    return [c.definition() for c in printer_for(kind).columns]


def cells(obj: Obj, now: dt.datetime, *, wide: bool = True) -> list[Cell]:
    """The row of one object, as kube-apiserver renders it (wide by default)."""
    return printer_for(str(obj.get("kind") or "")).cells(obj, now, wide)


def partial_metadata(obj: Obj) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def row(obj: Obj, now: dt.datetime, include_object: str = "Metadata") -> Obj:
    """One TableRow; include_object is the request's ``includeObject`` (None/Object/Metadata)."""
    out: Obj = {"cells": cells(obj, now)}
    if obj.get("kind") == "Pod":
        conds = pod_row_conditions(obj)
        if conds:
            out["conditions"] = conds
    if include_object == "Object":
        out["object"] = obj
    elif include_object != "None":
        out["object"] = partial_metadata(obj)
    return out


def table(
    kind: str,
    objs: Sequence[Obj],
    now: dt.datetime,
    *,
    resource_version: str = "",
    include_object: str = "Metadata",
    headers: bool = True,
) -> Obj:
    """A ``meta.k8s.io/v1`` Table of objects of one kind."""
    md: Obj = {"resourceVersion": resource_version} if resource_version else {}
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": md,
        "columnDefinitions": column_definitions(kind) if headers else [],
        "rows": [row(o, now, include_object) for o in objs],
    }
