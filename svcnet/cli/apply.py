"""`apply -f` and `delete`: writes from manifests or names.

apply is all-or-nothing, which kubectl is not: every object is first sent as
a server-side dry run (``dryRun=All``), and only if the server accepts all of
them are they applied for real. The real apply is a server-side apply
(``application/apply-patch+yaml``, an upsert), but the output is
client-side apply's (`created` / `configured` / `unchanged`), judged from
HTTP 201 and from whether the resourceVersion moved since a GET before.

Field errors name the manifest file and line (``Manifest.where``) after
kubectl's own message, so `svcnet apply` points at the line to fix.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from svcnet.cli.client import (
    ApiStatusError,
    Client,
    kind_name,
    status_from_response,
)
from svcnet.cli.printer import status_error_text
from svcnet.k8s import kinds
from svcnet.k8s.kinds import Kind
from svcnet.k8s.media import APPLY_PATCH
from svcnet.k8s.objects import Obj, with_last_applied
from svcnet.k8s.wellknown import IMAGES_CONFIGMAP, IMAGES_KEY, IMAGES_NAMESPACE
from svcnet.manifest import Manifest, ManifestError, decode, load_paths


@dataclass
class Target:
    manifest: Manifest
    kind: Kind
    namespace: str | None
    name: str

    @property
    def path(self) -> str:
        return self.kind.object_path(self.namespace, self.name)

    @property
    def body(self) -> Obj:
        obj = dict(self.manifest.obj)
        md = dict(obj.get("metadata") or {})
        if self.namespace and not md.get("namespace"):
            md["namespace"] = self.namespace
        obj["metadata"] = md
        # As `kubectl apply` (client-side, its default) leaves objects, so
        # kubectl's next apply of the file sees them as its own.
        return with_last_applied(obj)

    def error(self, e: ApiStatusError, verb: str) -> str:
        """kubectl's message, with svcnet's file positions for field errors."""
        wrapped = e.with_message(f'error when {verb} "{self.manifest.source}": {e.message}')
        return status_error_text(wrapped.status, self.manifest.where)


def _targets(
    args: argparse.Namespace, client: Client, configs: list[Manifest] | None = None
) -> list[Target]:
    configs = [] if configs is None else configs
    manifests = load_paths(args.filename, recursive=args.recursive, configs=configs)
    # Image mappings first, so that pods this apply creates already run with them.
    return [
        *image_targets(client, configs),
        *targets(client, manifests, args.namespace, args.explicit_namespace),
    ]


def config_dir(m: Manifest) -> Path | None:
    """The folder of a svcnet.yaml, where its mappings' relative paths point."""
    return None if m.source == "STDIN" else Path(m.source).resolve().parent


def file_beside(base: Path, arg: object) -> Path | None:
    """The file an argument of a mapping names in `base` (or below), if it is one:
    the user's own program, never an interpreter elsewhere on the machine."""
    if not isinstance(arg, str) or not arg:
        return None
    path = (base / arg).resolve()
    return path if path.is_file() and path.is_relative_to(base) else None


def _beside(spec: object, m: Manifest) -> object:
    """A mapping's relative paths to files beside its svcnet.yaml, made absolute: a
    container runs in a directory of its own, where `app.py` would not be."""
    base = config_dir(m)
    if base is None:
        return spec

    def fix(arg: object) -> object:
        path = file_beside(base, arg) if isinstance(arg, str) and not arg.startswith("/") else None
        return str(path) if path is not None else arg

    if isinstance(spec, list):
        return [fix(a) for a in spec]
    if isinstance(spec, dict):
        return {
            k: [fix(a) for a in v] if k in ("command", "args") and isinstance(v, list) else v
            for k, v in spec.items()
        }
    return spec


def image_targets(client: Client, configs: list[Manifest]) -> list[Target]:
    """A svcnet.yaml among the files: its `agent.images` go into the svcnet-images
    ConfigMap, merged over the mappings already there (an image named again
    takes the new command), which the agent follows for pods created from then on.
    Its other settings are the daemon's start-up ones and are not applied."""
    images: dict[str, object] = {}
    last: Manifest | None = None
    for m in configs:
        agent = m.obj.get("agent")
        found = agent.get("images") if isinstance(agent, dict) else None
        if found:
            if not isinstance(found, dict):
                raise ManifestError(
                    f"error validating {m.where('agent.images')}: agent.images: expected a "
                    "mapping of image name to command"
                )
            images.update({k: _beside(v, m) for k, v in found.items()})
            last = m
    if last is None:
        return []
    kind = kinds.BY_KIND["ConfigMap"]
    try:
        current = client.get(kind.object_path(IMAGES_NAMESPACE, IMAGES_CONFIGMAP))
        text = str((current.get("data") or {}).get(IMAGES_KEY) or "")
        merged = decode.load_yaml(text) if text else None
    except ApiStatusError as e:
        if e.code != 404:
            raise
        merged = None
    except (decode.DecodeError, yaml.YAMLError):
        merged = None  # the server refuses bad versions; an unreadable one is replaced
    merged = {**(merged if isinstance(merged, dict) else {}), **images}
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": IMAGES_CONFIGMAP, "namespace": IMAGES_NAMESPACE},
        "data": {IMAGES_KEY: yaml.safe_dump(merged, sort_keys=True, default_flow_style=False)},
    }
    source = Manifest(obj, last.source, last.doc_index, last.line, {})
    return [Target(source, kind, IMAGES_NAMESPACE, IMAGES_CONFIGMAP)]


