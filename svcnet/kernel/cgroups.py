"""cgroups for pods: one per pod, under one tree per svcnet, on v2 and v1 alike.

A pod's cgroup is what makes "nothing a pod started outlives it" true: every
process of the pod (its containers, exec sessions, whatever they fork,
setsid or double-fork) is in it, and killing the cgroup kills them all. It
is also where memory and cpu limits apply, where usage is read for the
metrics API, and (on the v2 hierarchy) where the eBPF socket hooks attach.

Machines differ, and this module supports both layouts as runc and the
kubelet do: pure cgroup v2 (most developer machines), and hybrid, where a v2
hierarchy (for the hooks, cgroup.kill and cgroup.freeze) sits beside v1
hierarchies that hold the memory and cpu controllers. Hierarchies are found
in /proc/self/mountinfo, never assumed, and svcnet's tree is made *under the
daemon's own cgroup* in each (from /proc/self/cgroup), so limits that apply
to the daemon's session keep applying to its pods.

On v2, enabling memory and cpu for the tree needs them enabled in the
daemon's own cgroup's subtree_control, which the kernel refuses while that
cgroup has processes of its own (the no-internal-process rule) unless it is
the root; svcnet then keeps the tree without v2 controllers and says so
(limits and usage are missing, kill and hooks still work), rather than moving
itself around under a service manager.

The tree is named ``svcnet-<daemon pid>-<its start time>-<random>``: a tree whose
daemon is gone (the pid is not running, or runs since another time) is a
leftover of a crash, found and removed by ``reap_leftovers`` at the next
start; a live daemon's tree is never touched, so instances side by side are
safe.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

V2 = "unified"
"""Key of the v2 hierarchy in ``Layout.bases``."""
MEMORY, CPU, CPUACCT, FREEZER, PIDS = "memory", "cpu", "cpuacct", "freezer", "pids"
CPU_PERIOD_US = 100_000
_TREE = re.compile(r"^svcnet-(\d+)-(\d+)-[0-9a-f]+$")


class CgroupError(Exception):
    pass


@dataclass(frozen=True)
class Hierarchy:
    mount: Path
    version: int
    controllers: frozenset[str]


def hierarchies(mountinfo: str) -> list[Hierarchy]:
    """cgroup hierarchies from /proc/self/mountinfo (fstype cgroup2, or cgroup with its
    controllers in the super options; named hierarchies like name=systemd are skipped)."""
    out = []
    seen: set[tuple[int, frozenset[str]]] = set()
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        rfields = right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        fstype, opts = rfields[0], rfields[2]
        if fields[3] != "/":
            continue  # a bind mount of a sub-tree (a container's view): not the hierarchy
        mount = Path(fields[4].replace("\\040", " "))
        if fstype == "cgroup2":
            key: tuple[int, frozenset[str]] = (2, frozenset())
            if key not in seen:
                seen.add(key)
                out.append(Hierarchy(mount, 2, frozenset()))
        elif fstype == "cgroup":
            ctrls = frozenset(
                o for o in opts.split(",") if o in (MEMORY, CPU, CPUACCT, FREEZER, PIDS)
            )
            if ctrls and (1, ctrls) not in seen:
                seen.add((1, ctrls))
                out.append(Hierarchy(mount, 1, ctrls))
    return out


def own_cgroups(proc_cgroup: str) -> dict[str, str]:
    """/proc/self/cgroup as {"unified" or a v1 controller: path inside its hierarchy}."""
    out: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, ctrls, path = parts
        if ctrls == "":
            out[V2] = path
        for c in ctrls.split(","):
            if c:
                out[c] = path
    return out


@dataclass
class Layout:
    """Where svcnet's tree goes in each hierarchy, and what each controller offers."""

    bases: dict[str, Path] = field(default_factory=dict)
    """"unified" -> the daemon's own v2 cgroup dir; memory/cpu/cpuacct/freezer -> its v1
    cgroup dir in the hierarchy holding that controller (absent: not available)."""
    v2_mount: Path | None = None
    """The root of the v2 hierarchy (where hooks for the whole machine attach)."""
    v2_controllers: frozenset[str] = frozenset()
    """Controllers the v2 hierarchy offers at the daemon's cgroup (cgroup.controllers)."""
    missing: list[str] = field(default_factory=list)
    """Plain sentences: what is not available and why."""

    @property
    def v2(self) -> Path | None:
        return self.bases.get(V2)

    def where(self, controller: str) -> str | None:
        """ "v2", "v1" or None: where `controller` is available."""
        if controller in self.v2_controllers:
            return "v2"
        return "v1" if controller in self.bases else None


