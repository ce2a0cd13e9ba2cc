"""The Kubernetes-shaped REST API (kube-apiserver's HTTP layer), on aiohttp.

Requests are routed by one parser of Kubernetes paths
(``/api/v1/namespaces/{ns}/{plural}/{name}/{subresource}``, ``/apis/{group}/...``)
built from ``svcnet.k8s.kinds``, so every Kind gets every verb with no per-kind
routes. Every read and write goes through the ``Registry`` (admission,
validation, allocation); this layer routes requests to handlers, which take
what the request asks for from ``request.py``, negotiate the response form
(object, List, or ``meta.k8s.io`` Table) and map ``ApiError`` to ``Status``
JSON with its HTTP code.

Streams (watch, ``log -f``, attach) are tracked so ``stop()`` can end them:
watches get a clean end of stream, the rest are cancelled. The runner uses
``handler_cancellation`` so a client that goes away cancels its handler,
which is how a watch learns that its reader has disconnected.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web, web_protocol, web_server

from svcnet import _json
from svcnet.api import (
    discovery,
    metrics,
    openapi,
    paging,
    portforward,
    reviews,
    streams,
    tables,
    usage,
    watch,
)
from svcnet.api.request import (
    MAX_BODY,
    Target,
    apply_patch,
    check_caller,
    check_object,
    delete_options,
    drop_unknown_fields,
    dry_run,
    field_manager,
    field_selector,
    field_validation,
    include_object,
    query_bool,
    query_int,
    read_body,
    read_object,
    resolve,
    wants_table,
)
from svcnet.config import Settings, reachable
from svcnet.credentials import Credentials
from svcnet.k8s import conversion, kinds, labels, version
from svcnet.k8s.media import (
    APPLY_PATCH,
    JSON,
    JSON_PATCH,
    MERGE_PATCH,
    PATCH_TYPES,
    STRATEGIC_MERGE_PATCH,
)
from svcnet.k8s.objects import Obj
from svcnet.nodeapi import NodeApi
from svcnet.registry import ApiError, Registry, lifecycle
from svcnet.registry.errors import bad_request, internal, not_found
from svcnet.registry.scale import SCALABLE, scale_of
from svcnet.store import ReadOnlyStore

logger = logging.getLogger(__name__)


NOT_FOUND_PATH = ApiError(404, "NotFound", "the server could not find the requested resource")


def json_response(data: Any, status: int = 200, content_type: str = JSON) -> web.Response:
    return web.Response(
        body=_json.dumps(data),
        status=status,
        headers={"Content-Type": content_type},
    )


def _openapi_response(
    request: web.Request,
    body: bytes,
    etag: str,
    content_type: str,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An OpenAPI document as kube-openapi serves it (Go's http.ServeContent): a
    quoted ETag, 304 to a client that already holds it, Vary: Accept."""
    quoted = f'"{etag}"'
    out = {"Etag": quoted, "Vary": "Accept", **(headers or {})}
    match = request.headers.get("If-None-Match", "")
    if quoted in (t.strip() for t in match.split(",")) or match.strip() == "*":
        return web.Response(status=304, headers=out)
    return web.Response(body=body, headers={**out, "Content-Type": content_type})


def _warn(resp: web.Response, warnings: list[str]) -> web.Response:
    """Warnings as the API server sends them (RFC 7234 code 299); kubectl prints
    each as `Warning: <text>`."""
    for text in warnings:
        resp.headers.add("Warning", "299 - " + json.dumps(text))
    return resp


def status_response(err: ApiError) -> web.Response:
    return json_response(err.status(), err.code)


# ---------------------------------------------------------------------------
# The server


