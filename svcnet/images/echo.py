"""gihyodocker/echo: the Go server from the book, as a stdlib-only script.

The original answers every request with `Hello Docker!!` and logs, in Go's
`log` format (`2020/11/08 14:35:35 msg`, local time), `start server` once and
`received request` per request. Here it binds $POD_IP:8080 (a pod's address
stands in for its network namespace).

One selectors loop, no threads and no asyncio: start-up time is what matters
(a seed of six containers must be serving in well under a second), and the
work per request is a header scan and one send.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys
import time

PORT = 8080
BODY = b"Hello Docker!!"
MAX_HEAD = 64 * 1024


def log(msg: str) -> None:
    sys.stdout.write(time.strftime("%Y/%m/%d %H:%M:%S ") + msg + "\n")
    sys.stdout.flush()


def http_date() -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())


def signal_ready() -> None:
    fd = os.environ.get("SVCNET_READY_FD")
    if fd:
        try:
            os.write(int(fd), b"ready\n")
            os.close(int(fd))
        except (OSError, ValueError):
            pass


class Conn:
    """One client connection: buffered input, pending output, keep-alive state."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = b""
        self.outbuf = b""
        self.body_left = 0  # request body bytes still to discard
        self.close_after = False


def handle_requests(c: Conn) -> None:
    """Answer every complete request in the buffer (pipelining keeps order)."""
    while not c.close_after:
        if c.body_left:
            n = min(c.body_left, len(c.inbuf))
            c.inbuf = c.inbuf[n:]
            c.body_left -= n
            if c.body_left:
                return
        end = c.inbuf.find(b"\r\n\r\n")
        if end < 0:
            if len(c.inbuf) > MAX_HEAD:
                c.outbuf += b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                c.outbuf += b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                c.close_after = True
            return
        head = c.inbuf[:end].decode("latin-1")
        c.inbuf = c.inbuf[end + 4 :]
        lines = head.split("\r\n")
        parts = lines[0].split()
        if len(parts) != 3:
            c.outbuf += (
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            c.close_after = True
            return
        method, version = parts[0], parts[2]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        conn_hdr = headers.get("connection", "").lower()
        keep = "keep-alive" in conn_hdr if version == "HTTP/1.0" else "close" not in conn_hdr
        if "chunked" in headers.get("transfer-encoding", "").lower():
            # Go would decode it; a body nobody reads is not worth a decoder here.
            keep = False
        try:
            c.body_left = int(headers.get("content-length", "0") or 0)
        except ValueError:
            c.body_left = 0
        log("received request")
        resp = [
            "HTTP/1.1 200 OK",
            "Date: " + http_date(),
            f"Content-Length: {len(BODY)}",
            "Content-Type: text/plain; charset=utf-8",
        ]
        if not keep:
            resp.append("Connection: close")
        c.outbuf += ("\r\n".join(resp) + "\r\n\r\n").encode()
        if method != "HEAD":
            c.outbuf += BODY
        c.close_after = not keep


def main() -> int:
    host = os.environ.get("POD_IP") or "127.0.0.1"
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        srv.bind((host, PORT))
    except OSError as e:
        log(f"listen tcp {host}:{PORT}: bind: {e.strerror}")
        return 1
    srv.listen(1024)
    srv.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(srv, selectors.EVENT_READ, None)
    log("start server")
    signal_ready()

    def close(c: Conn) -> None:
        sel.unregister(c.sock)
        c.sock.close()

    while True:
        for key, events in sel.select():
            if key.data is None:
                try:
                    sock, _ = srv.accept()
                except OSError:
                    continue
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sel.register(sock, selectors.EVENT_READ, Conn(sock))
                continue
            c: Conn = key.data
            if events & selectors.EVENT_READ:
                try:
                    data = c.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError:
                    close(c)
                    continue
                if data == b"":
                    close(c)
                    continue
                if data:
                    c.inbuf += data
                    handle_requests(c)
            if c.outbuf:
                try:
                    n = c.sock.send(c.outbuf)
                    c.outbuf = c.outbuf[n:]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    close(c)
                    continue
            if not c.outbuf and c.close_after:
                close(c)
                continue
            want = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.outbuf else 0)
            if key.events != want:
                sel.modify(c.sock, want, c)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
