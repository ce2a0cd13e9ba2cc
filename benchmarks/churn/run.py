"""Churn benchmark: requests through a Service while its pods come and go.

One `svcnet up` (on addresses of its own, DNS forwarding pointed at a loopback
port where nothing listens) runs a 3-replica Deployment of
benchmarks/churn/server.py (a readinessProbe on /healthz) behind a ClusterIP
Service. A load generator keeps CONCURRENCY clients sending `GET /` through
the ClusterIP, a new connection per request, for DURATION seconds, while:

- delete:  every 2 s one ready pod is deleted (graceful: out of the
           endpoints first, then SIGTERM), and its ReplicaSet replaces it;
- rollout: rolling updates run back to back (a template annotation changes,
           as `rollout restart` does; maxSurge 25% / maxUnavailable 25%);
- kill:    every 2 s one pod's process is SIGKILLed (a crash). Each pod is
           crashed once; at the next tick the crashed pod is deleted and its
           ReplicaSet replaces it, so the restart back-off (CrashLoopBackOff)
           never comes into play.

A request fails if it gets no `200 <pod name>` within 5 s. Reported: requests,
failures (with reasons), requests per second, the requests each pod answered,
and how many kills, deletions and rollouts happened. Targets (docs/architecture.md,
"Surviving churn"): 0 failures for delete and rollout; for kill, only the
requests in flight on the killed pod may fail (no request is ever replayed),
so at most one per client per kill, and none for want of a live endpoint.

    python benchmarks/churn/run.py                       # both scenarios, 60 s each
    python benchmarks/churn/run.py --scenario kill -d 20 # one, shorter
    python benchmarks/churn/run.py --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER = Path(__file__).resolve().parent / "server.py"
sys.path.insert(0, str(ROOT))

from svcnet import credentials  # noqa: E402
from svcnet.cli.client import ApiStatusError, Client  # noqa: E402
from svcnet.k8s import kinds  # noqa: E402
from svcnet.k8s.media import MERGE_PATCH  # noqa: E402
from svcnet.k8s.objects import Obj  # noqa: E402
from svcnet.testing import free_port, isolated_up_args  # noqa: E402

# 127.145-148.x by default: clear of svcnet's defaults and of the test suites' blocks.
PREFIX = 145


def manifests(replicas: int) -> str:
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "churn"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "churn"}},
            "template": {
                "metadata": {"labels": {"app": "churn"}},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {
                            "name": "web",
                            "image": "churn-server",
                            "command": [sys.executable, str(SERVER)],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "readinessProbe": {
                                "httpGet": {"path": "/healthz", "port": "http"},
                                "periodSeconds": 1,
                                # Kubernetes' default. With 1, one slow answer on
                                # this saturated 2-core machine took a pod out, and
                                # now and then all three at once (the run then
                                # counted the refusals a cluster would give too).
                                # A crashed pod leaves at once either way: its exit,
                                # not the probe, makes it unready.
                                "failureThreshold": 3,
                            },
                        }
                    ],
                },
            },
        },
    }
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "churn"},
        "spec": {
            "selector": {"app": "churn"},
            "ports": [{"port": 80, "targetPort": "http"}],
        },
    }
    return json.dumps(deploy) + "\n---\n" + json.dumps(svc) + "\n"


@dataclass
class Daemon:
    proc: subprocess.Popen[str]
    client: Client
    server: str
    tmp: tempfile.TemporaryDirectory[str]

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.tmp.cleanup()


def start_daemon(replicas: int, prefix: int, verbose: bool) -> Daemon:
    tmp = tempfile.TemporaryDirectory(prefix="svcnet-churn-")
    mdir = Path(tmp.name) / "manifests"
    mdir.mkdir()
    (mdir / "churn.yaml").write_text(manifests(replicas))
    api_port, dns_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "svcnet", *isolated_up_args(str(mdir), prefix, api_port, dns_port)]
    env = dict(os.environ, HOME=tmp.name, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=None if verbose else subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=tmp.name,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        line = proc.stdout.readline() if r else ""
        if not line:
            break
        if line.startswith("svcnet ready"):
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain
            server = f"https://127.0.0.1:{api_port}"
            return Daemon(proc, client_of(server, api_port, tmp.name), server, tmp)
    proc.kill()
    proc.wait()
    tmp.cleanup()
    raise SystemExit("svcnet up did not become ready")


def client_of(server: str, api_port: int, home: str) -> Client:
    """An API client with the credentials the daemon keeps under its HOME."""
    auth = credentials.for_server("127.0.0.1", api_port, {"HOME": home})
    return Client(server, auth=auth)


# --- the load generator ----------------------------------------------------------


@dataclass
class Load:
    ok: int = 0
    failed: int = 0
    per_pod: collections.Counter[str] = field(default_factory=collections.Counter)
    reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    failed_at: list[float] = field(default_factory=list)
    """time.monotonic() of each failure, to tell them apart from the kills."""


async def one_request(host: str, port: int) -> str:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: churn\r\nConnection: close\r\n\r\n")
        data = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if not status.startswith(b"HTTP/1.") or b" 200 " not in status + b" ":
        raise ValueError(f"bad answer {status[:40]!r}")
    if not body:
        raise ValueError("empty body")
    return body.decode()


async def generate(host: str, port: int, stop: threading.Event, concurrency: int) -> Load:
    load = Load()

    async def worker() -> None:
        while not stop.is_set():
            try:
                pod = await asyncio.wait_for(one_request(host, port), 5.0)
            except (OSError, ValueError, TimeoutError) as e:
                load.failed += 1
                load.failed_at.append(time.monotonic())
                load.reasons[f"{type(e).__name__}: {e}"[:80]] += 1
                continue
            load.ok += 1
            load.per_pod[pod] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return load


# --- the churn ---------------------------------------------------------------------


def pods(client: Client) -> list[Obj]:
    q = urllib.parse.urlencode({"labelSelector": "app=churn"})
    return list(client.get(f"/api/v1/namespaces/default/pods?{q}")["items"])


def ready(pod: Obj) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


Chaos = Callable[[Client, threading.Event, collections.Counter[str]], None]

KILL_WINDOW = 0.1
"""Seconds after a kill during which its failures are the crash's: the requests in
flight on the pod, and connections made before its endpoint was gone."""


def kill_loop(
    client: Client,
    stop: threading.Event,
    counts: collections.Counter[str],
    kills: list[float] | None = None,
) -> None:
    crashed: dict[str, str] = {}  # uid -> name
    while not stop.wait(2.0):
        for uid, name in list(crashed.items()):
            with contextlib.suppress(ApiStatusError):
                client.call("DELETE", f"/api/v1/namespaces/default/pods/{name}")
                counts["deleted"] += 1
            del crashed[uid]
        for pod in pods(client):
            md = pod["metadata"]
            if md.get("deletionTimestamp") or md["uid"] in crashed or not ready(pod):
                continue
            cid = ((pod["status"].get("containerStatuses") or [{}])[0]).get("containerID", "")
            if not cid.startswith("svcnet://"):
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(cid.removeprefix("svcnet://")), signal.SIGKILL)
                counts["killed"] += 1
                if kills is not None:
                    kills.append(time.monotonic())
            crashed[md["uid"]] = md["name"]
            break


def delete_loop(client: Client, stop: threading.Event, counts: collections.Counter[str]) -> None:
    while not stop.wait(2.0):
        for pod in pods(client):
            md = pod["metadata"]
            if md.get("deletionTimestamp") or not ready(pod):
                continue
            with contextlib.suppress(ApiStatusError):
                client.call("DELETE", f"/api/v1/namespaces/default/pods/{md['name']}")
                counts["deleted"] += 1
            break


def rollout_complete(d: Obj) -> bool:
    st, want = d.get("status") or {}, d["spec"]["replicas"]
    return bool(
        st.get("observedGeneration", 0) >= d["metadata"]["generation"]
        and st.get("updatedReplicas", 0) == want
        and st.get("replicas", 0) == want
        and st.get("availableReplicas", 0) == want
    )


def rollout_loop(client: Client, stop: threading.Event, counts: collections.Counter[str]) -> None:
    path = "/apis/apps/v1/namespaces/default/deployments/churn"
    n = 0
    while not stop.is_set():
        n += 1
        patch = {"spec": {"template": {"metadata": {"annotations": {"churn/round": str(n)}}}}}
        client.call("PATCH", path, body=patch, content_type=MERGE_PATCH)
        counts["rollouts started"] += 1
        while not stop.wait(0.1):
            if rollout_complete(client.get(path)):
                counts["rollouts completed"] += 1
                break


# --- one scenario ------------------------------------------------------------------


@dataclass
class Result:
    scenario: str
    duration_s: float
    requests: int
    failed: int
    rps: float
    per_pod: dict[str, int]
    churn: dict[str, int]
    reasons: dict[str, int]
    late_failures: int = 0
    """Failures more than KILL_WINDOW after the last kill (or any, without kills): what
    no endpoint change explains. Target: 0."""
    no_endpoint_failures: int = 0
    """Failures while the Service had no ready endpoint (refused, as on a cluster)."""
    no_endpoint_gaps: int = 0
    """How many times the ready endpoints fell to none (readiness probes failing
    under the load on a small machine, mostly)."""
    warnings: dict[str, int] = field(default_factory=dict)
    """Warning Events of the namespace by reason (Unhealthy: a probe failed)."""


def run_scenario(
    scenario: str, duration: float, replicas: int, concurrency: int, prefix: int, verbose: bool
) -> Result:
    daemon = start_daemon(replicas, prefix, verbose)
    try:
        svc = daemon.client.get("/api/v1/namespaces/default/services/churn")
        host = svc["spec"]["clusterIP"]
        stop = threading.Event()
        counts: collections.Counter[str] = collections.Counter()
        chaos_client = client_of(daemon.server, daemon.client.port, daemon.tmp.name)
        kills: list[float] = []
        gaps: list[list[float]] = []
        watcher = threading.Thread(
            target=watch_endpoints,
            args=(client_of(daemon.server, daemon.client.port, daemon.tmp.name), gaps),
            daemon=True,
        )
        watcher.start()
        loops: dict[str, Chaos] = {
            "kill": functools.partial(kill_loop, kills=kills),
            "delete": delete_loop,
            "rollout": rollout_loop,
        }
        chaos = threading.Thread(
            target=loops[scenario], args=(chaos_client, stop, counts), daemon=True
        )
        timer = threading.Timer(duration, stop.set)
        t0 = time.monotonic()
        chaos.start()
        timer.start()
        load = asyncio.run(generate(host, 80, stop, concurrency))
        took = time.monotonic() - t0
        chaos.join(timeout=30)
        chaos_client.close()
        total = load.ok + load.failed
        warnings: collections.Counter[str] = collections.Counter()
        with contextlib.suppress(OSError, ApiStatusError):
            for e in daemon.client.get("/api/v1/namespaces/default/events")["items"]:
                if e.get("type") == "Warning":
                    warnings[str(e.get("reason"))] += int(e.get("count") or 1)
        return Result(
            scenario,
            round(took, 1),
            total,
            load.failed,
            round(total / took, 1),
            dict(sorted(load.per_pod.items())),
            dict(counts),
            dict(load.reasons),
            late_failures(load.failed_at, kills),
            in_gaps(load.failed_at, gaps),
            len(gaps),
            dict(warnings),
        )
    finally:
        daemon.stop()


def watch_endpoints(client: Client, gaps: list[list[float]]) -> None:
    """Record when the Service had no ready endpoint: [start, end] per gap (end
    still open while the gap lasts). A connection then is refused by design, as
    kube-proxy's REJECT refuses it, so the report tells those failures apart."""
    kind = kinds.BY_KIND["Endpoints"]
    with contextlib.suppress(OSError, ApiStatusError, ValueError):
        obj = client.get(kind.object_path("default", "churn"))
        rv = str(obj["metadata"]["resourceVersion"])
        for ev in client.watch(kind, "default", "churn", rv, timeout_seconds=3600):
            if ev.get("type") not in ("ADDED", "MODIFIED"):
                continue
            subsets = ev["object"].get("subsets") or ()
            ready = sum(len(s.get("addresses") or ()) for s in subsets)
            now = time.monotonic()
            if ready == 0 and (not gaps or gaps[-1][1] != float("inf")):
                gaps.append([now, float("inf")])
            elif ready and gaps and gaps[-1][1] == float("inf"):
                gaps[-1][1] = now


