"""Semantic validation with the API server's messages (k/k
pkg/apis/core/validation/validation.go and apimachinery's validation.go)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from svcnet.images import MappingError
from svcnet.k8s import quantity
from svcnet.k8s.objects import Obj
from svcnet.k8s.wellknown import IMAGES_KEY, INGRESS_CLASS_ANNOTATION
from svcnet.registry import imagemap
from svcnet.registry.errors import Cause

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
IANA_SVC_NAME = re.compile(r"^[-a-z0-9]+$")

MSG_1123_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
MSG_1123_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
MSG_1035_LABEL = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
PROTOCOLS = ("SCTP", "TCP", "UDP")


def q(v: Any) -> str:
    """Go's %v/%q rendering used in `Invalid value: ...`: strings quoted, numbers bare."""
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(path, "FieldValueInvalid", f"Invalid value: {q(value)}: {detail}")


def required(path: str, detail: str = "") -> Cause:
    return Cause(path, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def forbidden(path: str, detail: str) -> Cause:
    return Cause(path, "FieldValueForbidden", f"Forbidden: {detail}")


def duplicate(path: str, value: Any) -> Cause:
    return Cause(path, "FieldValueDuplicate", f"Duplicate value: {q(value)}")


def unsupported(path: str, value: Any, allowed: tuple[str, ...]) -> Cause:
    vals = ", ".join(f'"{a}"' for a in allowed)
    return Cause(
        path, "FieldValueNotSupported", f"Unsupported value: {q(value)}: supported values: {vals}"
    )


def name_errors(kind: str, name: str, path: str = "metadata.name") -> list[Cause]:
    if kind == "Service":
        if len(name) > 63:
            return [invalid(path, name, "must be no more than 63 characters")]
        if not DNS1035_LABEL.match(name):
            return [invalid(path, name, MSG_1035_LABEL)]
    elif kind == "Namespace":
        if len(name) > 63:
            return [invalid(path, name, "must be no more than 63 characters")]
        if not DNS1123_LABEL.match(name):
            return [invalid(path, name, MSG_1123_LABEL)]
    else:
        if len(name) > 253:
            return [invalid(path, name, "must be no more than 253 characters")]
        if not DNS1123_SUBDOMAIN.match(name):
            return [invalid(path, name, MSG_1123_SUBDOMAIN)]
    return []


QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME_FMT = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
MSG_LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
TOTAL_ANNOTATION_SIZE = 256 * 1024
"""apimachinery's TotalAnnotationSizeLimitB: keys and values together."""


def qualified_name_errors(value: str) -> list[str]:
    """apimachinery IsQualifiedName: `[prefix/]name`, the form of label and annotation keys."""
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
        if len(prefix) > 253:
            return ["prefix part must be no more than 253 characters"]
        if not DNS1123_SUBDOMAIN.match(prefix):
            return ["prefix part " + MSG_1123_SUBDOMAIN]
    else:
        return [
            "a qualified name " + _QUALIFIED_NAME_FMT + " with an optional DNS subdomain prefix "
            "and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        return ["name part must be non-empty"]
    if len(name) > 63:
        return ["name part must be no more than 63 characters"]
    if not QUALIFIED_NAME.match(name):
        return ["name part " + _QUALIFIED_NAME_FMT]
    return []


def labels_errors(labels: Any, path: str = "metadata.labels") -> list[Cause]:
    """ValidateLabels: every key a qualified name, every value a label value."""
    if not isinstance(labels, dict):
        return []
    errs = []
    for k, v in labels.items():
        errs += [invalid(path, k, m) for m in qualified_name_errors(str(k))]
        value = str(v)
        if len(value) > 63:
            errs.append(invalid(path, value, "must be no more than 63 characters"))
        elif not LABEL_VALUE.match(value):
            errs.append(invalid(path, value, MSG_LABEL_VALUE))
    return errs


def annotations_errors(annotations: Any, path: str = "metadata.annotations") -> list[Cause]:
    """ValidateAnnotations: keys are qualified names (lower-cased first), and keys and
    values together fit in 256 KiB."""
    if not isinstance(annotations, dict):
        return []
    errs = []
    size = 0
    for k, v in annotations.items():
        errs += [invalid(path, k, m) for m in qualified_name_errors(str(k).lower())]
        size += len(str(k)) + len(str(v))
    if size > TOTAL_ANNOTATION_SIZE:
        errs.append(
            Cause(
                path,
                "FieldValueTooLong",
                f"Too long: may not be more than {TOTAL_ANNOTATION_SIZE} bytes",
            )
        )
    return errs


def metadata(obj: Obj, *, creating: bool) -> list[Cause]:
    md = obj.get("metadata") or {}
    errs = labels_errors(md.get("labels")) + annotations_errors(md.get("annotations"))
    name = md.get("name")
    if not name:
        if creating and md.get("generateName"):
            return errs
        return [required("metadata.name", "name or generateName is required"), *errs]
    return name_errors(str(obj["kind"]), str(name)) + errs


def port_number(path: str, v: Any) -> list[Cause]:
    if not isinstance(v, int) or not 1 <= v <= 65535:
        return [invalid(path, v, "must be between 1 and 65535, inclusive")]
    return []


def port_name(path: str, name: str) -> list[Cause]:
    """IsValidPortName (IANA_SVC_NAME), the rules for a named targetPort."""
    out = []
    if len(name) > 15:
        out.append(invalid(path, name, "must be no more than 15 characters"))
    if not IANA_SVC_NAME.match(name):
        out.append(
            invalid(
                path, name, "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
            )
        )
    elif not re.search("[a-z]", name):
        out.append(invalid(path, name, "must contain at least one letter (a-z)"))
    if "--" in name:
        out.append(invalid(path, name, "must not contain consecutive hyphens"))
    if name.startswith("-") or name.endswith("-"):
        out.append(invalid(path, name, "must not begin or end with a hyphen"))
    return out


def service(obj: Obj) -> list[Cause]:
    spec = obj.get("spec") or {}
    errs: list[Cause] = labels_errors(spec.get("selector"), "spec.selector")
    typ = spec.get("type", "ClusterIP")
    if typ not in SERVICE_TYPES:
        return [unsupported("spec.type", typ, SERVICE_TYPES)]
    ports = spec.get("ports") or []
    headless = spec.get("clusterIP") == "None"
    if typ == "ExternalName":
        ext = spec.get("externalName")
        if not ext:
            errs.append(required("spec.externalName"))
        else:
            bare = str(ext).removesuffix(".")
            if len(bare) > 253 or not DNS1123_SUBDOMAIN.match(bare):
                errs.append(invalid("spec.externalName", ext, MSG_1123_SUBDOMAIN))
        if spec.get("clusterIP") or spec.get("clusterIPs"):
            errs.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
    elif not ports and not headless:
        errs.append(required("spec.ports"))
    if headless and typ in ("NodePort", "LoadBalancer"):
        errs.append(
            invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {typ} services")
        )
    names: set[str] = set()
    keys: set[tuple[str, int]] = set()
    node_ports: set[int] = set()
    for i, p in enumerate(ports):
        path = f"spec.ports[{i}]"
        name = p.get("name") or ""
        if len(ports) > 1 and not name:
            errs.append(required(f"{path}.name"))
        elif name:
            if not DNS1123_LABEL.match(name) or len(name) > 63:
                errs.append(invalid(f"{path}.name", name, MSG_1123_LABEL))
            elif name in names:
                errs.append(duplicate(f"{path}.name", name))
            names.add(name)
        errs += port_number(f"{path}.port", p.get("port"))
        proto = p.get("protocol", "TCP")
        if proto not in PROTOCOLS:
            errs.append(unsupported(f"{path}.protocol", proto, PROTOCOLS))
        key = (proto, p.get("port"))
        if key in keys:
            errs.append(
                Cause(
                    path,
                    "FieldValueDuplicate",
                    # field.Duplicate prints the (protocol, port) key with %#v.
                    f'Duplicate value: core.ServicePort{{Name:"", Protocol:{q(proto)}, '
                    f"AppProtocol:(*string)(nil), Port:{p.get('port')}, "
                    'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}',
                )
            )
        keys.add(key)
        tp = p.get("targetPort")
        if isinstance(tp, int):
            errs += port_number(f"{path}.targetPort", tp)
        elif isinstance(tp, str):
            if tp.isdigit():
                errs += port_number(f"{path}.targetPort", int(tp))
            else:
                errs += port_name(f"{path}.targetPort", tp)
        np = p.get("nodePort")
        if np:
            if typ not in ("NodePort", "LoadBalancer"):
                errs.append(
                    forbidden(f"{path}.nodePort", f"may not be used when `type` is '{typ}'")
                )
            elif np in node_ports and not any(
                pp.get("nodePort") == np and pp.get("protocol", "TCP") != proto for pp in ports[:i]
            ):
                errs.append(duplicate(f"{path}.nodePort", np))
            node_ports.add(np)
    affinity = spec.get("sessionAffinity", "None")
    if affinity not in ("None", "ClientIP"):
        errs.append(unsupported("spec.sessionAffinity", affinity, ("ClientIP", "None")))
    cfg = spec.get("sessionAffinityConfig")
    if affinity == "None" and cfg:
        errs.append(
            forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")
        )
    if affinity == "ClientIP":
        t = ((cfg or {}).get("clientIP") or {}).get("timeoutSeconds")
        if t is not None and not (0 < t <= 86400):
            errs.append(
                invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    t,
                    "must be greater than 0 and less than 86400",
                )
            )
    if spec.get("externalTrafficPolicy") and typ not in ("NodePort", "LoadBalancer"):
        errs.append(
            invalid(
                "spec.externalTrafficPolicy",
                spec["externalTrafficPolicy"],
                "may only be set for externally-accessible services",
            )
        )
    if typ != "LoadBalancer":
        for f in ("loadBalancerSourceRanges", "allocateLoadBalancerNodePorts"):
            if spec.get(f) is not None and spec.get(f) != []:
                errs.append(
                    forbidden(f"spec.{f}", "may only be used when `type` is 'LoadBalancer'")
                )
    hc = spec.get("healthCheckNodePort")
    if hc and not (typ == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"):
        errs.append(
            invalid(
                "spec.healthCheckNodePort",
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is "
                "'Local'",
            )
        )
    for i, ip in enumerate(spec.get("externalIPs") or []):
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            errs.append(invalid(f"spec.externalIPs[{i}]", ip, "must be a valid IP address"))
    return errs


def pod_spec(spec: Obj, path: str) -> list[Cause]:
    errs: list[Cause] = []
    containers = spec.get("containers") or []
    if not containers:
        errs.append(required(f"{path}.containers"))
    seen: set[str] = set()
    for i, c in enumerate(containers):
        cp = f"{path}.containers[{i}]"
        name = c.get("name") or ""
        if not name:
            errs.append(required(f"{cp}.name"))
        elif not DNS1123_LABEL.match(name) or len(name) > 63:
            errs.append(invalid(f"{cp}.name", name, MSG_1123_LABEL))
        elif name in seen:
            errs.append(duplicate(f"{cp}.name", name))
        seen.add(name)
        if not c.get("image"):
            errs.append(required(f"{cp}.image"))
        pnames: set[str] = set()
        for j, p in enumerate(c.get("ports") or []):
            errs += port_number(f"{cp}.ports[{j}].containerPort", p.get("containerPort"))
            if p.get("name"):
                errs += port_name(f"{cp}.ports[{j}].name", p["name"])
                if p["name"] in pnames:
                    errs.append(duplicate(f"{cp}.ports[{j}].name", p["name"]))
                pnames.add(p["name"])
        for k in ("livenessProbe", "readinessProbe", "startupProbe"):
            if isinstance(c.get(k), dict):
                errs += probe(f"{cp}.{k}", c[k], k != "readinessProbe")
    rp = spec.get("restartPolicy", "Always")
    if rp not in ("Always", "OnFailure", "Never"):
        errs.append(unsupported(f"{path}.restartPolicy", rp, ("Always", "OnFailure", "Never")))
    errs += pod_volumes(spec, path)
    errs += ephemeral_containers(spec, path)
    if path.endswith("template.spec") and spec.get("ephemeralContainers"):
        # ValidatePodTemplateSpec: they are added to running pods only.
        msg = "ephemeral containers not allowed in pod template"
        errs.append(forbidden(f"{path}.ephemeralContainers", msg))
    return errs


EPHEMERAL_FORBIDDEN = (
    "ports",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
)
"""The Container fields outside allowedEphemeralContainerFields, in the Go struct's order
(validateFieldAllowList reports them so)."""
EPHEMERAL_FORBIDDEN_MSG = "cannot be set for an Ephemeral Container"


def _is_set(field: str, value: Any) -> bool:
    """Whether a decoded field differs from Go's zero value: `resources: {}` is the zero
    struct, while an empty list or map (`ports: []`) is a non-nil slice, so set."""
    if value is None:
        return False
    if field == "resources" and isinstance(value, dict):
        return any(v is not None for v in value.values())
    return True


def ephemeral_containers(spec: Obj, path: str) -> list[Cause]:
    """validateEphemeralContainers: the container checks, a name unique among all the
    pod's containers, a targetContainerName that names a container or init container,
    no field that would make the pod rely on it (ports, probes, resources, lifecycle)
    and no subPath mounts."""
    errs: list[Cause] = []
    others = {
        str(c.get("name") or "")
        for f in ("containers", "initContainers")
        for c in spec.get(f) or ()
        if isinstance(c, dict)
    }
    names = set(others)
    volumes = {str(v.get("name") or "") for v in spec.get("volumes") or () if isinstance(v, dict)}
    for i, ec in enumerate(spec.get("ephemeralContainers") or ()):
        if not isinstance(ec, dict):
            continue
        ip = f"{path}.ephemeralContainers[{i}]"
        name = str(ec.get("name") or "")
        if not name:
            errs.append(required(f"{ip}.name"))
        elif not DNS1123_LABEL.match(name) or len(name) > 63:
            errs.append(invalid(f"{ip}.name", name, MSG_1123_LABEL))
        if not ec.get("image"):
            errs.append(required(f"{ip}.image"))
        errs += _volume_mounts(ec, volumes, f"{ip}.volumeMounts")
        if name in names:
            errs.append(duplicate(f"{ip}.name", name))
        names.add(name)
        target = ec.get("targetContainerName")
        if target and target not in others:
            errs.append(Cause(f"{ip}.targetContainerName", "FieldValueNotFound",
                              f"Not found: {q(target)}"))  # fmt: skip
        errs += [
            forbidden(f"{ip}.{f}", EPHEMERAL_FORBIDDEN_MSG)
            for f in EPHEMERAL_FORBIDDEN
            if _is_set(f, ec.get(f))
        ]
        for j, m in enumerate(ec.get("volumeMounts") or ()):
            for f in ("subPath", "subPathExpr"):
                if isinstance(m, dict) and m.get(f):
                    errs.append(forbidden(f"{ip}.volumeMounts[{j}].{f}", EPHEMERAL_FORBIDDEN_MSG))
    return errs


def ephemeral_containers_update(new: Obj, old: Obj) -> list[Cause]:
    """ValidatePodEphemeralContainersUpdate's part 2: the ephemeralcontainers
    subresource only adds. The API server follows "may not be changed" with Go's
    cmp.Diff of the two containers; svcnet names the fields that differ instead."""
    errs: list[Cause] = []
    path = "spec.ephemeralContainers"
    by_name = {
        str(c.get("name") or ""): c
        for c in (new.get("spec") or {}).get("ephemeralContainers") or ()
        if isinstance(c, dict)
    }
    for was in (old.get("spec") or {}).get("ephemeralContainers") or ():
        name = str(was.get("name") or "")
        now = by_name.get(name)
        what = f"existing ephemeral containers {q(name)} may not be"
        if now is None:
            errs.append(forbidden(path, f"{what} removed\n"))
        elif now != was:
            changed = sorted(k for k in {*now, *was} if now.get(k) != was.get(k))
            diff = "".join(
                f"  {k}: - {_json_short(was.get(k))}\n  {k}: + {_json_short(now.get(k))}\n"
                for k in changed
            )
            errs.append(forbidden(path, f"{what} changed\n{diff}"))
    return errs


VOLUME_SOURCES = (
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "quobyte",
    "cephfs",
    "cinder",
    "downwardAPI",
    "fc",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "configMap",
    "scaleIO",
    "projected",
    "csi",
    "ephemeral",
    "image",
)
"""validateVolumeSource's order: the second source present is the one named in
"may not specify more than 1 volume type"."""
HOST_PATH_TYPES = (
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
)
DOWNWARD_VOLUME_FIELDS = (
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
)
MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"


def pod_volumes(spec: Obj, path: str) -> list[Cause]:
    """validateVolumes and validateVolumeMounts (k/k pkg/apis/core/validation)."""
    errs: list[Cause] = []
    names: set[str] = set()
    for i, v in enumerate(spec.get("volumes") or ()):
        if not isinstance(v, dict):
            continue
        vp = f"{path}.volumes[{i}]"
        errs += _volume_source(v, vp)
        name = str(v.get("name") or "")
        if not name:
            errs.append(required(f"{vp}.name"))
        elif not DNS1123_LABEL.match(name) or len(name) > 63:
            errs.append(invalid(f"{vp}.name", name, MSG_1123_LABEL))
        if name and name in names:
            errs.append(duplicate(f"{vp}.name", name))
        names.add(name)
    for field in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(field) or ()):
            if isinstance(c, dict):
                errs += _volume_mounts(c, names, f"{path}.{field}[{i}].volumeMounts")
    return errs


def _volume_source(v: Obj, vp: str) -> list[Cause]:
    errs: list[Cause] = []
    present = [s for s in VOLUME_SOURCES if v.get(s) is not None]
    if not present:
        return [required(vp, "must specify a volume type")]
    for extra in present[1:]:
        errs.append(forbidden(f"{vp}.{extra}", "may not specify more than 1 volume type"))
    kind = present[0]
    src = v[kind]
    sp = f"{vp}.{kind}"
    if not isinstance(src, dict):
        return errs
    if kind == "hostPath":
        hp = str(src.get("path") or "")
        if not hp:
            errs.append(required(f"{sp}.path"))
        elif ".." in hp.split("/"):
            errs.append(invalid(f"{sp}.path", hp, "must not contain '..'"))
        if src.get("type") is not None and src["type"] not in HOST_PATH_TYPES:
            errs.append(unsupported(f"{sp}.type", src["type"], HOST_PATH_TYPES))
    elif kind in ("secret", "configMap"):
        key = "secretName" if kind == "secret" else "name"
        if not src.get(key):
            errs.append(required(f"{sp}.{key}"))
        errs += _mode(f"{sp}.defaultMode", src.get("defaultMode"))
        for j, item in enumerate(src.get("items") or ()):
            ip = f"{sp}.items[{j}]"
            if not item.get("key"):
                errs.append(required(f"{ip}.key"))
            if not item.get("path"):
                errs.append(required(f"{ip}.path"))
            else:
                errs += _local_non_reserved_path(str(item["path"]), f"{ip}.path")
            errs += _mode(f"{ip}.mode", item.get("mode"))
    elif kind == "persistentVolumeClaim":
        if not src.get("claimName"):
            errs.append(required(f"{sp}.claimName"))
    elif kind == "downwardAPI":
        errs += _mode(f"{sp}.defaultMode", src.get("defaultMode"))
        for j, item in enumerate(src.get("items") or ()):
            errs += _downward_item(item, f"{sp}.items[{j}]")
    elif kind == "emptyDir" and src.get("sizeLimit") is not None:
        if str(src["sizeLimit"]).startswith("-"):
            errs.append(
                forbidden(f"{sp}.sizeLimit", "SizeLimit field must be a valid resource quantity")
            )
    return errs


def _downward_item(item: Obj, ip: str) -> list[Cause]:
    errs: list[Cause] = []
    if not item.get("path"):
        errs.append(required(f"{ip}.path"))
    else:
        errs += _local_non_reserved_path(str(item["path"]), f"{ip}.path")
    field_ref, resource_ref = item.get("fieldRef"), item.get("resourceFieldRef")
    if isinstance(field_ref, dict):
        fp = str(field_ref.get("fieldPath") or "")
        base = fp.split("[", 1)[0] if fp.endswith("']") else fp
        if not fp:
            errs.append(required(f"{ip}.fieldRef.fieldPath"))
        elif base not in DOWNWARD_VOLUME_FIELDS or (
            base != fp and base not in ("metadata.labels", "metadata.annotations")
        ):
            errs.append(unsupported(f"{ip}.fieldRef.fieldPath", fp, DOWNWARD_VOLUME_FIELDS))
        if resource_ref is not None:
            both = "fieldRef and resourceFieldRef can not be specified simultaneously"
            errs.append(invalid(ip, "resource", both))
    elif isinstance(resource_ref, dict):
        if not resource_ref.get("containerName"):
            errs.append(required(f"{ip}.resourceFieldRef.containerName"))
    else:
        errs.append(required(ip, "one of fieldRef and resourceFieldRef is required"))
    errs += _mode(f"{ip}.mode", item.get("mode"))
    return errs


def _mode(path: str, mode: Any) -> list[Cause]:
    if mode is None or (isinstance(mode, int) and 0 <= mode <= 0o777):
        return []
    return [invalid(path, mode, MODE_MSG)]


def _local_descending_path(value: str, path: str) -> list[Cause]:
    errs: list[Cause] = []
    if value.startswith("/"):
        errs.append(invalid(path, value, "must be a relative path"))
    if ".." in value.split("/"):
        errs.append(invalid(path, value, "must not contain '..'"))
    return errs


def _local_non_reserved_path(value: str, path: str) -> list[Cause]:
    errs = _local_descending_path(value, path)
    if value.startswith(".."):
        errs.append(invalid(path, value, "must not start with '..'"))
    return errs


def _volume_mounts(c: Obj, volumes: set[str], path: str) -> list[Cause]:
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, m in enumerate(c.get("volumeMounts") or ()):
        if not isinstance(m, dict):
            continue
        mp = f"{path}[{i}]"
        name = str(m.get("name") or "")
        if not name:
            errs.append(required(f"{mp}.name"))
        elif name not in volumes:
            errs.append(Cause(f"{mp}.name", "FieldValueNotFound", f"Not found: {q(name)}"))
        target = str(m.get("mountPath") or "")
        if not target:
            errs.append(required(f"{mp}.mountPath"))
        if target in seen:
            errs.append(invalid(f"{mp}.mountPath", target, "must be unique"))
        seen.add(target)
        # The API server names these two without the index (fldPath, not idxPath).
        if m.get("subPath"):
            errs += _local_descending_path(str(m["subPath"]), f"{path}.subPath")
        if m.get("subPathExpr"):
            if m.get("subPath"):
                errs.append(
                    invalid(
                        f"{mp}.subPathExpr",
                        m["subPathExpr"],
                        "subPathExpr and subPath are mutually exclusive",
                    )
                )
            errs += _local_descending_path(str(m["subPathExpr"]), f"{path}.subPathExpr")
    return errs


PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")


def probe(path: str, p: Obj, single_success: bool) -> list[Cause]:
    """validateProbe / validateHandler (k/k pkg/apis/core/validation)."""
    errs: list[Cause] = []
    handlers = [h for h in PROBE_HANDLERS if p.get(h) is not None]
    if not handlers:
        errs.append(required(path, "must specify a handler type"))
    elif len(handlers) > 1:
        errs.append(forbidden(f"{path}.{handlers[1]}", "may not specify more than 1 handler type"))
    for f in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
        "terminationGracePeriodSeconds",
    ):
        v = p.get(f)
        if isinstance(v, int) and v < 0:
            errs.append(invalid(f"{path}.{f}", v, "must be greater than or equal to 0"))
    if single_success and p.get("successThreshold") not in (None, 1):
        errs.append(invalid(f"{path}.successThreshold", p["successThreshold"], "must be 1"))
    if p.get("terminationGracePeriodSeconds") == 0:
        errs.append(invalid(f"{path}.terminationGracePeriodSeconds", 0, "must be greater than 0"))
    http = p.get("httpGet")
    if isinstance(http, dict):
        errs += _probe_port(f"{path}.httpGet.port", http.get("port"))
        scheme = http.get("scheme", "HTTP")
        if scheme not in ("HTTP", "HTTPS"):
            errs.append(unsupported(f"{path}.httpGet.scheme", scheme, ("HTTP", "HTTPS")))
    tcp = p.get("tcpSocket")
    if isinstance(tcp, dict):
        errs += _probe_port(f"{path}.tcpSocket.port", tcp.get("port"))
    ex = p.get("exec")
    if isinstance(ex, dict) and not ex.get("command"):
        errs.append(required(f"{path}.exec.command"))
    return errs