def targets(
    client: Client, manifests: list[Manifest], namespace_: str, explicit: bool = False
) -> list[Target]:
    """Resolve every manifest to an API path, or raise ManifestError for the first bad
    one. `namespace_` is where namespaced objects without one go; `explicit`: it was
    given (-n), so an object naming another namespace is an error, as in kubectl."""
    out = []
    for m in manifests:
        api_version = str(m.obj.get("apiVersion") or "")
        kind = kinds.for_api_version(api_version, m.kind)
        md = m.obj.get("metadata")
        name = m.name
        namespace = m.namespace
        if kind is None:
            raise ManifestError(
                f'resource mapping not found for name: "{name}" namespace: "{namespace}" '
                f'from "{m.source}": no matches for kind "{m.kind}" in version "{api_version}"\n'
                "ensure CRDs are installed first"
            )
        if not isinstance(md, dict):
            # Without a name there is no object path; a dry-run create on the
            # collection lets the server's schema check name what is wrong, as
            # kubectl's client-side validation against the server's schema does.
            _validate_on_server(client, m, kind, namespace or namespace_)
        if not isinstance(md, dict) or not name:
            raise ManifestError(
                f"error validating {m.where('metadata')}: error validating data: "
                "metadata.name: Required value: name or generateName is required"
            )
        if kind.namespaced:
            if namespace and explicit and namespace != namespace_:
                raise ManifestError(
                    f'the namespace from the provided object "{namespace}" does not match the '
                    f'namespace "{namespace_}". You must pass '
                    f"'--namespace={namespace}' to perform this operation."
                )
            namespace = namespace or namespace_
        out.append(Target(m, kind, namespace if kind.namespaced else None, name))
    return out


def _validate_on_server(client: Client, m: Manifest, kind: Kind, namespace: str) -> None:
    path = kind.collection_path(namespace)
    query = {"dryRun": "All", "fieldValidation": "Strict"}
    resp = client.request("POST", path, query=query, body=m.obj)
    if resp.status < 400:
        return
    status = status_from_response(resp.status, resp.body)
    causes = (status.get("details") or {}).get("causes") or []
    field = str(causes[0].get("field") or "metadata") if causes else "metadata"
    raise ManifestError(
        f"error validating {m.where(field)}: error validating data: {status.get('message', '')}"
    )


def _apply_patch(client: Client, t: Target, dry_run: bool) -> tuple[int, Obj]:
    # force: the file wins over other managers' fields, as a client-side
    # `kubectl apply` (its default) makes it win, never a conflict.
    query = {"fieldManager": "svcnet", "fieldValidation": "Strict", "force": "true"}
    if dry_run:
        query["dryRun"] = "All"
    resp = client.request("PATCH", t.path, query=query, body=t.body, content_type=APPLY_PATCH)
    if resp.status >= 400:
        raise ApiStatusError(status_from_response(resp.status, resp.body))
    return resp.status, resp.json() or {}


def _same(a: Obj | None, b: Obj | None) -> bool:
    """Equal but for who manages which field: an apply that only took fields
    over from another manager (kubectl's) changed nothing a user sees."""

    def strip(o: Obj | None) -> Obj:
        o = dict(o or {})
        md = {k: v for k, v in (o.get("metadata") or {}).items()}
        for k in ("managedFields", "resourceVersion"):
            md.pop(k, None)
        o["metadata"] = md
        return o

    return strip(a) == strip(b)