def in_gaps(failed_at: list[float], gaps: list[list[float]]) -> int:
    """Failures while the Service had no ready endpoint (or within 50 ms of one
    ending: the client's connect() and the map update race by that much)."""
    return sum(1 for t in failed_at if any(a <= t <= b + 0.05 for a, b in gaps))


def late_failures(failed_at: list[float], kills: list[float]) -> int:
    """Failures that came more than KILL_WINDOW after the kill before them."""
    late = 0
    for t in failed_at:
        before = [k for k in kills if k <= t]
        if not before or t - before[-1] > KILL_WINDOW:
            late += 1
    return late


def report(r: Result) -> str:
    lines = [
        f"== {r.scenario}: {r.duration_s}s, {r.requests} requests, {r.failed} failed "
        f"({r.late_failures} later than {KILL_WINDOW * 1000:.0f} ms after a kill, "
        f"{r.no_endpoint_failures} while no endpoint was ready, "
        f"which happened {r.no_endpoint_gaps} times), "
        f"{r.rps} req/s; churn: {', '.join(f'{k} {v}' for k, v in r.churn.items()) or 'none'}",
        f"   {len(r.per_pod)} pods answered; requests per pod:",
    ]
    lines += [f"     {name:<32} {n:>7}" for name, n in r.per_pod.items()]
    for reason, n in r.reasons.items():
        lines.append(f"   failure x{n}: {reason}")
    if r.warnings:
        lines.append(
            "   warning events: " + ", ".join(f"{k} x{v}" for k, v in sorted(r.warnings.items()))
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scenario", choices=["kill", "delete", "rollout", "all"], default="all")
    p.add_argument("-d", "--duration", type=float, default=60.0)
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("-c", "--concurrency", type=int, default=8)
    p.add_argument("--prefix", type=int, default=PREFIX, help="addresses under 127.PREFIX..+3")
    p.add_argument("--json", default=None, metavar="FILE")
    p.add_argument("-v", "--verbose", action="store_true", help="show the daemon's stderr")
    args = p.parse_args(argv)
    scenarios = ["delete", "rollout", "kill"] if args.scenario == "all" else [args.scenario]
    results = []
    for s in scenarios:
        r = run_scenario(
            s, args.duration, args.replicas, args.concurrency, args.prefix, args.verbose
        )
        print(report(r), flush=True)
        results.append(r)
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in results], indent=2) + "\n")
    return 1 if any(r.failed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