def _probe_port(path: str, port: Any) -> list[Cause]:
    if port is None:
        return [required(path)]
    if isinstance(port, int):
        return port_number(path, port)
    return port_name(path, str(port))


def pod(obj: Obj) -> list[Cause]:
    return pod_spec(obj.get("spec") or {}, "spec")


def _go_map(m: dict[str, Any]) -> str:
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(m.items())) + "}"


def workload(obj: Obj) -> list[Cause]:
    """ReplicaSet / Deployment: selector, template labels, replicas."""
    from svcnet.k8s import labels

    spec = obj.get("spec") or {}
    errs: list[Cause] = []
    replicas = spec.get("replicas", 1)
    if isinstance(replicas, int) and replicas < 0:
        errs.append(invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    sel = spec.get("selector")
    tmpl = spec.get("template") or {}
    tlabels = (tmpl.get("metadata") or {}).get("labels") or {}
    if not sel:
        errs.append(required("spec.selector"))
    else:
        try:
            s = labels.from_label_selector(sel)
        except labels.SelectorError as e:
            errs.append(Cause("spec.selector", "FieldValueInvalid", str(e)))
        else:
            if s.empty:
                what = {"StatefulSet": "statefulset", "DaemonSet": "daemonset"}.get(
                    str(obj.get("kind")), "deployment"
                )
                errs.append(invalid("spec.selector", "", f"empty selector is invalid for {what}"))
            elif not s.matches(tlabels):
                errs.append(
                    Cause(
                        "spec.template.metadata.labels",
                        "FieldValueInvalid",
                        f"Invalid value: {_go_map(tlabels)}: `selector` does not "
                        "match template `labels`",
                    )
                )
    if obj.get("kind") != "StatefulSet":
        # The API server leaves a StatefulSet's pod spec alone
        # (ValidatePodTemplateSpecForStatefulSet): its volume mounts may name
        # volumeClaimTemplates, which are no volumes yet. A bad spec shows when
        # the controller creates the pods (FailedCreate).
        errs += pod_spec(tmpl.get("spec") or {}, "spec.template.spec")
    if obj.get("kind") == "Deployment":
        errs += deployment_strategy(spec)
    tmd = tmpl.get("metadata") or {}
    errs += labels_errors(tmd.get("labels"), "spec.template.metadata.labels")
    errs += annotations_errors(tmd.get("annotations"), "spec.template.metadata.annotations")
    return errs


PERCENT = re.compile(r"^[0-9]+%$")
MSG_PERCENT = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  "
    "or '93%', regex used for validation is '[0-9]+%')"
)


