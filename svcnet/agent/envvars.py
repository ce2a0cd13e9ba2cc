"""A container's environment, built the way the kubelet builds it.

Order and precedence follow kubelet_pods.go `makeEnvironmentVariables`: the
Service link variables (`ECHO_SERVICE_HOST`, `ECHO_PORT_80_TCP`, ...) first,
then the container's `envFrom` ConfigMaps and Secrets (keys with their
prefix), then its own `env` (values, `$(VAR)` references to earlier variables,
fieldRef, configMapKeyRef and secretKeyRef). A missing source or key that is
not optional is the kubelet's CreateContainerConfigError, in its words.
svcnet adds `HOSTNAME` and `POD_IP` (a pod's containers share an address;
built-in images bind it).

The process does not inherit the daemon's environment, as a container does
not inherit the node's: it starts from ``base`` (PATH, HOME and the image's
ENV, which the agent gives it), under everything the pod spec sets.
"""

from __future__ import annotations

import base64
import operator
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import NamedTuple

from svcnet.k8s.objects import Obj
from svcnet.k8s.podview import service_links

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""A container's PATH when nothing else says (the Debian images' and Docker's default)."""


def host_path(path: str | None, svcnet_prefix: str, base_prefix: str) -> str:
    """The node's PATH for pods, without svcnet's own virtualenv: a pod's `python3`
    is the machine's, not the one svcnet runs in (which has svcnet's packages)."""
    if not path:
        return DEFAULT_PATH
    if os.path.realpath(svcnet_prefix) == os.path.realpath(base_prefix):
        return path  # not in a virtualenv: nothing of svcnet's own to hide
    venv = os.path.realpath(svcnet_prefix) + os.sep
    kept = [p for p in path.split(os.pathsep) if p and not os.path.realpath(p).startswith(venv)]
    return os.pathsep.join(kept) or DEFAULT_PATH


class EnvError(ValueError):
    """The container cannot be configured (kubelet: CreateContainerConfigError)."""


_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: unknown references stay as written, `$$` escapes."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _REF.sub(sub, value)


def _field_ref(pod: Obj, path: str, pod_ip: str) -> str:
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": md.get("name"),
        "metadata.namespace": md.get("namespace") or "default",
        "metadata.uid": md.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": "127.0.0.1",
        "status.hostIPs": "127.0.0.1",
    }
    if path in simple:
        return str(simple[path] or "")
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
    if m:
        return str((md.get(m.group(1)) or {}).get(m.group(2), ""))
    raise EnvError(f'unsupported fieldRef fieldPath "{path}"')


Lookup = Callable[[str, str], Obj | None]
"""(kind, name) -> the ConfigMap or Secret of that name in the pod's namespace."""


def _source(lookup: Lookup, kind: str, ref: Obj) -> dict[str, str] | None:
    """A ConfigMap's data, or a Secret's decoded data, that ref names; None when it
    does not exist and ref says optional, the kubelet's error when it is required."""
    name = str(ref.get("name") or "")
    obj = lookup(kind, name)
    if obj is None:
        if ref.get("optional"):
            return None
        raise EnvError(f'{kind.lower()} "{name}" not found')
    data = obj.get("data") or {}
    if kind == "Secret":
        return {k: base64.b64decode(str(v)).decode(errors="replace") for k, v in data.items()}
    return {k: str(v) for k, v in data.items()}


def _key_ref(lookup: Lookup, pod: Obj, kind: str, ref: Obj) -> str | None:
    """configMapKeyRef/secretKeyRef: the value, None to skip (optional), or EnvError."""
    key = str(ref.get("key") or "")
    data = _source(lookup, kind, ref)
    if data is None:
        return None
    if key not in data:
        if ref.get("optional"):
            return None
        ns = (pod.get("metadata") or {}).get("namespace") or "default"
        raise EnvError(f"couldn't find key {key} in {kind} {ns}/{ref.get('name') or ''}")
    return data[key]


