"""Scale benchmark: N Services, each with a Deployment of R echo replicas that
carry a tcpSocket readiness probe every 2 s, in one namespace of one
`svcnet up` (on addresses of its own; DNS forwarding points at a loopback port
where nothing listens). Reported (issue 16):

- ready s: from the first create to every Deployment reporting R ready replicas;
- daemon CPU % and RSS MiB during the ramp, over IDLE seconds right after all
  is Ready, and over IDLE seconds once idle (settled: no object written for
  SETTLE_QUIET seconds; the probes keep running); pods' total PSS MiB (the
  pages they share counted once, the agent's fork server included);
- API: a GET of every pod as JSON (median of 5) and a watch event's delay
  (a label change on one pod until the watch delivers it);
- DNS: answer latency of a Service name during the ramp (median and p99), and
  how long a new Service takes to be answered (create -> first answer);
- ClusterIP: a request through one Service's ClusterIP during the ramp;
- probe failures: Events with reason Unhealthy, and the agent's own probe counters
  (failed; unknown: thrown away because the loop's stalls kept them from an answer);
- delete s: deleting the namespace until no pod process is left.

    python benchmarks/scale/run.py -n 100 -r 3          # one size
    python benchmarks/scale/run.py --sizes 100x3,200x5,1000x1 --json out.json

Bounded: every wait has a deadline (--timeout, default 600 s) and the daemon is
stopped whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dnslib

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.churn.run import client_of  # noqa: E402
from svcnet.agent.forkserver import BOOT  # noqa: E402
from svcnet.cli.client import Client  # noqa: E402
from svcnet.k8s import kinds  # noqa: E402
from svcnet.testing import descendants, free_port, isolated_up_args  # noqa: E402

PREFIX = 150  # 127.150-153.x: clear of svcnet's defaults and of the test suites' blocks
NS = "scale"
IDLE = 10.0
SETTLE_QUIET = 3.0
"""Seconds without a write to the store that count as settled (idle)."""
SETTLE_MAX = 30.0


@dataclass
class Result:
    services: int
    replicas: int
    ready_s: float | None = None
    ramp_cpu_pct: float = 0.0
    ramp_rss_mib: float = 0.0
    idle_cpu_pct: float = 0.0
    """Over IDLE seconds once settled: no object written for SETTLE_QUIET seconds."""
    idle_rss_mib: float = 0.0
    settle_s: float | None = None
    """Ready until settled; None when writes went on for SETTLE_MAX seconds."""
    after_ready_cpu_pct: float = 0.0
    """Over the IDLE seconds right after ready, before settling (the writes that
    follow the last readiness changes included)."""
    pods: int = 0
    pods_pss_mib: float = 0.0
    list_pods_ms: float = 0.0
    watch_event_ms: float = 0.0
    dns_ms_median: float = 0.0
    dns_ms_p99: float = 0.0
    dns_unanswered: int = 0
    dns_samples: int = 0
    """Queries during the ramp with no answer within 2 s (or no record)."""
    dns_new_service_ms: float = 0.0
    clusterip_ms_median: float = 0.0
    probe_failures: int = 0
    """Events with reason Unhealthy, counted with their repeats."""
    probes_failed: int = 0
    """The agent's count of failed probes (prober_probe_total{result="failed"})."""
    probes_unknown: int = 0
    """Probes the agent threw away: the loop's stalls kept them from an answer."""
    probes_run: int = 0
    loop_worst_stall_ms: float = 0.0
    delete_s: float | None = None
    notes: list[str] = field(default_factory=list)


def objects(i: int, replicas: int) -> list[dict[str, Any]]:
    name = f"svc{i:04d}"
    labels = {"app": name}
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 5,
                        "containers": [
                            {
                                "name": "echo",
                                "image": "gihyodocker/echo:latest",
                                "ports": [{"containerPort": 8080}],
                                "readinessProbe": {
                                    "tcpSocket": {"port": 8080},
                                    "periodSeconds": 2,
                                },
                            }
                        ],
                    },
                },
            },
        },
    ]


# --- the daemon and its processes ------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pss_mib(pids: set[int]) -> float:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def helpers(daemon: int) -> dict[str, int]:
    """The agent's helper processes, by their module (zygote, prepare): children
    of the daemon running forkserver.BOOT."""
    found = {}
    for p in descendants(daemon):
        try:
            argv = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
            parent = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]
        except OSError:
            continue
        if parent == str(daemon) and len(argv) > 6 and argv[4] == BOOT.encode():
            found[argv[6].decode()] = p
    return found


def pod_processes(daemon: int) -> tuple[set[int], set[int]]:
    """(every process below the daemon, the agent's helpers among them): they live
    as long as the daemon, so they never count as pods left over."""
    return descendants(daemon), set(helpers(daemon).values())