def _int_or_percent(path: str, v: Any) -> tuple[list[Cause], int | None, bool]:
    """(errors, value, is_percent) for an IntOrString rollout field."""
    if isinstance(v, bool) or v is None:
        return [], None, False
    if isinstance(v, int):
        if v < 0:
            return [invalid(path, v, "must be greater than or equal to 0")], None, False
        return [], v, False
    if not PERCENT.match(str(v)):
        return [invalid(path, v, MSG_PERCENT)], None, True
    return [], int(str(v)[:-1]), True


def deployment_strategy(spec: Obj) -> list[Cause]:
    """ValidateDeploymentStrategy / ValidateRollingUpdateDeployment (k/k apps validation)."""
    errs: list[Cause] = []
    strategy = spec.get("strategy") or {}
    typ = strategy.get("type", "RollingUpdate")
    if typ not in ("Recreate", "RollingUpdate"):
        return [unsupported("spec.strategy.type", typ, ("Recreate", "RollingUpdate"))]
    ru = strategy.get("rollingUpdate")
    if typ == "Recreate":
        if ru is not None:
            errs.append(
                forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                )
            )
    elif isinstance(ru, dict):
        base = "spec.strategy.rollingUpdate"
        e1, unavailable, u_pct = _int_or_percent(f"{base}.maxUnavailable", ru.get("maxUnavailable"))
        e2, surge, _ = _int_or_percent(f"{base}.maxSurge", ru.get("maxSurge"))
        errs += e1 + e2
        if u_pct and unavailable is not None and unavailable > 100:
            errs.append(
                invalid(
                    f"{base}.maxUnavailable", ru["maxUnavailable"], "must not be greater than 100%"
                )
            )
        if unavailable == 0 and surge == 0:
            errs.append(
                invalid(
                    f"{base}.maxUnavailable",
                    ru["maxUnavailable"],
                    "may not be 0 when `maxSurge` is 0",
                )
            )
    for f in ("revisionHistoryLimit", "minReadySeconds", "progressDeadlineSeconds"):
        v = spec.get(f)
        if isinstance(v, int) and v < 0:
            errs.append(invalid(f"spec.{f}", v, "must be greater than or equal to 0"))
    return errs


