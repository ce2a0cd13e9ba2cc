"""A whole `svcnet up` on the repository's config/, as a user starts it.

It runs on its own CIDRs, ports and NodePort address, so it never collides
with a svcnet the developer already runs, and its DNS forwards to a loopback
address where nothing listens (never to the machine's resolver).
"""

from __future__ import annotations

import os
import re
import resource
import select
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from svcnet import credentials
from svcnet.testing import descendants, free_port, isolated_up_args, node_ip

__all__ = ["descendants"]  # tests import it from here too

ROOT = Path(__file__).resolve().parents[2]
SVCNET = [sys.executable, "-m", "svcnet"]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class Cluster:
    proc: subprocess.Popen[str]
    api_port: int
    dns_port: int
    node_ip: str
    service_cidr: str
    pod_cidr: str
    ready_line: str
    env: dict[str, str] = field(default_factory=dict)

    def cli(
        self, *args: str, input: str | None = None, check: bool = False, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SVCNET, *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=check,
            cwd=ROOT,
        )

    def api_get(self, path: str) -> bytes:
        """GET from the API as the cluster's owner (the credentials under its HOME)."""
        auth = credentials.for_server("127.0.0.1", self.api_port, self.env)
        assert auth.token and auth.ca_path, f"no credentials in {auth.looked_in}"
        req = urllib.request.Request(
            f"https://127.0.0.1:{self.api_port}{path}",
            headers={"Authorization": f"Bearer {auth.token}"},
        )
        ctx = credentials.client_context(auth.ca_path.read_bytes())
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            body: bytes = resp.read()
        return body

    def dig(self, *args: str) -> str:
        out = subprocess.run(
            ["dig", "@127.0.0.1", "-p", str(self.dns_port), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return out.stdout

    def curl(self, url: str) -> str:
        out = subprocess.run(
            ["curl", "-s", "--max-time", "10", url], capture_output=True, text=True, timeout=30
        )
        return out.stdout


def start(
    tmp: Path,
    prefix: str,
    ports: tuple[int, int] | None = None,
    fd_limit: int | None = None,
    extra: tuple[str, ...] = (),
) -> Cluster:
    """Start `svcnet up` on config/ with every address under 127.<prefix>.x; the same
    `ports` (API, DNS) and `tmp` (its HOME) start the same cluster again."""
    api_port, dns_port = ports or (free_port(), free_port())
    cmd = [
        *SVCNET,
        *isolated_up_args(str(ROOT / "config"), int(prefix), api_port, dns_port),
        *extra,
    ]
    env = dict(os.environ, SVCNET_SERVER=f"https://127.0.0.1:{api_port}", HOME=str(tmp))

    def limit() -> None:
        if fd_limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp,
        preexec_fn=limit,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    ready = ""
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        if not r:
            break
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("svcnet ready"):
            ready = line
            break
    if not ready:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"svcnet up did not become ready: {err}")
    p = int(prefix)
    return Cluster(
        proc, api_port, dns_port, node_ip(p), f"127.{p}.0.0/16", f"127.{p + 1}.0.0/16", ready, env
    )


def stop(cluster: Cluster) -> tuple[set[int], float]:
    """SIGTERM the daemon; return what outlived it and how long it took."""
    kids = descendants(cluster.proc.pid)
    t0 = time.monotonic()
    cluster.proc.send_signal(signal.SIGINT)
    cluster.proc.wait(timeout=10)
    took = time.monotonic() - t0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(p) for p in kids):
        time.sleep(0.05)
    return {p for p in kids if alive(p)}, took


IP_RE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