class ApiServer:
    def __init__(
        self,
        settings: Settings,
        store: ReadOnlyStore,
        registry: Registry,
        node: NodeApi | None,
        credentials: Credentials,
        stats: Mapping[str, metrics.StatsProvider] | None = None,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.names = own_names(settings)
        """Host names and addresses requests may use for this server (request.check_caller)."""
        self.stats = dict(stats or {})
        self.store = store
        self.registry = registry
        self.node = node
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._streams: set[asyncio.Task[Any]] = set()
        self._watch_queues: set[watch.WatchQueue] = set()

    # --- lifecycle ---------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the API server is not running")
        return self._port

    @property
    def url(self) -> str:
        host = reachable(self.settings.api.host)
        return f"https://[{host}]:{self.port}" if ":" in host else f"https://{host}:{self.port}"

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors, self._gate], client_max_size=MAX_BODY)
        app.router.add_get("/version", self._version)
        app.router.add_get("/version/", self._version)
        for probe in ("/healthz", "/readyz", "/livez"):
            app.router.add_get(probe, self._ok)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/debug/svcnet/stats", self._stats)
        app.router.add_get("/openapi/v2", self._openapi_v2)
        app.router.add_get("/openapi/v3", self._openapi_root)
        app.router.add_get("/openapi/v3/{gv:.*}", self._openapi_gv)
        app.router.add_get("/api/v1/nodes/{name}/proxy/configz", self._configz)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def start(self) -> None:
        host, port = self.settings.api.host, self.settings.api.port
        runner = _Runner(
            self.make_app(),
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=1.0,
            keepalive_timeout=IDLE_TIMEOUT,
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=self.credentials.server_context())
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            hint = (
                "another process (perhaps another svcnet) is using it; pick another with --api-port"
                if e.errno == 98
                else "check the address (settings api.host) and permissions"
            )
            raise OSError(
                e.errno, f"cannot listen for the API on {host}:{port}: {e.strerror}; {hint}"
            ) from e
        self._runner = runner
        addr = runner.addresses[0]
        self._port = int(addr[1])
        logger.info("API server listening on %s", self.url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for q in list(self._watch_queues):
            q.put_nowait(watch.STOP)
        watches = [t for t in self._streams if not t.done()]
        if watches:
            # Watches end cleanly on STOP; anything still running (log -f,
            # attach) is cancelled.
            _, pending = await asyncio.wait(watches, timeout=1.0)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2.0)
        await runner.cleanup()
        self._port = None

    def _track(self) -> Callable[[], None]:
        task = asyncio.current_task()
        if task is None:
            return lambda: None
        self._streams.add(task)
        return lambda: self._streams.discard(task)

    def _register_watch(self, q: watch.WatchQueue) -> Callable[[], None]:
        self._watch_queues.add(q)
        return lambda: self._watch_queues.discard(q)

    # --- plumbing ----------------------------------------------------------

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        try:
            resp: web.StreamResponse = await handler(request)
            return resp
        except ApiError as e:
            return status_response(e)
        except web.HTTPRequestEntityTooLarge:
            return status_response(
                ApiError(
                    413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_BODY}"
                )
            )
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:
            logger.exception("API request %s %s failed", request.method, request.path)
            return status_response(internal(f"{type(e).__name__}: {e}"))

    @web.middleware
    async def _gate(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        check_caller(request, self.credentials, self.names)
        resp: web.StreamResponse = await handler(request)
        return resp

    async def _version(self, request: web.Request) -> web.Response:
        return json_response(version.version_info())

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(metrics.snapshot(self.stats))

    async def _metrics(self, request: web.Request) -> web.Response:
        text = metrics.prometheus(metrics.snapshot(self.stats))
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    async def _configz(self, request: web.Request) -> web.Response:
        """The kubelet's running configuration, as its /configz answers through the API
        server's node proxy: where a pod's resolv.conf points (`svcnet exec` reads it)."""
        name = request.match_info["name"]
        nodes = kinds.BY_KIND["Node"]
        if self.store.get("Node", "", name) is None:
            raise not_found(nodes, name)
        s = self.settings
        dns_ip, _ = s.kube_dns
        return json_response(
            {
                "kubeletconfig": {
                    "kind": "KubeletConfiguration",
                    "apiVersion": "kubelet.config.k8s.io/v1beta1",
                    "clusterDomain": s.network.cluster_domain,
                    "clusterDNS": [dns_ip],
                    "cgroupDriver": "cgroupfs",
                    "address": "127.0.0.1",
                }
            }
        )

    async def _ok(self, request: web.Request) -> web.Response:
        return web.Response(text="ok", content_type="text/plain")

    async def _openapi_v2(self, request: web.Request) -> web.Response:
        media = openapi.negotiate(request.headers.get("Accept", ""), openapi.V2_OFFERED)
        if media is None:
            return web.Response(status=406, headers={"Vary": "Accept"})
        doc = await asyncio.to_thread(openapi.v2)
        if media == JSON:
            body = doc.json
        else:
            body = await asyncio.to_thread(openapi.v2_protobuf)
            media = openapi.V2_PROTOBUF  # kube-openapi answers the deprecated name so too
        resp = _openapi_response(request, body, doc.etag, media)
        # kube-openapi gzips v2 (half a megabyte as JSON) for clients that take it.
        resp.enable_compression()
        return resp

    async def _openapi_root(self, request: web.Request) -> web.Response:
        doc = await asyncio.to_thread(openapi.v3_root)
        return _openapi_response(request, doc.json, doc.etag, JSON)

    async def _openapi_gv(self, request: web.Request) -> web.Response:
        path = request.match_info["gv"].strip("/")
        media = openapi.negotiate(request.headers.get("Accept", ""), openapi.V3_OFFERED)
        doc = await asyncio.to_thread(openapi.v3_group_version, path)
        if doc is None:
            raise NOT_FOUND_PATH
        if media is None:
            return web.Response(status=406, headers={"Vary": "Accept"})
        headers: dict[str, str] = {}
        wanted = request.query.get("hash")
        if wanted:
            if wanted != doc.etag:
                # An old link from a client's cache: to the current document.
                raise web.HTTPMovedPermanently(f"/openapi/v3/{path}?hash={doc.etag}")
            expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
            headers["Cache-Control"] = "public, immutable"
            headers["Expires"] = expires.strftime("%a, %d %b %Y %H:%M:%S UTC")
        return _openapi_response(request, doc.json, doc.etag, media, headers)

    def _discovery(self, request: web.Request) -> web.Response | None:
        segs = [s for s in request.path.split("/") if s]
        accept = request.headers.get("Accept", "")
        if segs in (["api"], ["apis"]):
            core = segs == ["api"]
            if discovery.wants_aggregated(accept):
                return json_response(
                    discovery.aggregated(core), content_type=discovery.AGGREGATED_CONTENT_TYPE
                )
            if core:
                host = request.host or f"{self.settings.api.host}:{self._port}"
                return json_response(discovery.api_versions(host))
            return json_response(discovery.api_group_list())
        doc: Obj | None = None
        if len(segs) == 2 and segs[0] == "api":
            doc = discovery.api_resource_list("", segs[1])
        elif len(segs) == 2 and segs[0] == "apis":
            doc = discovery.api_group(segs[1])
        elif len(segs) == 3 and segs[0] == "apis":
            doc = discovery.api_resource_list(segs[1], segs[2])
        else:
            return None
        if doc is None:
            raise NOT_FOUND_PATH
        return json_response(doc)

    # --- resources ---------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            found = self._discovery(request)
            if found is not None:
                return found
        target = resolve(request.path)
        if target is None:
            raise NOT_FOUND_PATH
        method = request.method
        if target.kind.review:
            return await self._review(request, target)
        if not target.kind.stored:
            return self._computed(request, target)
        if target.subresource is not None:
            return await self._subresource(request, target)
        if target.name is None:
            if method == "GET":
                if query_bool(request.query, "watch"):
                    return await self._watch(request, target)
                return self._list(request, target)
            if method == "POST":
                return await self._create(request, target)
            if method == "DELETE" and "deletecollection" in target.kind.verbs:
                return await self._delete_collection(request, target)
        else:
            if method == "GET":
                return self._get(request, target)
            if method == "PUT":
                return await self._update(request, target)
            if method == "PATCH":
                return await self._patch(request, target)
            if method == "DELETE":
                return await self._delete(request, target)
        raise ApiError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )

    async def _review(self, request: web.Request, target: Target) -> web.Response:
        """SelfSubject*Review: create-only, answered and forgotten (reviews.py)."""
        if request.method != "POST" or target.name is not None or target.subresource:
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        body = check_object(await read_object(request, target.kind), target)
        return json_response(reviews.answer(target.kind, body, target.namespace, time.time()), 201)

    def _computed(self, request: web.Request, target: Target) -> web.Response:
        """metrics.k8s.io: figures the node measures when asked (usage.py)."""
        if request.method != "GET" or target.subresource is not None:
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        kind = target.kind
        if self.node is None:
            raise ApiError(503, "ServiceUnavailable", "the node's usage is not available")
        if kind.kind == "NodeMetrics":
            items = [usage.node_metrics(self.node, time.time())]
        else:
            try:
                items = usage.pod_metrics_list(
                    self.node, self.store, target.namespace, request.query.get("labelSelector")
                )
            except labels.SelectorError as e:
                raise bad_request(str(e)) from None
        if target.name is not None:
            found = [i for i in items if i["metadata"]["name"] == target.name]
            if not found:
                raise ApiError(
                    404,
                    "NotFound",
                    f'{kind.qualified_plural} "{target.name}" not found',
                    {"name": target.name, "group": kind.group, "kind": kind.plural},
                )
            return json_response(found[0])
        return json_response(
            {
                "kind": f"{kind.kind}List",
                "apiVersion": kind.api_version,
                "metadata": {},
                "items": items,
            }
        )

    def _ns(self, target: Target) -> str:
        return (target.namespace or "") if target.kind.namespaced else ""

    def _render(
        self, request: web.Request, target: Target, obj: Obj, status: int = 200
    ) -> web.Response:
        if wants_table(request):
            return json_response(
                tables.table(
                    target.kind.kind,
                    [obj],
                    dt.datetime.now(dt.UTC),
                    resource_version=str(obj["metadata"].get("resourceVersion", "")),
                    include_object=include_object(request),
                ),
                status,
            )
        return json_response(conversion.to_version(obj, target.kind), status)

    def _list(self, request: web.Request, target: Target) -> web.Response:
        kind = target.kind
        q = request.query
        labels_text, fields_text = q.get("labelSelector"), field_selector(request, kind)
        # A bad selector is refused before anything else, as the apiserver parses it first.
        self.registry.select([], labels_text, fields_text)
        got = paging.page(
            self.store,
            kind,
            (target.namespace or None) if kind.namespaced else None,
            query_int(q, "limit"),
            q.get("continue") or None,
            q.get("resourceVersion"),
            lambda items: self.registry.select(items, labels_text, fields_text),
            bool(labels_text or fields_text),
        )
        rv = str(got.resource_version)
        listmeta: Obj = {"resourceVersion": rv}
        if got.continue_token:
            listmeta["continue"] = got.continue_token
        if got.remaining is not None:
            listmeta["remainingItemCount"] = got.remaining
        if wants_table(request):
            table = tables.table(
                kind.kind,
                got.items,
                dt.datetime.now(dt.UTC),
                resource_version=rv,
                include_object=include_object(request),
            )
            table["metadata"] = {**table.get("metadata", {}), **listmeta}
            return json_response(table)
        return json_response(
            {
                "kind": f"{kind.kind}List",
                "apiVersion": kind.api_version,
                "metadata": listmeta,
                "items": [conversion.to_version(o, kind) for o in got.items],
            }
        )

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        kind = target.kind
        timeout = query_int(request.query, "timeoutSeconds")
        wr = watch.WatchRequest(
            kind=kind,
            namespace=target.namespace if kind.namespaced else None,
            label_selector=request.query.get("labelSelector"),
            field_selector=request.query.get("fieldSelector"),
            resource_version=request.query.get("resourceVersion"),
            timeout=float(timeout) if timeout and timeout > 0 else None,
            table=wants_table(request),
            include_object=include_object(request),
            send_initial_events=query_bool(request.query, "sendInitialEvents"),
        )
        untrack = self._track()
        try:
            return await watch.serve(request, wr, self.store, self.registry, self._register_watch)
        finally:
            untrack()

    def _get(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        obj = self.registry.get(target.kind, self._ns(target), target.name)
        return self._render(request, target, obj)

    async def _create(self, request: web.Request, target: Target) -> web.Response:
        directive = field_validation(request, "CreateOptions")
        body = check_object(await read_object(request, target.kind), target)
        body, warnings = drop_unknown_fields(body, target.kind, directive)
        obj = self.registry.create(
            body,
            namespace=target.namespace if target.kind.namespaced else None,
            dry_run=dry_run(request),
            field_manager=field_manager(request),
        )
        return _warn(self._render(request, target, obj, 201), warnings)

    async def _update(self, request: web.Request, target: Target) -> web.Response:
        directive = field_validation(request, "UpdateOptions")
        body = check_object(await read_object(request, target.kind), target)
        body, warnings = drop_unknown_fields(body, target.kind, directive)
        obj = self.registry.update(
            body,
            namespace=target.namespace if target.kind.namespaced else None,
            dry_run=dry_run(request),
            field_manager=field_manager(request),
        )
        return _warn(self._render(request, target, obj), warnings)

    async def _patch(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        ctype = request.content_type
        if ctype not in PATCH_TYPES:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(PATCH_TYPES)}",
            )
        ns = target.namespace if target.kind.namespaced else None
        is_dry_run = dry_run(request)
        directive = field_validation(request, "PatchOptions")
        if ctype == APPLY_PATCH:
            if not request.query.get("fieldManager"):
                raise ApiError(
                    422,
                    "Invalid",
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                    "is required for apply patch",
                )
            body = check_object(await read_object(request, target.kind), target)
            body, warnings = drop_unknown_fields(body, target.kind, directive)
            obj, created = self.registry.apply(
                body,
                namespace=ns,
                dry_run=is_dry_run,
                field_manager=request.query["fieldManager"],
                force=query_bool(request.query, "force"),
            )
            return _warn(self._render(request, target, obj, 201 if created else 200), warnings)
        body = await read_body(request)
        # Patched in the version the client named, as the API server converts first.
        live = conversion.to_version(
            self.registry.get(target.kind, self._ns(target), target.name), target.kind
        )
        patched = check_object(apply_patch(live, body, ctype, target.kind.kind), target)
        patched, warnings = drop_unknown_fields(patched, target.kind, directive)
        obj = self.registry.update(
            patched, namespace=ns, dry_run=is_dry_run, field_manager=field_manager(request)
        )
        return _warn(self._render(request, target, obj), warnings)

    def _check_preconditions(self, target: Target, obj: Obj, opts: Obj) -> None:
        pre = opts.get("preconditions") or {}
        md = obj["metadata"]
        for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            want = pre.get(field)
            if want and want != md.get(field):
                raise ApiError(
                    409,
                    "Conflict",
                    f"Precondition failed: {label} in precondition: {want}, {label} in "
                    f"object meta: {md.get(field)}",
                    {"name": md["name"], "group": target.kind.group, "kind": target.kind.plural},
                )

    async def _delete(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        opts = await delete_options(request)
        ns = self._ns(target)
        if opts.get("preconditions"):
            self._check_preconditions(target, self.registry.get(target.kind, ns, target.name), opts)
        obj = self.registry.delete(
            target.kind,
            ns,
            target.name,
            dry_run=dry_run(request) or "All" in (opts.get("dryRun") or ()),
            grace_period_seconds=opts.get("gracePeriodSeconds"),
            propagation_policy=lifecycle.policy_of(opts),
        )
        return self._render(request, target, obj)

    async def _delete_collection(self, request: web.Request, target: Target) -> web.Response:
        kind = target.kind
        opts = await delete_options(request)
        items = self.registry.list(
            kind,
            target.namespace if kind.namespaced else None,
            request.query.get("labelSelector"),
            field_selector(request, kind),
        )
        deleted = [
            self.registry.delete(
                kind,
                o["metadata"].get("namespace", ""),
                o["metadata"]["name"],
                dry_run=dry_run(request),
                grace_period_seconds=opts.get("gracePeriodSeconds"),
                propagation_policy=lifecycle.policy_of(opts),
            )
            for o in items
        ]
        return json_response(
            {
                "kind": f"{kind.kind}List",
                "apiVersion": kind.api_version,
                "metadata": {"resourceVersion": str(self.store.resource_version)},
                "items": [conversion.to_version(o, kind) for o in deleted],
            }
        )

    # --- subresources ------------------------------------------------------

    async def _subresource(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        kind, sub, method = target.kind, target.subresource, request.method
        ns = self._ns(target)
        if kind.kind == "Pod" and sub == "log" and method == "GET":
            pod = self.registry.get(kind, ns, target.name)
            untrack = self._track()
            try:
                return await streams.serve_logs(request, pod, self.node)
            finally:
                untrack()
        if kind.kind == "Pod" and sub == "attach" and method in ("GET", "POST"):
            pod = self.registry.get(kind, ns, target.name)
            untrack = self._track()
            try:
                return await streams.serve_attach(request, pod, self.node)
            finally:
                untrack()
        if kind.kind == "Pod" and sub == "exec" and method in ("GET", "POST"):
            pod = self.registry.get(kind, ns, target.name)
            untrack = self._track()
            try:
                return await streams.serve_exec(request, pod, self.node)
            finally:
                untrack()
        if kind.kind == "Pod" and sub == "portforward" and method in ("GET", "POST"):
            pod = self.registry.get(kind, ns, target.name)
            untrack = self._track()
            try:
                return await portforward.serve(request, pod, self.node)
            finally:
                untrack()
        if kind.kind in SCALABLE and sub == "scale":
            return await self._scale(request, target)
        if kind.kind == "Pod" and sub == "ephemeralcontainers":
            return await self._ephemeral_containers(request, target)
        if sub == "status" and method == "GET" and kind.has_status:
            return self._get(request, target)
        raise NOT_FOUND_PATH

    async def _ephemeral_containers(self, request: web.Request, target: Target) -> web.Response:
        """pods/ephemeralcontainers: the whole Pod in and out (since 1.22 the
        subresource's kind is Pod); `kubectl debug` PATCHes it with a strategic merge
        patch that appends one container."""
        assert target.name is not None
        ns = self._ns(target)
        if request.method == "GET":
            return self._get(request, target)
        if request.method == "PUT":
            directive = field_validation(request, "UpdateOptions")
            body = check_object(await read_object(request, target.kind), target)
        elif request.method == "PATCH":
            directive = field_validation(request, "PatchOptions")
            ctype = request.content_type
            if ctype not in (MERGE_PATCH, JSON_PATCH, STRATEGIC_MERGE_PATCH):
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: {', '.join((JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH))}",
                )
            live = self.registry.get(target.kind, ns, target.name)
            body = check_object(
                apply_patch(live, await read_body(request), ctype, target.kind.kind), target
            )
        else:
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        body, warnings = drop_unknown_fields(body, target.kind, directive)
        obj = self.registry.update_ephemeral_containers(
            body,
            ns,
            target.name,
            dry_run=dry_run(request),
            field_manager=field_manager(request),
        )
        return _warn(self._render(request, target, obj), warnings)

    async def _scale(self, request: web.Request, target: Target) -> web.Response:
        assert target.name is not None
        ns = self._ns(target)
        live = self.registry.get(target.kind, ns, target.name)
        if request.method == "GET":
            return json_response(scale_of(live))
        if request.method == "PUT":
            body = await read_body(request)
            new_scale = body if isinstance(body, dict) else {}
        elif request.method == "PATCH":
            ctype = request.content_type
            if ctype not in (MERGE_PATCH, JSON_PATCH, STRATEGIC_MERGE_PATCH):
                raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {ctype}")
            new_scale = apply_patch(scale_of(live), await read_body(request), ctype, "Scale")
        else:
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        return json_response(
            self.registry.update_scale(
                target.kind,
                ns,
                target.name,
                (new_scale.get("spec") or {}).get("replicas"),
                dry_run=dry_run(request),
                field_manager=field_manager(request),
            )
        )


HEADER_TIMEOUT = 32.0
"""kube-apiserver's ReadHeaderTimeout: a connection that has not sent a whole request
head by then is closed (a slowloris client holds nothing for long)."""
IDLE_TIMEOUT = 90.0
"""kube-apiserver's IdleTimeout for kept-alive connections."""


def own_names(settings: Settings) -> frozenset[str]:
    """Names a request's Host may carry: loopback ones, the `kubernetes` Service's, and
    the configured API address (loopback addresses are accepted as such)."""
    domain = settings.network.cluster_domain
    return frozenset(
        {
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            f"kubernetes.default.svc.{domain}",
            settings.api.host.lower(),
            settings.network.kubernetes_service_ip,
        }
    )


class _HeadTimeoutHandler(web_protocol.RequestHandler):
    """aiohttp's connection handler with a request-head time-out, which aiohttp lacks:
    a connection that has not sent a complete request head HEADER_TIMEOUT seconds
    after it opened is closed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._head_timer = asyncio.get_running_loop().call_later(HEADER_TIMEOUT, self._head_timeout)

    def _head_timeout(self) -> None:
        if self._request_count == 0 and self._current_request is None and self.transport:
            self.transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)


class _Server(web_server.Server):
    def __call__(self) -> web_protocol.RequestHandler:
        return _HeadTimeoutHandler(self, loop=self._loop, **self._kwargs)


class _Runner(web.AppRunner):
    async def _make_server(self) -> web_server.Server:
        # aiohttp builds its Server inside the app; only the handler it makes per
        # connection changes, so the class is swapped for the subclass that makes
        # ours (tests/api/test_guard.py fails if aiohttp stops calling it).
        server = await super()._make_server()
        server.__class__ = _Server
        return server
