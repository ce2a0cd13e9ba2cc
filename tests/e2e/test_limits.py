"""A daemon under abuse keeps serving: idle and half-sent connections to the API, a
NodePort and DNS over TCP do not stop normal requests, and running out of file
descriptors pauses accepting (logged once, not per attempt) until they free up."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import dns.message
import dns.query
import pytest

from svcnet import credentials
from tests.e2e.cluster import start, stop

pytestmark = pytest.mark.slow


def test_slow_clients_everywhere_do_not_stop_normal_requests(tmp_path: Path) -> None:
    c = start(tmp_path, "174")
    held: list[socket.socket] = []
    try:
        auth = credentials.for_server("127.0.0.1", c.api_port, c.env)
        assert auth.ca_path is not None
        ctx = credentials.client_context(auth.ca_path.read_bytes())
        for _ in range(100):  # the API: a TLS handshake, then half a request head
            raw = socket.create_connection(("127.0.0.1", c.api_port), timeout=10)
            tls = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            tls.sendall(b"GET /api/v1/pods HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            held.append(tls)
        for _ in range(200):  # the NodePort: connections that never send a byte
            held.append(socket.create_connection((c.node_ip, 30026), timeout=10))
        for _ in range(100):  # DNS over TCP: a length prefix, then nothing
            s = socket.create_connection(("127.0.0.1", c.dns_port), timeout=10)
            s.sendall(b"\x00\x40")
            held.append(s)
        t0 = time.monotonic()
        assert c.curl(f"http://{c.node_ip}:30026/") == "Hello Docker!!"
        assert c.cli("get", "pods", check=True).stdout.startswith("NAME ")
        q = dns.message.make_query("echo.default.svc.cluster.local", "A")
        r = dns.query.tcp(q, "127.0.0.1", port=c.dns_port, timeout=5)
        assert r.answer
        assert time.monotonic() - t0 < 5
    finally:
        for s in held:
            s.close()
        stop(c)


def test_out_of_descriptors_pauses_accepting_and_recovers(tmp_path: Path) -> None:
    # The userspace proxy's own descriptors are the point: no socket-level balancing.
    c = start(tmp_path, "176", fd_limit=160, extra=("--socket-lb", "off"))
    held: list[socket.socket] = []
    try:
        # Each proxied connection takes two of the daemon's descriptors (client and
        # endpoint); the kernel still completes handshakes into the backlog.
        for _ in range(120):
            try:
                held.append(socket.create_connection((c.node_ip, 30026), timeout=2))
            except OSError:
                break
        # The daemon ran out: a new client waits in the backlog instead of being served.
        waiting = subprocess.run(
            ["curl", "-s", "--max-time", "2", f"http://{c.node_ip}:30026/"],
            capture_output=True,
            text=True,
        )
        assert waiting.returncode == 28, "expected the request to wait (curl time-out)"
        for s in held:
            s.close()
        held.clear()
        assert c.curl(f"http://{c.node_ip}:30026/") == "Hello Docker!!"
    finally:
        for s in held:
            s.close()
        stop(c)
    assert c.proc.stderr is not None
    err = c.proc.stderr.read()
    lines = [line for line in err.splitlines() if "accept failed" in line]
    assert 1 <= len(lines) <= 3, err[-3000:]
    assert "Too many open files" in lines[0]
    # Queued clients were accepted only with a socket for their endpoint in hand:
    # none of them was accepted and then reset for want of one (which once made
    # the request right after the release fail while the queue drained).
    assert "cannot open a socket" not in err, err[-3000:]
