"""nginx, as a stdlib-only script, in the two set-ups svcnet ships.

gihyodocker/nginx (the seed's image): its nginx.conf is `listen 80; location /
{ proxy_pass http://$BACKEND_HOST; }`. Here: listen on $POD_IP:80, forward
each request to BACKEND_HOST (`localhost` is the pod IP: containers of a pod
share its address), and write nginx's default `main` access-log line to stdout.

nginx, the official image (``--welcome``), as it starts with no configuration
of its own: `/` and `/index.html` answer the "Welcome to nginx!" page, other
paths 404, methods other than GET and HEAD 405, with the same log lines. The
image every Kubernetes tutorial starts from, so its manifests run unchanged.

Like nginx's default `proxy_http_version 1.0`, each request goes to the
backend on a fresh HTTP/1.0 connection with `Connection: close`, so the
response ends at EOF and is never chunked; the client side keeps HTTP/1.1
keep-alive. A thread per client connection keeps the code straight-line and
the start-up cheap (no asyncio import).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

PORT = 80
MAX_HEAD = 64 * 1024
SERVER = "nginx/1.19.4"
OFFICIAL_SERVER = "nginx"
"""The official image's Server header without its version (server_tokens off):
the script does not know which tag the pod asked for."""
WELCOME_PAGE = b"""<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
"""
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


def signal_ready() -> None:
    fd = os.environ.get("SVCNET_READY_FD")
    if fd:
        try:
            os.write(int(fd), b"ready\n")
            os.close(int(fd))
        except (OSError, ValueError):
            pass


_out_lock = threading.Lock()


def emit(line: str, *, err: bool = False) -> None:
    # Threads share stdout; whole lines only.
    stream = sys.stderr if err else sys.stdout
    with _out_lock:
        stream.write(line + "\n")
        stream.flush()


def error_log(msg: str) -> None:
    emit(time.strftime("%Y/%m/%d %H:%M:%S") + f" [error] {os.getpid()}#0: " + msg, err=True)


def pod_ip() -> str:
    return os.environ.get("POD_IP") or "127.0.0.1"


def backend_addr() -> tuple[str, int]:
    value = os.environ.get("BACKEND_HOST") or "localhost:8080"
    host, _, port = value.rpartition(":")
    if not host:
        host, port = value, "80"
    if host in ("localhost", "127.0.0.1", "::1"):
        host = pod_ip()
    return host, int(port)


class Reader:
    """Buffered reads from a blocking socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def head(self) -> bytes | None:
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head, self.buf = self.buf[:end], self.buf[end + 4 :]
                return head
            if len(self.buf) > MAX_HEAD or not self.fill():
                return None

    def exactly(self, n: int) -> bytes | None:
        while len(self.buf) < n:
            if not self.fill():
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self) -> bytes | None:
        while b"\r\n" not in self.buf:
            if len(self.buf) > MAX_HEAD or not self.fill():
                return None
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def chunked(self) -> bytes | None:
        body = b""
        while True:
            size_line = self.line()
            if size_line is None:
                return None
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                return None
            if size == 0:
                while True:  # trailers up to the empty line
                    t = self.line()
                    if t is None or t == b"":
                        return body
            chunk = self.exactly(size + 2)
            if chunk is None:
                return None
            body += chunk[:-2]


def parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        k, sep, v = line.partition(":")
        if sep:
            headers.append((k.strip(), v.strip()))
    return lines[0], headers


def get(headers: list[tuple[str, str]], name: str) -> str:
    for k, v in headers:
        if k.lower() == name:
            return v
    return ""


