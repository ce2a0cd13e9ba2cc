"""gb-frontend (google-samples), the guestbook tutorial's PHP frontend, as a stdlib-only script.

The image is php:7.4-apache with the sample's php-redis directory as its document root
(GoogleCloudPlatform/kubernetes-engine-samples, quickstarts/guestbook/php-redis). Here,
on $POD_IP:80:

- `/` (Apache's DirectoryIndex) and `/index.html`: the guestbook page, and
  `/controllers.js` its script, which read the entries on load and, on Submit, write
  them all back joined with commas, as the sample's Angular page does (this page is
  written for svcnet and needs nothing from a CDN);
- `/guestbook.php`: guestbook.php line for line. With `cmd=set` it runs
  `SET guestbook <value>` on redis-leader and prints `{"message": "Updated"}`; with any
  other `cmd` it runs `GET guestbook` on redis-follower and prints `{"data": "<value>"}`
  with the value pasted in unescaped (a missing key prints an empty string), both as
  `application/json`; without `cmd` it shows phpinfo(). The Redis hosts are those
  names, resolved through the pod's resolv.conf, or REDIS_LEADER_SERVICE_HOST /
  REDIS_FOLLOWER_SERVICE_HOST when GET_HOSTS_FROM is `env`. The `key` parameter of
  older versions of the sample is ignored, as the PHP now ignores it. PHP's notices
  and uncaught Predis exceptions are printed into the body as display_errors=1
  prints them, with status 200;
- anything else: Apache's 404 page.

Apache's limits bound every request: a request line or header line of 8190 bytes
(414/400), 100 header fields, a body of 1 MiB (it is read and discarded, as the PHP
ignores it), 5 s of keep-alive, and 150 connections served at once (more wait in
the listen queue, as with MaxRequestWorkers). Replies from Redis are bounded to
8 MiB. The access log is Apache's `combined` format on stdout.

A thread per connection keeps the request handling straight-line, as in nginx.py.
"""

from __future__ import annotations

import hashlib
import html
import os
import socket
import sys
import threading
import time
import urllib.parse

PORT = 80
SERVER = "Apache/2.4.38 (Debian)"
PHP = "PHP/7.4.33"
LINE_LIMIT = 8190
FIELDS_LIMIT = 100
BODY_LIMIT = 1024 * 1024
KEEPALIVE = 5.0
MAX_WORKERS = 150
REDIS_REPLY_LIMIT = 8 * 1024 * 1024
SCRIPT = "/var/www/html/guestbook.php"
ABSTRACT_CONNECTION = "/var/www/html/vendor/predis/predis/src/Connection/AbstractConnection.php"

INDEX = b"""<html>
  <head>
    <title>Guestbook</title>
    <script src="controllers.js"></script>
  </head>
  <body>
    <div style="width: 50%; margin-left: 20px">
      <h2>Guestbook</h2>
      <form id="guestbook">
        <fieldset>
          <input id="msg" placeholder="Messages" type="text" name="input"><br>
          <button type="submit">Submit</button>
        </fieldset>
      </form>
      <div id="messages"></div>
    </div>
  </body>
</html>
"""

CONTROLLERS = b"""// The guestbook page's behaviour: every entry lives in one Redis string, the
// entries joined with commas; the page reads it on load and writes it whole.
var messages = [];

function show() {
  var list = document.getElementById("messages");
  list.textContent = "";
  messages.forEach(function (m) {
    var div = document.createElement("div");
    div.textContent = m;
    list.appendChild(div);
  });
}

document.addEventListener("DOMContentLoaded", function () {
  fetch("guestbook.php?cmd=get").then(function (r) { return r.json(); }).then(function (d) {
    messages = d.data ? d.data.split(",") : [];
    show();
  });
  document.getElementById("guestbook").addEventListener("submit", function (e) {
    e.preventDefault();
    var input = document.getElementById("msg");
    messages.push(input.value);
    input.value = "";
    show();
    fetch("guestbook.php?cmd=set&value=" + encodeURIComponent(messages.join()));
  });
});
"""

STATIC = {
    "/index.html": (INDEX, "text/html"),
    "/controllers.js": (CONTROLLERS, "application/javascript"),
}
STARTED = time.time()

_out_lock = threading.Lock()


def emit(line: str, *, err: bool = False) -> None:
    # Threads share stdout; whole lines only.
    stream = sys.stderr if err else sys.stdout
    with _out_lock:
        stream.write(line + "\n")
        stream.flush()


