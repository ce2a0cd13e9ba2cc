from __future__ import annotations

import builtins
import contextlib
import copy
import datetime as dt
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from svcnet import _json
from svcnet.config import Settings
from svcnet.k8s import conversion, fields, kinds, labels
from svcnet.k8s.kinds import Kind
from svcnet.k8s.objects import Obj
from svcnet.k8s.timestamps import rfc3339
from svcnet.k8s.wellknown import DEFAULT_STORAGE_CLASS
from svcnet.registry import admission, defaults, lifecycle, scale, schema, ssa, validation
from svcnet.registry.alloc import (
    AllocationError,
    ClusterIPAllocator,
    NodePortAllocator,
    init_ip_families,
)
from svcnet.registry.errors import (
    ApiError,
    Cause,
    already_exists,
    bad_request,
    internal,
    invalid,
    not_found,
)
from svcnet.store import ReadOnlyStore, Store, StoreError

ManagedFields = list[Obj]
Mutation = Callable[[Obj], None]

# Fields the server owns in metadata; a client's copy of them is ignored.
_SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
)
_PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")


def _sent_managed_fields(obj: Any) -> list[ssa.Manager] | None:
    """The managedFields a create or update request carries, as the API server's
    decodeLiveOrNew reads them: [] (or [{}]) resets them, a readable non-empty
    list replaces the live ones, anything else (absent, unreadable) keeps them."""
    md = obj.get("metadata") if isinstance(obj, dict) else None
    sent = md.get("managedFields") if isinstance(md, dict) else None
    if ssa.is_reset(sent):
        return []
    return ssa.parse_entries(sent) or None


