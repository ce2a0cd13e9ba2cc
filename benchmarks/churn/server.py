"""The churn benchmark's pod: HTTP on $POD_IP:8080 answering its pod name.

`GET /` answers `200 <HOSTNAME>`, `GET /healthz` answers 200 (the readiness
probe). On SIGTERM it behaves as a well-written service does: it stops
accepting, finishes the requests in flight, then exits. SIGKILL (the crash
half of the benchmark) gives it no such chance.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = os.environ.get("HOSTNAME", "?").encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffered, so that head and body leave in one write when the handler
    # returns, as nginx and Go's net/http send a small response. Unbuffered
    # (http.server's default) they are two writes, and a SIGKILL between them
    # leaves a client with a head and no body: a response that had begun, which
    # no L4 proxy may replay, so it would measure the server, not the proxy.
    wbufsize = 64 * 1024

    def do_GET(self) -> None:
        body = b"ok" if self.path == "/healthz" else NAME
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    # socketserver's backlog is 5. Past it the kernel drops a SYN and the client
    # sends it again a second later, by when a pod being deleted has closed
    # its listener: a refused connection that only a short queue caused.
    # Servers people deploy queue far more (nginx 511, Go SOMAXCONN).
    request_queue_size = 511


def main() -> int:
    server = Server((os.environ.get("POD_IP") or "127.0.0.1", 8080), Handler)
    server.daemon_threads = False  # server_close() joins the requests in flight
    server.block_on_close = True

    def on_term(_sig: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    print("start server", flush=True)
    server.serve_forever(poll_interval=0.05)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