def signal_ready() -> None:
    fd = os.environ.get("SVCNET_READY_FD")
    if fd:
        try:
            os.write(int(fd), b"ready\n")
            os.close(int(fd))
        except (OSError, ValueError):
            pass


def http_date(t: float | None = None) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(t))


def apache_page(code: int, reason: str, text: str, host: str) -> bytes:
    return (
        '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n'
        f"<html><head>\n<title>{code} {reason}</title>\n</head><body>\n"
        f"<h1>{reason}</h1>\n<p>{text}</p>\n<hr>\n"
        f"<address>{SERVER} Server at {html.escape(host)} Port {PORT}</address>\n"
        "</body></html>\n"
    ).encode()


# --- Predis, as much as guestbook.php uses of it ----------------------------------


class PredisError(Exception):
    """An exception Predis would throw: its class and message."""

    def __init__(self, cls: str, message: str, where: str) -> None:
        super().__init__(message)
        self.cls = cls
        self.message = message
        self.where = where


def redis_call(host: str, argv: list[bytes]) -> bytes | None:
    """One command on a new connection, as each request's new Predis\\Client makes."""
    params = f"tcp://{host}:6379"
    try:
        sock = socket.create_connection((host, 6379), timeout=5.0)
    except socket.gaierror as e:
        raise PredisError(
            "Predis\\Connection\\ConnectionException",
            f"php_network_getaddresses: getaddrinfo failed: {e.strerror} [{params}]",
            f"{ABSTRACT_CONNECTION}:155",
        ) from None
    except OSError as e:
        raise PredisError(
            "Predis\\Connection\\ConnectionException",
            f"{e.strerror or 'Connection timed out'} [{params}]",
            f"{ABSTRACT_CONNECTION}:155",
        ) from None
    try:
        sock.settimeout(60.0)  # PHP's default_socket_timeout
        sock.sendall(
            b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)
        )
        reader = sock.makefile("rb")
        line = reader.readline(REDIS_REPLY_LIMIT)
        if not line.endswith(b"\r\n"):
            raise PredisError(
                "Predis\\Connection\\ConnectionException",
                f"Error while reading line from the server. [{params}]",
                f"{ABSTRACT_CONNECTION}:155",
            )
        kind, rest = line[:1], line[1:-2]
        if kind == b"-":
            raise PredisError(
                "Predis\\Response\\ServerException",
                rest.decode("utf-8", "replace"),
                "/var/www/html/vendor/predis/predis/src/Client.php:370",
            )
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            if n > REDIS_REPLY_LIMIT:
                raise PredisError(
                    "Predis\\Protocol\\ProtocolException",
                    f"Reply too long [{params}]",
                    f"{ABSTRACT_CONNECTION}:155",
                )
            data = reader.read(n + 2)
            return data[:n]
        return rest
    except (OSError, ValueError) as e:
        raise PredisError(
            "Predis\\Connection\\ConnectionException",
            f"Error while reading line from the server. ({e}) [{params}]",
            f"{ABSTRACT_CONNECTION}:155",
        ) from None
    finally:
        sock.close()


def php_fatal(e: PredisError) -> bytes:
    """An uncaught exception as PHP 7.4 prints it with display_errors=1 (html_errors)."""
    file, _, line = e.where.rpartition(":")
    return (
        f"<br />\n<b>Fatal error</b>:  Uncaught {e.cls}: {e.message} in {e.where}\n"
        f"Stack trace:\n#0 {SCRIPT}(37): Predis\\Client->__call()\n#1 {{main}}\n"
        f"  thrown in <b>{file}</b> on line <b>{line}</b><br />\n"
    ).encode()


def query_params(query: str) -> dict[str, bytes]:
    """$_GET as PHP fills it: '+' is a space, the last of a repeated name wins."""
    out: dict[str, bytes] = {}
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        key = urllib.parse.unquote_plus(name)
        if "[" in key:
            continue  # PHP makes arrays of these; guestbook.php reads none
        out[key] = urllib.parse.unquote_to_bytes(value.replace("+", " "))
    return out


def guestbook_php(params: dict[str, bytes]) -> tuple[bytes, str]:
    """guestbook.php: (body, content type)."""
    if "cmd" not in params:
        return phpinfo(), "text/html; charset=UTF-8"
    from_env = os.environ.get("GET_HOSTS_FROM") == "env"
    body = b""
    try:
        if params["cmd"] == b"set":
            host = os.environ.get("REDIS_LEADER_SERVICE_HOST", "") if from_env else "redis-leader"
            value = params.get("value")
            if value is None:
                body += (
                    b"<br />\n<b>Notice</b>:  Undefined index: value in <b>"
                    + SCRIPT.encode()
                    + b"</b> on line <b>37</b><br />\n"
                )
            redis_call(host, [b"SET", b"guestbook", value or b""])
            body += b'{"message": "Updated"}'
        else:
            host = "redis-follower"
            if from_env:
                host = os.environ.get("REDIS_FOLLOWER_SERVICE_HOST", "")
            value = redis_call(host, [b"GET", b"guestbook"])
            body += b'{"data": "' + (value or b"") + b'"}'
    except PredisError as e:
        body += php_fatal(e)
    return body, "application/json"


