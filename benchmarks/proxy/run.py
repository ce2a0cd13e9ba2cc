"""Proxy benchmark: svcnet's Service proxy against HAProxy (tcp mode), same backends, same run.

    python benchmarks/proxy/run.py            # about 2 minutes; needs wrk, haproxy, nginx, curl
    python benchmarks/proxy/run.py --quick    # one short round, to check the set-up

What it does:

1. Starts two nginx instances (one worker each, access log off) on
   127.130.0.11:8080 and 127.130.0.12:8080: ``/`` answers a 13-byte body,
   ``/bulk`` is a ``--bulk-mib`` file on tmpfs sent with sendfile. They are the
   two "pods".
2. Starts HAProxy on 127.130.0.2:8080 (``mode tcp``, ``balance roundrobin``
   over both nginx; ``--haproxy-threads`` 0 keeps HAProxy's default of one
   thread per CPU) and svcnet's Proxier (``serve.py``, on uvloop as ``svcnet
   up`` runs it) with a ClusterIP Service on 127.130.0.3:8080 whose Endpoints
   are the same two nginx.
3. For each mode, ``keepalive`` (wrk's persistent connections) and ``close``
   (``Connection: close``: nginx closes after each response, so every request
   is a new TCP connection through the proxy), runs wrk against HAProxy and
   svcnet in turn, ``--rounds`` times, alternating which goes first, and
   reports the median requests per second and the ratio svcnet/HAProxy, with
   each proxy's CPU seconds per 1000 requests.
4. Bulk: one download of ``/bulk`` with curl, directly from one nginx, through
   HAProxy and through svcnet, ``--rounds`` times; median MB/s and the ratios
   to the direct connection.
5. Socket-level balancing (as root, where the eBPF socket hooks load; skipped
   with a reason otherwise, or with ``--no-socket-lb``): for each mode, wrk
   directly against one nginx, through HAProxy, and against the ClusterIP with
   svcnet's hooks balancing at connect(), once from the host (the hooks on
   the v2 root, ``proxy.socket_lb: host``) and once from a "pod" (wrk started
   in a pod cgroup of svcnet's, as the agent runs a pod), ``--rounds`` times
   in rotating order; median req/s and the ratios to direct. Each of the two
   is run against the two-endpoint ClusterIP and against a ClusterIP whose
   only endpoint is the nginx "direct" talks to: on two cores the second
   nginx competes with wrk for a CPU, which the single endpoint leaves out.

Every address is in 127.130.0.0/16 and every run is bounded (wrk ``-d``, curl
``--max-time``); all processes are stopped at exit, whatever happens.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results"
BACKENDS = ("127.130.0.11", "127.130.0.12")
HAPROXY_HOST = "127.130.0.2"
SVCNET_HOST = "127.130.0.3"
SINGLE_HOST = "127.130.0.4"
"""A second ClusterIP whose only endpoint is the first nginx (socket-level runs)."""
PORT = 8080
BODY = "Hello Docker!"  # 13 bytes, as the seed's echo answers (less the "!!")

ADDRESSES = (*BACKENDS, HAPROXY_HOST, SVCNET_HOST, SINGLE_HOST)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of pid and its threads (HAProxy's threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_listening(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {host}:{port} after {timeout} s")
        time.sleep(0.02)


def assert_free(host: str, port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise SystemExit(f"{host}:{port} is taken ({e}); is another benchmark running?") from e


def nginx_conf(workdir: Path, host: str, index: int) -> str:
    return f"""
worker_processes 1;
daemon off;
master_process on;
user root;
pid {workdir}/nginx-{index}.pid;
error_log {workdir}/nginx-{index}.err warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/tmp-{index}-body;
    proxy_temp_path {workdir}/tmp-{index}-proxy;
    fastcgi_temp_path {workdir}/tmp-{index}-fcgi;
    uwsgi_temp_path {workdir}/tmp-{index}-uwsgi;
    scgi_temp_path {workdir}/tmp-{index}-scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    server {{
        listen {host}:{PORT} backlog=4096;
        location = / {{ return 200 "{BODY}"; }}
        location = /bulk {{ root {workdir}/www; }}
    }}
}}
"""


def haproxy_conf(threads: int) -> str:
    nb = f"    nbthread {threads}\n" if threads else ""
    servers = "\n".join(f"    server s{i} {h}:{PORT}" for i, h in enumerate(BACKENDS))
    return f"""
global
    maxconn 8000
{nb}
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend bench
    bind {HAPROXY_HOST}:{PORT}
    default_backend pods