def discover(
    mountinfo: str | None = None,
    proc_cgroup: str | None = None,
    euid: int | None = None,
    root: Path = Path("/"),
) -> Layout:
    """What this machine offers svcnet (arguments default to this process' view)."""
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    if proc_cgroup is None:
        proc_cgroup = Path("/proc/self/cgroup").read_text()
    euid = os.geteuid() if euid is None else euid
    layout = Layout()
    if euid != 0:
        layout.missing.append(
            "cgroups: svcnet is not running as root, so pods get no cgroup of their own "
            "(no memory or cpu limits, and a process a pod detached can outlive it)"
        )
        return layout
    own = own_cgroups(proc_cgroup)

    def under(mount: Path, rel: str) -> Path:
        return root / mount.relative_to("/") / rel.lstrip("/")

    for h in hierarchies(mountinfo):
        if h.version == 2:
            layout.v2_mount = root / h.mount.relative_to("/")
            if V2 in own:
                base = under(h.mount, own[V2])
                layout.bases[V2] = base
                with contextlib.suppress(OSError):
                    layout.v2_controllers = frozenset(
                        (base / "cgroup.controllers").read_text().split()
                    )
        else:
            for c in h.controllers:
                if c in own and c not in layout.bases:
                    layout.bases[c] = under(h.mount, own[c])
    if layout.v2 is None:
        layout.missing.append(
            "cgroups: no cgroup v2 hierarchy is mounted, so the socket hooks cannot attach"
        )
    for c in (MEMORY, CPU):
        if layout.where(c) is None:
            layout.missing.append(f"cgroups: the {c} controller is not available")
    return layout


def _start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: when the process started, in clock ticks."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(data.rpartition(")")[2].split()[19])