def error_page(status: str, server: str = SERVER) -> bytes:
    return (
        f"<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status}</h1></center>\r\n<hr><center>{server}</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def welcome(method: str, target: str) -> tuple[int, list[str], bytes]:
    """The official image's default server: (status code, head lines, body)."""
    path = target.partition("?")[0]
    if method not in ("GET", "HEAD"):
        status = "405 Not Allowed"
        code, ctype, page = 405, "text/html", error_page(status, OFFICIAL_SERVER)
    elif path in ("/", "/index.html"):
        status = "200 OK"
        code, ctype, page = 200, "text/html", WELCOME_PAGE
    else:
        status = "404 Not Found"
        code, ctype, page = 404, "text/html", error_page(status, OFFICIAL_SERVER)
    head = [
        f"HTTP/1.1 {status}",
        f"Server: {OFFICIAL_SERVER}",
        "Date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
        f"Content-Type: {ctype}",
        f"Content-Length: {len(page)}",
    ]
    return code, head, b"" if method == "HEAD" else page


def forward(request: bytes) -> tuple[bytes | None, str]:
    """Send one request to the backend; the raw response, or None and why not."""
    host, port = backend_addr()
    try:
        up = socket.create_connection((host, port), timeout=60)
    except OSError as e:
        return None, f"connect() failed ({e.errno}: {e.strerror}) while connecting to upstream"
    try:
        up.sendall(request)
        chunks = []
        while True:
            data = up.recv(65536)
            if not data:
                break
            chunks.append(data)
    except OSError as e:
        return None, f"recv() failed ({e.errno}: {e.strerror}) while reading upstream"
    finally:
        up.close()
    resp = b"".join(chunks)
    if b"\r\n\r\n" not in resp:
        return None, "upstream prematurely closed connection while reading response header"
    return resp, ""


def serve(client: socket.socket, peer: tuple[str, int], official: bool) -> None:
    r = Reader(client)
    with client:
        while True:
            try:
                head = r.head()
            except OSError:
                return
            if head is None:
                return
            request_line, headers = parse_head(head)
            parts = request_line.split()
            if len(parts) != 3:
                client.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                return
            method, _, version = parts
            conn_hdr = get(headers, "connection").lower()
            keep = "keep-alive" in conn_hdr if version == "HTTP/1.0" else "close" not in conn_hdr
            try:
                if "chunked" in get(headers, "transfer-encoding").lower():
                    body = r.chunked()
                else:
                    body = r.exactly(int(get(headers, "content-length") or 0))
            except (OSError, ValueError):
                body = None
            if body is None:
                return
            if official:
                status_code, resp_head, resp_body = welcome(method, parts[1])
            else:
                status_code, resp_head, resp_body = proxy(request_line, method, headers, body, peer)
            resp_head.append("Connection: keep-alive" if keep else "Connection: close")
            try:
                client.sendall(("\r\n".join(resp_head) + "\r\n\r\n").encode("latin-1") + resp_body)
            except OSError:
                return
            emit(
                f'{peer[0]} - - [{time.strftime("%d/%b/%Y:%H:%M:%S %z")}] "{request_line}" '
                f'{status_code} {len(resp_body)} "{get(headers, "referer") or "-"}" '
                f'"{get(headers, "user-agent") or "-"}" '
                f'"{get(headers, "x-forwarded-for") or "-"}"',
            )
            if not keep:
                return


def proxy(
    request_line: str,
    method: str,
    headers: list[tuple[str, str]],
    body: bytes,
    peer: tuple[str, int],
) -> tuple[int, list[str], bytes]:
    """gihyodocker/nginx's proxy_pass: (status code, head lines, body)."""
    parts = request_line.split()
    host, port = backend_addr()
    out = [f"{parts[0]} {parts[1]} HTTP/1.0", f"Host: {host}:{port}"]
    for k, v in headers:
        if k.lower() not in HOP_BY_HOP and k.lower() not in ("host", "content-length"):
            out.append(f"{k}: {v}")
    if body or method in ("POST", "PUT", "PATCH"):
        out.append(f"Content-Length: {len(body)}")
    out.append("Connection: close")
    raw, why = forward(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)
    if raw is None:
        error_log(f'*1 {why}, client: {peer[0]}, server: , request: "{request_line}"')
        status_code, status = 502, "502 Bad Gateway"
        page = error_page(status)
        resp_head = [
            f"HTTP/1.1 {status}",
            f"Server: {SERVER}",
            "Content-Type: text/html",
            f"Content-Length: {len(page)}",
        ]
        resp_body = page
    else:
        rhead, _, resp_body = raw.partition(b"\r\n\r\n")
        status_line, rheaders = parse_head(rhead)
        sp = status_line.split(" ", 2)
        status_code = int(sp[1]) if len(sp) > 1 and sp[1].isdigit() else 502
        resp_head = [f"HTTP/1.1 {' '.join(sp[1:])}", f"Server: {SERVER}"]
        for k, v in rheaders:
            if k.lower() not in HOP_BY_HOP and k.lower() not in (
                "content-length",
                "server",
            ):
                resp_head.append(f"{k}: {v}")
        if method == "HEAD":
            length = get(rheaders, "content-length")
            if length:
                resp_head.append(f"Content-Length: {length}")
            resp_body = b""
        else:
            resp_head.append(f"Content-Length: {len(resp_body)}")
    return status_code, resp_head, resp_body


def main() -> int:
    # The entrypoint's own flag; a container's args (the official image's
    # `nginx -g "daemon off;"`, say) follow it and are not ours to read.
    official = sys.argv[1:2] == ["--welcome"]
    host = pod_ip()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        srv.bind((host, PORT))
    except OSError as e:
        emit(
            f"nginx: [emerg] bind() to {host}:{PORT} failed ({e.errno}: {e.strerror})"
            + (
                " (ports below 1024 need root, CAP_NET_BIND_SERVICE or"
                " sysctl net.ipv4.ip_unprivileged_port_start=0)"
                if e.errno == 13
                else ""
            ),
            err=True,
        )
        return 1
    srv.listen(1024)
    signal_ready()
    while True:
        client, peer = srv.accept()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(client, peer, official), daemon=True).start()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
