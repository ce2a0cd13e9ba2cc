"""Pod status from container states: the kubelet's `getPhase` and condition rules.

Pure functions, so the rules that kubectl's READY and STATUS columns (and
`kubectl run`'s wait for Running+Ready, then Succeeded/Failed) depend on can be
tested without processes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from svcnet.k8s import quantity
from svcnet.k8s.objects import Obj

SANDBOX_CONDITION = "svcnet.io/PodNetworkView"
"""Present (status False) when a pod's processes could not get the pod's own
resolv.conf/hosts/hostname and see the host's instead; `describe` lists it."""


def _init_done(cs: Obj, sidecars: Collection[str]) -> bool:
    """A regular init container that completed, or a sidecar that started."""
    if cs.get("name") in sidecars:
        return bool(cs.get("started"))
    term = (cs.get("state") or {}).get("terminated")
    return term is not None and term.get("exitCode") == 0


def _init_failed(cs: Obj) -> bool:
    state = cs.get("state") or {}
    term = state.get("terminated") or (
        (cs.get("lastState") or {}).get("terminated") if "waiting" in state else None
    )
    return term is not None and term.get("exitCode") != 0


def phase(
    statuses: Sequence[Obj],
    restart_policy: str,
    init_statuses: Sequence[Obj] = (),
    sidecars: Collection[str] = (),
) -> str:
    pending_init = [cs for cs in init_statuses if not _init_done(cs, sidecars)]
    if pending_init:
        # getPhase: an init container that failed for good fails the pod;
        # otherwise the pod is Pending until every init container is done.
        if restart_policy == "Never" and any(_init_failed(cs) for cs in pending_init):
            return "Failed"
        return "Pending"
    waiting = running = stopped = succeeded = 0
    for cs in statuses:
        state = cs.get("state") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"].get("exitCode") == 0:
                succeeded += 1
        elif "terminated" in (cs.get("lastState") or {}):
            stopped += 1  # restarting: counts as having run
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if statuses and stopped == len(statuses):
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Running" if restart_policy == "OnFailure" else "Failed"
    return "Pending"


def _condition(ctype: str, ok: bool, reason: str = "", message: str = "") -> Obj:
    c: Obj = {"type": ctype, "status": "True" if ok else "False", "lastProbeTime": None}
    if not ok and reason:
        c["reason"] = reason
    if not ok and message:
        c["message"] = message
    return c


def conditions(
    statuses: Sequence[Obj],
    pod_phase: str,
    previous: Sequence[Obj],
    now: str,
    sandbox_problem: str = "",
    init_statuses: Sequence[Obj] = (),
    sidecars: Collection[str] = (),
) -> list[Obj]:
    unready = [str(cs["name"]) for cs in statuses if not cs.get("ready")]
    incomplete = [str(cs["name"]) for cs in init_statuses if not _init_done(cs, sidecars)]
    terminal = pod_phase in ("Succeeded", "Failed")
    if terminal:
        reason, message = "PodCompleted", ""
    else:
        reason, message = (
            "ContainersNotReady",
            f"containers with unready status: [{' '.join(unready)}]",
        )
    all_ready = not unready and not terminal
    sandbox_ok = pod_phase != "Pending" or any(
        "waiting" not in (cs.get("state") or {}) for cs in [*init_statuses, *statuses]
    )
    out = [
        _condition("PodReadyToStartContainers", sandbox_ok or terminal),
        _condition(
            "Initialized",
            not incomplete,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(incomplete)}]",
        ),
        _condition("Ready", all_ready, reason, message),
        _condition("ContainersReady", all_ready, reason, message),
        _condition("PodScheduled", True),
    ]
    if sandbox_problem:
        out.append(_condition(SANDBOX_CONDITION, False, "HostView", sandbox_problem))
    before = {c.get("type"): c for c in previous}
    for c in out:
        old = before.get(c["type"])
        if old is not None and old.get("status") == c["status"] and old.get("lastTransitionTime"):
            c["lastTransitionTime"] = old["lastTransitionTime"]
        else:
            c["lastTransitionTime"] = now
    return out


def qos_class(pod: Obj) -> str:
    containers = (pod.get("spec") or {}).get("containers") or []
    res = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in res):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get(k) is not None
        and (r.get("requests") or {}).get(k, (r.get("limits") or {}).get(k))
        == (r.get("limits") or {}).get(k)
        for r in res
        for k in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


def pod_limits(pod: Obj) -> tuple[int | None, int | None]:
    """(memory bytes, cpu millicores) of the pod's cgroup: as the kubelet sizes the pod
    cgroup, the sum of its containers' limits when every container has one."""

    def total(key: str, convert: Callable[[object], int]) -> int | None:
        limits = [((c.get("resources") or {}).get("limits") or {}).get(key) for c in containers]
        if not limits or any(v is None for v in limits):
            return None
        try:
            return sum(convert(v) for v in limits)
        except quantity.QuantityError:
            return None

    containers = (pod.get("spec") or {}).get("containers") or []
    return total("memory", quantity.bytes_of), total("cpu", quantity.millicores_of)
