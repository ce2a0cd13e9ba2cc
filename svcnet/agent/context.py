"""What a pod worker may use of its node.

The agent (``agent.py``) owns what pods share and hands each ``PodWorker``
this narrow view instead of itself, so a worker cannot reach another pod's
worker or the node API, and the two modules do not import each other
(docs/architecture.md, "Floors"). Writes go through the registry like any
kubelet's: the pod's own binding, status, events and final delete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from svcnet._aio import TaskSet
from svcnet.agent.envvars import ServiceLinks
from svcnet.agent.identity import Identity
from svcnet.agent.ipam import IpPool
from svcnet.agent.prepare import Preparer
from svcnet.agent.probes import Prober
from svcnet.agent.process import Launcher
from svcnet.agent.sandbox import Libc
from svcnet.config import Settings
from svcnet.images import ImageRegistry
from svcnet.kernel import tcptable
from svcnet.kernel.cgroups import CgroupTree
from svcnet.registry import Registry
from svcnet.store import ReadOnlyStore

ACCEPT_POLL = 0.002
"""How often a deleted pod's accept queues are looked at (pod.py _wait_accepted)."""


class PodMaps(Protocol):
    """What the socket hooks offer the agent: a pod's addresses, by its v2 cgroup id."""

    def set_pod(
        self, cgroup: int, pod_ip: str, loopback_ip: str, *, privileged_ports: bool = True
    ) -> None: ...

    def remove_pod(self, cgroup: int) -> None: ...


@dataclass(frozen=True)
class NodeContext:
    settings: Settings
    registry: Registry
    """For this pod's own binding, status, events and deletion."""
    tasks: TaskSet
    """The agent's task set: a worker's tasks end when the agent stops."""
    ips: IpPool
    images: ImageRegistry
    libc: Libc
    """Pre-resolved libc calls for the child-side sandbox set-up (after fork)."""
    pod_dir: Callable[[str, str, str], Path]
    """(namespace, name, uid) -> the pod's state directory."""
    backoff: tuple[float, float]
    """(initial, cap) of the restart back-off."""
    stop_grace: float
    """Grace period for the pod's containers when the daemon stops."""
    identity: Identity
    """Who containers run as unless their securityContext says otherwise (identity.py)."""
    root: bool
    """Whether the agent can switch users at all."""
    cgroups: CgroupTree | None
    """The tree pods' cgroups go in (kernel/cgroups.py); None without root."""
    preparer: Preparer
    """Where pods' directories and cgroups are made off the loop (prepare.py), and
    its thread, for the other blocking calls of a pod's start."""
    pod_maps: PodMaps | None = None
    """The socket hooks' pod identities (kernel/sockhooks.py); None where they are off."""
    path: str = ""
    """PATH for containers: the node's, without svcnet's own virtualenv (envvars.host_path)."""
    network_problem: str = ""
    """Why pods share the host's network identity, when they do (for each pod's events)."""
    mount_problem: str = ""
    """Why containers cannot have a mount namespace of their own, when they cannot
    (no volume can then be mounted: volumes.py)."""
    accept_queues: tcptable.SharedTable = field(
        default_factory=lambda: tcptable.SharedTable(ACCEPT_POLL)
    )
    """Listeners' accept queues, one read shared by every pod being deleted."""
    links: ServiceLinks = field(default_factory=ServiceLinks)
    """Each namespace's Service link variables, shared by its containers (envvars.py)."""
    prober: Prober = field(default_factory=Prober)
    """The node's probe slots, loop-lag heartbeat and probe counters (probes.py)."""
    launcher: Launcher | None = None
    """Starts containers off the loop (the fork server for built-in images); None:
    Popen in the loop."""

    @property
    def store(self) -> ReadOnlyStore:
        """ConfigMaps, Secrets, Services and Endpoints the pod's containers depend on."""
        return self.registry.store
