"""The routing table: Ingresses merged into servers and locations as ingress-nginx does.

Pure functions of the objects (no IO), mirroring ingress-nginx's
``createServers`` / ``getBackendServers`` (internal/ingress/controller/
controller.go) and the nginx matching they rely on:

- One server per host (exact, or ``*.foo.com``: one more DNS label, never
  two, as ingress-nginx's ``~^(?<subdomain>[\\w-]+)\\.foo\\.com$``), plus the
  default server ``_`` for rules without a host and Hosts nothing names.
- Ingresses are merged oldest first (creationTimestamp, then namespace/name
  descending, ``sortIngressSlice``): the first Ingress to name a host sets its
  root location's backend (its ``spec.defaultBackend``, else the controller's
  404) and its certificate; a path already defined for a host with the same
  pathType is kept as the first Ingress defined it.
- The default server's root goes to the ``spec.defaultBackend`` of the first
  Ingress without rules (the catch-all), else to the 404.
- Path types become nginx locations (``updateServerLocations``): ``Exact``
  ``/foo`` is ``location = /foo``; ``Prefix`` ``/foo`` is ``= /foo`` plus
  ``/foo/`` (so it matches ``/foo/bar`` and not ``/foobar``);
  ``ImplementationSpecific`` is a plain nginx prefix location, as ingress-nginx
  writes it without use-regex (``/foo`` then also matches ``/foobar``).
- A request takes the exact location if there is one, else the longest
  prefix (nginx's order, regexes aside).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

from svcnet.k8s.objects import Obj
from svcnet.k8s.timestamps import parse_time
from svcnet.k8s.wellknown import (
    DEFAULT_INGRESS_CLASS,
    INGRESS_CLASS_ANNOTATION,
    INGRESS_NGINX_CONTROLLER,
)

DEFAULT_SERVER = "_"
INGRESS_CLASS = "nginx"
"""The class svcnet creates at bootstrap, as minikube's and kind's ingress-nginx setups do,
and the value of the old `kubernetes.io/ingress.class` annotation ingress-nginx accepts."""


@dataclass(frozen=True)
class Backend:
    """A Service port an Ingress routes to (an upstream, in nginx's words)."""

    namespace: str
    service: str
    port: int | str
    """The IngressServiceBackend's port: a number, or a Service port's name."""


@dataclass(frozen=True)
class Location:
    path: str
    exact: bool
    backend: Backend | None
    """None: the controller's own 404 (the default backend)."""
    ingress: tuple[str, str] = ("", "")
    """(namespace, name) of the Ingress that defined it."""


@dataclass
class Server:
    host: str
    exact: dict[str, Location] = field(default_factory=dict)
    prefixes: list[Location] = field(default_factory=list)
    """Longest first."""
    tls: tuple[str, str] | None = None
    """(namespace, secretName) of its certificate; ("", "") for the default certificate."""

    def match(self, path: str) -> Location | None:
        loc = self.exact.get(path)
        if loc is not None:
            return loc
        for loc in self.prefixes:
            if path.startswith(loc.path):
                return loc
        return None


@dataclass
class Routes:
    servers: dict[str, Server]
    """By host; wildcard hosts keyed as written (``*.foo.com``)."""
    default: Server

    def server_for(self, host: str) -> Server:
        """The server for a request's Host (lower-cased, port removed)."""
        server = self.servers.get(host)
        if server is not None:
            return server
        label, dot, rest = host.partition(".")
        if dot and label and _is_label(label):
            server = self.servers.get("*." + rest)
            if server is not None:
                return server
        return self.default

    def tls_for(self, sni: str) -> tuple[str, str] | None:
        server = self.server_for(sni)
        return server.tls if server is not self.default else None


def _is_label(s: str) -> bool:
    return all(c.isalnum() or c in "-_" for c in s)


# --- which Ingresses are ours ----------------------------------------------------------


def our_classes(classes: Iterable[Obj]) -> tuple[set[str], bool]:
    """(names of the IngressClasses ingress-nginx's controller value names, whether one
    of them is the default class)."""
    names: set[str] = set()
    default = False
    for c in classes:
        if (c.get("spec") or {}).get("controller") != INGRESS_NGINX_CONTROLLER:
            continue
        md = c.get("metadata") or {}
        names.add(str(md.get("name")))
        if (md.get("annotations") or {}).get(DEFAULT_INGRESS_CLASS) == "true":
            default = True
    return names, default


def served(ingress: Obj, classes: set[str], default: bool) -> bool:
    """ingress-nginx's GetIngressClass: ingressClassName naming one of its classes, else
    the annotation with its value, else (no class at all) when its class is the default,
    as --watch-ingress-without-class does for minikube's and kind's setups."""
    spec = ingress.get("spec") or {}
    name = spec.get("ingressClassName")
    if name is not None:
        return str(name) in classes
    annotation = ((ingress.get("metadata") or {}).get("annotations") or {}).get(
        INGRESS_CLASS_ANNOTATION
    )
    if annotation is not None:
        return bool(annotation == INGRESS_CLASS)
    return default


def merge_order(ingresses: Iterable[Obj]) -> list[Obj]:
    """sortIngressSlice: oldest first; equal timestamps by namespace/name, descending."""

    def ts(o: Obj) -> float:
        t = parse_time((o.get("metadata") or {}).get("creationTimestamp"))
        return t.timestamp() if t else 0.0

    def key(o: Obj) -> str:
        md = o.get("metadata") or {}
        return f"{md.get('namespace', '')}/{md.get('name', '')}"

    out = sorted(ingresses, key=key, reverse=True)
    out.sort(key=ts)
    return out


# --- building ---------------------------------------------------------------------------


def _backend(namespace: str, backend: Obj | None) -> Backend | None:
    svc = (backend or {}).get("service")
    if not isinstance(svc, dict):
        return None  # resource backends are not served (ingress-nginx skips them too)
    port = svc.get("port") or {}
    return Backend(
        namespace, str(svc.get("name") or ""), port.get("number") or str(port.get("name") or "")
    )


def _tls_secret(host: str, ingress: Obj) -> tuple[str, str] | None:
    """extractTLSSecretName, by name only: the secretName of the TLS entry listing the
    host ("" in it: the default certificate); None when the Ingress has no TLS entry for
    it. (ingress-nginx also tries each entry's certificate against the host; the
    certificate store does that, see certs.py.)"""
    tls = (ingress.get("spec") or {}).get("tls") or []
    if not tls:
        return None
    ns = str(ingress["metadata"].get("namespace") or "")
    for entry in tls:
        if any(str(h).lower() == host for h in entry.get("hosts") or []):
            return ns, str(entry.get("secretName") or "")
    named = [str(e.get("secretName")) for e in tls if e.get("secretName")]
    # A host not listed: the entries' certificates may still cover it (by SAN); the
    # first named one is tried, the default certificate otherwise.
    return (ns, named[0]) if named else (ns, "")


def build(ingresses: Iterable[Obj]) -> Routes:
    """The routing table for the Ingresses this controller serves."""
    ordered = merge_order(ingresses)
    default = Server(DEFAULT_SERVER)
    root: dict[str, Location] = {DEFAULT_SERVER: Location("/", False, None)}
    servers: dict[str, Server] = {DEFAULT_SERVER: default}
    # createServers: one server per host; the first Ingress naming it sets its root.
    for ing in ordered:
        md, spec = ing["metadata"], ing.get("spec") or {}
        ns, key = str(md.get("namespace") or ""), (str(md.get("namespace") or ""), str(md["name"]))
        own_default = _backend(ns, spec.get("defaultBackend"))
        rules = spec.get("rules") or []
        if own_default is not None and not rules and root[DEFAULT_SERVER].backend is None:
            root[DEFAULT_SERVER] = Location("/", False, own_default, key)
        for rule in rules:
            host = str(rule.get("host") or "").lower() or DEFAULT_SERVER
            if host in servers:
                continue
            servers[host] = Server(host)
            root[host] = Location("/", False, own_default, key)
    # TLS: the first Ingress with a TLS section for a host gives its certificate.
    for ing in ordered:
        for rule in (ing.get("spec") or {}).get("rules") or []:
            host = str(rule.get("host") or "").lower()
            if not host or servers[host].tls is not None:
                continue
            servers[host].tls = _tls_secret(host, ing)
    # Locations, first definition of (path, pathType) wins over later ones.
    defined: dict[str, dict[tuple[str, str], Location]] = {h: {} for h in servers}
    for ing in ordered:
        md = ing["metadata"]
        ns, key = str(md.get("namespace") or ""), (str(md.get("namespace") or ""), str(md["name"]))
        for rule in (ing.get("spec") or {}).get("rules") or []:
            host = str(rule.get("host") or "").lower() or DEFAULT_SERVER
            for p in (rule.get("http") or {}).get("paths") or []:
                backend = _backend(ns, p.get("backend"))
                if backend is None:
                    continue
                path = str(p.get("path") or "") or "/"
                typ = str(p.get("pathType") or "ImplementationSpecific")
                if path == "/" and typ != "Exact":
                    # The root location: it replaces the server's default backend once.
                    slot = ("/", "Prefix")
                    if slot not in defined[host]:
                        defined[host][slot] = root[host] = Location("/", False, backend, key)
                    continue
                slot = (path, typ)
                if slot not in defined[host]:
                    defined[host][slot] = Location(path, typ == "Exact", backend, key)
    for host, server in servers.items():
        _locations(server, root[host], defined[host].items())
    return Routes(servers, default)


def _locations(
    server: Server, root: Location, defined: Iterable[tuple[tuple[str, str], Location]]
) -> None:
    """updateServerLocations: Prefix /foo becomes `= /foo` and `/foo/`."""
    exact: dict[str, Location] = {}
    prefixes: dict[str, Location] = {"/": root}
    items = list(defined)
    for (path, typ), loc in items:
        if typ == "Exact":
            exact[path] = loc
    for (path, typ), loc in items:
        if typ == "Exact" or path == "/":
            continue
        if typ == "Prefix":
            if path not in exact:
                exact[path] = Location(path, True, loc.backend, loc.ingress)
            slashed = path if path.endswith("/") else path + "/"
            prefixes.setdefault(slashed, Location(slashed, False, loc.backend, loc.ingress))
        else:
            prefixes.setdefault(path, loc)
    server.exact = exact
    server.prefixes = sorted(prefixes.values(), key=lambda x: len(x.path), reverse=True)


# --- requests --------------------------------------------------------------------------


class BadPath(ValueError):
    pass


def normalize(target: str) -> str:
    """The path nginx matches locations against: the request target without its query,
    percent-decoded, with `//` merged and `.`/`..` resolved; BadPath if it climbs above
    the root or is not origin-form."""
    path = target.split("?", 1)[0].split("#", 1)[0]
    if path.startswith(("http://", "https://")):
        rest = path.split("://", 1)[1]
        path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    if not path.startswith("/"):
        raise BadPath(target)
    path = unquote(path, errors="strict")
    if "\x00" in path:
        raise BadPath(target)
    trailing = path.endswith(("/", "/.", "/.."))
    parts: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if not parts:
                raise BadPath(target)
            parts.pop()
            continue
        parts.append(seg)
    out = posixpath.join("/", *parts)
    return out + "/" if trailing and out != "/" else out


def host_of(value: str) -> str:
    """A Host header's host: lower-case, without port or trailing dot."""
    host = value.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return host.rstrip(".")