def _write(path: Path, data: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


def _pids(d: Path) -> list[int]:
    try:
        return [int(x) for x in (d / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _descendants_first(d: Path) -> Iterator[Path]:
    """Every cgroup under d, deepest first, then d itself (rmdir order)."""
    # scandir's d_type, not a stat per entry: a v1 cgroup holds dozens of files,
    # and this runs at every container start (oom_kills) and pod removal.
    subdirs: list[str] = []
    with contextlib.suppress(OSError), os.scandir(d) as entries:
        subdirs = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
    for name in subdirs:
        yield from _descendants_first(d / name)
    yield d


class PodCgroup:
    """One pod's cgroup in every hierarchy svcnet uses."""

    def __init__(self, layout: Layout, dirs: dict[str, Path]) -> None:
        self.layout = layout
        self.dirs = dirs
        self.procs_paths = tuple(os.fsencode(d / "cgroup.procs") for d in set(dirs.values()))
        """cgroup.procs of each hierarchy: a child joins by writing b"0" to each after
        fork and before exec (plain os calls, no locks)."""
        v2 = dirs.get(V2)
        self.id = os.stat(v2).st_ino if v2 is not None else 0
        """The v2 cgroup id (the directory's inode): what bpf_get_current_cgroup_id sees."""

    def _dir(self, controller: str) -> Path | None:
        if controller in self.layout.v2_controllers:
            return self.dirs.get(V2)
        return self.dirs.get(controller)

    def add(self, pid: int) -> None:
        for p in self.procs_paths:
            _write(Path(os.fsdecode(p)), str(pid))

    def set_limits(self, memory_bytes: int | None, cpu_millis: int | None) -> None:
        """memory.max / cpu.max on v2, memory.limit_in_bytes / cpu.cfs_quota_us on v1."""
        mem = self._dir(MEMORY)
        if mem is not None and memory_bytes is not None:
            if self.layout.where(MEMORY) == "v2":
                _write(mem / "memory.max", str(memory_bytes))
            else:
                _write(mem / "memory.limit_in_bytes", str(memory_bytes))
        cpu = self._dir(CPU)
        if cpu is not None and cpu_millis is not None:
            quota = max(1000, cpu_millis * CPU_PERIOD_US // 1000)
            if self.layout.where(CPU) == "v2":
                _write(cpu / "cpu.max", f"{quota} {CPU_PERIOD_US}")
            else:
                _write(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US))
                _write(cpu / "cpu.cfs_quota_us", str(quota))

    def usage(self) -> tuple[int | None, int | None]:
        """(CPU nanoseconds used, memory working set bytes) as the kubelet computes them."""
        cpu_ns: int | None = None
        with contextlib.suppress(OSError, ValueError):
            if CPU in self.layout.v2_controllers and (v2 := self.dirs.get(V2)) is not None:
                for line in (v2 / "cpu.stat").read_text().splitlines():
                    if line.startswith("usage_usec "):
                        cpu_ns = int(line.split()[1]) * 1000
            elif (acct := self.dirs.get(CPUACCT)) is not None:
                cpu_ns = int((acct / "cpuacct.usage").read_text())
        mem_bytes: int | None = None
        with contextlib.suppress(OSError, ValueError):
            mem = self._dir(MEMORY)
            if mem is not None:
                on_v2 = self.layout.where(MEMORY) == "v2"
                current = "memory.current" if on_v2 else "memory.usage_in_bytes"
                usage = int((mem / current).read_text())
                stat = dict(
                    (k, int(v))
                    for k, v in (
                        line.split() for line in (mem / "memory.stat").read_text().splitlines()
                    )
                )
                inactive = stat.get("inactive_file" if on_v2 else "total_inactive_file", 0)
                mem_bytes = max(0, usage - inactive)
        return cpu_ns, mem_bytes

    def oom_kills(self) -> int:
        """How many processes the OOM killer killed here (memory.events / oom_control)."""
        mem = self._dir(MEMORY)
        if mem is None:
            return 0
        if self.layout.where(MEMORY) == "v2":
            return _oom_kill(mem / "memory.events")  # counts the descendants too
        # v1 counts a kill in the victim's own cgroup: a container's, under the pod's.
        return sum(_oom_kill(d / "memory.oom_control") for d in _descendants_first(mem))

    def pids(self) -> list[int]:
        """Every process in this cgroup and below (a pod's containers are its children)."""
        d = self.dirs.get(V2) or next(iter(self.dirs.values()), None)
        return [p for sub in _descendants_first(d) for p in _pids(sub)] if d is not None else []

    def child(self, name: str) -> PodCgroup:
        """A cgroup under this one (a container's, under its pod's, as the kubelet
        makes them): usage per container, limits and kill from the pod's."""
        dirs = {k: d / name for k, d in self.dirs.items()}
        for d in set(dirs.values()):
            d.mkdir(exist_ok=True)
        return PodCgroup(self.layout, dirs)

    def kill(self) -> int:
        """SIGKILL every process in the pod, however it detached; returns how many were
        seen. v2's cgroup.kill does it atomically; v1 freezes, kills, thaws, until empty."""
        return kill_cgroup(self.dirs)

    def remove(self) -> None:
        """Kill what is left and remove the cgroup from every hierarchy."""
        self.kill()
        for d in set(self.dirs.values()):
            _rmdir(d)


def _oom_kill(path: Path) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in path.read_text().splitlines():
            k, _, v = line.partition(" ")
            if k == "oom_kill":
                return int(v)
    return 0


def kill_cgroup(dirs: dict[str, Path]) -> int:
    v2 = dirs.get(V2)
    seen = 0
    if v2 is not None and (v2 / "cgroup.kill").exists():
        seen = len(_pids(v2))
        with contextlib.suppress(OSError):
            _write(v2 / "cgroup.kill", "1")
        return seen
    freezer = dirs.get(FREEZER)
    procs_dir = next(iter(dirs.values()), None)
    if procs_dir is None:
        return 0
    for _ in range(50):
        pids = [p for sub in _descendants_first(procs_dir) for p in _pids(sub)]
        if not pids:
            break
        if freezer is not None:
            with contextlib.suppress(OSError):
                _write(freezer / "freezer.state", "FROZEN")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        seen += len(pids)
        if freezer is not None:
            with contextlib.suppress(OSError):
                _write(freezer / "freezer.state", "THAWED")
    return seen


def _rmdir(d: Path) -> None:
    """Remove a cgroup directory and its children; a cgroup empties a moment after its
    processes were killed, so EBUSY is retried briefly."""
    for sub in _descendants_first(d):
        for _ in range(200):
            try:
                sub.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != errno.EBUSY:
                    break
                time.sleep(0.005)


class CgroupTree:
    """One svcnet's cgroups: ``svcnet-<pid>-<start time>`` in each hierarchy."""

    def __init__(self, layout: Layout, pid: int | None = None) -> None:
        self.layout = layout
        pid = os.getpid() if pid is None else pid
        # The random tail tells apart two trees of one process (tests run several agents).
        self.name = f"svcnet-{pid}-{_start_time(pid) or 0}-{secrets.token_hex(3)}"
        self.dirs = {k: base / self.name for k, base in layout.bases.items()}
        self.warnings: list[str] = []

    def create(self) -> None:
        for d in set(self.dirs.values()):
            d.mkdir(exist_ok=True)
        v2 = self.dirs.get(V2)
        wanted = self.layout.v2_controllers & {MEMORY, CPU, PIDS}
        if v2 is not None and wanted:
            parent = v2.parent
            try:
                enabled = set((parent / "cgroup.subtree_control").read_text().split())
                for c in sorted(wanted - enabled):
                    _write(parent / "cgroup.subtree_control", f"+{c}")
                _write(v2 / "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(wanted)))
            except OSError as e:
                self.layout.v2_controllers = frozenset()
                self.warnings.append(
                    f"cgroups: cannot enable {', '.join(sorted(wanted))} for svcnet's cgroups "
                    f"in {parent} ({e.strerror}: the daemon's own cgroup holds processes); "
                    "pods get no memory or cpu limits"
                )

    def pod(self, uid: str) -> PodCgroup:
        name = f"pod{uid}"
        dirs = {k: d / name for k, d in self.dirs.items()}
        for d in set(dirs.values()):
            d.mkdir(exist_ok=True)
        v2 = dirs.get(V2)
        enabled = self.layout.v2_controllers & {MEMORY, CPU, PIDS}
        if v2 is not None and enabled:
            # The containers' cgroups below count their own usage too.
            with contextlib.suppress(OSError):
                _write(v2 / "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(enabled)))
        return PodCgroup(self.layout, dirs)

    def remove(self) -> None:
        kill_cgroup(self.dirs)
        for d in set(self.dirs.values()):
            _rmdir(d)


@dataclass
class Leftover:
    pid: int
    dirs: list[Path]
    processes: int = 0


def find_leftovers(layout: Layout) -> list[Leftover]:
    """Trees of svcnet daemons that are gone (pid not running, or not since then)."""
    found: dict[tuple[int, int], Leftover] = {}
    for base in set(layout.bases.values()):
        with contextlib.suppress(OSError):
            for d in base.iterdir():
                m = _TREE.match(d.name)
                if not m or not d.is_dir():
                    continue
                pid, started = int(m[1]), int(m[2])
                if _start_time(pid) == started:
                    continue  # that daemon is alive: not ours to touch
                found.setdefault((pid, started), Leftover(pid, [])).dirs.append(d)
    return list(found.values())


def reap(left: Leftover) -> Leftover:
    """Kill everything in a leftover tree and remove it; returns it with the count."""
    # Count in one hierarchy (the v2 one when there is one): every process is in all.
    counted = [d for d in left.dirs if (d / "cgroup.kill").exists()] or left.dirs[:1]
    for d in counted:
        for sub in _descendants_first(d):
            left.processes += len(_pids(sub))
    for d in left.dirs:
        for sub in _descendants_first(d):
            kill_cgroup({V2: sub} if (sub / "cgroup.kill").exists() else {"": sub})
    for d in left.dirs:
        _rmdir(d)
    return left


def procs_files_of(pid: int) -> list[Path]:
    """The cgroup.procs files of the cgroups `pid` is in, one per hierarchy (v2 and
    v1 alike): writing a pid to each moves that process beside it."""
    mountinfo = Path("/proc/self/mountinfo").read_text()
    where = own_cgroups(Path(f"/proc/{pid}/cgroup").read_text())
    out = []
    for h in hierarchies(mountinfo):
        key = V2 if h.version == 2 else next((c for c in sorted(h.controllers) if c in where), "")
        path = where.get(key)
        if path is not None:
            out.append(h.mount / path.lstrip("/") / "cgroup.procs")
    return out