_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
    "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
    "'[-._a-zA-Z0-9]+')"
)
MAX_DATA_BYTES = 1024 * 1024


def config_key_errors(key: str) -> list[str]:
    """IsConfigMapKey: what is wrong with a ConfigMap or Secret key."""
    out = []
    if not _CONFIG_KEY.fullmatch(key):
        out.append(CONFIG_KEY_MSG)
    if key == ".":
        out.append("must not be '.'")
    elif key == "..":
        out.append("must not be '..'")
    elif key.startswith(".."):
        out.append("must not start with '..'")
    return out


def _data_keys(obj: Obj, fields: tuple[str, ...]) -> tuple[list[Cause], int]:
    errs: list[Cause] = []
    size = 0
    seen: dict[str, str] = {}
    for f in fields:
        for key, value in (obj.get(f) or {}).items():
            for msg in config_key_errors(key):
                errs.append(invalid(f"{f}[{key}]", key, msg))
            if key in seen:
                errs.append(invalid(f"{f}[{key}]", key, f"duplicate of key present in {seen[key]}"))
            seen[key] = f
            size += len(str(value))
    return errs, size


def configmap(obj: Obj) -> list[Cause]:
    errs, size = _data_keys(obj, ("data", "binaryData"))
    if size > MAX_DATA_BYTES:
        errs.append(
            Cause("", "FieldValueTooLong", f"Too long: must have at most {MAX_DATA_BYTES} bytes")
        )
    elif imagemap.is_images_configmap(obj):
        try:
            imagemap.read(obj)
        except MappingError as e:
            errs.append(Cause(f"data[{IMAGES_KEY}]", "FieldValueInvalid", f"Invalid value: {e}"))
    return errs


def secret(obj: Obj) -> list[Cause]:
    errs, _ = _data_keys(obj, ("data",))
    return errs


def _nonnegative(spec: Obj, path: str, *names: str) -> list[Cause]:
    errs = []
    for f in names:
        v = spec.get(f)
        if isinstance(v, int) and not isinstance(v, bool) and v < 0:
            errs.append(invalid(f"{path}.{f}", v, "must be greater than or equal to 0"))
    return errs


def _always_restart(spec: Obj) -> list[Cause]:
    rp = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy", "Always")
    if rp != "Always":
        return [unsupported("spec.template.spec.restartPolicy", rp, ("Always",))]
    return []


def statefulset(obj: Obj) -> list[Cause]:
    """ValidateStatefulSetSpec (k/k pkg/apis/apps/validation)."""
    spec = obj.get("spec") or {}
    errs = workload(obj)
    policy = spec.get("podManagementPolicy")
    if policy not in ("OrderedReady", "Parallel"):
        errs.append(unsupported("spec.podManagementPolicy", policy, ("OrderedReady", "Parallel")))
    strategy = spec.get("updateStrategy") or {}
    typ = strategy.get("type")
    if typ not in ("OnDelete", "RollingUpdate"):
        errs.append(unsupported("spec.updateStrategy.type", typ, ("OnDelete", "RollingUpdate")))
    elif typ == "OnDelete" and strategy.get("rollingUpdate") is not None:
        errs.append(
            forbidden(
                "spec.updateStrategy.rollingUpdate",
                "only allowed for updateStrategy 'RollingUpdate'",
            )
        )
    ru = strategy.get("rollingUpdate") or {}
    errs += _nonnegative(ru, "spec.updateStrategy.rollingUpdate", "partition")
    errs += _nonnegative(spec, "spec", "minReadySeconds", "revisionHistoryLimit")
    retention = spec.get("persistentVolumeClaimRetentionPolicy") or {}
    for f in ("whenDeleted", "whenScaled"):
        v = retention.get(f)
        if v not in ("Retain", "Delete"):
            errs.append(
                unsupported(
                    f"spec.persistentVolumeClaimRetentionPolicy.{f}", v, ("Retain", "Delete")
                )
            )
    seen: set[str] = set()
    for i, vct in enumerate(spec.get("volumeClaimTemplates") or []):
        name = str((vct.get("metadata") or {}).get("name") or "")
        path = f"spec.volumeClaimTemplates[{i}]"
        if not name:
            errs.append(required(f"{path}.metadata.name", "name or generateName is required"))
        elif name in seen:
            errs.append(duplicate(f"{path}.metadata.name", name))
        seen.add(name)
        errs += persistentvolumeclaim_spec(vct.get("spec") or {}, f"{path}.spec")
    errs += _always_restart(spec)
    return errs


def daemonset(obj: Obj) -> list[Cause]:
    """ValidateDaemonSetSpec."""
    spec = obj.get("spec") or {}
    errs = workload(obj)
    strategy = spec.get("updateStrategy") or {}
    typ = strategy.get("type")
    if typ not in ("OnDelete", "RollingUpdate"):
        errs.append(unsupported("spec.updateStrategy.type", typ, ("OnDelete", "RollingUpdate")))
    ru = strategy.get("rollingUpdate")
    if typ == "RollingUpdate" and isinstance(ru, dict):
        base = "spec.updateStrategy.rollingUpdate"
        e1, unavailable, _ = _int_or_percent(f"{base}.maxUnavailable", ru.get("maxUnavailable"))
        e2, surge, _ = _int_or_percent(f"{base}.maxSurge", ru.get("maxSurge"))
        errs += e1 + e2
        if unavailable == 0 and surge == 0:
            errs.append(
                invalid(
                    f"{base}.maxUnavailable",
                    ru["maxUnavailable"],
                    "may not be 0 when `maxSurge` is 0",
                )
            )
    errs += _nonnegative(spec, "spec", "minReadySeconds", "revisionHistoryLimit")
    errs += _always_restart(spec)
    return errs


def job_spec(spec: Obj, path: str) -> list[Cause]:
    """ValidateJobSpec (k/k pkg/apis/batch/validation)."""
    from svcnet.k8s import labels

    errs = _nonnegative(
        spec,
        path,
        "parallelism",
        "completions",
        "backoffLimit",
        "activeDeadlineSeconds",
        "ttlSecondsAfterFinished",
    )
    ads = spec.get("activeDeadlineSeconds")
    if isinstance(ads, int) and ads == 0:
        errs.append(invalid(f"{path}.activeDeadlineSeconds", 0, "must be greater than 0"))
    mode = spec.get("completionMode", "NonIndexed")
    if mode not in ("NonIndexed", "Indexed"):
        errs.append(unsupported(f"{path}.completionMode", mode, ("NonIndexed", "Indexed")))
    elif mode == "Indexed":
        if spec.get("completions") is None:
            errs.append(required(f"{path}.completions", "when completion mode is Indexed"))
        elif isinstance(spec["completions"], int) and spec["completions"] > 100000:
            errs.append(
                invalid(
                    f"{path}.completions",
                    spec["completions"],
                    "must be less than or equal to 100000",
                )
            )
    tmpl = spec.get("template") or {}
    tlabels = (tmpl.get("metadata") or {}).get("labels") or {}
    sel = spec.get("selector")
    if sel:
        try:
            s = labels.from_label_selector(sel)
        except labels.SelectorError as e:
            errs.append(Cause(f"{path}.selector", "FieldValueInvalid", str(e)))
        else:
            if not s.matches(tlabels):
                errs.append(
                    Cause(
                        f"{path}.template.metadata.labels",
                        "FieldValueInvalid",
                        f"Invalid value: {_go_map(tlabels)}: `selector` does not "
                        "match template `labels`",
                    )
                )
    tspec = tmpl.get("spec") or {}
    errs += pod_spec(tspec, f"{path}.template.spec")
    rp = tspec.get("restartPolicy", "Always")
    if rp not in ("OnFailure", "Never"):
        errs.append(unsupported(f"{path}.template.spec.restartPolicy", rp, ("OnFailure", "Never")))
    tmd = tmpl.get("metadata") or {}
    errs += labels_errors(tmd.get("labels"), f"{path}.template.metadata.labels")
    errs += annotations_errors(tmd.get("annotations"), f"{path}.template.metadata.annotations")
    return errs