def _resource_version(obj: Obj | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


class ApplyError(Exception):
    """Objects the server refused; `str()` is what `svcnet apply` prints on stderr."""

    def __init__(self, text: str, applied: list[str]) -> None:
        super().__init__(text)
        self.applied = applied
        """The lines of the objects applied before the error (none if the dry run failed)."""


def apply_targets(
    client: Client, targets: list[Target], report: Callable[[str], None] | None = None
) -> list[str]:
    """Apply `targets` in order, all or nothing as far as the server can tell in
    advance; returns (and passes to `report` as each happens) kubectl's lines,
    `deployment.apps/web created`. Raises ApplyError with kubectl's messages."""
    if not targets:
        raise ApplyError("error: no objects passed to apply\n", [])
    before: list[Obj | None] = []
    for t in targets:
        try:
            before.append(client.get(t.path))
        except ApiStatusError as e:
            if e.code != 404:
                raise
            before.append(None)

    # The dry run validates everything (schema, allocations, immutability)
    # before anything changes, so a bad file applies nothing. An object in a
    # namespace that an earlier document creates cannot be tried before that
    # namespace exists; kubectl applies documents in order, and so does this.
    new_namespaces = {
        t.name for t, old in zip(targets, before, strict=True) if t.kind.kind == "Namespace"
    }
    errors = []
    for t, old in zip(targets, before, strict=True):
        if t.kind.namespaced and old is None and t.namespace in new_namespaces:
            continue
        try:
            _apply_patch(client, t, dry_run=True)
        except ApiStatusError as e:
            if e.code == 404 and t.namespace in new_namespaces:
                continue
            errors.append(t.error(e, "creating" if old is None else "patching"))
    if errors:
        raise ApplyError("".join(errors), [])

    lines: list[str] = []
    for t, old in zip(targets, before, strict=True):
        try:
            code, new = _apply_patch(client, t, dry_run=False)
        except ApiStatusError as e:
            errors.append(t.error(e, "creating" if old is None else "patching"))
            continue
        if code == 201 or old is None:
            result = "created"
        elif _resource_version(new) == _resource_version(old) or _same(new, old):
            result = "unchanged"
        else:
            result = "configured"
        line = f"{kind_name(t.kind)}/{t.name} {result}"
        lines.append(line)
        if report is not None:
            report(line)
    if errors:
        raise ApplyError("".join(errors), lines)
    return lines


def apply(args: argparse.Namespace, client: Client) -> int:
    failed = False
    try:
        found = _targets(args, client)
        quiet = getattr(args, "changes_only", False)
        apply_targets(
            client,
            found,
            lambda line: None if quiet and line.endswith(" unchanged") else print(line, flush=True),
        )
    except ManifestError as e:
        sys.stderr.write(f"error: {e}\n")
        failed = True
    except ApplyError as e:
        sys.stderr.write(str(e))
        failed = True
    if not getattr(args, "watch", False):
        return 1 if failed else 0
    from svcnet.cli import watch

    def once(configs: list[Manifest]) -> list[str]:
        try:
            return apply_targets(client, _targets(args, client, configs))
        except ManifestError as e:
            raise ManifestError(f"error: {e}") from None
        except ApplyError as e:
            raise ManifestError(str(e).rstrip("\n")) from None

    return watch.run(args, client, once)


# --- delete ---------------------------------------------------------------------


def _named(args: argparse.Namespace) -> list[tuple[Kind, str]]:
    """`delete svc echo other` or `delete svc/echo rs/x`, as (kind, name) pairs."""
    words: list[str] = args.resources
    if any("/" in w for w in words):
        pairs = []
        for w in words:
            type_, _, name = w.partition("/")
            if not name:
                raise ValueError(
                    "there is no need to specify a resource type as a separate argument when "
                    "passing arguments in resource/name form (e.g. 'svcnet delete "
                    "resource/<resource_name>' instead of 'svcnet delete resource "
                    "resource/<resource_name>')"
                )
            pairs.append((_kind(type_), name))
        return pairs
    if len(words) < 2:
        raise ValueError(
            "resource(s) were provided, but no name was specified"
            if words
            else "You must provide one or more resources by argument or filename."
        )
    return [(_kind(type_), name) for type_ in words[0].split(",") for name in words[1:]]


def _kind(name: str) -> Kind:
    kind = kinds.lookup(name)
    if kind is None:
        raise ValueError(f'the server doesn\'t have a resource type "{name}"')
    return kind


def delete(args: argparse.Namespace, client: Client) -> int:
    jobs: list[tuple[Kind, str | None, str, str]] = []  # kind, namespace, name, source
    try:
        if args.filename:
            if args.resources:
                raise ValueError("cannot specify both resources by name and by filename (-f)")
            jobs = [
                (t.kind, t.namespace, t.name, t.manifest.source) for t in _targets(args, client)
            ]
        else:
            jobs = [
                (k, args.namespace if k.namespaced else None, name, "") for k, name in _named(args)
            ]
    except (ManifestError, ValueError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 1

    rc = 0
    deleted: list[tuple[Kind, str | None, str, str]] = []
    for kind, namespace, name, source in jobs:
        path = kind.object_path(namespace, name)
        try:
            gone = client.call("DELETE", path, body={"propagationPolicy": "Background"})
        except ApiStatusError as e:
            if e.code == 404 and args.ignore_not_found:
                continue
            if source:
                e = e.with_message(f'error when deleting "{source}": {e.message}')
            sys.stderr.write(status_error_text(e.status))
            rc = 1
            continue
        print(f'{kind_name(kind)} "{name}" deleted', flush=True)
        uid = str(((gone or {}).get("metadata") or {}).get("uid") or "")
        if (gone or {}).get("kind") == "Status":
            uid = str(((gone or {}).get("details") or {}).get("uid") or "")
        deleted.append((kind, namespace, name, uid))

    if args.wait:
        for kind, namespace, name, uid in deleted:

            def gone_or_replaced(obj: Obj | None, uid: str = uid) -> bool:
                if obj is None:
                    return True
                return bool(uid) and (obj.get("metadata") or {}).get("uid") != uid

            try:
                client.wait_for(
                    kind, namespace, name, gone_or_replaced, timeout=args.timeout or None
                )
            except TimeoutError:
                sys.stderr.write(
                    f"error: timed out waiting for the condition on {kind.plural}/{name}\n"
                )
                rc = 1
    return rc