class Daemon:
    def __init__(self, prefix: int, timeout: float) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="svcnet-scale-")
        self.api_port, self.dns_port = free_port(), free_port()
        cmd = [
            sys.executable,
            "-m",
            "svcnet",
            *isolated_up_args(None, prefix, self.api_port, self.dns_port),
        ]
        env = dict(os.environ, HOME=self.tmp.name, PYTHONPATH=str(ROOT))
        # cwd: an empty directory, so `svcnet up` finds no config/ to apply.
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=self.tmp.name,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            line = self.proc.stdout.readline() if ready else ""
            if ready and not line:
                break
            if line.startswith("svcnet ready"):
                threading.Thread(target=self.proc.stdout.read, daemon=True).start()
                server = f"https://127.0.0.1:{self.api_port}"
                self.client: Client = client_of(server, self.api_port, self.tmp.name)
                self.preparer = helpers(self.proc.pid).get("prepare", -1)
                """The agent's helper that makes pods' files and cgroups: its CPU and
                memory count as the daemon's."""
                return
        self.stop()
        raise SystemExit("svcnet up did not become ready")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid) + (
            cpu_seconds(self.preparer) if self.preparer > 0 else 0.0
        )

    def rss_mib(self) -> float:
        return rss_mib(self.proc.pid) + (rss_mib(self.preparer) if self.preparer > 0 else 0.0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.tmp.cleanup()


# --- probes of the running cluster --------------------------------------------------


def dns_ms(port: int, name: str) -> float | None:
    q = dnslib.DNSRecord.question(name, "A").pack()
    t0 = time.perf_counter()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2.0)
        s.sendto(q, ("127.0.0.1", port))
        try:
            data = s.recv(4096)
        except TimeoutError:
            return None
    reply = dnslib.DNSRecord.parse(data)
    if reply.header.rcode != 0 or not reply.rr:
        return None
    return (time.perf_counter() - t0) * 1000


def http_ms(ip: str) -> float | None:
    t0 = time.perf_counter()
    try:
        with socket.create_connection((ip, 80), timeout=2.0) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if not s.recv(64).startswith(b"HTTP/1.1 200"):
                return None
    except OSError:
        return None
    return (time.perf_counter() - t0) * 1000


def settle(client: Client, ready_at: float) -> float | None:
    """Wait until no object has been written for SETTLE_QUIET seconds (the list's
    resourceVersion, the store's, stays put); seconds from ready_at, or None."""
    path = kinds.BY_KIND["Namespace"].collection_path(None)
    last = ""
    quiet_since = time.monotonic()
    while time.monotonic() - ready_at < SETTLE_MAX:
        rv = str(client.get(path)["metadata"].get("resourceVersion") or "")
        now = time.monotonic()
        if rv != last:
            last, quiet_since = rv, now
        elif now - quiet_since >= SETTLE_QUIET:
            return quiet_since - ready_at
        time.sleep(0.25)
    return None


def count_ready(client: Client) -> int:
    items = client.get(kinds.BY_KIND["Deployment"].collection_path(NS))["items"]
    return sum(int((d.get("status") or {}).get("readyReplicas") or 0) for d in items)


def watch_delay_ms(client: Client) -> float:
    """A label change on one pod until a watch that started before it delivers it."""
    path = kinds.BY_KIND["Pod"].collection_path(NS)
    listed = client.get(path, query={"limit": "1"})
    pod = listed["items"][0]["metadata"]["name"]
    seen = threading.Event()
    started = threading.Event()

    def watch() -> None:
        query = {
            "watch": "true",
            "resourceVersion": listed["metadata"]["resourceVersion"],
            "fieldSelector": f"metadata.name={pod}",
            "timeoutSeconds": "10",
        }
        with client.stream(path, query) as resp:
            started.set()
            while line := resp.readline():
                if b"bench-touch" in line if isinstance(line, bytes) else "bench-touch" in line:
                    seen.set()
                    return

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    started.wait(10)
    t0 = time.perf_counter()
    client.call(
        "PATCH",
        kinds.BY_KIND["Pod"].object_path(NS, pod),
        body={"metadata": {"labels": {"bench-touch": "1"}}},
        content_type="application/merge-patch+json",
    )
    seen.wait(10)
    t.join(10)
    return (time.perf_counter() - t0) * 1000