backend pods
    balance roundrobin
{servers}
"""


class Procs:
    """Every process the benchmark started, stopped in reverse order at exit."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[Any]] = []

    def start(self, cmd: list[str], **kw: Any) -> subprocess.Popen[Any]:
        p = subprocess.Popen(cmd, **kw)
        self.procs.append(p)
        return p

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class Svcnet:
    def __init__(self, procs: Procs, socket_lb: bool) -> None:
        cmd = [sys.executable, str(HERE / "serve.py"), "--cluster-ip", SVCNET_HOST,
               "--port", str(PORT)]  # fmt: skip
        for h in BACKENDS:
            cmd += ["--endpoint", f"{h}:{PORT}"]
        if socket_lb:
            cmd += ["--socket-lb", "--single-ip", SINGLE_HOST]
        self.proc = procs.start(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = json.loads(self._line())

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line: str = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("serve.py exited")
        return line

    def command(self, text: str) -> Any:
        stdin: IO[str] | None = self.proc.stdin
        assert stdin is not None
        stdin.write(text + "\n")
        stdin.flush()
        return json.loads(self._line())


@dataclass
class WrkRun:
    rps: float
    requests: int
    errors: int
    cpu: float
    """The proxy's CPU seconds during the run (0 for direct)."""

    @property
    def cpu_ms_per_1k(self) -> float:
        return self.cpu / max(1, self.requests) * 1e6


def wrk(
    host: str,
    mode: str,
    pid: int | None,
    args: argparse.Namespace,
    seconds: float,
    cgroup_procs: str | None = None,
) -> WrkRun:
    cmd = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{round(seconds)}s",
           "--timeout", "5s"]  # fmt: skip
    if mode == "close":
        cmd += ["-H", "Connection: close"]
    cmd.append(f"http://{host}:{PORT}/")
    before = cpu_seconds(pid) if pid else 0.0

    def enter_cgroup() -> None:
        # Before exec, so wrk's first connect() is already a pod's.
        if cgroup_procs is not None:
            Path(cgroup_procs).write_text(str(os.getpid()))

    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
        preexec_fn=enter_cgroup if cgroup_procs else None,
    )
    cpu = cpu_seconds(pid) - before if pid else 0.0
    text = out.stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    n = re.search(r"(\d+) requests in", text)
    if not m or not n:
        raise RuntimeError(f"cannot read wrk's output:\n{text}\n{out.stderr}")
    errors = 0
    e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if e:
        errors += sum(int(x) for x in e.groups())
    s = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if s:
        errors += int(s.group(1))
    return WrkRun(rps=float(m.group(1)), requests=int(n.group(1)), errors=errors, cpu=cpu)


def curl_speed(host: str, args: argparse.Namespace) -> float:
    """One download of /bulk; MB/s (10^6 bytes) as curl measured it."""
    out = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "--max-time", "60", "-o", "/dev/null",
         "-w", "%{speed_download} %{size_download}", f"http://{host}:{PORT}/bulk"],
        capture_output=True, text=True, timeout=90, check=True,
    )  # fmt: skip
    speed, size = out.stdout.split()
    if int(float(size)) != args.bulk_mib << 20:
        raise RuntimeError(f"bulk download from {host} got {size} bytes")
    return float(speed) / 1e6