class Registry:
    """Admission + storage: the one writer of the store (docs/architecture.md,
    "One writer"). API requests, controllers, the agent and the event recorder
    all write through it, so every stored object has been validated and
    defaulted, carries a fresh resourceVersion and keeps its managedFields.
    All methods raise ApiError on refusal."""

    def __init__(self, settings: Settings, store: Store, rng: random.Random | None = None) -> None:
        self.settings = settings
        self._store = store
        net = settings.network
        self.cluster_ips = ClusterIPAllocator(net.service_cidr, rng)
        self.node_ports = NodePortAllocator(*net.node_ports, rng=rng)

    @property
    def store(self) -> ReadOnlyStore:
        """The store, for reading and following; every write goes through this class."""
        return self._store

    # --- reads -------------------------------------------------------------

    def get(self, kind: Kind, namespace: str, name: str) -> Obj:
        obj = self._store.get(kind.kind, namespace if kind.namespaced else "", name)
        if obj is None:
            raise not_found(kind, name)
        return obj

    def list(
        self,
        kind: Kind,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        ns = namespace if kind.namespaced else None
        return self.select(self._store.list(kind.kind, ns or None), label_selector, field_selector)

    @staticmethod
    def select(
        items: builtins.list[Obj], label_selector: str | None, field_selector: str | None
    ) -> builtins.list[Obj]:
        """The items both selectors match (a bad selector is a 400 naming it)."""
        try:
            sel = labels.parse(label_selector)
        except labels.SelectorError as e:
            raise bad_request(str(e)) from None
        try:
            fsel = fields.parse(field_selector)
        except fields.FieldSelectorError as e:
            raise bad_request(str(e)) from None
        return [o for o in items if sel.matches(o["metadata"].get("labels")) and fsel.matches(o)]

    # --- writes ------------------------------------------------------------

    def kind_of(self, obj: Any) -> Kind:
        if not isinstance(obj, dict):
            raise bad_request("the body of the request was in an unknown format")
        api_version, kind_name = obj.get("apiVersion"), obj.get("kind")
        if not api_version or not kind_name:
            raise bad_request("Object 'Kind' is missing in '" + str(obj)[:200] + "'")
        kind = kinds.for_api_version(str(api_version), str(kind_name))
        if kind is not None and not kind.stored:
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        if kind is None:
            raise ApiError(
                404, "NotFound", f'no matches for kind "{kind_name}" in version "{api_version}"'
            )
        return kind

    def _prepare(self, obj: Obj, namespace: str | None, *, creating: bool) -> tuple[Kind, Obj]:
        kind = self.kind_of(obj)
        schema.check(obj, kind)
        obj = _json.copy(obj)
        if kind.storage_version:
            # Admitted (defaulted, validated, stored) in the storage version, as the
            # API server decodes a body into its internal type first.
            try:
                obj = conversion.to_storage(obj, kind)
            except conversion.ConversionError as e:
                raise bad_request(str(e)) from None
            kind = kinds.storage_of(kind)
        md = obj.setdefault("metadata", {})
        if kind.namespaced:
            body_ns = md.get("namespace")
            if namespace and body_ns and body_ns != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the "
                    "namespace sent on the request"
                )
            md["namespace"] = body_ns or namespace or "default"
        else:
            md.pop("namespace", None)
        for f in _SERVER_METADATA:
            md.pop(f, None)
        defaults.apply(obj)
        errs = validation.validate(obj, creating=creating)
        if errs:
            raise invalid(kind, str(md.get("name") or md.get("generateName") or ""), errs)
        if kind.namespaced:
            self._check_namespace(kind, md["namespace"], str(md.get("name") or ""), creating)
        return kind, obj

    def _check_namespace(self, kind: Kind, ns: str, name: str, creating: bool) -> None:
        nso = self._store.get("Namespace", "", ns)
        if nso is None:
            raise not_found(kinds.BY_KIND["Namespace"], ns)
        if creating and (nso.get("status") or {}).get("phase") == "Terminating":
            raise ApiError(
                403,
                "Forbidden",
                f'{kind.qualified_plural} "{name}" is forbidden: unable to create new '
                f"content in namespace {ns} because it is being terminated",
            )

    def _finish(self, kind: Kind, obj: Obj, old: Obj | None) -> Obj:
        """Carry server-owned state over from the live object and allocate."""
        if old is not None and kind.has_status:
            obj["status"] = copy.deepcopy(old.get("status") or obj.get("status") or {})
            if kind.kind == "Pod":
                self._pod_update(obj, old)
        if old is None and kind.kind == "Job":
            # The uid is known before the store has the Job: its selector is made of it.
            obj["metadata"]["uid"] = str(uuid.uuid4())
            defaults.job_selector(obj, obj["metadata"]["uid"])
        if old is None and kind.kind == "PersistentVolumeClaim":
            self._default_storage_class(obj)
        if kind.kind == "Ingress" and old is None:
            admission.default_ingress_class(obj, self._store.list("IngressClass"))
        if kind.kind == "Service":
            try:
                self._allocate_service(obj, old)
            except AllocationError as e:
                md = obj["metadata"]
                raise invalid(
                    kind, md.get("name") or md.get("generateName", ""), e.causes
                ) from None
        return obj

    def _default_storage_class(self, pvc: Obj) -> None:
        """The DefaultStorageClass admission plugin: a claim that names no class gets
        the default one (an explicit "" asks for none)."""
        spec = pvc.setdefault("spec", {})
        if spec.get("storageClassName") is not None:
            return
        for sc in self._store.list("StorageClass"):
            ann = sc["metadata"].get("annotations") or {}
            if ann.get(DEFAULT_STORAGE_CLASS) == "true":
                spec["storageClassName"] = sc["metadata"]["name"]
                return

    def _pod_update(self, obj: Obj, old: Obj) -> None:
        new_spec, old_spec = obj["spec"], old["spec"]
        if old_spec.get("nodeName") and not new_spec.get("nodeName"):
            new_spec["nodeName"] = old_spec["nodeName"]

        def strip_images(s: Obj) -> Obj:
            s = copy.deepcopy(s)
            for c in s.get("containers") or []:
                c.pop("image", None)
            return s

        if strip_images(new_spec) != strip_images(old_spec):
            raise invalid(
                kinds.BY_KIND["Pod"],
                obj["metadata"]["name"],
                [
                    validation.forbidden(
                        "spec",
                        "pod updates may not change fields other than `spec.containers[*].image`,"
                        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
                        "`spec.tolerations` (only additions to existing tolerations),"
                        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                        "previously negative)",
                    )
                ],
            )

    def _allocate_service(self, obj: Obj, old: Obj | None) -> None:
        spec = obj["spec"]
        typ = spec["type"]
        # A generateName'd Service has no name yet: nothing else is it.
        me = (obj["metadata"]["namespace"], obj["metadata"].get("name"))
        others = [
            s
            for s in self._store.list("Service")
            if (s["metadata"]["namespace"], s["metadata"]["name"]) != me
        ]
        old_spec = (old or {}).get("spec") or {}
        if typ == "ExternalName":
            for f in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                spec.pop(f, None)
        else:
            init_ip_families(
                spec, old_spec if old_spec.get("type") != "ExternalName" else None, ("IPv4",)
            )
            requested = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]
            current = old_spec.get("clusterIP") if old_spec.get("type") != "ExternalName" else None
            if current:
                if requested and requested != current:
                    raise AllocationError(
                        Cause(
                            "spec.clusterIPs[0]",
                            "FieldValueInvalid",
                            f'Invalid value: []string{{"{requested}"}}: may not change once set',
                        )
                    )
                ip = current
            elif requested == "None":
                ip = "None"
            else:
                used = {str(s["spec"].get("clusterIP")) for s in others}
                ip = self.cluster_ips.allocate(used, requested)
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        if typ in ("NodePort", "LoadBalancer"):
            used_ports = {
                int(p["nodePort"])
                for s in others
                for p in s["spec"].get("ports") or []
                if p.get("nodePort")
            }
            old_ports = {
                (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                for p in old_spec.get("ports") or []
                if p.get("nodePort")
            }
            old_set = set(old_ports.values())
            by_port: dict[int, int] = {}
            for i, p in enumerate(spec["ports"]):
                np = p.get("nodePort")
                if np:
                    if np not in old_set:
                        self.node_ports.check(np, used_ports, f"spec.ports[{i}].nodePort")
                else:
                    # TCP 53 and UDP 53 share one nodePort, as initNodePorts does.
                    np = old_ports.get((p["port"], p["protocol"])) or by_port.get(p["port"])
                    if not np:
                        np = self.node_ports.allocate(used_ports | set(by_port.values()))
                    p["nodePort"] = np
                by_port[p["port"]] = np
                used_ports.add(np)
        else:
            for p in spec.get("ports") or []:
                p.pop("nodePort", None)
        if typ != "LoadBalancer":
            obj.setdefault("status", {})["loadBalancer"] = {}

    def create(
        self,
        obj: Obj,
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        managed_fields: ManagedFields | None = None,
    ) -> Obj:
        request = obj
        sent = _sent_managed_fields(obj)
        kind, obj = self._prepare(obj, namespace, creating=True)
        md = obj["metadata"]
        if md.get("name") and self._store.get(kind.kind, md.get("namespace", ""), md["name"]):
            raise already_exists(kind, md["name"])
        obj = self._finish(kind, obj, None)
        if managed_fields is not None:
            md["managedFields"] = managed_fields
        elif field_manager:
            # The creator owns what it sent, not what the server defaulted.
            md["managedFields"] = ssa.record_update(
                None, request, field_manager, kind.api_version, base=sent
            )
        if dry_run:
            return self._store.preview(obj)
        try:
            # _prepare's copy is the registry's own; the caller's managed fields not.
            return self._store.create(obj, owned=managed_fields is None)
        except StoreError:
            raise already_exists(kind, md.get("name", "")) from None

    def update(
        self,
        obj: Obj,
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        managed_fields: ManagedFields | None = None,
        subresource: str = "",
    ) -> Obj:
        """PUT: replace spec/metadata, keeping server-owned fields and allocations.
        With a field manager, it takes ownership of the fields it changed (recorded
        against `subresource` when the write came through one, e.g. "scale").
        managedFields the request carries replace the live ones first, as the API
        server takes them (kubectl's --server-side migration writes them so)."""
        sent = None if subresource else _sent_managed_fields(obj)
        expected_rv = (
            (obj.get("metadata") or {}).get("resourceVersion") if isinstance(obj, dict) else None
        )
        if isinstance(obj, dict) and obj.get("kind") == "Service":
            obj = self._drop_type_dependent_fields(obj, namespace)
        kind, new = self._prepare(obj, namespace, creating=False)
        md = new["metadata"]
        old = self._store.get(kind.kind, md.get("namespace", ""), md["name"])
        if old is None:
            raise not_found(kind, md["name"])
        if expected_rv and expected_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f"Operation cannot be fulfilled on {kind.qualified_plural} "
                f'"{md["name"]}": the object has been modified; please apply your '
                "changes to the latest version and try again",
                {"name": md["name"], "group": kind.group, "kind": kind.plural},
            )
        for f in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            if f in old["metadata"]:
                md[f] = old["metadata"][f]
        errs = lifecycle.finalizer_errors(new, old)
        if errs:
            raise invalid(kind, md["name"], errs)
        errs = validation.validate_update(new, old)
        if errs:
            raise invalid(kind, md["name"], errs)
        new = self._finish(kind, new, old)
        if managed_fields is not None:
            md["managedFields"] = managed_fields
        elif field_manager:
            md["managedFields"] = ssa.record_update(
                old, new, field_manager, kind.api_version, subresource=subresource, base=sent
            )
        elif old["metadata"].get("managedFields"):
            md["managedFields"] = _json.copy(old["metadata"]["managedFields"])
        if not md.get("managedFields"):
            md.pop("managedFields", None)
        if dry_run:
            return self._store.preview(new)
        # _prepare's copy is the registry's own; the caller's managed fields not.
        stored = self._store.update(new, owned=managed_fields is None)
        if lifecycle.done(stored["metadata"]):
            # The last finalizer went: the deletion that began completes now.
            return self._store.delete(kind.kind, md.get("namespace", ""), md["name"])
        return stored

    def _drop_type_dependent_fields(self, obj: Obj, namespace: str | None) -> Obj:
        """The apiserver's dropTypeDependentFields: when a Service changes type, wipe
        the fields the old type had allocated or defaulted, unless the request
        changed them itself (so `type: ClusterIP` over a NodePort just works)."""
        md = obj.get("metadata") or {}
        ns = md.get("namespace") or namespace or "default"
        old = self._store.get("Service", ns, str(md.get("name") or ""))
        spec = obj.get("spec")
        if old is None or not isinstance(spec, dict):
            return obj
        old_spec = old.get("spec") or {}
        new_type = spec.get("type") or "ClusterIP"
        old_type = old_spec.get("type") or "ClusterIP"
        if new_type == old_type:
            return obj
        obj = _json.copy(obj)
        spec = obj["spec"]

        def needs_node_port(t: str) -> bool:
            return t in ("NodePort", "LoadBalancer")

        def external(t: str, s: Obj) -> bool:
            return needs_node_port(t) or bool(s.get("externalIPs"))

        if old_type != "ExternalName" and new_type == "ExternalName":
            for f in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                if spec.get(f) == old_spec.get(f):
                    spec.pop(f, None)
        new_ports = spec.get("ports") or []
        old_ports = old_spec.get("ports") or []
        if (
            needs_node_port(old_type)
            and not needs_node_port(new_type)
            and len(new_ports) == len(old_ports)
            and all(
                isinstance(n, dict) and n.get("nodePort") in (None, o.get("nodePort"))
                for n, o in zip(new_ports, old_ports, strict=True)
            )
        ):
            for p in new_ports:
                p.pop("nodePort", None)
        if old_type == "LoadBalancer" and new_type != "LoadBalancer":
            for f in ("allocateLoadBalancerNodePorts", "loadBalancerClass"):
                if f in spec and spec.get(f) == old_spec.get(f):
                    spec.pop(f)
        if old_spec.get("healthCheckNodePort") and spec.get("healthCheckNodePort") == old_spec.get(
            "healthCheckNodePort"
        ):
            if new_type != "LoadBalancer":
                spec.pop("healthCheckNodePort", None)
        if (
            external(old_type, old_spec)
            and not external(new_type, spec)
            and spec.get("externalTrafficPolicy") == old_spec.get("externalTrafficPolicy")
        ):
            spec.pop("externalTrafficPolicy", None)
        return obj

    def apply(
        self,
        obj: Obj,
        *,
        namespace: str | None = None,
        dry_run: bool = False,
        field_manager: str = "",
        force: bool = False,
    ) -> tuple[Obj, bool]:
        """Server-side apply: upsert `obj` as `field_manager`'s whole intent.
        Returns (stored, created); raises a 409 Conflict naming the other managers."""
        kind = self.kind_of(obj)
        md = obj.get("metadata")
        name = md.get("name") if isinstance(md, dict) else None
        ns = (md.get("namespace") if isinstance(md, dict) else None) or namespace or "default"
        live = self._store.get(kind.kind, ns if kind.namespaced else "", name) if name else None
        if live is not None and kind.storage_version:
            live = conversion.to_version(live, kind)  # merged in the applier's version
        try:
            merged, managed = ssa.apply(live, obj, field_manager, kind.api_version, force)
        except ssa.ApplyConflict as e:
            raise ApiError(
                409,
                "Conflict",
                e.message(),
                {"name": name or "", "group": kind.group, "kind": kind.plural},
                [Cause(f, r, m) for r, m, f in e.causes()],
            ) from None
        if live is None:
            return (
                self.create(merged, namespace=namespace, dry_run=dry_run, managed_fields=managed),
                True,
            )
        merged["metadata"].pop("resourceVersion", None)
        return (
            self.update(merged, namespace=namespace, dry_run=dry_run, managed_fields=managed),
            False,
        )

    # --- writes by controllers and the kubelet --------------------------------------

    def modify(self, kind: Kind | str, namespace: str, name: str, fn: Mutation) -> Obj:
        """A controller's read-modify-write of an object's spec or metadata (client-go's
        Get, change, Update): fn edits a copy of the live object, which is then
        admitted as a PUT with that resourceVersion. Status is kept as stored."""
        k = self._kind(kind)
        new = _json.copy(self.get(k, namespace, name))
        fn(new)
        return self.update(new)

    def update_status(self, kind: Kind | str, namespace: str, name: str, fn: Mutation) -> Obj:
        """The status subresource (PUT .../status): fn edits a copy of the live
        object's status. Anything else it touches is a bug in the caller, refused
        as the API server's status strategy would discard it."""
        k = self._kind(kind)
        live = self.get(k, namespace, name)

        # Only status is copied; the rest is shared with the live object. A pod's
        # spec is most of the pod, and copying it for each of a starting pod's
        # status writes was a tenth of a thousand-pod ramp, with the collector's
        # walks of the copies (issue 16). Stored objects are never changed in
        # place, so the sharing is safe as long as fn keeps to status: the
        # serialized rest, taken before and after, says whether it did.
        def rest() -> bytes:
            return _json.dumps({f: v for f, v in live.items() if f != "status"})

        before = rest()
        new = dict(live)
        new["metadata"] = dict(live["metadata"])
        if "status" in live:
            new["status"] = _json.copy(live["status"])
        fn(new)
        in_place = rest() != before
        if in_place:
            live.update(_json.loads(before))  # put back what fn changed in place
        if (
            in_place
            or new.get("metadata") != live["metadata"]
            or any(new.get(f) is not live.get(f) for f in {*new, *live} - {"status", "metadata"})
        ):
            raise internal(
                f"{k.qualified_plural} {name!r}: a status update changed more than status"
            )
        try:
            return self._store.update(new, owned=True)
        except StoreError:
            raise not_found(k, name) from None

    def update_ephemeral_containers(
        self,
        obj: Obj,
        namespace: str,
        name: str,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> Obj:
        """pods/ephemeralcontainers (PUT, or a PATCH already applied to the live pod):
        only spec.ephemeralContainers is taken from `obj`, as the API server's
        podEphemeralContainersStrategy drops every other change, and existing ones
        may not change or go (ValidatePodEphemeralContainersUpdate)."""
        k = kinds.BY_KIND["Pod"]
        old = self.get(k, namespace, name)
        md = obj.get("metadata") if isinstance(obj, dict) else None
        body_name = md.get("name") if isinstance(md, dict) else None
        if body_name and body_name != name:
            raise bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        expected_rv = md.get("resourceVersion") if isinstance(md, dict) else None
        if expected_rv and expected_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on pods "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                {"name": name, "group": "", "kind": "pods"},
            )
        spec = obj.get("spec") if isinstance(obj, dict) else None
        sent = spec.get("ephemeralContainers") if isinstance(spec, dict) else None
        new = _json.copy(old)
        if sent:
            new["spec"]["ephemeralContainers"] = copy.deepcopy(sent)
        else:
            new["spec"].pop("ephemeralContainers", None)
        schema.check(new, k)
        defaults.pod_spec(new["spec"])
        errs = validation.validate(new, creating=False)
        errs += validation.ephemeral_containers_update(new, old)
        if errs:
            raise invalid(k, name, errs)
        if field_manager:
            new["metadata"]["managedFields"] = ssa.record_update(
                old, new, field_manager, k.api_version, subresource="ephemeralcontainers"
            )
        if dry_run:
            return self._store.preview(new)
        try:
            return self._store.update(new, owned=True)
        except StoreError:
            raise not_found(k, name) from None

    def update_scale(
        self,
        kind: Kind | str,
        namespace: str,
        name: str,
        replicas: Any,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> Obj:
        """The scale subresource's PUT (what `kubectl scale` and the HPA controller
        send): set spec.replicas of a Deployment, ReplicaSet or StatefulSet, recorded
        against the `scale` subresource. Returns the new Scale."""
        k = self._kind(kind)
        if k.kind not in scale.SCALABLE:
            raise not_found(k, name)
        scale.check_replicas(name, replicas)
        updated = _json.copy(self.get(k, namespace, name))
        updated.setdefault("spec", {})["replicas"] = replicas
        obj = self.update(
            updated,
            namespace=namespace,
            dry_run=dry_run,
            field_manager=field_manager,
            subresource="scale",
        )
        return scale.scale_of(obj)

    def bind(self, namespace: str, name: str, node: str) -> Obj:
        """pods/binding, as the scheduler posts it: set spec.nodeName once."""
        k = kinds.BY_KIND["Pod"]
        pod = self.get(k, namespace, name)
        current = pod["spec"].get("nodeName")
        if current == node:
            return pod
        if current:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} is '
                f'already assigned to node "{current}"',
            )
        new = _json.copy(pod)
        new["spec"]["nodeName"] = node
        return self._store.update(new, owned=True)

    def _kind(self, kind: Kind | str) -> Kind:
        return kind if isinstance(kind, Kind) else kinds.BY_KIND[kind]

    def delete(
        self,
        kind: Kind | str,
        namespace: str,
        name: str,
        *,
        dry_run: bool = False,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
    ) -> Obj:
        """DELETE, as the API server admits it (registry/lifecycle.py): an object
        with finalizers, or a pod with a grace period, stays with a
        deletionTimestamp; the propagation policy becomes a garbage-collector
        finalizer (Orphan, Foreground) or none (Background)."""
        kind = self._kind(kind)
        ns = namespace if kind.namespaced else ""
        obj = self.get(kind, ns, name)
        if kind.kind == "Namespace" and name in _PROTECTED_NAMESPACES:
            raise ApiError(
                403,
                "Forbidden",
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                {"name": name, "group": "", "kind": "namespaces"},
            )
        if dry_run:
            return obj
        if kind.kind == "Namespace":
            return self._delete_namespace(obj)
        finalizers = lifecycle.finalizers_after_delete(obj, propagation_policy)
        if kind.kind == "Pod":
            return self._delete_pod(obj, grace_period_seconds, finalizers)
        if not finalizers:
            return self._store.delete(kind.kind, ns, name)
        md = obj["metadata"]
        if md.get("deletionTimestamp") and finalizers == list(md.get("finalizers") or ()):
            return obj
        return self._mark_deleting(kind.kind, obj, finalizers)

    def _mark_deleting(
        self, kind: str, obj: Obj, finalizers: builtins.list[str], grace: int = 0, when: str = ""
    ) -> Obj:
        """Set (or move) the deletion timestamp and keep the object for its finalizers
        or, for a pod, for the kubelet."""
        md = obj["metadata"]

        def mark(o: Obj) -> None:
            m = o["metadata"]
            m["deletionTimestamp"] = when or m.get("deletionTimestamp") or rfc3339(time.time())
            m["deletionGracePeriodSeconds"] = grace
            if finalizers:
                m["finalizers"] = finalizers
            else:
                m.pop("finalizers", None)

        return self._store.mutate(kind, md.get("namespace", ""), md["name"], mark)

    def _delete_namespace(self, nso: Obj) -> Obj:
        """Terminating until empty, as the namespace controller does it: new content
        is refused (403), everything in it is deleted (pods gracefully), and the
        Namespace goes only when nothing is left (controllers/namespace.py calls
        this again as its contents disappear)."""
        name = nso["metadata"]["name"]
        for k in kinds.KINDS:
            if k.namespaced and not k.storage_version:
                for o in self._store.list(k.kind, name):
                    if not o["metadata"].get("deletionTimestamp"):
                        with contextlib.suppress(ApiError):  # gone meanwhile
                            self.delete(k, name, o["metadata"]["name"])
        if self.namespace_empty(name):
            return self._store.delete("Namespace", "", name)
        if nso["metadata"].get("deletionTimestamp"):
            return self._store.get("Namespace", "", name) or nso

        def mark(o: Obj) -> None:
            o["metadata"]["deletionTimestamp"] = rfc3339(time.time())
            o.setdefault("status", {})["phase"] = "Terminating"

        return self._store.mutate("Namespace", "", name, mark)

    def namespace_empty(self, name: str) -> bool:
        return not any(self._store.list(k.kind, name) for k in kinds.KINDS if k.namespaced)

    def _delete_pod(self, pod: Obj, grace: int | None, finalizers: builtins.list[str]) -> Obj:
        md = pod["metadata"]
        if grace is None:
            grace = int(pod["spec"].get("terminationGracePeriodSeconds", 30))
        phase = (pod.get("status") or {}).get("phase")
        # Unscheduled or finished pods have nothing to stop; the agent (kubelet)
        # removes running pods itself once their processes have exited.
        if grace == 0 or not pod["spec"].get("nodeName") or phase in ("Succeeded", "Failed"):
            if not finalizers:
                return self._store.delete("Pod", md["namespace"], md["name"])
            return self._mark_deleting("Pod", pod, finalizers)
        current = md.get("deletionGracePeriodSeconds")
        same = finalizers == list(md.get("finalizers") or ())
        if md.get("deletionTimestamp"):
            # A later DELETE may only bring the end closer (BeforeDelete): the
            # new grace counts from when the deletion was first asked for.
            if current is not None and grace >= int(current):
                return pod if same else self._mark_deleting("Pod", pod, finalizers, int(current))
            began = dt.datetime.strptime(
                str(md["deletionTimestamp"]), "%Y-%m-%dT%H:%M:%SZ"
            ).replace(tzinfo=dt.UTC) - dt.timedelta(seconds=int(current or 0))
        else:
            began = dt.datetime.now(dt.UTC)
        when = (began + dt.timedelta(seconds=grace)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._mark_deleting("Pod", pod, finalizers, grace, when)