def phpinfo() -> bytes:
    env = "".join(
        f'<tr><td class="e">{html.escape(k)} </td><td class="v">{html.escape(v)} </td></tr>\n'
        for k, v in sorted(os.environ.items())
        if not k.startswith("SVCNET_")
    )
    return (
        "<!DOCTYPE html>\n<html><head>\n<title>PHP 7.4.33 - phpinfo()</title>"
        '<meta name="ROBOTS" content="NOINDEX,NOFOLLOW,NOARCHIVE" /></head>\n'
        '<body><div class="center">\n<table>\n<tr class="h"><td>\n'
        '<h1 class="p">PHP Version 7.4.33</h1>\n</td></tr>\n</table>\n'
        '<table>\n<tr><td class="e">System </td><td class="v">'
        f"{html.escape(' '.join(os.uname()))} </td></tr>\n"
        '<tr><td class="e">Server API </td><td class="v">Apache 2.0 Handler </td></tr>\n'
        "</table>\n<h2>Environment</h2>\n<table>\n"
        '<tr class="h"><th>Variable</th><th>Value</th></tr>\n'
        f"{env}</table>\n</div></body></html>"
    ).encode()


# --- HTTP ----------------------------------------------------------------------------


class BadRequest(Exception):
    def __init__(self, code: int, reason: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.reason = reason
        self.text = text


class Conn:
    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.buf = b""

    def line(self) -> bytes | None:
        """One line without its CRLF; None at EOF; BadRequest past the line limit."""
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line, self.buf = self.buf[:nl], self.buf[nl + 1 :]
                if len(line) > LINE_LIMIT + 1:
                    raise BadRequest(414, "Request-URI Too Long", "too long")
                return line.rstrip(b"\r")
            if len(self.buf) > LINE_LIMIT + 1:
                raise BadRequest(414, "Request-URI Too Long", "too long")
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data

    def discard(self, n: int) -> None:
        take = min(n, len(self.buf))
        self.buf = self.buf[take:]
        n -= take
        while n > 0:
            data = self.sock.recv(min(n, 65536))
            if not data:
                return
            n -= len(data)


def access_log(peer: str, request: str, code: int, size: int, headers: dict[str, str]) -> None:
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z")
    referer = headers.get("referer", "-")
    agent = headers.get("user-agent", "-")
    emit(f'{peer} - - [{stamp}] "{request}" {code} {size} "{referer}" "{agent}"')


def serve_one(c: Conn, host_ip: str) -> bool:
    """One request; False when the connection is done."""
    c.sock.settimeout(KEEPALIVE if not c.buf else 20.0)
    request = ""
    headers: dict[str, str] = {}
    try:
        first = c.line()
        if first is None:
            return False
        c.sock.settimeout(20.0)  # mod_reqtimeout's header timeout
        request = first.decode("latin-1")
        parts = request.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise BadRequest(
                400,
                "Bad Request",
                "Your browser sent a request that this server could not understand.",
            )
        count = 0
        while True:
            line = c.line()
            if line is None:
                return False
            if not line:
                break
            count += 1
            if count > FIELDS_LIMIT:
                raise BadRequest(
                    400,
                    "Bad Request",
                    "The number of request header fields exceeds this server's limit.",
                )
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise BadRequest(
                    400, "Bad Request", "Request header field is missing ':' separator."
                )
            headers[name.strip().lower()] = value.strip()
    except BadRequest as e:
        body = apache_page(e.code, e.reason, e.text, host_ip)
        head = (
            f"HTTP/1.1 {e.code} {e.reason}\r\nDate: {http_date()}\r\nServer: {SERVER}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n"
            "Content-Type: text/html; charset=iso-8859-1\r\n\r\n"
        ).encode()
        c.sock.sendall(head + body)
        access_log(c.peer, request[:LINE_LIMIT], e.code, len(head) + len(body), headers)
        return False
    method, target, version = parts
    keep = (
        "keep-alive" in headers.get("connection", "").lower()
        if version == "HTTP/1.0"
        else "close" not in headers.get("connection", "").lower()
    )
    if "chunked" in headers.get("transfer-encoding", "").lower():
        keep = False  # the body is not read: the connection cannot be reused
    else:
        try:
            length = int(headers.get("content-length", "0") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > BODY_LIMIT:
            keep = False
        else:
            c.discard(length)
    path, _, query = target.partition("?")
    if path.startswith("http://") or path.startswith("https://"):
        path = "/" + path.split("/", 3)[-1] if path.count("/") >= 3 else "/"
    path = urllib.parse.unquote(path)
    extra: list[str] = []
    code, reason = 200, "OK"
    if path == "/guestbook.php":
        body, ctype = guestbook_php(query_params(query))
        extra.append(f"X-Powered-By: {PHP}")
    elif path in ("/", "/index.html", "/controllers.js"):
        content, ctype = STATIC["/index.html" if path == "/" else path]
        if method not in ("GET", "HEAD", "POST"):
            code, reason = 405, "Method Not Allowed"
            body = apache_page(
                405,
                reason,
                f"The requested method {html.escape(method)} is not allowed for this URL.",
                host_ip,
            )
            ctype = "text/html; charset=iso-8859-1"
            extra.append("Allow: GET,POST,OPTIONS,HEAD")
        else:
            body = content
            etag = hashlib.sha1(content).hexdigest()[:13]
            extra += [
                f"Last-Modified: {http_date(STARTED)}",
                f'ETag: "{len(content):x}-{etag}"',
                "Accept-Ranges: bytes",
                "Vary: Accept-Encoding",
            ]
    else:
        code, reason = 404, "Not Found"
        body = apache_page(404, reason, "The requested URL was not found on this server.", host_ip)
        ctype = "text/html; charset=iso-8859-1"
    lines = [f"HTTP/1.1 {code} {reason}", f"Date: {http_date()}", f"Server: {SERVER}", *extra]
    lines.append(f"Content-Length: {len(body)}")
    if keep:
        lines += [f"Keep-Alive: timeout={int(KEEPALIVE)}, max=100", "Connection: Keep-Alive"]
    else:
        lines.append("Connection: close")
    lines.append(f"Content-Type: {ctype}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    payload = head if method == "HEAD" else head + body
    c.sock.sendall(payload)
    access_log(c.peer, request, code, len(payload), headers)
    return keep


def handle(sock: socket.socket, peer: str, host_ip: str, slots: threading.BoundedSemaphore) -> None:
    c = Conn(sock, peer)
    try:
        for _ in range(100):  # MaxKeepAliveRequests
            if not serve_one(c, host_ip):
                break
    except (OSError, UnicodeError):
        pass
    finally:
        sock.close()
        slots.release()


def main() -> int:
    host = os.environ.get("POD_IP") or "0.0.0.0"
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        srv.bind((host, PORT))
    except OSError as e:
        emit(
            f"(98){e.strerror}: AH00072: make_sock: could not bind to address {host}:{PORT}",
            err=True,
        )
        emit("no listening sockets available, shutting down", err=True)
        return 1
    srv.listen(511)
    now = time.strftime("%a %b %d %H:%M:%S.000000 %Y")
    emit(
        "AH00558: apache2: Could not reliably determine the server's fully qualified domain "
        f"name, using {host}. Set the 'ServerName' directive globally to suppress this message",
        err=True,
    )
    emit(
        f"[{now}] [mpm_prefork:notice] [pid {os.getpid()}] AH00163: {SERVER} {PHP} configured "
        "-- resuming normal operations",
        err=True,
    )
    emit(
        f"[{now}] [core:notice] [pid {os.getpid()}] AH00094: Command line: 'apache2 -D FOREGROUND'",
        err=True,
    )
    signal_ready()
    slots = threading.BoundedSemaphore(MAX_WORKERS)
    while True:
        slots.acquire()
        try:
            sock, addr = srv.accept()
        except OSError:
            slots.release()
            continue
        threading.Thread(target=handle, args=(sock, addr[0], host, slots), daemon=True).start()


def entrypoint(argv: list[str]) -> int:
    """docker-php-entrypoint: apache2-foreground (or options for it) serves; any other
    command runs as it would in the image, on this machine's programs."""
    if not argv or argv[0] == "apache2-foreground" or argv[0].startswith("-"):
        return main()
    signal_ready()
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        emit(f"/usr/local/bin/docker-php-entrypoint: exec: {argv[0]}: {e.strerror}", err=True)
    return 127


if __name__ == "__main__":
    try:
        sys.exit(entrypoint(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
