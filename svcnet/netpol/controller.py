"""The NetworkPolicy agent: Calico's Felix (or Cilium's agent) in the daemon.

It follows NetworkPolicies, Pods and Namespaces in the store and keeps the
socket hooks' policy maps (kernel/sockhooks.py: ``isolated``, ``allow``)
equal to what rules.py computes: in the store callback, as the proxier keeps
the Service maps, so the maps are current before the event that changed them
returns. Pod events that change nothing policies look at (status updates,
readiness) are passed over. Only the changed pods' entries are rewritten.

What it cannot do it says, once per policy, as a Warning Event on it:

- where the hooks are not active (not root, no cgroup v2 or BPF), no policy
  is enforced (``NotEnforced``), and ``svcnet up`` says so at start;
- egress rules are stored, not enforced (``EgressNotEnforced``).

Events are the only writes, deferred to a loop callback because the store's
subscribers must not write from inside its notifications.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable
from typing import Protocol

from svcnet._log import Throttle
from svcnet.k8s.objects import Obj
from svcnet.netpol.rules import Allow, PodInfo, ingress_allows, pod_info
from svcnet.store import Event, ReadOnlyStore

logger = logging.getLogger(__name__)

Recorder = Callable[[Obj, str, str, str], None]
"""(object, type, reason, message): record an Event."""

NOT_ENFORCED = "NotEnforced"
EGRESS_NOT_ENFORCED = "EgressNotEnforced"
_KINDS = frozenset({"NetworkPolicy", "Pod", "Namespace"})


class PolicyMaps(Protocol):
    """What the socket hooks offer (kernel/sockhooks.SocketHooks)."""

    def set_ingress_policy(self, pod_ip: str, allows: Iterable[Allow] | None) -> None: ...

    def exempt_process(self, pid: int) -> None: ...


def _pod_key(pod: Obj | None) -> PodInfo | None:
    return pod_info(pod) if pod is not None else None


class NetworkPolicyController:
    """See the module docstring."""

    def __init__(
        self, store: ReadOnlyStore, maps: PolicyMaps | None, problem: str, record: Recorder
    ) -> None:
        self._store = store
        self._maps = maps
        """None where the socket hooks are not active: policies are stored only."""
        self._problem = problem
        """Why the hooks are not active, when they are not."""
        self._record = record
        self.notes: list[str] = []
        """What start-up has to say (policies not enforced, and why)."""
        if maps is None:
            self.notes.append(
                "NetworkPolicies are stored but not enforced: "
                + (problem or "the eBPF socket hooks are not active")
            )
        self._installed: dict[str, frozenset[Allow]] = {}
        """Pod IP -> what the maps let in, for every isolated pod."""
        self._warned: set[tuple[str, str]] = set()
        """(policy uid, reason) already told in an Event."""
        self._pending: list[Obj] = []
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._throttle = Throttle(logger)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._maps is not None:
            # The kubelet's probes come from the node, which policies do not hold
            # back on Calico or Cilium: svcnet probes from its own process.
            self._maps.exempt_process(os.getpid())
        self._unsubscribe = self._store.subscribe(self._on_event)
        self.sync()
        for policy in self._store.list("NetworkPolicy"):
            self._schedule(policy)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._maps is not None:
            for ip in list(self._installed):
                self._set(ip, None)

    @property
    def isolated(self) -> dict[str, frozenset[Allow]]:
        """What the maps hold now, by pod IP."""
        return dict(self._installed)

    # --- store events -------------------------------------------------------------

    def _on_event(self, ev: Event) -> None:
        if ev.kind not in _KINDS:
            return
        if ev.kind != "NetworkPolicy" and not self._enforcing():
            # No pod is isolated and none was: a pod or namespace write changes
            # nothing (a thousand starting pods write four times each).
            return
        if ev.kind == "Pod" and ev.type == "MODIFIED" and _pod_key(ev.old) == _pod_key(ev.obj):
            return
        if ev.kind == "Namespace" and ev.type == "MODIFIED":
            old = ((ev.old or {}).get("metadata") or {}).get("labels")
            if old == ev.obj["metadata"].get("labels"):
                return
        self.sync()
        if ev.kind == "NetworkPolicy" and ev.type != "DELETED":
            self._schedule(ev.obj)

    def _enforcing(self) -> bool:
        """Whether there is anything to enforce or to undo: hooks, and a policy
        stored or a pod isolated."""
        if self._maps is None:
            return False
        return bool(self._installed) or bool(self._store.list("NetworkPolicy"))

    def sync(self) -> None:
        """Recompute every pod's allows and write what changed."""
        if not self._enforcing():
            # The common case costs nothing per pod event (with a thousand pods
            # this scan was most of a ramp's work).
            return
        policies = self._store.list("NetworkPolicy")
        pods = [p for p in map(pod_info, self._store.list("Pod")) if p is not None]
        want = ingress_allows(policies, pods, self._store.list("Namespace"))
        for ip in [ip for ip in self._installed if ip not in want]:
            self._set(ip, None)
        for ip, allows in want.items():
            if self._installed.get(ip) != allows:
                self._set(ip, allows)

    def _set(self, ip: str, allows: frozenset[Allow] | None) -> None:
        assert self._maps is not None
        try:
            self._maps.set_ingress_policy(ip, sorted(allows) if allows is not None else None)
        except OSError as e:
            # A full map, most likely: that pod keeps what it had.
            self._throttle.log(
                logging.ERROR, "maps", "%s: cannot update the policy maps: %s", ip, e
            )
            return
        if allows is None:
            self._installed.pop(ip, None)
        else:
            self._installed[ip] = allows

    # --- events -------------------------------------------------------------------

    def _schedule(self, policy: Obj) -> None:
        self._pending.append(policy)
        if not self._scheduled and self._loop is not None:
            self._scheduled = True
            self._loop.call_soon(self._write)

    def _write(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        for policy in pending:
            spec = policy.get("spec") or {}
            if self._maps is None:
                self._warn(
                    policy,
                    NOT_ENFORCED,
                    "svcnet stores this NetworkPolicy but does not enforce it: "
                    + (self._problem or "the eBPF socket hooks are not active"),
                )
            elif "Egress" in (spec.get("policyTypes") or ()):
                self._warn(
                    policy,
                    EGRESS_NOT_ENFORCED,
                    "svcnet enforces ingress rules only: the egress rules of this policy are "
                    "stored but not enforced",
                )

    def _warn(self, policy: Obj, reason: str, message: str) -> None:
        key = (str(policy["metadata"].get("uid") or ""), reason)
        if key in self._warned:
            return
        md = policy["metadata"]
        current = self._store.get("NetworkPolicy", str(md.get("namespace") or ""), md["name"])
        if current is None or current["metadata"].get("uid") != md.get("uid"):
            return
        self._warned.add(key)
        try:
            self._record(current, "Warning", reason, message)
        except Exception:
            logger.exception("recording the %s event failed", reason)
