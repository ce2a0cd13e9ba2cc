"""Programs the kernel tests run inside pods, as ``python3 -c`` source.

They are plain socket programs, unaware of any hook: whatever the kernel
makes of their addresses is what the tests check. Servers print one
``ready <address> <port>`` line once listening (what ``getsockname`` says, so
after the bind hook); each reply names the server and the peer it saw.
Clients print one JSON object per attempt.
"""

from __future__ import annotations

TCP_SERVER = r"""
import socket, sys
name, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if len(sys.argv) > 4:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(sys.argv[4]))
s.bind((host, port))
s.listen(64)
print("ready", *s.getsockname()[:2], flush=True)
while True:
    conn, peer = s.accept()
    with conn:
        conn.sendall(f"{name} {peer[0]} {peer[1]}\n".encode())
"""

TCP_CLIENT = r"""
import errno, json, socket, sys
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(count):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect((host, port))
    except OSError as e:
        print(json.dumps({"error": errno.errorcode.get(e.errno or 0, str(e))}), flush=True)
        s.close()
        continue
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(256)
        if not chunk:
            break
        data += chunk
    print(json.dumps({
        "reply": data.decode().strip(),
        "peer": list(s.getpeername()[:2]),
        "sock": list(s.getsockname()[:2]),
    }), flush=True)
    s.close()
"""

UDP_SERVER = r"""
import socket, sys
name, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((host, port))
print("ready", *s.getsockname()[:2], flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(f"{name} {peer[0]} {peer[1]}".encode(), peer)
"""

UDP_CLIENT = r"""
import json, socket, sys
host, port, count, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
family = socket.AF_INET6 if ":" in host or mode == "sendto6" else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.settimeout(10)
if mode == "connect":
    s.connect((host, port))
for _ in range(count):
    if mode == "connect":
        s.send(b"hi")
        data, src = s.recv(2048), s.getpeername()
    else:
        s.sendto(b"hi", (host, port))
        data, src = s.recvfrom(2048)
    print(json.dumps({"reply": data.decode(), "from": list(src[:2])}), flush=True)
"""

UDP_SESSION = r"""
import json, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
print("ready", flush=True)
for _ in sys.stdin:
    s.sendto(b"hi", (host, port))
    data, src = s.recvfrom(2048)
    print(json.dumps({"reply": data.decode(), "from": list(src[:2])}), flush=True)
"""

BIND = r"""
import errno, json, os, socket, sys
family, kind, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s = socket.socket(
    socket.AF_INET6 if family == "6" else socket.AF_INET,
    socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM,
)
if len(sys.argv) > 5 and family == "6":
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(sys.argv[5]))
if len(sys.argv) > 6:
    os.setgid(int(sys.argv[6]))
    os.setuid(int(sys.argv[6]))
try:
    s.bind((host, port))
except OSError as e:
    print(json.dumps({"error": errno.errorcode.get(e.errno or 0, str(e))}))
else:
    print(json.dumps({"sock": list(s.getsockname()[:2])}))
"""

MPTCP_LISTEN = r"""
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)  # IPPROTO_MPTCP
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen()
print(json.dumps({"sock": list(s.getsockname()[:2])}))
"""

HOOKS_HOLDER = r"""
import json, sys
from svcnet.kernel.sockhooks import SocketHooks
hooks = SocketHooks(affinity_entries=64, revnat_entries=64, session_entries=64)
hooks.load()
hooks.attach(sys.argv[1])
hooks.set_pod(int(sys.argv[2]), sys.argv[3], sys.argv[4])
print(json.dumps(sorted(hooks.prog_ids.values())), flush=True)
sys.stdin.read()
"""
