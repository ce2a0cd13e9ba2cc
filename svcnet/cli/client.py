"""The one place where the CLI speaks HTTP to the API server.

Plain requests and streams (``logs -f``, watches) use the stdlib
``http.client``: every CLI invocation is a fresh process, and importing
aiohttp costs more start-up time than most commands take in total. Only the
WebSocket attach of ``run -i`` needs aiohttp, and imports it itself.

Every non-2xx answer becomes an ``ApiStatusError`` carrying a Kubernetes
``Status``: the server's own when it sent one, or the generic one client-go
builds from the HTTP code (``NewGenericServerResponse``), so the printer only
ever deals with Status objects.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from svcnet import credentials
from svcnet.k8s import media
from svcnet.k8s.kinds import Kind
from svcnet.k8s.objects import Obj

DEFAULT_SERVER = "https://127.0.0.1:6443"
SERVER_ENV = "SVCNET_SERVER"

ACCEPT_JSON = media.JSON
ACCEPT_TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"

# client-go's NewGenericServerResponse: what a bare HTTP code means.
_GENERIC: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    403: ("Forbidden", "the server does not allow access to the requested resource"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    410: ("Gone", "the server has asked for the client to retry"),
    415: (
        "UnsupportedMediaType",
        "the server responded with the status code 415 but did not return more information",
    ),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: (
        "TooManyRequests",
        "the server has received too many requests and has asked us to try again later",
    ),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted"),
}


def default_server() -> str:
    return os.environ.get(SERVER_ENV) or DEFAULT_SERVER


class ApiStatusError(Exception):
    """An error answer from the API server, as a Kubernetes Status dict."""

    def __init__(self, status: Obj) -> None:
        super().__init__(str(status.get("message") or ""))
        self.status = status

    @property
    def code(self) -> int:
        return int(self.status.get("code") or 0)

    @property
    def reason(self) -> str:
        return str(self.status.get("reason") or "")

    @property
    def message(self) -> str:
        return str(self.status.get("message") or "")

    def with_message(self, message: str) -> ApiStatusError:
        return ApiStatusError({**self.status, "message": message})


class ConnectError(Exception):
    """The server could not be reached; str() is kubectl's wording."""


