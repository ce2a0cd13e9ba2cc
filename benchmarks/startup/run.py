"""Start-up benchmark: from launching `svcnet up -f config/` to the seed answering.

Each run launches the daemon on addresses of its own (so it cannot clash with
a svcnet already running, or with the defaults), then measures:

- ready:  wall time until `svcnet ready in ...` appears on its stdout;
- curl:   wall time until `http://<node ip>:30026/` answers `Hello Docker!!`
          (a bounded loop of short connect attempts, then one real `curl -s`);
- up:     the later of the two, the figure the target (< 1 s) is about;
- the daemon's peak RSS (VmHWM), the pods' processes and their total RSS, and
  the CPU seconds the daemon and the pods spent getting there;
- stop:   after SIGTERM, the time until the daemon has exited, every process it
  started is gone and `ss -ltnup` shows no socket on its addresses (<= 5 s).

It prints a table (median of N runs, default 7) and writes the figures as JSON
to benchmarks/results/. All traffic stays on 127.0.0.0/8; DNS forwarding is
pointed at a loopback port where nothing listens.

    python benchmarks/startup/run.py            # 7 runs
    python benchmarks/startup/run.py -n 3 -v    # fewer runs, daemon stderr shown
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from svcnet.testing import descendants, free_port, isolated_up_args, node_ip

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"

PREFIX = 150  # 127.150-153.x; DNS forwards to a loopback port where nothing listens
NODE_IP = node_ip(PREFIX)
NODE_PORT = 30026
EXPECTED = "Hello Docker!!"
PREFIXES = ("127.150.", "127.151.", "127.152.", "127.153.")
READY_RE = re.compile(r"^svcnet ready in ([0-9.]+)s")
POLL_INTERVAL = 0.005  # between connect attempts to the NodePort
STOP_DEADLINE = 5.0  # the bound for "no process, no port" after SIGTERM


class BenchError(Exception):
    pass


@dataclass
class Run:
    ready_s: float = 0.0
    """Launch to the ready line on stdout."""
    self_reported_s: float = 0.0
    """What the ready line itself says (the daemon's own clock, after interpreter start)."""
    curl_s: float = 0.0
    """Launch to the first `Hello Docker!!` from the NodePort."""
    up_s: float = 0.0
    """Both of the above: max(ready_s, curl_s)."""
    attempts: int = 0
    """Connect attempts to the NodePort until it answered."""
    daemon_hwm_kib: int = 0
    daemon_rss_kib: int = 0
    daemon_cpu_s: float = 0.0
    pod_processes: int = 0
    pods_rss_kib: int = 0
    pods_cpu_s: float = 0.0
    stop_s: float = 0.0
    """SIGTERM to the daemon's exit."""
    clean_s: float = 0.0
    """SIGTERM until no process and no listening socket of the run remains."""
    leftovers: list[str] = field(default_factory=list)


# --- /proc and ss -----------------------------------------------------------------


def _status(pid: int) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _kib(value: str) -> int:
    return int(value.split()[0]) if value else 0


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    return text.rsplit(")", 1)[1].split()


def _cpu_s(pid: int) -> float:
    fields = _stat(pid)
    if fields is None:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    # utime, stime (fields 14 and 15 of stat; 12 and 13 after pid and comm).
    return (int(fields[11]) + int(fields[12])) / ticks


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def listening(ports: set[int]) -> list[str]:
    """Lines of `ss -ltnup` for sockets on this run's addresses or ports."""
    proc = subprocess.run(
        ["ss", "-ltnupH"], capture_output=True, text=True, timeout=10, check=False
    )
    found = []
    for line in proc.stdout.splitlines():
        cols = line.split()
        if len(cols) < 5:
            continue
        local = cols[4]
        host, _, port = local.rpartition(":")
        host = host.strip("[]").split("%")[0]
        if host.startswith(PREFIXES) or (port.isdigit() and int(port) in ports):
            found.append(line.strip())
    return found


# --- the NodePort probe ---------------------------------------------------------


def http_get(host: str, port: int, timeout: float = 0.5) -> str | None:
    """One short HTTP/1.0 GET; None when the connection is refused or fails."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(f"GET / HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
    except OSError:
        return None
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or not status[0].startswith(b"HTTP/") or status[1] != b"200":
        return None
    return body.decode(errors="replace")


def curl(url: str) -> str:
    proc = subprocess.run(
        ["curl", "-s", "--max-time", "5", url], capture_output=True, text=True, timeout=10
    )
    return proc.stdout


# --- one run --------------------------------------------------------------------


def svcnet_command() -> list[str]:
    """The console script users run (beside this Python if it is a venv), else -m."""
    here = Path(sys.executable).parent / "svcnet"
    if here.exists():
        return [str(here)]
    found = shutil.which("svcnet")
    return [found] if found else [sys.executable, "-m", "svcnet"]


def up_command(base: list[str], api_port: int, dns_port: int, state_dir: str) -> list[str]:
    return [*base, *isolated_up_args(str(ROOT / "config"), PREFIX, api_port, dns_port, state_dir)]


def one_run(base: list[str], timeout: float, verbose: bool) -> Run:
    api_port, dns_port = free_port(), free_port()
    ports = {api_port, dns_port}
    busy = listening(ports)
    if busy:
        raise BenchError("addresses of this benchmark are already in use:\n  " + "\n  ".join(busy))
    run = Run()
    with tempfile.TemporaryFile("w+") as errf, tempfile.TemporaryDirectory() as state_dir:
        # A fresh cluster every run: nothing kept by the last one is restored.
        cmd = up_command(base, api_port, dns_port, state_dir)
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=None if verbose else errf,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            text=True,
        )
        try:
            _wait_up(proc, run, t0, timeout)
            _measure(proc, run)
        except BaseException as e:
            _kill(proc, descendants(proc.pid))
            errf.seek(0)
            tail = "".join(errf.readlines()[-20:])
            raise BenchError(f"{e}\n{' '.join(cmd)}\n{tail}") from None
        _stop(proc, descendants(proc.pid), ports, run)
    return run


def _wait_up(proc: subprocess.Popen[str], run: Run, t0: float, timeout: float) -> None:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    buf = ""
    deadline = t0 + timeout
    ready = answered = False
    while not (ready and answered):
        now = time.perf_counter()
        if now > deadline:
            raise BenchError(
                f"not up after {timeout:.0f}s (ready line: {ready}, {EXPECTED!r}: {answered})"
            )
        if not ready:
            r, _, _ = select.select([fd], [], [], POLL_INTERVAL)
            if r:
                chunk = os.read(fd, 65536).decode(errors="replace")
                if not chunk:
                    raise BenchError(f"svcnet up exited with {proc.wait(timeout=5)}")
                buf += chunk
                for line in buf.splitlines()[: buf.count("\n")]:  # complete lines only
                    m = READY_RE.match(line)
                    if m:
                        run.ready_s = time.perf_counter() - t0
                        run.self_reported_s = float(m.group(1))
                        ready = True
        else:
            time.sleep(POLL_INTERVAL)
        if not answered:
            run.attempts += 1
            body = http_get(NODE_IP, NODE_PORT)
            if body is not None and body.strip() == EXPECTED:
                run.curl_s = time.perf_counter() - t0
                answered = True
    run.up_s = max(run.ready_s, run.curl_s)
    # The figure above came from our own short GET; confirm with the real client.
    got = curl(f"http://{NODE_IP}:{NODE_PORT}/")
    if got.strip() != EXPECTED:
        raise BenchError(f"curl -s http://{NODE_IP}:{NODE_PORT}/ printed {got!r}")


def _measure(proc: subprocess.Popen[str], run: Run) -> None:
    st = _status(proc.pid)
    run.daemon_hwm_kib = _kib(st.get("VmHWM", ""))
    run.daemon_rss_kib = _kib(st.get("VmRSS", ""))
    run.daemon_cpu_s = _cpu_s(proc.pid)
    kids = descendants(proc.pid)
    run.pod_processes = len(kids)
    run.pods_rss_kib = sum(_kib(_status(k).get("VmRSS", "")) for k in kids)
    run.pods_cpu_s = sum(_cpu_s(k) for k in kids)


def _kill(proc: subprocess.Popen[str], kids: set[int]) -> None:
    for pid in (proc.pid, *kids):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)


def _stop(proc: subprocess.Popen[str], kids: set[int], ports: set[int], run: Run) -> None:
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_DEADLINE + 5)
    except subprocess.TimeoutExpired:
        run.leftovers.append(
            f"daemon {proc.pid} still running {STOP_DEADLINE + 5:.0f}s after SIGTERM"
        )
        proc.kill()
        proc.wait(timeout=10)
    run.stop_s = time.perf_counter() - t0
    deadline = t0 + STOP_DEADLINE
    while True:
        procs = sorted(k for k in kids if _alive(k))
        socks = listening(ports)
        if not procs and not socks:
            run.clean_s = time.perf_counter() - t0
            return
        if time.perf_counter() > deadline:
            run.leftovers += [f"process {p} alive" for p in procs] + socks
            for p in procs:  # do not leave them to the next run
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            run.clean_s = time.perf_counter() - t0
            return
        time.sleep(0.02)


# --- report ---------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    # The daemon runs on uvloop when it is installed (in the Python that runs it).
    loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "event_loop": loop,
        # Other work on the machine shows up in the figures: note how busy it was.
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
    }


COLUMNS: list[tuple[str, str, str]] = [
    # (header, Run attribute, format)
    ("up s", "up_s", "{:.3f}"),
    ("ready s", "ready_s", "{:.3f}"),
    ("curl s", "curl_s", "{:.3f}"),
    ("self s", "self_reported_s", "{:.2f}"),
    ("daemon HWM MiB", "daemon_hwm_kib", "mib"),
    ("pods", "pod_processes", "{:g}"),
    ("pods RSS MiB", "pods_rss_kib", "mib"),
    ("daemon CPU s", "daemon_cpu_s", "{:.2f}"),
    ("pods CPU s", "pods_cpu_s", "{:.2f}"),
    ("stop s", "stop_s", "{:.3f}"),
    ("clean s", "clean_s", "{:.3f}"),
]


def _fmt(fmt: str, v: float) -> str:
    return f"{v / 1024:.1f}" if fmt == "mib" else fmt.format(v)


def median_of(runs: list[Run]) -> dict[str, float]:
    return {attr: statistics.median(getattr(r, attr) for r in runs) for _, attr, _ in COLUMNS}


def table(runs: list[Run], med: dict[str, float]) -> str:
    heads = ["run", *(h for h, _, _ in COLUMNS)]
    rows = [
        [str(i + 1), *(_fmt(f, getattr(r, a)) for _, a, f in COLUMNS)] for i, r in enumerate(runs)
    ]
    rows.append(["median", *(_fmt(f, med[a]) for _, a, f in COLUMNS)])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(heads)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("-n", "--runs", type=int, default=7, help="runs; the median is reported")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds allowed per start-up")
    ap.add_argument("--target", type=float, default=1.0, help="the start-up target in seconds")
    ap.add_argument("-o", "--output", type=Path, default=None, help="JSON file to write")
    ap.add_argument("-v", "--verbose", action="store_true", help="show the daemon's stderr")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    for tool in ("ss", "curl"):
        if shutil.which(tool) is None:
            print(f"startup benchmark: `{tool}` is needed (apt-get install iproute2 curl)")
            return 2

    m = machine()
    base = svcnet_command()
    shown = " ".join(up_command(["svcnet"], 0, 0, "TMP")).replace(str(ROOT) + "/", "")
    print(
        f"svcnet start-up: {args.runs} runs of: {shown}"
        "  (ports 0: a free port, TMP: a fresh state directory, per run)"
    )
    runs: list[Run] = []
    for i in range(args.runs):
        try:
            r = one_run(base, args.timeout, args.verbose)
        except BenchError as e:
            print(f"run {i + 1} failed: {e}", file=sys.stderr)
            return 1
        runs.append(r)
        print(
            f"  run {i + 1}: up in {r.up_s:.3f}s (ready line {r.ready_s:.3f}s, "
            f"curl {r.curl_s:.3f}s), stopped clean in {r.clean_s:.3f}s"
            + (f"; LEFT OVER: {r.leftovers}" if r.leftovers else ""),
            flush=True,
        )
    med = median_of(runs)
    print()
    print(table(runs, med))
    print()
    verdict = "meets" if med["up_s"] < args.target else "MISSES"
    print(
        f"median up {med['up_s']:.3f}s: {verdict} the {args.target:g}s target "
        f"(kind 12-17 s, minikube 40-97 s to the same point); "
        f"{m['cpus']} CPUs, {m['cpu'] or 'unknown CPU'}, Python {m['python']}, {m['event_loop']}, "
        f"load {m['loadavg_1m_at_start']} at start"
    )
    leftovers = [x for r in runs for x in r.leftovers]
    if leftovers:
        print(f"NOT CLEAN after SIGTERM within {STOP_DEADLINE:g}s: {leftovers}")

    out = args.output
    if out is None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        out = RESULTS / f"startup-{stamp}.json"
    doc = {
        "benchmark": "startup",
        "command": shown,
        "executable": base,
        "machine": m,
        "target_s": args.target,
        "median": med,
        "runs": [asdict(r) for r in runs],
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 1 if leftovers else 0


if __name__ == "__main__":
    sys.exit(main())
