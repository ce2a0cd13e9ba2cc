"""Pod cgroups on this hybrid machine (v2 beside v1 memory/cpu) and, from sample
mountinfo, on a pure-v2 one: discovery, joining before exec, kill, limits, OOM,
usage and the leftovers of a crashed daemon."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from svcnet.kernel import cgroups

ROOT = Path(__file__).resolve().parents[2]

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_CGROUP = "9:name=systemd:/\n6:freezer:/\n4:memory:/sess/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n"

PURE_V2 = """\
25 1 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
"""
PURE_V2_CGROUP = "0::/user.slice/user-1000.slice/session-2.scope\n"


BUSY = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 0.6: pass\n"


def require_root() -> None:
    assert os.geteuid() == 0, "cgroup tests create cgroups: run them as root (CI does)"


def test_hybrid_layout_from_mountinfo(tmp_path: Path) -> None:
    (tmp_path / "sys/fs/cgroup/unified").mkdir(parents=True)
    (tmp_path / "sys/fs/cgroup/unified/cgroup.controllers").write_text("hugetlb\n")
    layout = cgroups.discover(HYBRID, HYBRID_CGROUP, euid=0, root=tmp_path)
    base = tmp_path / "sys/fs/cgroup"
    assert layout.v2 == base / "unified"
    assert layout.bases[cgroups.MEMORY] == base / "memory/sess/abc"  # under our own cgroup
    assert layout.bases[cgroups.CPU] == base / "cpu"
    assert layout.where(cgroups.MEMORY) == "v1" and layout.where(cgroups.CPU) == "v1"
    assert "name=systemd" not in str(layout.bases) and layout.missing == []


def test_pure_v2_layout_and_limits_files(tmp_path: Path) -> None:
    own = tmp_path / "sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    layout = cgroups.discover(PURE_V2, PURE_V2_CGROUP, euid=0, root=tmp_path)
    assert layout.v2 == own and layout.where(cgroups.MEMORY) == "v2"
    assert set(layout.bases) == {cgroups.V2}
    pod_dir = own / "svcnet-1-1" / "podu"
    pod_dir.mkdir(parents=True)
    pod = cgroups.PodCgroup(layout, {cgroups.V2: pod_dir})
    for f in ("memory.max", "cpu.max"):
        (pod_dir / f).write_text("max\n")
    pod.set_limits(64 << 20, 250)
    assert (pod_dir / "memory.max").read_text() == str(64 << 20)
    assert (pod_dir / "cpu.max").read_text() == "25000 100000"
    (pod_dir / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert pod.oom_kills() == 1
    (pod_dir / "memory.current").write_text("1000\n")
    (pod_dir / "memory.stat").write_text("anon 600\ninactive_file 300\n")
    (pod_dir / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\n")
    assert pod.usage() == (1_500_000, 700)


def test_without_root_nothing_is_managed_and_that_is_said() -> None:
    layout = cgroups.discover(HYBRID, HYBRID_CGROUP, euid=1000)
    assert layout.bases == {} and "not running as root" in layout.missing[0]


def test_real_discovery_matches_mountinfo() -> None:
    require_root()
    layout = cgroups.discover()
    mi = Path("/proc/self/mountinfo").read_text()
    v2_mounts = [line.split()[4] for line in mi.splitlines() if " - cgroup2 " in line]
    assert v2_mounts, "this test expects a cgroup v2 hierarchy"
    assert layout.v2 is not None and str(layout.v2).startswith(v2_mounts[0])


@pytest.fixture
def tree() -> Iterator[cgroups.CgroupTree]:
    require_root()
    t = cgroups.CgroupTree(cgroups.discover())
    t.create()
    try:
        yield t
    finally:
        t.remove()
        assert not any(d.exists() for d in t.dirs.values())


def joined(pod: cgroups.PodCgroup) -> Callable[[], None]:
    paths = pod.procs_paths

    def enter() -> None:
        for p in paths:
            fd = os.open(p, os.O_WRONLY)
            os.write(fd, b"0")
            os.close(fd)

    return enter


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_kill_takes_every_process_however_it_detached(tree: cgroups.CgroupTree) -> None:
    pod = tree.pod("kill")
    assert pod.id == os.stat(tree.dirs[cgroups.V2] / "podkill").st_ino
    proc = subprocess.Popen(
        ["sh", "-c", "sleep 1000 & setsid sleep 1000 & sh -c 'sleep 1000 &' ; exec sleep 1000"],
        preexec_fn=joined(pod),
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while len(pod.pids()) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    pids = pod.pids()
    assert len(pids) == 4 and proc.pid in pids
    assert pod.kill() == 4
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(alive(p) for p in pids)
    pod.remove()
    assert not any((d / "podkill").exists() for d in tree.dirs.values())


def test_memory_limit_kills_with_sigkill_and_counts_the_oom(tree: cgroups.CgroupTree) -> None:
    pod = tree.pod("oom")
    pod.set_limits(64 << 20, None)
    code = "b = bytearray(256 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
    r = subprocess.run([sys.executable, "-c", code], preexec_fn=joined(pod), timeout=60)
    assert r.returncode == -signal.SIGKILL
    assert pod.oom_kills() == 1
    pod.remove()


def test_cpu_limit_throttles_and_usage_grows(tree: cgroups.CgroupTree) -> None:
    pod = tree.pod("cpu")
    pod.set_limits(None, 100)
    before, _ = pod.usage()
    t0 = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import time\nt=time.monotonic()\nwhile time.monotonic()-t<0.6: pass",
        ],
        preexec_fn=joined(pod),
        timeout=60,
    )
    wall = time.monotonic() - t0
    after, _ = pod.usage()
    assert before is not None and after is not None and after > before
    # 100m: at most a tenth of a core, so 0.6 s of busy wall time used far less CPU.
    assert (after - before) / 1e9 < wall * 0.5
    cpu_dir = pod.dirs.get(cgroups.CPU) or pod.dirs[cgroups.V2]
    stat = dict(line.split() for line in (cpu_dir / "cpu.stat").read_text().splitlines())
    assert int(stat.get("nr_throttled", "0")) > 0
    pod.remove()


def test_the_tree_of_a_killed_daemon_is_a_leftover_a_live_ones_is_not(
    tree: cgroups.CgroupTree,
) -> None:
    code = (
        "import os, sys, time\n"
        "from svcnet.kernel import cgroups\n"
        "t = cgroups.CgroupTree(cgroups.discover()); t.create(); p = t.pod('x')\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    p.add(os.getpid()); os.setsid(); time.sleep(1000)\n"
        "while not p.pids(): time.sleep(0.01)\n"
        "print(t.name, pid, flush=True); time.sleep(1000)\n"
    )
    daemon = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert daemon.stdout is not None
    name, child = daemon.stdout.readline().split()
    mine = {left.pid for left in cgroups.find_leftovers(tree.layout)}
    assert daemon.pid not in mine and os.getpid() not in mine
    daemon.send_signal(signal.SIGKILL)
    daemon.wait()
    assert alive(int(child))  # the detached child outlived its daemon
    found = [left for left in cgroups.find_leftovers(tree.layout) if left.pid == daemon.pid]
    assert len(found) == 1 and any(d.name == name for d in found[0].dirs)
    reaped = cgroups.reap(found[0])
    assert reaped.processes == 1
    deadline = time.monotonic() + 10
    while alive(int(child)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive(int(child))
    assert not any(d.exists() for d in found[0].dirs)
    assert all(d.exists() for d in tree.dirs.values())  # ours, alive, untouched