def status_from_response(code: int, body: bytes) -> Obj:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("kind") == "Status":
        data.setdefault("code", code)
        return data
    reason, message = _GENERIC.get(code, ("InternalError", ""))
    text = body.decode("utf-8", "replace").strip()
    if code not in _GENERIC:
        reason = "InternalError"
        message = (
            f'an error on the server ("{text}") has prevented the request from succeeding'
            if text
            else "an error on the server has prevented the request from succeeding"
        )
    return {
        "kind": "Status",
        "status": "Failure",
        "reason": reason,
        "message": message,
        "code": code,
    }


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Client:
    """A small Kubernetes API client over http.client (keep-alive, one connection)."""

    def __init__(
        self,
        server: str,
        timeout: float | None = 60.0,
        auth: credentials.ClientAuth | None = None,
    ) -> None:
        url = urllib.parse.urlsplit(server if "://" in server else f"https://{server}")
        if url.scheme not in ("http", "https"):
            raise ConnectError(f"unsupported server URL scheme {url.scheme!r} in {server!r}")
        self.server = server
        self.scheme = url.scheme
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.prefix = url.path.rstrip("/")
        self.timeout = timeout
        self.auth = auth or credentials.for_server(self.host, self.port)
        """The cluster's token and CA: $SVCNET_TOKEN/$SVCNET_CA, else its state directory."""
        self.ssl_context: ssl.SSLContext | None = None
        if self.scheme == "https":
            ca = self.auth.ca_path.read_bytes() if self.auth.ca_path else None
            self.ssl_context = credentials.client_context(ca)
        self._conn: http.client.HTTPConnection | None = None

    @property
    def headers(self) -> dict[str, str]:
        """Authorization, over TLS only: kubectl never sends a token in the clear."""
        if self.scheme == "https" and self.auth.token:
            return {"Authorization": f"Bearer {self.auth.token}"}
        return {}

    def unauthorized_hint(self) -> str:
        """What to do about a 401: where the credential was looked for."""
        where = self.auth.looked_in
        if self.auth.token or where is None:
            return "svcnet: the server refused this token ($SVCNET_TOKEN or the state directory)"
        return (
            f"svcnet: no credential for {self.server} in {where} (the state directory of the "
            "svcnet serving there); run as the user who started it, or set SVCNET_STATE_DIR "
            "(svcnet up --state-dir), or SVCNET_TOKEN and SVCNET_CA"
        )

    # --- connections ---

    def _new_connection(self, timeout: float | None) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=self.ssl_context
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _refused(self) -> ConnectError:
        netloc = f"{self.host}:{self.port}"
        return ConnectError(
            f"The connection to the server {netloc} was refused - "
            "did you specify the right host or port?"
        )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        q = {k: v for k, v in (query or {}).items() if v is not None}
        qs = urllib.parse.urlencode(q, doseq=True)
        return f"{self.prefix}{path}" + (f"?{qs}" if qs else "")

    def ws_url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        scheme = "wss" if self.scheme == "https" else "ws"
        return f"{scheme}://{self.host}:{self.port}{self.url(path, query)}"

    # --- plain requests ---

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = ACCEPT_JSON,
        accept: str = ACCEPT_JSON,
    ) -> Response:
        """One request; any HTTP answer is returned (errors are not raised here)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": accept, "User-Agent": "svcnet-cli", **self.headers}
        if data is not None:
            headers["Content-Type"] = content_type
        target = self.url(path, query)
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = self._new_connection(self.timeout)
            try:
                self._conn.request(method, target, body=data, headers=headers)
                resp = self._conn.getresponse()
                payload = resp.read()
            except ConnectionRefusedError:
                self.close()
                raise self._refused() from None
            except ssl.SSLCertVerificationError as e:
                self.close()
                raise ConnectError(
                    f"Unable to connect to the server: {e.verify_message}\n"
                    f"{self.unauthorized_hint()}"
                ) from None
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection the server closed meanwhile: retry
                # once on a fresh one (requests here are idempotent or dry).
                self.close()
                if attempt == 2:
                    raise
                continue
            except OSError as e:
                self.close()
                raise ConnectError(f"Unable to connect to the server: {e}") from None
            if resp.getheader("Connection", "").lower() == "close":
                self.close()
            return Response(resp.status, payload, resp.getheader("Content-Type", ""))
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request whose error answers raise ApiStatusError; returns the JSON body."""
        resp = self.request(method, path, **kwargs)
        if resp.status >= 400:
            raise ApiStatusError(status_from_response(resp.status, resp.body))
        return resp.json()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    # --- streams ---

    @contextmanager
    def stream(
        self, path: str, query: Mapping[str, Any] | None = None, accept: str = ACCEPT_JSON
    ) -> Iterator[http.client.HTTPResponse]:
        """A GET whose body is read as it arrives (logs -f, watch), on its own connection."""
        conn = self._new_connection(None)
        try:
            try:
                conn.request(
                    "GET", self.url(path, query), headers={"Accept": accept, **self.headers}
                )
                resp = conn.getresponse()
            except ConnectionRefusedError:
                raise self._refused() from None
            except OSError as e:
                raise ConnectError(f"Unable to connect to the server: {e}") from None
            if resp.status >= 400:
                raise ApiStatusError(status_from_response(resp.status, resp.read()))
            yield resp
        finally:
            conn.close()

    def watch(
        self, kind: Kind, namespace: str | None, name: str, rv: str, timeout_seconds: int = 300
    ) -> Iterator[Obj]:
        """Watch events for one object, from resourceVersion rv, until the server closes."""
        query = {
            "fieldSelector": f"metadata.name={name}",
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
            "watch": "true",
        }
        with self.stream(kind.collection_path(namespace), query) as resp:
            while True:
                line = resp.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)

    def wait_for(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        done: Callable[[Obj | None], bool],
        timeout: float | None = None,
    ) -> Obj | None:
        """Block until done(object) holds (None: the object is gone), like kubectl's
        waits: GET, then watch from that resourceVersion; GET again when the
        watch ends. Raises TimeoutError after timeout seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        backoff = 0.05
        while True:
            try:
                obj: Obj | None = self.get(kind.object_path(namespace, name))
            except ApiStatusError as e:
                if e.code != 404:
                    raise
                obj = None
            if done(obj):
                return obj
            assert obj is not None
            rv = str((obj.get("metadata") or {}).get("resourceVersion") or "0")
            remaining = 300.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out waiting for {kind.plural}/{name}")
            saw_event = False
            for event in self.watch(kind, namespace, name, rv, max(1, math.ceil(remaining))):
                kind_of_event = event.get("type")
                if kind_of_event == "ERROR":
                    break  # e.g. 410 Expired: start over from a fresh GET
                if kind_of_event not in ("ADDED", "MODIFIED", "DELETED"):
                    continue
                saw_event = True
                current = None if kind_of_event == "DELETED" else event.get("object")
                if done(current):
                    return current
            # A server that ends watches at once must not turn this into a
            # busy loop: back off (bounded) until a watch delivers events.
            if not saw_event:
                time.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
            else:
                backoff = 0.05


def kind_name(kind: Kind) -> str:
    """`service`, `replicaset.apps`: how kubectl names a type in its messages."""
    return f"{kind.kind.lower()}.{kind.group}" if kind.group else kind.kind.lower()
