"""DNS benchmark: svcnet's cluster DNS against dnsmasq, same names, same machine, same run.

    python benchmarks/dns/run.py            # about 2 minutes; needs dnsperf and dnsmasq
    python benchmarks/dns/run.py --quick    # one short round, to check the set-up

What it does:

1. Starts svcnet's DnsServer (``serve.py``, under uvloop as ``svcnet up`` runs
   it) on 127.120.0.1 with N Services ``svc-<i>.default`` (ClusterIPs in
   127.121.0.0/16), and dnsmasq on 127.120.0.2 answering the very same names
   (host-record, srv-host, ``local=/cluster.local/`` for NXDOMAIN). dnsmasq
   gets ``--no-resolv --no-hosts --bind-interfaces``: it forwards nowhere; and
   svcnet has no upstream: nothing leaves the machine.
2. For each workload (``a``: A queries; ``mix``: A, AAAA/NODATA, NXDOMAIN and
   SRV), runs dnsperf against each server in turn, ``--rounds`` times,
   alternating, and reports the median queries per second, the ratio
   svcnet/dnsmasq, lost queries, and each server's CPU time per query.
3. Change latency: while dnsperf loads svcnet, moves a Service's ClusterIP
   ``--changes`` times and measures, for each, the time from sending the
   change until a query gets the new address, plus how many answers after the
   change was applied were stale (must be 0).

Every run is bounded (dnsperf ``-l``; all processes are stopped at exit).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from svcnet.testing import free_port

HERE = Path(__file__).resolve().parent
SVCNET_HOST = "127.120.0.1"
DNSMASQ_HOST = "127.120.0.2"
PREFIX = "127.121"  # service CIDR 127.121.0.0/16
ZONE = "default.svc.cluster.local"


def service_ip(i: int) -> str:
    return f"{PREFIX}.{i // 250 + 1}.{i % 250 + 1}"


def workloads(services: int) -> dict[str, list[str]]:
    a = [f"svc-{i}.{ZONE} A" for i in range(services)]
    mix: list[str] = []
    for i in range(services):
        mix.append(f"svc-{i}.{ZONE} A")
        if i % 10 == 1:
            mix.append(f"svc-{i}.{ZONE} AAAA")  # NODATA
        if i % 10 == 2:
            mix.append(f"nosuch-{i}.{ZONE} A")  # NXDOMAIN
        if i % 10 == 3:
            mix.append(f"_http._tcp.svc-{i}.{ZONE} SRV")
    return {"a": a, "mix": mix}


def dnsmasq_conf(services: int) -> str:
    lines = ["local=/cluster.local/"]
    for i in range(services):
        name = f"svc-{i}.{ZONE}"
        lines.append(f"host-record={name},{service_ip(i)}")
        lines.append(f"srv-host=_http._tcp.{name},{name},80,0,100")
    return "\n".join(lines) + "\n"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    qps: float
    sent: int
    lost: int
    cpu: float  # server CPU seconds during the run

    @property
    def cpu_us_per_query(self) -> float:
        return self.cpu / max(1, self.sent - self.lost) * 1e6


def dnsperf(
    host: str, port: int, datafile: Path, seconds: int, pid: int, args: argparse.Namespace
) -> Run:
    cmd = [
        "dnsperf",
        "-s", host,
        "-p", str(port),
        "-d", str(datafile),
        "-l", str(seconds),
        "-c", str(args.clients),
        "-T", str(args.threads),
        "-q", str(args.outstanding),
        "-t", "2",
    ]  # fmt: skip
    before = cpu_seconds(pid)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=True)
    cpu = cpu_seconds(pid) - before
    stats: dict[str, str] = {}
    for line in out.stdout.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep:
            stats[key] = value.split()[0] if value.split() else ""
    return Run(
        qps=float(stats["Queries per second"]),
        sent=int(stats["Queries sent"]),
        lost=int(stats["Queries lost"]),
        cpu=cpu,
    )


class SvcnetServer:
    def __init__(self, services: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "serve.py"), "--host", SVCNET_HOST, "--services",
             str(services), "--prefix", PREFIX],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        ready = json.loads(self._line())
        self.port = int(ready["port"])
        self.loop = str(ready["loop"])

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("serve.py exited")
        return line

    def command(self, text: str) -> Any:
        stdin: IO[str] | None = self.proc.stdin
        assert stdin is not None
        stdin.write(text + "\n")
        stdin.flush()
        return json.loads(self._line())

    def stop(self) -> None:
        try:
            self.command("quit")
        except (BrokenPipeError, RuntimeError, ValueError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def ask_a(host: str, port: int, name: str) -> set[str]:
    q = dns.message.make_query(name, "A")
    r = dns.query.udp(q, host, port=port, timeout=1)
    return {rd.to_text() for rrset in r.answer for rd in rrset if rrset.rdtype == dns.rdatatype.A}


def change_latency(
    svcnet: SvcnetServer, datafile: Path, changes: int, args: argparse.Namespace, qps: int
) -> dict[str, Any]:
    """Move svc-0's ClusterIP while dnsperf sends `qps` (0: no load); time until answers follow."""
    name = f"svc-0.{ZONE}"
    load = None
    if qps:
        load = subprocess.Popen(
            ["dnsperf", "-s", SVCNET_HOST, "-p", str(svcnet.port), "-d", str(datafile),
             "-l", str(args.change_load_seconds), "-c", str(args.clients), "-q",
             str(args.outstanding), "-Q", str(qps)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    latencies: list[float] = []
    round_trips: list[float] = []
    stale = 0
    try:
        if load is not None:
            time.sleep(0.5)  # let the load reach steady state (benchmark set-up, not a test race)
        for k in range(changes):
            new_ip = f"{PREFIX}.200.{k % 250 + 1}"
            start = time.monotonic()
            applied = float(svcnet.command(f"move svc-0 {new_ip}")["applied"])
            while True:
                got = ask_a(SVCNET_HOST, svcnet.port, name)
                if got == {new_ip}:
                    break
                stale += 1  # asked after the change was applied, answered the old address
            end = time.monotonic()
            latencies.append((end - applied) * 1000)
            round_trips.append((end - start) * 1000)
    finally:
        if load is not None:
            load.wait(timeout=args.change_load_seconds + 30)
    return {
        "load_qps": qps,
        "changes": changes,
        "p50_ms": round(statistics.median(latencies), 3),
        "max_ms": round(max(latencies), 3),
        "round_trip_p50_ms": round(statistics.median(round_trips), 3),
        "round_trip_max_ms": round(max(round_trips), 3),
        "stale_answers_after_change": stale,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--services", type=int, default=100)
    p.add_argument("--seconds", type=int, default=10, help="dnsperf -l per run")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clients", type=int, default=4, help="dnsperf -c")
    p.add_argument("--threads", type=int, default=1, help="dnsperf -T")
    p.add_argument("--outstanding", type=int, default=100, help="dnsperf -q")
    p.add_argument("--changes", type=int, default=50)
    p.add_argument("--change-load-seconds", type=int, default=5)
    p.add_argument(
        "--change-load-qps",
        type=int,
        default=50000,
        help="dnsperf -Q during the change test (a steady load, not saturation)",
    )
    p.add_argument("--quick", action="store_true", help="1 round of 3 s, 10 changes")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    if args.quick:
        args.seconds, args.rounds, args.changes, args.change_load_seconds = 3, 1, 10, 3
    missing = [tool for tool in ("dnsperf", "dnsmasq") if shutil.which(tool) is None]
    if missing:
        print(f"missing {', '.join(missing)}: apt-get install -y dnsperf dnsmasq", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="svcnet-dns-bench-") as tmp:
        tmpdir = Path(tmp)
        conf = tmpdir / "dnsmasq.conf"
        conf.write_text(dnsmasq_conf(args.services))
        files = {}
        for wl, lines in workloads(args.services).items():
            files[wl] = tmpdir / f"{wl}.txt"
            files[wl].write_text("\n".join(lines) + "\n")
        dnsmasq_port = free_port(DNSMASQ_HOST)
        dnsmasq = subprocess.Popen(
            ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
             f"--listen-address={DNSMASQ_HOST}", f"--port={dnsmasq_port}",
             "--bind-interfaces", f"--conf-file={conf}", "--pid-file=",
             "--cache-size=10000", "--user=root", "--group=root"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        svcnet = SvcnetServer(args.services)
        try:
            # Both must answer the same names the same way before anything is timed.
            deadline = time.monotonic() + 10
            while True:
                try:
                    if ask_a(DNSMASQ_HOST, dnsmasq_port, f"svc-1.{ZONE}") == {service_ip(1)}:
                        break
                except (dns.exception.Timeout, OSError):
                    if time.monotonic() > deadline or dnsmasq.poll() is not None:
                        raise RuntimeError("dnsmasq did not start") from None
            assert ask_a(SVCNET_HOST, svcnet.port, f"svc-1.{ZONE}") == {service_ip(1)}
            results: dict[str, Any] = {
                "machine": f"{os.cpu_count()} CPUs",
                "svcnet_loop": svcnet.loop,
                "settings": {
                    k: getattr(args, k)
                    for k in ("services", "seconds", "rounds", "clients", "threads", "outstanding")
                },
                "workloads": {},
            }
            for wl, datafile in files.items():
                runs: dict[str, list[Run]] = {"svcnet": [], "dnsmasq": []}
                for _ in range(args.rounds):
                    runs["svcnet"].append(
                        dnsperf(SVCNET_HOST, svcnet.port, datafile, args.seconds,
                                svcnet.proc.pid, args)
                    )  # fmt: skip
                    runs["dnsmasq"].append(
                        dnsperf(DNSMASQ_HOST, dnsmasq_port, datafile, args.seconds,
                                dnsmasq.pid, args)
                    )  # fmt: skip
                row: dict[str, Any] = {}
                for server, rs in runs.items():
                    row[server] = {
                        "qps_median": round(statistics.median(r.qps for r in rs)),
                        "qps_runs": [round(r.qps) for r in rs],
                        "lost": sum(r.lost for r in rs),
                        "sent": sum(r.sent for r in rs),
                        "cpu_us_per_query": round(
                            statistics.median(r.cpu_us_per_query for r in rs), 2
                        ),
                    }
                row["ratio"] = round(row["svcnet"]["qps_median"] / row["dnsmasq"]["qps_median"], 3)
                results["workloads"][wl] = row
            results["change_latency"] = [
                change_latency(svcnet, files["a"], args.changes, args, 0),
                change_latency(svcnet, files["a"], args.changes, args, args.change_load_qps),
            ]
            results["svcnet_stats"] = svcnet.command("stats")
        finally:
            svcnet.stop()
            dnsmasq.terminate()
            try:
                dnsmasq.wait(timeout=10)
            except subprocess.TimeoutExpired:
                dnsmasq.kill()
                dnsmasq.wait()

    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    ok = all(
        row["ratio"] >= 1.0 and row["svcnet"]["lost"] == 0 for row in results["workloads"].values()
    )
    ok = ok and all(
        cl["max_ms"] <= 10 and cl["stale_answers_after_change"] == 0
        for cl in results["change_latency"]
    )
    print(
        "targets (>= 1.0x dnsmasq, 0 lost, changes visible within 10 ms):",
        "met" if ok else "NOT met",
    )
    return 0


def report(results: dict[str, Any]) -> str:
    s = results["settings"]
    lines = [
        f"svcnet DNS vs dnsmasq: {s['services']} Services, dnsperf -l {s['seconds']} "
        f"-c {s['clients']} -T {s['threads']} -q {s['outstanding']}, median of {s['rounds']}, "
        f"{results['machine']}, svcnet on {results['svcnet_loop']}",
        "",
        "| workload | svcnet qps | dnsmasq qps | ratio | lost (svcnet/dnsmasq) "
        "| CPU µs/query (svcnet/dnsmasq) |",
        "|---|---|---|---|---|---|",
    ]
    for wl, row in results["workloads"].items():
        sv, dm = row["svcnet"], row["dnsmasq"]
        lines.append(
            f"| {wl} | {sv['qps_median']:,} | {dm['qps_median']:,} | {row['ratio']:.2f}x "
            f"| {sv['lost']}/{dm['lost']} | {sv['cpu_us_per_query']}/{dm['cpu_us_per_query']} |"
        )
    lines.append("")
    for cl in results["change_latency"]:
        load = f"under {cl['load_qps']:,} qps" if cl["load_qps"] else "idle"
        lines.append(
            f"Service change, {load} ({cl['changes']} changes): from the store update to the "
            f"first answer with the new address p50 {cl['p50_ms']} ms, max {cl['max_ms']} ms; "
            f"including the control channel p50 {cl['round_trip_p50_ms']} ms, "
            f"max {cl['round_trip_max_ms']} ms; stale answers after a change: "
            f"{cl['stale_answers_after_change']}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