class ServiceLinks:
    """Each namespace's Service link variables, one mapping its containers share.

    Made again only when the namespace's Services change (the store replaces an
    object it changes, so the very objects listed tell), from each Service's own
    variables, kept by uid and resourceVersion so that the strings are shared from
    one version of the mapping to the next.
    A thousand containers starting beside 200 Services built 1,400 variables
    each (issue 16).
    """

    def __init__(self) -> None:
        self._namespaces: dict[tuple[str, bool], _Links] = {}

    def of(
        self,
        namespace: str,
        enabled: bool,
        services: Iterable[Obj] | Callable[[], Iterable[Obj]],
        version: object = None,
    ) -> LinkVars:
        """The variables of `services` (the namespace's, or what the pod gets when
        its enableServiceLinks is false): the shared mapping, not to be changed.
        `version`: what changes whenever those Services do (the store's count of
        their writes); while it is the same, `services` (a function then) is not
        even listed."""
        cached = self._namespaces.get((namespace, enabled))
        if version is not None and cached is not None and cached.version == version:
            return cached.env
        listed = list(services() if callable(services) else services)
        # The cache holds the objects it was made from, so none of them is freed
        # and its id reused meanwhile: identity is a sound test here.
        if (
            cached is not None
            and len(cached.services) == len(listed)
            and all(map(operator.is_, cached.services, listed))
        ):
            return cached.env
        old = cached.per_service if cached is not None else {}
        per_service: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
        for svc in listed:
            md = svc["metadata"]
            key = (str(md.get("uid") or ""), str(md.get("resourceVersion") or ""))
            items = old.get(key)
            if items is None:
                items = tuple(service_links((svc,)).items())
            per_service[key] = items
        env = LinkVars(tuple(per_service.values()))
        if len(self._namespaces) >= MAX_LINK_NAMESPACES and cached is None:
            self._namespaces.pop(next(iter(self._namespaces)))
        self._namespaces[(namespace, enabled)] = _Links(listed, env, per_service, version)
        return env


MAX_LINK_NAMESPACES = 1024
"""Namespaces whose links ServiceLinks keeps (the oldest kept goes first)."""


class LinkVars(dict[str, str]):
    """The link variables of a namespace's Services as one mapping, and as `parts`,
    each Service's items, which the next version of the mapping shares: a
    container keeps the parts (envvars.pack), so containers started beside
    different versions (Services created during a ramp) do not each keep a
    dictionary of every variable (1000 Services: 7,000 of them)."""

    def __init__(self, parts: tuple[tuple[tuple[str, str], ...], ...] = ()) -> None:
        super().__init__()
        for items in parts:
            self.update(items)
        self.parts = parts
        self.encoded: bytes | None = None
        """These variables as an environment block (zygote.environ_block), made by the
        first container forked with this version and reused by the others."""


class ContainerEnv(Mapping[str, str]):
    """A container's environment as container_env makes it, kept in its parts: the
    container's own variables from before the links (head: PATH, the image's ENV,
    HOSTNAME, POD_IP), the namespace's shared Service links, and its own from
    after them (tail: envFrom and env, which win). A start thus neither copies
    nor encodes the links' thousands of variables (a thousand pods beside 200
    Services merged 1,400 of them each, issue 16): envvars.pack keeps the parts,
    and the fork server's block reuses the links' own (LinkVars.encoded).
    Read as a mapping, it is {**head, **links, **tail}, in that order."""

    __slots__ = ("_merged", "head", "links", "tail")

    def __init__(
        self, head: dict[str, str], links: Mapping[str, str], tail: dict[str, str]
    ) -> None:
        self.head = head
        self.links = links
        self.tail = tail
        self._merged: dict[str, str] | None = None

    def __getitem__(self, key: str) -> str:
        if key in self.tail:
            return self.tail[key]
        if key in self.links:
            return self.links[key]
        return self.head[key]

    def _all(self) -> dict[str, str]:
        if self._merged is None:
            self._merged = {**self.head, **self.links, **self.tail}
        return self._merged

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def as_dict(self) -> dict[str, str]:
        """A plain dict of it (dict() of a Mapping looks up each key in Python)."""
        return dict(self._all())

    def own(self, extra: Mapping[str, str]) -> tuple[dict[str, str], LinkVars | None]:
        """(the variables that are not the links', links) with `extra` added last,
        when no own variable hides a link one; else (everything, None)."""
        links = self.links
        tail = {**self.tail, **extra}
        if isinstance(links, LinkVars) and not any(k in links for k in tail):
            return {**{k: v for k, v in self.head.items() if k not in links}, **tail}, links
        return {**self._all(), **extra}, None

    def packed(self) -> Packed:
        links = self.links
        parts = links.parts if isinstance(links, LinkVars) else (tuple(links.items()),)
        head = {k: v for k, v in self.head.items() if k not in links}
        return Packed(head, parts, dict(self.tail))