def check_body(host: str) -> None:
    out = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "--max-time", "5", f"http://{host}:{PORT}/"],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    if out.stdout != BODY:
        raise RuntimeError(f"{host}:{PORT}/ answered {out.stdout!r}, not {BODY!r}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    for tool in ("wrk", "haproxy", "nginx", "curl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found; apt-get install -y wrk haproxy nginx-light curl")
    for h in ADDRESSES:
        assert_free(h, PORT)
    procs = Procs()
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="svcnet-proxy-bench-", dir=shm) as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        (work / "www").mkdir()
        with open(work / "www" / "bulk", "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(args.bulk_mib):
                f.write(block)
        try:
            for i, h in enumerate(BACKENDS):
                conf = work / f"nginx-{i}.conf"
                conf.write_text(nginx_conf(work, h, i))
                procs.start(["nginx", "-p", str(work), "-c", str(conf), "-e",
                             str(work / f"nginx-{i}.err")])  # fmt: skip
            hconf = work / "haproxy.cfg"
            hconf.write_text(haproxy_conf(args.haproxy_threads))
            haproxy = procs.start(["haproxy", "-db", "-f", str(hconf)])
            svcnet = Svcnet(procs, args.socket_lb)
            for h in (*BACKENDS, HAPROXY_HOST, SVCNET_HOST):
                wait_listening(h, PORT)
                check_body(h)
            return measure(args, haproxy.pid, svcnet)
        finally:
            procs.stop_all()


def measure(args: argparse.Namespace, haproxy_pid: int, svcnet: Svcnet) -> dict[str, Any]:
    pids = {"haproxy": haproxy_pid, "svcnet": svcnet.proc.pid}
    hosts = {"haproxy": HAPROXY_HOST, "svcnet": SVCNET_HOST}
    result: dict[str, Any] = {"loop": svcnet.ready["loop"], "modes": {}, "bulk": {}}
    for mode in ("keepalive", "close"):
        runs: dict[str, list[WrkRun]] = {"haproxy": [], "svcnet": []}
        for name in ("haproxy", "svcnet"):  # warm-up, not counted
            wrk(hosts[name], mode, None, args, 1)
        for r in range(args.rounds):
            order = ("haproxy", "svcnet") if r % 2 == 0 else ("svcnet", "haproxy")
            for name in order:
                runs[name].append(wrk(hosts[name], mode, pids[name], args, args.seconds))
                if args.verbose:
                    print(f"  {mode} {name} {runs[name][-1]}", file=sys.stderr)
        med = {n: statistics.median(x.rps for x in rs) for n, rs in runs.items()}
        result["modes"][mode] = {
            "rps": med,
            "ratio": med["svcnet"] / med["haproxy"],
            "errors": {n: sum(x.errors for x in rs) for n, rs in runs.items()},
            "cpu_ms_per_1k": {
                n: statistics.median(x.cpu_ms_per_1k for x in rs) for n, rs in runs.items()
            },
            "runs": {n: [asdict(x) for x in rs] for n, rs in runs.items()},
        }
    speeds: dict[str, list[float]] = {"direct": [], "haproxy": [], "svcnet": []}
    bulk_hosts = {"direct": BACKENDS[0], **hosts}
    for host in bulk_hosts.values():  # warm-up: the file into the page cache
        curl_speed(host, args)
    for r in range(args.rounds):
        names = list(bulk_hosts)
        names = names[r % 3 :] + names[: r % 3]
        for name in names:
            speeds[name].append(curl_speed(bulk_hosts[name], args))
    bmed = {n: statistics.median(v) for n, v in speeds.items()}
    result["bulk"] = {
        "mb_per_s": bmed,
        "svcnet_vs_direct": bmed["svcnet"] / bmed["direct"],
        "haproxy_vs_direct": bmed["haproxy"] / bmed["direct"],
        "runs": speeds,
    }
    result["svcnet_stats"] = svcnet.command("stats")
    if args.socket_lb:
        result["socket_lb"] = measure_socket_lb(args, haproxy_pid, svcnet)
    return result


SOCKET_LB_RUNS = ("direct", "haproxy", "host", "pod", "host1", "pod1")
"""host/pod: the two-endpoint ClusterIP; host1/pod1: the one-endpoint ClusterIP."""


def measure_socket_lb(args: argparse.Namespace, haproxy_pid: int, svcnet: Svcnet) -> dict[str, Any]:
    """Direct, HAProxy, and the ClusterIP balanced by the hooks from the host and a pod."""
    pod_procs = svcnet.ready["pod_procs"]
    names = SOCKET_LB_RUNS

    def one(name: str, mode: str, seconds: float) -> WrkRun:
        if name == "direct":
            return wrk(BACKENDS[0], mode, None, args, seconds)
        if name == "haproxy":
            return wrk(HAPROXY_HOST, mode, haproxy_pid, args, seconds)
        host = SINGLE_HOST if name.endswith("1") else SVCNET_HOST
        if name.startswith("pod"):
            return wrk(host, mode, None, args, seconds, cgroup_procs=pod_procs)
        svcnet.command("host on")
        try:
            return wrk(host, mode, None, args, seconds)
        finally:
            svcnet.command("host off")

    out: dict[str, Any] = {}
    for mode in ("keepalive", "close"):
        runs: dict[str, list[WrkRun]] = {n: [] for n in names}
        for name in names:  # warm-up, not counted
            one(name, mode, 1)
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                runs[name].append(one(name, mode, args.seconds))
                if args.verbose:
                    print(f"  socket-lb {mode} {name} {runs[name][-1]}", file=sys.stderr)
        med = {n: statistics.median(x.rps for x in rs) for n, rs in runs.items()}
        # Each round's runs follow each other within seconds, so a ratio to the
        # same round's direct run cancels the machine's slower swings, which
        # move a 5-round median by more than the hooks cost.
        paired = {
            n: statistics.median(a.rps / d.rps for a, d in zip(rs, runs["direct"], strict=True))
            for n, rs in runs.items()
        }
        out[mode] = {
            "rps": med,
            "vs_direct": paired,
            "errors": {n: sum(x.errors for x in rs) for n, rs in runs.items()},
            "runs": {n: [asdict(x) for x in rs] for n, rs in runs.items()},
        }
    # Every connection went to a backend: none reached the userspace proxy.
    out["proxy_stats_after"] = svcnet.command("stats")
    return out


def report(result: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, {args.rounds} rounds,"
        f" median; HAProxy threads: {args.haproxy_threads or 'default'}; svcnet loop:"
        f" {result['loop']}",
        "",
        "| mode | HAProxy req/s | svcnet req/s | svcnet / HAProxy | errors (H/s)"
        " | CPU ms per 1k req (H/s) |",
        "|---|---:|---:|---:|---|---|",
    ]
    for mode, m in result["modes"].items():
        cpu = m["cpu_ms_per_1k"]
        lines.append(
            f"| {mode} | {m['rps']['haproxy']:,.0f} | {m['rps']['svcnet']:,.0f} |"
            f" **{m['ratio']:.2f}x** | {m['errors']['haproxy']}/{m['errors']['svcnet']}"
            f" | {cpu['haproxy']:.1f} / {cpu['svcnet']:.1f} |"
        )
    b = result["bulk"]
    mb = b["mb_per_s"]
    lines += [
        "",
        f"Bulk, one {args.bulk_mib} MiB download with curl (MB/s, median):",
        "",
        "| direct | HAProxy | svcnet | svcnet / direct | HAProxy / direct |",
        "|---:|---:|---:|---:|---:|",
        f"| {mb['direct']:,.0f} | {mb['haproxy']:,.0f} | {mb['svcnet']:,.0f} |"
        f" **{b['svcnet_vs_direct']:.2f}x** | {b['haproxy_vs_direct']:.2f}x |",
    ]
    lb = result.get("socket_lb")
    if lb is None:
        lines += ["", f"Socket-level balancing: not measured ({args.socket_lb_skipped})."]
        return "\n".join(lines)
    lines += [
        "",
        "Socket-level balancing (the ClusterIP, balanced at connect() by the eBPF hooks):"
        " req/s, median, and in brackets the median over rounds of the ratio to that"
        " round's direct connection to one nginx:",
        "",
        "| mode | endpoints | direct | HAProxy | svcnet, from the host | svcnet, from a pod"
        " | errors |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for mode in ("keepalive", "close"):
        m, v = lb[mode]["rps"], lb[mode]["vs_direct"]
        errors = "/".join(str(lb[mode]["errors"][n]) for n in SOCKET_LB_RUNS)
        for eps, host, pod in ((2, "host", "pod"), (1, "host1", "pod1")):
            lines.append(
                f"| {mode} | {eps} | {m['direct']:,.0f} | {m['haproxy']:,.0f}"
                f" ({v['haproxy']:.2f}x) | {m[host]:,.0f} (**{v[host]:.2f}x**) |"
                f" {m[pod]:,.0f} (**{v[pod]:.2f}x**) | {errors} |"
            )
    return "\n".join(lines)


def socket_lb_available(disabled: bool) -> tuple[bool, str]:
    if disabled:
        return False, "--no-socket-lb"
    if os.geteuid() != 0:
        return False, "not root"
    sys.path.insert(0, str(HERE.parent.parent))
    from svcnet.kernel import sockhooks

    reason = sockhooks.probe()
    return (reason is None), reason or ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=int, default=5, help="per wrk run")
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--connections", type=int, default=50, help="wrk connections")
    p.add_argument("--haproxy-threads", type=int, default=0, help="0: HAProxy's default")
    p.add_argument("--bulk-mib", type=int, default=1024)
    p.add_argument("--quick", action="store_true", help="1 round of 2 s, 256 MiB bulk")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/")
    p.add_argument("--no-socket-lb", action="store_true", help="skip socket-level balancing")
    args = p.parse_args(argv)
    args.socket_lb, args.socket_lb_skipped = socket_lb_available(args.no_socket_lb)
    if args.quick:
        args.rounds, args.seconds, args.bulk_mib = 1, 2, 256
    result = run(args)
    text = report(result, args)
    print(text)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS / f"proxy-{stamp}.json"
        path.write_text(json.dumps({"args": vars(args), **result}, indent=1))
        print(f"\nraw results: {path.relative_to(HERE.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