def run(services: int, replicas: int, prefix: int, timeout: float, idle: float = IDLE) -> Result:
    """One size from start to deletion. `idle`: seconds measured once all is Ready
    (the CI's bounded run takes fewer)."""
    r = Result(services, replicas)
    d = Daemon(prefix, 60)
    try:
        c = d.client
        c.call(
            "POST",
            kinds.BY_KIND["Namespace"].collection_path(None),
            body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        )
        cpu0, t0 = d.cpu_seconds(), time.monotonic()
        for i in range(services):
            for obj in objects(i, replicas):
                kind = kinds.BY_KIND[obj["kind"]]
                c.call("POST", kind.collection_path(NS), body=obj)
        first = c.get(kinds.BY_KIND["Service"].object_path(NS, "svc0000"))
        cluster_ip = first["spec"]["clusterIP"]
        dns: list[float] = []
        http: list[float] = []
        rss_peak = [0.0]
        ramping = threading.Event()
        ramping.set()

        def sample() -> None:
            # Apart from the API polling below, which slows down as the daemon does.
            asked = 0
            while ramping.is_set():
                asked += 1
                ms = dns_ms(d.dns_port, f"svc{asked % services:04d}.{NS}.svc.cluster.local.")
                if ms is None:
                    r.dns_unanswered += 1
                else:
                    dns.append(ms)
                hm = http_ms(cluster_ip)
                if hm is not None:
                    http.append(hm)
                rss_peak[0] = max(rss_peak[0], d.rss_mib())
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        want = services * replicas
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if count_ready(c) >= want:
                r.ready_s = time.monotonic() - t0
                break
            time.sleep(0.2)
        ramping.clear()
        sampler.join(10)
        ramp = time.monotonic() - t0
        r.ramp_cpu_pct = 100 * (d.cpu_seconds() - cpu0) / ramp
        r.ramp_rss_mib = rss_peak[0]
        if r.ready_s is None:
            r.notes.append(f"not all ready after {timeout:g}s: {count_ready(c)}/{want}")
        if dns:
            r.dns_ms_median = statistics.median(dns)
            r.dns_ms_p99 = sorted(dns)[int(0.99 * (len(dns) - 1))]
            r.dns_samples = len(dns)
        if http:
            r.clusterip_ms_median = statistics.median(http)
        # Right after ready: the last readiness changes' writes still follow.
        cpu1 = d.cpu_seconds()
        time.sleep(idle)
        r.after_ready_cpu_pct = 100 * (d.cpu_seconds() - cpu1) / idle
        r.settle_s = settle(c, t0 + (r.ready_s or ramp))
        # Idle: nothing changes; the probes keep running.
        cpu1 = d.cpu_seconds()
        time.sleep(idle)
        r.idle_cpu_pct = 100 * (d.cpu_seconds() - cpu1) / idle
        r.idle_rss_mib = d.rss_mib()
        pods, own = pod_processes(d.proc.pid)
        r.pods = len(pods - own)
        # The fork server counts: its pages are what the forked pods share. The
        # preparer counts as the daemon's (Daemon.rss_mib).
        r.pods_pss_mib = pss_mib(pods - {d.preparer})
        path = kinds.BY_KIND["Pod"].collection_path(NS)
        times = []
        for _ in range(5):
            t = time.perf_counter()
            c.get(path)
            times.append((time.perf_counter() - t) * 1000)
        r.list_pods_ms = statistics.median(times)
        r.watch_event_ms = watch_delay_ms(c)
        t = time.perf_counter()
        c.call(
            "POST",
            kinds.BY_KIND["Service"].collection_path(NS),
            body=objects(services, 1)[0],
        )
        name = f"svc{services:04d}.{NS}.svc.cluster.local."
        while dns_ms(d.dns_port, name) is None and time.perf_counter() - t < 10:
            pass
        r.dns_new_service_ms = (time.perf_counter() - t) * 1000
        events = c.get(kinds.BY_KIND["Event"].collection_path(NS))["items"]
        unhealthy = [e for e in events if e.get("reason") == "Unhealthy"]
        r.probe_failures = sum(int(e.get("count") or 1) for e in unhealthy)
        for e in unhealthy[:5]:
            r.notes.append(f"{e['involvedObject'].get('name')}: {e.get('message')}")
        probes = c.get("/debug/svcnet/stats")["probes"]
        r.probes_failed = int(probes["failed"])
        r.probes_unknown = int(probes["unknown"])
        r.probes_run = sum(sum(v.values()) for v in probes["results"].values())
        r.loop_worst_stall_ms = 1000 * float(probes["loopWorstStallSeconds"])
        t = time.monotonic()
        c.call("DELETE", kinds.BY_KIND["Namespace"].object_path(None, NS))
        while time.monotonic() - t < timeout:
            left, own = pod_processes(d.proc.pid)
            if not left - own:
                r.delete_s = time.monotonic() - t
                break
            time.sleep(0.2)
    finally:
        d.stop()
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--services", type=int, default=100)
    ap.add_argument("-r", "--replicas", type=int, default=3)
    ap.add_argument("--sizes", help="several runs, e.g. 100x3,200x5,1000x1")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--prefix", type=int, default=PREFIX)
    ap.add_argument("--idle", type=float, default=IDLE, help="seconds measured once Ready")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    sizes = (
        [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
        if args.sizes
        else [(args.services, args.replicas)]
    )
    results = []
    for n, rep in sizes:
        res = run(n, rep, args.prefix, args.timeout, args.idle)
        results.append(asdict(res))
        print(json.dumps(asdict(res)), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