class _Links(NamedTuple):
    services: list[Obj]
    env: LinkVars
    per_service: dict[tuple[str, str], tuple[tuple[str, str], ...]]
    version: object


def container_env(
    pod: Obj,
    container: Obj,
    links: Mapping[str, str],
    pod_ip: str,
    *,
    tty: bool = False,
    lookup: Lookup | None = None,
    base: Mapping[str, str] | None = None,
) -> ContainerEnv:
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    head: dict[str, str] = {"PATH": DEFAULT_PATH, **(base or {})}
    head["HOSTNAME"] = str(spec.get("hostname") or md.get("name") or "")
    if tty:
        head["TERM"] = "xterm"  # what Docker and containerd set for a tty container
    head["POD_IP"] = pod_ip
    own: dict[str, str] = {}
    env = ContainerEnv(head, links, own)
    find: Lookup = lookup or (lambda _kind, _name: None)
    for src in container.get("envFrom") or ():
        prefix = str(src.get("prefix") or "")
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = src.get(field)
            if ref is None:
                continue
            for k, v in (_source(find, kind, ref) or {}).items():
                own[prefix + k] = v
    for item in container.get("env") or ():
        name = str(item["name"])
        if "valueFrom" in item:
            src = item["valueFrom"] or {}
            if "fieldRef" in src:
                own[name] = _field_ref(pod, str(src["fieldRef"].get("fieldPath", "")), pod_ip)
                continue
            value: str | None = None
            if "configMapKeyRef" in src:
                value = _key_ref(find, pod, "ConfigMap", src["configMapKeyRef"] or {})
            elif "secretKeyRef" in src:
                value = _key_ref(find, pod, "Secret", src["secretKeyRef"] or {})
            else:
                kind = next(iter(src), "valueFrom")
                if bool((src.get(kind) or {}).get("optional")):
                    continue
                raise EnvError(f'env "{name}": svcnet does not support {kind} yet')
            if value is not None:
                own[name] = value
        else:
            own[name] = expand(str(item.get("value") or ""), env)
    return env


class Packed(NamedTuple):
    """An environment kept for later (exec probes, preStop hooks): with Service links
    every container holds about 300 bytes per Service of its namespace, so a
    thousand pods beside a thousand Services held ~400 MB of dictionaries
    (benchmarks/README.md, "Scale"). What came from the namespace's shared links
    stays there; the container keeps its own variables, before and after them."""

    head: dict[str, str]
    links: tuple[tuple[tuple[str, str], ...], ...]
    """LinkVars.parts: each Service's items, shared."""
    tail: dict[str, str]


EMPTY = Packed({}, (), {})


def pack(env: Mapping[str, str]) -> Packed:
    """`env` kept for later: container_env's parts as they are (the links shared),
    any other mapping as a dict of its own."""
    if isinstance(env, ContainerEnv):
        return env.packed()
    return Packed(dict(env), (), {})


def unpack(packed: Packed) -> dict[str, str]:
    """The environment with container_env's values, and its order unless the image's
    ENV named a link variable (the kubelet's order is a Go map's: values are the
    contract); the container's own values win over the links', as they did."""
    links = LinkVars(packed.links)
    env = {**packed.head, **links, **packed.tail}
    for k, v in packed.head.items():
        if k in links:
            env[k] = v
    return env