def job(obj: Obj) -> list[Cause]:
    return job_spec(obj.get("spec") or {}, "spec")


CRONJOB_NAME_MAX = 52
"""A CronJob's Jobs are named `<cronjob>-<minutes>` (11 more characters) and must
stay within a label value's 63."""


def cronjob(obj: Obj) -> list[Cause]:
    """ValidateCronJobCreate / ValidateCronJobSpec."""
    from svcnet.k8s import cron

    errs: list[Cause] = []
    name = str((obj.get("metadata") or {}).get("name") or "")
    if len(name) > CRONJOB_NAME_MAX:
        errs.append(
            invalid("metadata.name", name, f"must be no more than {CRONJOB_NAME_MAX} characters")
        )
    spec = obj.get("spec") or {}
    schedule = spec.get("schedule")
    if not schedule:
        errs.append(required("spec.schedule"))
    else:
        try:
            cron.parse(str(schedule))
        except cron.CronError as e:
            errs.append(invalid("spec.schedule", schedule, str(e)))
    tz = spec.get("timeZone")
    if tz is not None:
        try:
            cron.time_zone(str(tz))
        except cron.CronError as e:
            errs.append(invalid("spec.timeZone", tz, str(e)))
    policy = spec.get("concurrencyPolicy")
    if policy not in ("Allow", "Forbid", "Replace"):
        errs.append(unsupported("spec.concurrencyPolicy", policy, ("Allow", "Forbid", "Replace")))
    errs += _nonnegative(
        spec,
        "spec",
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
    )
    jt = spec.get("jobTemplate") or {}
    errs += job_spec(jt.get("spec") or {}, "spec.jobTemplate.spec")
    return errs


ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")


def _access_modes(modes: Any, path: str) -> list[Cause]:
    if not modes:
        return [required(path, "at least 1 access mode is required")]
    errs = [unsupported(path, m, ACCESS_MODES) for m in modes if m not in ACCESS_MODES]
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        errs.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def persistentvolumeclaim_spec(spec: Obj, path: str) -> list[Cause]:
    """ValidatePersistentVolumeClaimSpec (the parts a claim for a hostPath volume uses)."""
    from svcnet.k8s.quantity import QuantityError
    from svcnet.k8s.quantity import parse as parse_quantity

    errs = _access_modes(spec.get("accessModes"), f"{path}.accessModes")
    requests = (spec.get("resources") or {}).get("requests") or {}
    storage = requests.get("storage")
    if storage is None:
        errs.append(required(f"{path}.resources[storage]"))
    else:
        try:
            if parse_quantity(str(storage)) <= 0:
                errs.append(
                    invalid(
                        f"{path}.resources.requests[storage]",
                        str(storage),
                        "must be greater than zero",
                    )
                )
        except QuantityError:
            errs.append(
                invalid(
                    f"{path}.resources.requests[storage]",
                    str(storage),
                    "quantities must match the regular expression "
                    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                )
            )
    mode = spec.get("volumeMode")
    if mode is not None and mode not in ("Block", "Filesystem"):
        errs.append(unsupported(f"{path}.volumeMode", mode, ("Block", "Filesystem")))
    return errs


def persistentvolumeclaim(obj: Obj) -> list[Cause]:
    return persistentvolumeclaim_spec(obj.get("spec") or {}, "spec")


def persistentvolume(obj: Obj) -> list[Cause]:
    """ValidatePersistentVolumeSpec: capacity, access modes, one volume source."""
    spec = obj.get("spec") or {}
    errs = _access_modes(spec.get("accessModes"), "spec.accessModes")
    capacity = spec.get("capacity") or {}
    if not capacity:
        errs.append(required("spec.capacity"))
    elif "storage" not in capacity:
        errs.append(unsupported("spec.capacity", next(iter(capacity)), ("storage",)))
    sources = [
        k
        for k in ("hostPath", "local", "nfs", "csi", "iscsi", "fc", "emptyDir")
        if spec.get(k) is not None
    ]
    if not sources:
        errs.append(required("spec", "must specify a volume type"))
    elif len(sources) > 1:
        errs.append(forbidden(f"spec.{sources[1]}", "may not specify more than 1 volume type"))
    hp = spec.get("hostPath")
    if isinstance(hp, dict) and not hp.get("path"):
        errs.append(required("spec.hostPath.path"))
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy not in ("Delete", "Recycle", "Retain"):
        errs.append(
            unsupported(
                "spec.persistentVolumeReclaimPolicy", policy, ("Delete", "Recycle", "Retain")
            )
        )
    return errs


def storageclass(obj: Obj) -> list[Cause]:
    """ValidateStorageClass."""
    errs: list[Cause] = []
    if not obj.get("provisioner"):
        errs.append(required("provisioner"))
    policy = obj.get("reclaimPolicy")
    if policy not in ("Delete", "Retain"):
        errs.append(unsupported("reclaimPolicy", policy, ("Delete", "Retain")))
    mode = obj.get("volumeBindingMode")
    if mode not in ("Immediate", "WaitForFirstConsumer"):
        errs.append(unsupported("volumeBindingMode", mode, ("Immediate", "WaitForFirstConsumer")))
    return errs


# --- networking.k8s.io: Ingress and IngressClass (k/k pkg/apis/networking/validation) ---

PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")
WILDCARD_DNS1123_SUBDOMAIN = re.compile(
    r"^\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
MSG_WILDCARD_1123_SUBDOMAIN = (
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, "
    "which must consist of lower case alphanumeric characters, '-' or '.' and end with an "
    "alphanumeric character (e.g. '*.example.com', regex used for validation is "
    "'\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_MAX_INGRESS_CLASS_CONTROLLER = 250


def _subdomain_errors(value: str) -> list[str]:
    """IsDNS1123Subdomain's messages."""
    out = []
    if len(value) > 253:
        out.append("must be no more than 253 characters")
    if not DNS1123_SUBDOMAIN.match(value):
        out.append(MSG_1123_SUBDOMAIN)
    return out


def _host_errors(host: str) -> list[str]:
    """IsWildcardDNS1123Subdomain for a host with a `*`, else IsDNS1123Subdomain."""
    if "*" in host:
        out = ["must be no more than 253 characters"] if len(host) > 253 else []
        if not WILDCARD_DNS1123_SUBDOMAIN.match(host):
            out.append(MSG_WILDCARD_1123_SUBDOMAIN)
        return out
    return _subdomain_errors(host)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _path_segment_errors(value: str) -> list[str]:
    """IsPathSegmentName: what may not be a single path segment."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def _typed_local_object_ref(ref: Obj, path: str) -> list[Cause]:
    """validateTypedLocalObjectReference: an optional apiGroup (a DNS subdomain), and a
    kind and a name that are single path segments; an Ingress backend's resource and an
    IngressClass's parameters are both such references."""
    errs: list[Cause] = []
    if ref.get("apiGroup") is not None:
        errs += [
            invalid(f"{path}.apiGroup", ref["apiGroup"], m)
            for m in _subdomain_errors(str(ref["apiGroup"]))
        ]
    for f in ("kind", "name"):
        if not ref.get(f):
            errs.append(required(f"{path}.{f}"))
        else:
            errs += [invalid(f"{path}.{f}", ref[f], m) for m in _path_segment_errors(str(ref[f]))]
    return errs


def ingress_backend(backend: Any, path: str) -> list[Cause]:
    """validateIngressBackend: a service (name, and a port by name or number) or a resource."""
    if not isinstance(backend, dict):
        return []
    svc, res = backend.get("service"), backend.get("resource")
    if svc is not None and res is not None:
        return [invalid(path, "", "cannot set both resource and service backends")]
    errs: list[Cause] = []
    if isinstance(res, dict):
        return _typed_local_object_ref(res, f"{path}.resource")
    if not isinstance(svc, dict):
        return [invalid(path, "", "resource or service backend is required")]
    name = str(svc.get("name") or "")
    if not name:
        errs.append(required(f"{path}.service.name"))
    else:
        errs += name_errors("Service", name, f"{path}.service.name")
    port = svc.get("port") or {}
    port_name_ = str(port.get("name") or "")
    number = port.get("number") or 0
    if port_name_ and number:
        errs.append(invalid(path, "", "cannot set both port name & port number"))
    elif port_name_:
        errs += port_name(f"{path}.service.port.name", port_name_)
    elif number:
        errs += port_number(f"{path}.service.port.number", number)
    else:
        errs.append(required(path, "port name or number is required"))
    return errs


def _http_path(p: Obj, path: str) -> list[Cause]:
    """validateHTTPIngressPath."""
    typ = p.get("pathType")
    if typ is None:
        return [required(f"{path}.pathType", "pathType must be specified")]
    value = str(p.get("path") or "")
    errs: list[Cause] = []
    if typ in ("Exact", "Prefix"):
        if not value.startswith("/"):
            errs.append(invalid(f"{path}.path", value, "must be an absolute path"))
        if value:
            errs += [
                invalid(f"{path}.path", value, f"must not contain '{seq}'")
                for seq in _INVALID_PATH_SEQUENCES
                if seq in value
            ]
            errs += [
                invalid(f"{path}.path", value, f"cannot end with '{suffix}'")
                for suffix in _INVALID_PATH_SUFFIXES
                if value.endswith(suffix)
            ]
    elif typ == "ImplementationSpecific":
        if value and not value.startswith("/"):
            errs.append(invalid(f"{path}.path", value, "must be an absolute path"))
    else:
        errs.append(unsupported(f"{path}.pathType", typ, PATH_TYPES))
    return errs + ingress_backend(p.get("backend"), f"{path}.backend")


def ingress(obj: Obj) -> list[Cause]:
    """ValidateIngressCreate / ValidateIngressSpec."""
    spec = obj.get("spec") or {}
    errs: list[Cause] = []
    rules = spec.get("rules")
    if not rules and spec.get("defaultBackend") is None:
        shown = "[]networking.IngressRule{}" if rules == [] else "[]networking.IngressRule(nil)"
        errs.append(
            Cause(
                "spec",
                "FieldValueInvalid",
                f"Invalid value: {shown}: either `defaultBackend` or `rules` must be specified",
            )
        )
    if spec.get("defaultBackend") is not None:
        errs += ingress_backend(spec["defaultBackend"], "spec.defaultBackend")
    for i, rule in enumerate(rules or []):
        rp = f"spec.rules[{i}]"
        host = str(rule.get("host") or "")
        if host:
            if _is_ip(host):
                errs.append(invalid(f"{rp}.host", host, "must be a DNS name, not an IP address"))
            errs += [invalid(f"{rp}.host", host, m) for m in _host_errors(host)]
        http = rule.get("http")
        if isinstance(http, dict):
            paths = http.get("paths") or []
            if not paths:
                errs.append(required(f"{rp}.http.paths"))
            for j, p in enumerate(paths):
                errs += _http_path(p, f"{rp}.http.paths[{j}]")
    for i, tls in enumerate(spec.get("tls") or []):
        for j, host in enumerate(tls.get("hosts") or []):
            errs += [invalid(f"spec.tls[{i}].hosts[{j}]", host, m) for m in _host_errors(host)]
        secret_name = str(tls.get("secretName") or "")
        if secret_name:
            errs += [
                invalid(f"spec.tls[{i}].secretName", secret_name, m)
                for m in _subdomain_errors(secret_name)
            ]
    class_name = spec.get("ingressClassName")
    if class_name is not None:
        errs += [
            invalid("spec.ingressClassName", class_name, m)
            for m in _subdomain_errors(str(class_name))
        ]
    annotation = ((obj.get("metadata") or {}).get("annotations") or {}).get(
        INGRESS_CLASS_ANNOTATION
    )
    if annotation is not None and class_name is not None and annotation != class_name:
        errs.append(
            invalid(
                f"annotations.{INGRESS_CLASS_ANNOTATION}",
                annotation,
                "must match `ingressClassName` when both are specified",
            )
        )
    return errs


def ingressclass(obj: Obj) -> list[Cause]:
    """validateIngressClassSpec and validateIngressClassParametersReference."""
    spec = obj.get("spec") or {}
    errs: list[Cause] = []
    controller = str(spec.get("controller") or "")
    if not controller:
        errs.append(required("spec.controller"))
    elif len(controller) > _MAX_INGRESS_CLASS_CONTROLLER:
        errs.append(
            Cause(
                "spec.controller",
                "FieldValueTooLong",
                f"Too long: may not be more than {_MAX_INGRESS_CLASS_CONTROLLER} bytes",
            )
        )
    else:
        errs += _domain_prefixed_path("spec.controller", controller)
    params = spec.get("parameters")
    if isinstance(params, dict):
        pp = "spec.parameters"
        errs += _typed_local_object_ref(params, pp)
        scope = params.get("scope")
        if scope is None:
            errs.append(required(f"{pp}.scope"))
        elif scope not in ("Cluster", "Namespace"):
            errs.append(unsupported(f"{pp}.scope", scope, ("Cluster", "Namespace")))
        elif scope == "Namespace":
            if params.get("namespace") is None:
                errs.append(required(f"{pp}.namespace", "`parameters.scope` is set to 'Namespace'"))
            else:
                errs += name_errors("Namespace", str(params["namespace"]), f"{pp}.namespace")
        elif params.get("namespace") is not None:
            errs.append(forbidden(f"{pp}.namespace", "`parameters.scope` is set to 'Cluster'"))
    return errs


_PATH_CHARS = re.compile(r"^[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$")


def _domain_prefixed_path(path: str, value: str) -> list[Cause]:
    """IsDomainPrefixedPath: `example.com/path`, as IngressClass controllers are named."""
    host, slash, rest = value.partition("/")
    if not slash or not host or not rest:
        return [invalid(path, value, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    errs = [invalid(path, host, m) for m in _subdomain_errors(host)]
    if not _PATH_CHARS.match(rest):
        errs.append(invalid(path, rest, "Invalid path: " + rest))
    return errs


# --- NetworkPolicies --------------------------------------------------------------

POLICY_TYPES = ("Ingress", "Egress")
MSG_CIDR = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def label_selector(sel: Any, path: str) -> list[Cause]:
    """apimachinery's ValidateLabelSelector: matchLabels as labels; each expression's
    operator, values and key."""
    if not isinstance(sel, dict):
        return []
    errs = labels_errors(sel.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(sel.get("matchExpressions") or ()):
        ep = f"{path}.matchExpressions[{i}]"
        if not isinstance(expr, dict):
            continue
        op, values = expr.get("operator"), expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errs.append(
                    required(f"{ep}.values", "must be specified when `operator` is 'In' or 'NotIn'")
                )
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    forbidden(
                        f"{ep}.values",
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        else:
            errs.append(invalid(f"{ep}.operator", op or "", "not a valid selector operator"))
        key = str(expr.get("key") or "")
        errs += [invalid(f"{ep}.key", key, m) for m in qualified_name_errors(key)]
        for j, v in enumerate(values):
            value = str(v)
            if len(value) > 63:
                errs.append(
                    invalid(f"{ep}.values[{j}]", value, "must be no more than 63 characters")
                )
            elif not LABEL_VALUE.match(value):
                errs.append(invalid(f"{ep}.values[{j}]", value, MSG_LABEL_VALUE))
    return errs


def _networkpolicy_port(port: Obj, path: str) -> list[Cause]:
    """ValidateNetworkPolicyPort."""
    errs = []
    proto = port.get("protocol")
    if proto is not None and proto not in PROTOCOLS:
        errs.append(unsupported(f"{path}.protocol", proto, ("TCP", "UDP", "SCTP")))
    number, end = port.get("port"), port.get("endPort")
    if number is not None:
        if isinstance(number, int):
            errs += port_number(f"{path}.port", number)
            if end is not None:
                if end < number:
                    errs.append(
                        invalid(f"{path}.endPort", end, "must be greater than or equal to `port`")
                    )
                errs += port_number(f"{path}.endPort", end)
        else:
            if end is not None:
                errs.append(
                    invalid(
                        f"{path}.endPort", end, "may not be specified when `port` is non-numeric"
                    )
                )
            errs += port_name(f"{path}.port", str(number))
    elif end is not None:
        errs.append(
            invalid(f"{path}.endPort", end, "may not be specified when `port` is not specified")
        )
    return errs


def _cidr(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """ParseCIDRSloppy: an address with a prefix length, host bits allowed."""
    if "/" not in value:
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _ip_block(block: Obj, path: str) -> list[Cause]:
    """ValidateIPBlock: a CIDR, and excepts strictly inside it."""
    cidr = str(block.get("cidr") or "")
    if not cidr:
        return [required(f"{path}.cidr")]
    net = _cidr(cidr)
    if net is None:
        return [invalid(f"{path}.cidr", cidr, MSG_CIDR)]
    errs = []
    for i, ex in enumerate(block.get("except") or ()):
        ep = f"{path}.except[{i}]"
        inner = _cidr(str(ex))
        if inner is None:
            errs.append(invalid(ep, str(ex), MSG_CIDR))
            continue
        if (
            inner.version != net.version
            or inner.network_address not in net
            or net.prefixlen >= inner.prefixlen
        ):
            errs.append(invalid(ep, str(ex), "must be a strict subset of `cidr`"))
    return errs


def _networkpolicy_peer(peer: Obj, path: str) -> list[Cause]:
    """ValidateNetworkPolicyPeer: one of the three, or a pod and a namespace selector."""
    errs: list[Cause] = []
    given = 0
    for name in ("podSelector", "namespaceSelector"):
        if peer.get(name) is not None:
            given += 1
            errs += label_selector(peer[name], f"{path}.{name}")
    if peer.get("ipBlock") is not None:
        given += 1
        errs += _ip_block(peer["ipBlock"], f"{path}.ipBlock")
    if given == 0:
        errs.append(required(path, "must specify a peer"))
    elif given > 1 and peer.get("ipBlock") is not None:
        errs.append(forbidden(path, "may not specify both ipBlock and another peer"))
    return errs


def networkpolicy(obj: Obj) -> list[Cause]:
    """ValidateNetworkPolicySpec."""
    spec = obj.get("spec") or {}
    errs = label_selector(spec.get("podSelector"), "spec.podSelector")
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or ()):
            rp = f"spec.{direction}[{i}]"
            for j, port in enumerate(rule.get("ports") or ()):
                errs += _networkpolicy_port(port, f"{rp}.ports[{j}]")
            for j, peer in enumerate(rule.get(peers) or ()):
                errs += _networkpolicy_peer(peer, f"{rp}.{peers}[{j}]")
    types = spec.get("policyTypes") or []
    if len(types) > len(POLICY_TYPES):
        shown = ", ".join(q(str(t)) for t in types)
        errs.append(
            Cause(
                "spec.policyTypes",
                "FieldValueInvalid",
                f"Invalid value: []networking.PolicyType{{{shown}}}: "
                "may not specify more than two policyTypes",
            )
        )
        return errs
    for i, t in enumerate(types):
        if t not in POLICY_TYPES:
            errs.append(unsupported(f"spec.policyTypes[{i}]", t, POLICY_TYPES))
    return errs


def controllerrevision(obj: Obj) -> list[Cause]:
    """ValidateControllerRevision: a revision number that is not negative."""
    rev = obj.get("revision")
    if isinstance(rev, int) and rev < 0:
        return [invalid("revision", rev, "must be greater than or equal to 0")]
    return []


# --- HorizontalPodAutoscaler (k/k pkg/apis/autoscaling/validation) ----------------------

HPA_MAX_PERIOD_SECONDS = 1800
HPA_MAX_STABILIZATION_WINDOW_SECONDS = 3600
_HPA_METRIC_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")
_HPA_SELECT_POLICIES = ("Disabled", "Max", "Min")
_HPA_POLICY_TYPES = ("Percent", "Pods")


def _hpa_int(v: Any) -> int:
    """A Go int32 field: absent or null decodes as 0."""
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _cross_version_ref(ref: Any, path: str) -> list[Cause]:
    """ValidateCrossVersionObjectReference."""
    ref = ref if isinstance(ref, dict) else {}
    errs: list[Cause] = []
    for f in ("kind", "name"):
        value = str(ref.get(f) or "")
        if not value:
            errs.append(required(f"{path}.{f}"))
        else:
            errs += [invalid(f"{path}.{f}", value, m) for m in _path_segment_errors(value)]
    return errs


def _quantity_sign(v: Any) -> int | None:
    try:
        d = quantity.parse(v)
    except (quantity.QuantityError, ArithmeticError):
        return None
    return (d > 0) - (d < 0)


def _metric_target(t: Any, path: str) -> list[Cause]:
    """validateMetricTarget."""
    t = t if isinstance(t, dict) else {}
    errs: list[Cause] = []
    typ = str(t.get("type") or "")
    if not typ:
        errs.append(required(f"{path}.type", "must specify a metric target type"))
    if typ not in ("Utilization", "Value", "AverageValue"):
        errs.append(
            invalid(f"{path}.type", typ, "must be either Utilization, Value, or AverageValue")
        )
    for f in ("value", "averageValue"):
        if t.get(f) is not None and _quantity_sign(t[f]) != 1:
            errs.append(invalid(f"{path}.{f}", t[f], "must be positive"))
    util = t.get("averageUtilization")
    if util is not None and _hpa_int(util) < 1:
        errs.append(invalid(f"{path}.averageUtilization", util, "must be greater than 0"))
    return errs


def _metric_identifier(m: Any, path: str) -> list[Cause]:
    m = m if isinstance(m, dict) else {}
    name = str(m.get("name") or "")
    if not name:
        return [required(f"{path}.name", "must specify a metric name")]
    return [invalid(f"{path}.name", name, e) for e in _path_segment_errors(name)]


def _resource_source(src: Obj, path: str, container: bool) -> list[Cause]:
    errs: list[Cause] = []
    if not src.get("name"):
        errs.append(required(f"{path}.name", "must specify a resource name"))
    if container:
        if not src.get("container"):
            errs.append(required(f"{path}.container", "must specify a container"))
        elif not DNS1123_LABEL.match(str(src["container"])):
            errs.append(invalid(f"{path}.container", src["container"], MSG_1123_LABEL))
    target: Obj = src["target"] if isinstance(src.get("target"), dict) else {}
    errs += _metric_target(target, f"{path}.target")
    if target.get("averageUtilization") is None and target.get("averageValue") is None:
        errs.append(
            required(
                f"{path}.target.averageUtilization",
                "must set either a target raw value or a target utilization",
            )
        )
    if target.get("averageUtilization") is not None and target.get("averageValue") is not None:
        errs.append(
            forbidden(
                f"{path}.target.averageValue",
                "may not set both a target raw value and a target utilization",
            )
        )
    return errs


def _metric_source(field: str, src: Obj, path: str) -> list[Cause]:
    if field in ("resource", "containerResource"):
        return _resource_source(src, path, field == "containerResource")
    target: Obj = src["target"] if isinstance(src.get("target"), dict) else {}
    errs: list[Cause] = []
    if field == "object":
        errs += _cross_version_ref(src.get("describedObject"), f"{path}.describedObject")
    errs += _metric_identifier(src.get("metric"), f"{path}.metric")
    errs += _metric_target(target, f"{path}.target")
    if field == "pods" and target.get("averageValue") is None:
        errs.append(
            required(f"{path}.target.averageValue", "must specify a positive target averageValue")
        )
    if field == "object" and target.get("value") is None and target.get("averageValue") is None:
        errs.append(
            required(
                f"{path}.target.averageValue", "must set either a target value or averageValue"
            )
        )
    if field == "external":
        if target.get("value") is None and target.get("averageValue") is None:
            errs.append(
                required(
                    f"{path}.target.averageValue",
                    "must set either a target value for metric or a per-pod target",
                )
            )
        if target.get("value") is not None and target.get("averageValue") is not None:
            errs.append(
                forbidden(
                    f"{path}.target.value",
                    "may not set both a target value for metric and a per-pod target",
                )
            )
    return errs


def _metric_spec(m: Any, path: str) -> list[Cause]:
    """validateMetricSpec."""
    m = m if isinstance(m, dict) else {}
    errs: list[Cause] = []
    typ = str(m.get("type") or "")
    if not typ:
        errs.append(required(f"{path}.type", "must specify a metric source type"))
    if typ not in _HPA_METRIC_TYPES:
        errs.append(unsupported(f"{path}.type", typ, _HPA_METRIC_TYPES))
    present = [
        f
        for f in ("object", "external", "pods", "resource", "containerResource")
        if isinstance(m.get(f), dict)
    ]
    if present:
        errs += _metric_source(present[0], m[present[0]], f"{path}.{present[0]}")
    expected = {t: t[0].lower() + t[1:] for t in _HPA_METRIC_TYPES}.get(typ)
    if expected is not None:
        if expected not in present:
            errs.append(
                required(
                    f"{path}.{expected}", "must populate information for the given metric source"
                )
            )
    else:  # the switch's default, after the set check above: Go reports it twice
        errs.append(unsupported(f"{path}.type", typ, _HPA_METRIC_TYPES))
    if len(present) != 1:
        for f in sorted(set(present) - {expected}):
            errs.append(forbidden(f"{path}.{f}", "must populate the given metric source only"))
    return errs


def _scaling_rules(rules: Any, path: str) -> list[Cause]:
    """validateScalingRules."""
    if not isinstance(rules, dict):
        return []
    errs: list[Cause] = []
    window = rules.get("stabilizationWindowSeconds")
    if window is not None:
        if _hpa_int(window) < 0:
            errs.append(
                invalid(
                    f"{path}.stabilizationWindowSeconds",
                    window,
                    "must be greater than or equal to zero",
                )
            )
        if _hpa_int(window) > HPA_MAX_STABILIZATION_WINDOW_SECONDS:
            errs.append(
                invalid(
                    f"{path}.stabilizationWindowSeconds",
                    window,
                    f"must be less than or equal to {HPA_MAX_STABILIZATION_WINDOW_SECONDS}",
                )
            )
    select = rules.get("selectPolicy")
    if select is not None and select not in _HPA_SELECT_POLICIES:
        errs.append(unsupported(f"{path}.selectPolicy", select, _HPA_SELECT_POLICIES))
    policies = rules.get("policies") or []
    if not policies:
        errs.append(required(f"{path}.policies", "must specify at least one Policy"))
    for i, p in enumerate(policies):
        pp = f"{path}.policies[{i}]"
        p = p if isinstance(p, dict) else {}
        if p.get("type") not in _HPA_POLICY_TYPES:
            errs.append(unsupported(f"{pp}.type", str(p.get("type") or ""), _HPA_POLICY_TYPES))
        value, period = _hpa_int(p.get("value")), _hpa_int(p.get("periodSeconds"))
        if value <= 0:
            errs.append(invalid(f"{pp}.value", value, "must be greater than zero"))
        if period <= 0:
            errs.append(invalid(f"{pp}.periodSeconds", period, "must be greater than zero"))
        if period > HPA_MAX_PERIOD_SECONDS:
            errs.append(
                invalid(
                    f"{pp}.periodSeconds",
                    period,
                    f"must be less than or equal to {HPA_MAX_PERIOD_SECONDS}",
                )
            )
    return errs


def horizontalpodautoscaler(obj: Obj) -> list[Cause]:
    """validateHorizontalPodAutoscalerSpec, as kube-apiserver 1.32 runs it (the
    HPAScaleToZero gate off: minReplicas of at least 1)."""
    spec: Obj = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
    errs: list[Cause] = []
    min_r = spec.get("minReplicas")
    max_r = _hpa_int(spec.get("maxReplicas"))
    if min_r is not None and _hpa_int(min_r) < 1:
        errs.append(invalid("spec.minReplicas", min_r, "must be greater than or equal to 1"))
    if max_r < 1:
        errs.append(invalid("spec.maxReplicas", max_r, "must be greater than 0"))
    if min_r is not None and max_r < _hpa_int(min_r):
        errs.append(
            invalid("spec.maxReplicas", max_r, "must be greater than or equal to `minReplicas`")
        )
    errs += _cross_version_ref(spec.get("scaleTargetRef"), "spec.scaleTargetRef")
    for i, m in enumerate(spec.get("metrics") or []):
        errs += _metric_spec(m, f"spec.metrics[{i}]")
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        errs += _scaling_rules(behavior.get("scaleUp"), "spec.behavior.scaleUp")
        errs += _scaling_rules(behavior.get("scaleDown"), "spec.behavior.scaleDown")
    return errs


BY_KIND = {
    "HorizontalPodAutoscaler": horizontalpodautoscaler,
    "StatefulSet": statefulset,
    "DaemonSet": daemonset,
    "Job": job,
    "CronJob": cronjob,
    "PersistentVolumeClaim": persistentvolumeclaim,
    "PersistentVolume": persistentvolume,
    "StorageClass": storageclass,
    "Service": service,
    "Pod": pod,
    "ReplicaSet": workload,
    "Deployment": workload,
    "ConfigMap": configmap,
    "Secret": secret,
    "Ingress": ingress,
    "IngressClass": ingressclass,
    "NetworkPolicy": networkpolicy,
    "ControllerRevision": controllerrevision,
}


def validate(obj: Obj, *, creating: bool) -> list[Cause]:
    errs = metadata(obj, creating=creating)
    fn = BY_KIND.get(str(obj.get("kind")))
    if fn is not None:
        errs += fn(obj)
    return errs


# --- updates: what may not change (ValidateXUpdate) ------------------------------------

FIELD_IMMUTABLE = "field is immutable"

STS_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def go_value(v: Any) -> str:
    """Go's %#v of a LabelSelector-shaped value, as field.Invalid prints a struct."""
    if isinstance(v, dict) and ("matchLabels" in v or "matchExpressions" in v or not v):
        ml = v.get("matchLabels")
        labels = "map[string]string(nil)" if ml is None else _go_map(ml)
        exprs = v.get("matchExpressions")
        if exprs is None:
            rendered = "[]v1.LabelSelectorRequirement(nil)"
        else:
            items = ", ".join(
                f"v1.LabelSelectorRequirement{{Key:{q(e.get('key', ''))}, "
                f"Operator:{q(e.get('operator', ''))}, Values:"
                + (
                    "[]string{" + ", ".join(q(x) for x in e["values"]) + "}"
                    if e.get("values") is not None
                    else "[]string(nil)"
                )
                + "}"
                for e in exprs
            )
            rendered = "[]v1.LabelSelectorRequirement{" + items + "}"
        return f"v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{rendered}}}"
    if v is None:
        return "null"
    return q(v)


def immutable(path: str, new: Any, old: Any, type_name: str = "") -> list[Cause]:
    """ValidateImmutableField. A struct is printed by Go with %#v, pointers as
    addresses; svcnet names the type (`core.PodTemplateSpec{...}`) instead."""
    if new == old:
        return []
    shown = f"{type_name}{{...}}" if type_name else go_value(new)
    return [Cause(path, "FieldValueInvalid", f"Invalid value: {shown}: {FIELD_IMMUTABLE}")]


def statefulset_update(new: Obj, old: Obj) -> list[Cause]:
    """ValidateStatefulSetUpdate: only some spec fields may change."""
    a = {k: v for k, v in (new.get("spec") or {}).items() if k not in STS_MUTABLE}
    b = {k: v for k, v in (old.get("spec") or {}).items() if k not in STS_MUTABLE}
    if a == b:
        return []
    fields = ", ".join(f"'{f}'" for f in STS_MUTABLE[:-1]) + f" and '{STS_MUTABLE[-1]}'"
    return [
        forbidden(
            "spec", f"updates to statefulset spec for fields other than {fields} are forbidden"
        )
    ]


def job_update(new: Obj, old: Obj) -> list[Cause]:
    """ValidateJobSpecUpdate: the selector, the template (while the Job is not a
    suspended one that never started) and the modes are fixed at creation."""
    spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    errs = immutable("spec.selector", spec.get("selector"), old_spec.get("selector"))
    template, old_template = spec.get("template") or {}, old_spec.get("template") or {}
    never_started = spec.get("suspend") and not (old.get("status") or {}).get("startTime")
    if never_started:
        # Mutable scheduling directives: a suspended Job's pods may yet be placed elsewhere.
        def fixed(t: Obj) -> Obj:
            t = {
                **t,
                "metadata": {
                    k: v
                    for k, v in (t.get("metadata") or {}).items()
                    if k not in ("labels", "annotations")
                },
            }
            t["spec"] = {
                k: v
                for k, v in (t.get("spec") or {}).items()
                if k not in ("nodeSelector", "tolerations", "affinity", "schedulingGates")
            }
            return t

        template, old_template = fixed(template), fixed(old_template)
    errs += immutable("spec.template", template, old_template, "core.PodTemplateSpec")
    for f in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy"):
        errs += immutable(f"spec.{f}", spec.get(f), old_spec.get(f))
    return errs


def persistentvolumeclaim_update(new: Obj, old: Obj) -> list[Cause]:
    """ValidatePersistentVolumeClaimUpdate: a claim's spec is fixed at creation but
    for volumeName (set once, by the binder) and a bound claim's storage request,
    which may only grow."""
    from svcnet.k8s.quantity import QuantityError
    from svcnet.k8s.quantity import parse as parse_quantity

    spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    a, b = dict(spec), dict(old_spec)
    if not old_spec.get("volumeName"):
        b["volumeName"] = a.get("volumeName")
        if b["volumeName"] is None:
            b.pop("volumeName")
    new_req = (a.get("resources") or {}).get("requests") or {}
    old_req = (b.get("resources") or {}).get("requests") or {}
    if (old.get("status") or {}).get("phase") == "Bound" and new_req:
        requests = dict(new_req)
        if "storage" in old_req:
            requests["storage"] = old_req["storage"]
        else:
            requests.pop("storage", None)
        a["resources"] = {**(a.get("resources") or {}), "requests": requests}
    errs: list[Cause] = []
    if a != b:
        changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        diff = "".join(
            f"\n-\t{k}: {_json_short(b.get(k))},\n+\t{k}: {_json_short(a.get(k))}," for k in changed
        )
        errs.append(
            forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and "
                "volumeAttributesClassName for bound claims\n  core.PersistentVolumeClaimSpec{"
                + diff
                + "\n  }",
            )
        )
    try:
        new_size = parse_quantity(str(new_req.get("storage", "0")))
        old_size = parse_quantity(str(old_req.get("storage", "0")))
    except QuantityError:
        return errs  # the spec's own validation names the bad quantity
    if new_size < old_size:
        errs.append(
            forbidden(
                "spec.resources.requests.storage", "field can not be less than previous value"
            )
        )
    return errs


def _json_short(v: Any) -> str:
    import json

    return "nil" if v is None else json.dumps(v, sort_keys=True, separators=(",", ":"))


def controllerrevision_update(new: Obj, old: Obj) -> list[Cause]:
    """ValidateControllerRevisionUpdate: data is written once."""
    return immutable("data", new.get("data"), old.get("data"), "runtime.RawExtension")


UPDATE_BY_KIND = {
    "ControllerRevision": controllerrevision_update,
    "StatefulSet": statefulset_update,
    "Job": job_update,
    "PersistentVolumeClaim": persistentvolumeclaim_update,
}


def validate_update(new: Obj, old: Obj) -> list[Cause]:
    """What an update may not change, beyond what validate() checks of any object."""
    fn = UPDATE_BY_KIND.get(str(new.get("kind")))
    return fn(new, old) if fn is not None else []
