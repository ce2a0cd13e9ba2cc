"""A pod's volumes: the kubelet's volume manager and its plugins.

Before a pod's containers start, every volume of `spec.volumes` is set up
on the machine under the pod's state directory (or found, for hostPath and a
PersistentVolumeClaim's hostPath PersistentVolume); each container then
bind-mounts the ones it names at their `mountPath` in its own mount
namespace (kernel/namespaces.py, between fork and exec), so the other
containers of the pod see only their own mounts while an emptyDir mounted by
two of them is one directory.

- configMap, secret, downwardAPI: files written with the kubelet's atomic
  writer (a timestamped directory, a `..data` symlink to it, one symlink per
  top-level path to `..data/<path>`), so a change of the ConfigMap, Secret or
  the pod's labels reaches a mounted directory at once (a rename of
  `..data`), while a subPath mount keeps the file it was given, as in
  Kubernetes. Mounted read-only.
- emptyDir: a directory of the pod (0777, as the kubelet makes it), removed
  with the pod; `medium: Memory` is a tmpfs of `sizeLimit` (else the pod's
  memory limit) as root.
- hostPath: the machine's path, with the kubelet's type checks and messages.
- persistentVolumeClaim: the claim's bound PersistentVolume's hostPath.

A volume that cannot be set up (a missing ConfigMap, Secret or key, an
unbound claim) keeps the pod in ContainerCreating with a FailedMount Warning
Event in the kubelet's words, retried with the kubelet's back-off (0.5 s
doubling to 2m2s) and at once when an object it waits for changes.

Everything is written through directory file descriptors with O_NOFOLLOW, so
a symlink planted in the pod's directory never sends a write elsewhere, and
every payload is bounded (a ConfigMap holds at most 1 MiB).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import datetime
import errno
import logging
import math
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from svcnet._aio import TaskSet
from svcnet.agent import envvars
from svcnet.k8s import quantity
from svcnet.k8s.objects import Obj
from svcnet.kernel.namespaces import MNT_DETACH, MS_NODEV, MS_NOSUID, Bind, NsLibc
from svcnet.nodeapi import NODE_NAME
from svcnet.store import Event, ReadOnlyStore

logger = logging.getLogger(__name__)

BACKOFF_INITIAL, BACKOFF_MAX = 0.5, 122.0
"""The kubelet's volume operation back-off (exponentialbackoff: 500 ms doubling to 2m2s)."""
UPDATE_DELAY = 0.05
"""A burst of changes (kubectl apply of a ConfigMap and a Secret) is written once."""
MAX_VOLUME_BYTES = 1024 * 1024
"""What one configMap, secret or downwardAPI volume may hold (a ConfigMap's own limit)."""
MAX_ITEMS = 1024
DEFAULT_MODE = 0o644

SOURCES = (
    "emptyDir",
    "hostPath",
    "secret",
    "persistentVolumeClaim",
    "downwardAPI",
    "configMap",
)
"""The volume sources svcnet sets up, in the order the API server checks them."""
PLUGIN_DIRS = {
    "configMap": "kubernetes.io~configmap",
    "secret": "kubernetes.io~secret",
    "downwardAPI": "kubernetes.io~downward-api",
    "emptyDir": "kubernetes.io~empty-dir",
}
HOST_PATH_TYPES = {
    "Directory": "directory",
    "DirectoryOrCreate": "directory",
    "File": "file",
    "FileOrCreate": "file",
    "Socket": "socket file",
    "CharDevice": "character device",
    "BlockDevice": "block device",
}


class VolumeError(Exception):
    """A volume cannot be set up (yet): the kubelet's message."""


class MountRefused(Exception):
    """A container's mounts cannot be made as specified (CreateContainerConfigError)."""


class VolumeHost(Protocol):
    """What the volumes need of their pod worker."""

    namespace: str
    name: str

    def event(self, type_: str, reason: str, message: str) -> None: ...

    def volume_problem(self, message: str) -> None:
        """The pod cannot have its volumes at all: say so on its status."""
        ...


@dataclass
class _Volume:
    name: str
    source: str
    spec: Obj
    path: Path | None = None
    """Where the volume is on this machine once set up."""
    readonly: bool = False
    written: dict[str, tuple[bytes, int]] | None = None
    """The payload last written (atomic-writer volumes), to skip rewrites."""
    refs: set[tuple[str, str]] = field(default_factory=set)
    """(kind, name) of the objects it follows."""


@dataclass(frozen=True)
class Owner:
    """Who the volume's files belong to: the pod's user (the kubelet's root) and fsGroup."""

    uid: int
    gid: int
    fs_group: int | None
    chown: bool


class PodVolumes:
    def __init__(
        self,
        host: VolumeHost,
        store: ReadOnlyStore,
        pod: Obj,
        pod_dir: Path,
        *,
        owner: Owner,
        root: bool,
        libc: NsLibc,
        mount_problem: str,
    ) -> None:
        self._host = host
        self._store = store
        self._pod = pod
        self._dir = pod_dir
        self._owner = owner
        self._root = root
        self._libc = libc
        self._mount_problem = mount_problem
        """Why containers cannot have a mount namespace of their own ("" when they can)."""
        self._volumes: dict[str, _Volume] = {}
        for v in (pod.get("spec") or {}).get("volumes") or ():
            name = str(v.get("name") or "")
            kinds = [k for k in v if k != "name"]
            self._volumes[name] = _Volume(name, kinds[0] if kinds else "", v)
        self._tmpfs: list[Path] = []
        self._shm: list[Path] = []
        self._poke = asyncio.Event()
        self._closed = False
        self._mounted = False
        self._pending_update: asyncio.TimerHandle | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None

    # --- the pod worker's calls ------------------------------------------------

    def start(self, tasks: TaskSet, then: Callable[[], None]) -> None:
        """Set the volumes up, then call `then` (start the containers); at once when
        the pod has no volumes."""
        if not self._volumes:
            then()
            return
        self._unsubscribe = self._store.subscribe(self._on_event)
        self._task = tasks.spawn(
            self._mount(then), name=f"volumes:{self._host.namespace}/{self._host.name}"
        )

    def close(self) -> None:
        """The pod is gone: stop following objects, unmount its tmpfs volumes (the
        caller removes the pod's directory)."""
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._pending_update is not None:
            self._pending_update.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        for path in self._tmpfs:
            if self._libc.umount2(os.fsencode(path), MNT_DETACH) != 0:
                logger.warning("cannot unmount the emptyDir tmpfs %s", path)
        for path in self._shm:
            shutil.rmtree(path, ignore_errors=True)

    def mounts_for(self, container: Obj, env: Mapping[str, str]) -> tuple[Bind, ...]:
        """The container's volumeMounts as binds (kubelet's makeMounts); raises
        MountRefused with the kubelet's message."""
        out: list[Bind] = []
        cname = str(container.get("name") or "")
        for m in container.get("volumeMounts") or ():
            vname = str(m.get("name") or "")
            vol = self._volumes.get(vname)
            if vol is None or vol.path is None:
                raise MountRefused(
                    f"cannot find volume {q(vname)} to mount into container {q(cname)}"
                )
            target = str(m.get("mountPath") or "")
            if not target.startswith("/"):
                raise MountRefused(f"mount destination {target} is not absolute")
            source = vol.path
            sub = str(m.get("subPath") or "")
            if m.get("subPathExpr"):
                sub = envvars.expand(str(m["subPathExpr"]), env)
                if "$(" in sub:
                    raise MountRefused(
                        f"failed to prepare subPath for volumeMount {q(vname)} of container "
                        f"{q(cname)}"
                    )
            if sub:
                source = self._sub_path(vol, sub, vname, cname)
            try:
                directory = source.is_dir()
            except OSError:
                directory = True
            readonly = bool(m.get("readOnly")) or vol.readonly
            out.append(Bind(os.fsencode(source), os.fsencode(target), readonly, directory))
        return tuple(out)

    # --- setting up ------------------------------------------------------------

    async def _mount(self, then: Callable[[], None]) -> None:
        names = sorted(self._volumes)
        if self._mount_problem and self._mounting_containers():
            message = (
                f"svcnet cannot give the pod's containers a private mount namespace "
                f"({self._mount_problem}), so its volumes cannot be mounted at their "
                "mountPath; the containers are not started rather than run without their "
                "files. Run svcnet as root or allow unprivileged user namespaces "
                "(sysctl kernel.unprivileged_userns_clone=1)"
            )
            self._host.volume_problem(message)
            for name in names:
                self._host.event("Warning", "FailedMount", set_up_failed(name, message))
            return
        delay = BACKOFF_INITIAL
        while not self._closed:
            failed = self._set_up_all()
            if not failed:
                self._mounted = True
                then()
                return
            for message in failed:
                self._host.event("Warning", "FailedMount", message)
            self._poke.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), delay)
            delay = min(delay * 2, BACKOFF_MAX)

    def _mounting_containers(self) -> bool:
        spec = self._pod.get("spec") or {}
        return any(
            c.get("volumeMounts")
            for c in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]
        )

    def _set_up_all(self) -> list[str]:
        """Set up what is not yet; the FailedMount messages of what cannot be."""
        failed: list[str] = []
        unmounted: list[str] = []
        for vol in self._volumes.values():
            if vol.path is not None:
                continue
            try:
                self._set_up(vol)
            except VolumeError as e:
                if vol.source == "persistentVolumeClaim":
                    unmounted.append(vol.name)
                    failed.append(str(e))
                else:
                    failed.append(set_up_failed(vol.name, str(e)))
            except OSError as e:
                failed.append(set_up_failed(vol.name, str(e)))
        if unmounted:
            # What the kubelet says when the claim is not there to be mounted yet.
            names = " ".join(unmounted)
            failed = [
                f"Unable to attach or mount volumes: unmounted volumes=[{names}], "
                f"unattached volumes=[{names}]: {m}"
                if m.startswith("error processing PVC")
                else m
                for m in failed
            ]
        return failed

    def _set_up(self, vol: _Volume) -> None:
        src = vol.spec.get(vol.source)
        if not isinstance(src, dict):
            raise VolumeError(f"svcnet does not support {vol.source or 'this'} volumes")
        if vol.source in ("configMap", "secret", "downwardAPI"):
            vol.readonly = True
            vol.path = self._write_atomic(vol)
        elif vol.source == "emptyDir":
            vol.path = self._empty_dir(vol, src)
        elif vol.source == "hostPath":
            vol.path = host_path(src)
        elif vol.source == "persistentVolumeClaim":
            vol.readonly = bool(src.get("readOnly"))
            vol.path = self._claim(vol, src)
        else:
            raise VolumeError(f"svcnet does not support {vol.source} volumes")

    # --- following changes -------------------------------------------------------

    def _on_event(self, ev: Event) -> None:
        """Synchronous store subscription: only decides and schedules."""
        if ev.namespace != self._host.namespace and ev.kind != "PersistentVolume":
            return
        if ev.kind == "Pod":
            if ev.name != self._host.name or ev.type == "DELETED":
                return
            old_md, new_md = (ev.old or {}).get("metadata") or {}, ev.obj.get("metadata") or {}
            self._pod = ev.obj
            if all(old_md.get(k) == new_md.get(k) for k in ("labels", "annotations")):
                return
            if not any(v.source == "downwardAPI" for v in self._volumes.values()):
                return
        elif not any((ev.kind, ev.name) in v.refs for v in self._volumes.values()):
            return
        if not self._mounted:
            self._poke.set()
        elif self._pending_update is None:
            loop = asyncio.get_running_loop()
            self._pending_update = loop.call_later(UPDATE_DELAY, self._update)

    def _update(self) -> None:
        """Rewrite the atomic-writer volumes whose content changed (the kubelet's
        periodic resync, here on the change itself)."""
        self._pending_update = None
        if self._closed:
            return
        for vol in self._volumes.values():
            if vol.source not in ("configMap", "secret", "downwardAPI") or vol.path is None:
                continue
            try:
                self._write_atomic(vol)
            except (VolumeError, OSError) as e:
                # The kubelet keeps the last files and says why it cannot refresh them.
                self._host.event("Warning", "FailedMount", set_up_failed(vol.name, str(e)))

    # --- configMap, secret, downwardAPI ---------------------------------------------

    def _write_atomic(self, vol: _Volume) -> Path:
        src = vol.spec[vol.source]
        if vol.source == "downwardAPI":
            payload = self._downward_payload(src)
        else:
            payload = self._object_payload(vol, src)
        total = sum(len(data) for data, _ in payload.values())
        if total > MAX_VOLUME_BYTES or len(payload) > MAX_ITEMS:
            raise VolumeError(
                f"the volume's content ({total} bytes in {len(payload)} files) is over "
                f"svcnet's limit of {MAX_VOLUME_BYTES} bytes and {MAX_ITEMS} files"
            )
        path = self._dir / "volumes" / PLUGIN_DIRS[vol.source] / vol.name
        if vol.written == payload and vol.path is not None:
            return path
        with _open_dirs(self._dir, ("volumes", PLUGIN_DIRS[vol.source], vol.name)) as fd:
            atomic_write(fd, payload, self._owner)
        vol.written = payload
        return path

    def _object_payload(self, vol: _Volume, src: Obj) -> dict[str, tuple[bytes, int]]:
        kind = "ConfigMap" if vol.source == "configMap" else "Secret"
        name = str(src.get("name") if kind == "ConfigMap" else src.get("secretName") or "")
        vol.refs = {(kind, name)}
        optional = bool(src.get("optional"))
        obj = self._store.get(kind, self._host.namespace, name)
        if obj is None and not optional:
            raise VolumeError(f"{kind.lower()} {q(name)} not found")
        data: dict[str, bytes] = {}
        if obj is not None:
            for k, v in (obj.get("data") or {}).items():
                data[k] = str(v).encode() if kind == "ConfigMap" else _b64(v)
            for k, v in (obj.get("binaryData") or {}).items() if kind == "ConfigMap" else ():
                data[k] = _b64(v)
        default = _mode(src.get("defaultMode"), DEFAULT_MODE)
        items = src.get("items") or ()
        if not items:
            return {_payload_path(k): (v, default) for k, v in data.items()}
        payload: dict[str, tuple[bytes, int]] = {}
        for item in items:
            key = str(item.get("key") or "")
            if key not in data:
                if optional:
                    continue
                if kind == "ConfigMap":
                    raise VolumeError(f"configmap references non-existent config key: {key}")
                raise VolumeError(f"references non-existent secret key: {key}")
            payload[_payload_path(str(item.get("path") or key))] = (
                data[key],
                _mode(item.get("mode"), default),
            )
        return payload

    def _downward_payload(self, src: Obj) -> dict[str, tuple[bytes, int]]:
        default = _mode(src.get("defaultMode"), DEFAULT_MODE)
        payload: dict[str, tuple[bytes, int]] = {}
        for item in src.get("items") or ():
            path = _payload_path(str(item.get("path") or ""))
            if item.get("fieldRef"):
                value = pod_field(self._pod, str(item["fieldRef"].get("fieldPath") or ""))
            elif item.get("resourceFieldRef"):
                value = self._resource(item["resourceFieldRef"])
            else:
                raise VolumeError(f"downwardAPI item {path} names no field")
            payload[path] = (value.encode(), _mode(item.get("mode"), default))
        return payload

    def _resource(self, ref: Obj) -> str:
        """resourceFieldRef: the container's request or limit, a limit it lacks being
        the node's allocatable (the kubelet's MergeContainerResourceLimits)."""
        cname = str(ref.get("containerName") or "")
        resource = str(ref.get("resource") or "")
        spec = self._pod.get("spec") or {}
        container = next(
            (
                c
                for c in [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]
                if c.get("name") == cname
            ),
            None,
        )
        if container is None:
            raise VolumeError(f"container {cname} not found in pod {self._host.name}")
        kind, _, name = resource.partition(".")
        if kind not in ("limits", "requests") or name not in ("cpu", "memory", "ephemeral-storage"):
            raise VolumeError(f"unsupported container resource : {resource}")
        res = container.get("resources") or {}
        value = (res.get(kind) or {}).get(name)
        if value is None and kind == "requests":
            value = (res.get("limits") or {}).get(name)
        if value is None and kind == "limits":
            node = self._store.get("Node", "", NODE_NAME) or {}
            value = ((node.get("status") or {}).get("allocatable") or {}).get(name)
        try:
            amount = quantity.parse(value if value is not None else "0")
            divisor = quantity.parse(ref.get("divisor") or "1")
        except quantity.QuantityError as e:
            raise VolumeError(str(e)) from None
        if divisor <= 0:
            raise VolumeError(f"invalid divisor {ref.get('divisor')}")
        if name == "cpu":
            # convertResourceCPUToString: milli-units, rounded up.
            amount, divisor = _milli(amount), _milli(divisor)
        return str(math.ceil(amount / divisor))

    # --- emptyDir ------------------------------------------------------------------

    def _empty_dir(self, vol: _Volume, src: Obj) -> Path:
        medium = str(src.get("medium") or "")
        if medium not in ("", "Memory"):
            raise VolumeError(f"svcnet does not support emptyDir medium {medium}")
        with _open_dirs(self._dir, ("volumes", PLUGIN_DIRS["emptyDir"], vol.name)) as fd:
            if medium != "Memory":
                _own_dir(fd, self._owner)
                return self._dir / "volumes" / PLUGIN_DIRS["emptyDir"] / vol.name
            path = self._dir / "volumes" / PLUGIN_DIRS["emptyDir"] / vol.name
            if not self._root:
                return self._shm_dir(vol, src)
            size = self._tmpfs_size(src)
            opts = f"size={size}" if size else ""
            # Through the descriptor, so the mount lands on this very directory.
            target = f"/proc/self/fd/{fd}".encode()
            flags = MS_NOSUID | MS_NODEV
            if self._libc.mount(b"tmpfs", target, b"tmpfs", flags, opts.encode()) != 0:
                err = ctypes.get_errno()
                raise VolumeError(f"mount tmpfs on {path}: {os.strerror(err)}")
            self._tmpfs.append(path)
        with _open_dirs(self._dir, ("volumes", PLUGIN_DIRS["emptyDir"], vol.name)) as fd:
            _own_dir(fd, self._owner)
        return path

    def _tmpfs_size(self, src: Obj) -> int:
        """sizeLimit, else the pod's memory limit (the kubelet's SizeMemoryBackedVolumes)."""
        try:
            if src.get("sizeLimit") is not None:
                return quantity.bytes_of(src["sizeLimit"])
            limits = [
                ((c.get("resources") or {}).get("limits") or {}).get("memory")
                for c in (self._pod.get("spec") or {}).get("containers") or ()
            ]
            if limits and all(v is not None for v in limits):
                return sum(quantity.bytes_of(v) for v in limits)
        except quantity.QuantityError as e:
            raise VolumeError(f"sizeLimit: {e}") from None
        return 0

    def _shm_dir(self, vol: _Volume, src: Obj) -> Path:
        """Without root no tmpfs can be mounted where every container sees it; a
        directory in /dev/shm (a tmpfs) is memory-backed and shared, but unbounded."""
        try:
            path = Path(tempfile.mkdtemp(prefix=f"svcnet-{vol.name}-", dir="/dev/shm"))
        except OSError:
            self._host.event(
                "Warning",
                "EmptyDirMedium",
                f'emptyDir "{vol.name}": medium Memory needs root (a tmpfs); it is a directory '
                "on disk",
            )
            return self._empty_dir(vol, {})
        self._shm.append(path)
        if src.get("sizeLimit") is not None:
            self._host.event(
                "Warning",
                "EmptyDirMedium",
                f'emptyDir "{vol.name}": without root, medium Memory is a directory in /dev/shm '
                f"and its sizeLimit {src['sizeLimit']} is not enforced",
            )
        return path

    # --- persistentVolumeClaim -----------------------------------------------------------

    def _claim(self, vol: _Volume, src: Obj) -> Path:
        """The desired state of world populator's checks, then the PV's hostPath."""
        ns, name = self._host.namespace, str(src.get("claimName") or "")
        vol.refs = {("PersistentVolumeClaim", name)}
        prefix = f"error processing PVC {ns}/{name}"
        pvc = self._store.get("PersistentVolumeClaim", ns, name)
        if pvc is None:
            raise VolumeError(
                f"{prefix}: failed to fetch PVC from API server: "
                f'persistentvolumeclaims "{name}" not found'
            )
        if (pvc.get("metadata") or {}).get("deletionTimestamp"):
            raise VolumeError(f"{prefix}: can't start pod because PVC {ns}/{name} is being deleted")
        pv_name = str((pvc.get("spec") or {}).get("volumeName") or "")
        if (pvc.get("status") or {}).get("phase") != "Bound" or not pv_name:
            raise VolumeError(f"{prefix}: PVC is not bound")
        vol.refs.add(("PersistentVolume", pv_name))
        pv = self._store.get("PersistentVolume", "", pv_name)
        if pv is None:
            raise VolumeError(
                f"{prefix}: failed to fetch PV {pv_name} from API server: "
                f'persistentvolumes "{pv_name}" not found'
            )
        claim = (pv.get("spec") or {}).get("claimRef") or {}
        if claim and (claim.get("name") != name or (claim.get("namespace") or ns) != ns):
            raise VolumeError(
                f"{prefix}: found PV object {pv_name} but it has a ClaimRef that does not "
                "point to this PVC"
            )
        hp = (pv.get("spec") or {}).get("hostPath")
        if not isinstance(hp, dict):
            raise VolumeError(
                f"svcnet mounts only hostPath PersistentVolumes; PersistentVolume {pv_name} "
                "has another source"
            )
        return host_path(hp)

    def _sub_path(self, vol: _Volume, sub: str, vname: str, cname: str) -> Path:
        """kubelet's subPath checks: relative, no backsteps, and (followed through
        symlinks) inside the volume; made as a directory when missing."""
        if sub.startswith("/"):
            raise MountRefused(f"error SubPath `{sub}` must not be an absolute path")
        if ".." in sub.split("/"):
            raise MountRefused(f"error SubPath `{sub}` must not contain '..'")
        assert vol.path is not None
        base = Path(os.path.realpath(vol.path))
        full = Path(os.path.realpath(base / sub))
        if full != base and base not in full.parents:
            raise MountRefused(f"subpath {q(str(full))} not within volume path {q(str(base))}")
        if not os.path.lexists(full):
            try:
                mode = stat.S_IMODE(base.stat().st_mode)
                full.mkdir(parents=True, mode=mode)
                full.chmod(mode)
            except OSError:
                raise MountRefused(
                    f"failed to create subPath directory for volumeMount {q(vname)} of "
                    f"container {q(cname)}"
                ) from None
        return full


def unmount_under(root: Path, libc: NsLibc) -> list[str]:
    """Detach what a svcnet that did not stop cleanly left mounted under its pods'
    directory (emptyDir tmpfs volumes), deepest first; the mount points it detached."""
    prefix = os.path.realpath(root) + "/"
    found: list[str] = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split(" ")
                if len(fields) > 4:
                    # Spaces and the like are octal escapes in mountinfo.
                    point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])
                    if point.startswith(prefix):
                        found.append(point)
    except OSError:
        return []
    done = []
    for point in sorted(found, key=len, reverse=True):
        if libc.umount2(os.fsencode(point), MNT_DETACH) == 0:
            done.append(point)
    return done


def host_path(src: Obj) -> Path:
    """hostPath's SetUp: no backsteps, then the type check (and creation) as the kubelet."""
    path = str(src.get("path") or "")
    if ".." in path.split("/"):
        raise VolumeError(f"invalid HostPath `{path}`: must not contain '..'")
    if not path.startswith("/"):
        raise VolumeError(f"invalid HostPath `{path}`: must be an absolute path")
    ptype = str(src.get("type") or "")
    if ptype == "":
        # The runtime's part (containerd's WithMounts): a missing source is made a directory.
        if not os.path.lexists(path):
            os.makedirs(path, 0o755, exist_ok=True)
        return Path(path)
    if ptype not in HOST_PATH_TYPES:
        raise VolumeError(f"{ptype} is an invalid volume type")
    if not os.path.exists(path):
        if ptype == "DirectoryOrCreate":
            os.makedirs(path, 0o755, exist_ok=True)
        elif ptype == "FileOrCreate":
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
        else:
            raise VolumeError(f"hostPath {path} doesn't exist")
    actual = _file_type(path)
    expected = {"DirectoryOrCreate": "Directory", "FileOrCreate": "File"}.get(ptype, ptype)
    if actual != expected:
        raise VolumeError(
            f"hostPath type check failed: {path} is not a {HOST_PATH_TYPES[ptype]}, it's a {actual}"
        )
    return Path(path)


def _file_type(path: str) -> str:
    mode = os.stat(path).st_mode
    for test, name in (
        (stat.S_ISDIR, "Directory"),
        (stat.S_ISREG, "File"),
        (stat.S_ISSOCK, "Socket"),
        (stat.S_ISCHR, "CharDevice"),
        (stat.S_ISBLK, "BlockDevice"),
    ):
        if test(mode):
            return name
    raise VolumeError("only recognise file, directory, socket, block device and character devices")


# --- the downward API ----------------------------------------------------------------


_SUBSCRIPT = re.compile(r"metadata\.(labels|annotations)\['([^']*)'\]")


def pod_field(pod: Obj, path: str) -> str:
    """A fieldRef of a downwardAPI volume (the fields a volume may show)."""
    md = pod.get("metadata") or {}
    if path in ("metadata.name", "metadata.namespace", "metadata.uid"):
        value = md.get(path.removeprefix("metadata."))
        return str(value or ("default" if path == "metadata.namespace" else ""))
    if path in ("metadata.labels", "metadata.annotations"):
        return format_map(md.get(path.removeprefix("metadata.")) or {})
    m = _SUBSCRIPT.fullmatch(path)
    if m:
        return str((md.get(m.group(1)) or {}).get(m.group(2), ""))
    raise VolumeError(f"unsupported fieldPath: {path}")


def format_map(m: dict[str, str]) -> str:
    """fieldpath.FormatMap: `key="value"` lines, sorted, values quoted as Go's %q."""
    return "\n".join(f"{k}={go_quote(str(m[k]))}" for k in sorted(m))


def go_quote(s: str) -> str:
    """Go's strconv.Quote."""
    out = ['"']
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


# --- the atomic writer ---------------------------------------------------------------


DATA = "..data"
DATA_TMP = "..data_tmp"


def atomic_write(vol_fd: int, payload: dict[str, tuple[bytes, int]], owner: Owner) -> None:
    """pkg/volume/util/atomic_writer.go, through directory descriptors: the files go
    into a new `..<timestamp>` directory, `..data` is switched to it with one rename,
    the user-visible symlinks follow, and the old directory goes."""
    try:
        old = os.readlink(DATA, dir_fd=vol_fd)
    except FileNotFoundError:
        old = ""
    ts = datetime.datetime.now(datetime.UTC).strftime("..%Y_%m_%d_%H_%M_%S.")
    new = f"{ts}{secrets.randbelow(10**9)}"
    os.mkdir(new, 0o755, dir_fd=vol_fd)
    ts_fd = os.open(new, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=vol_fd)
    try:
        os.fchmod(ts_fd, 0o755)
        _chown(ts_fd, owner, directory=True)
        for path, (data, mode) in sorted(payload.items()):
            *parents, leaf = path.split("/")
            with _open_dirs_fd(ts_fd, parents, owner) as d:
                fd = os.open(
                    leaf, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=d
                )
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    _chown(fd, owner, directory=False)
                    if owner.fs_group is not None:
                        mode |= 0o440  # SetVolumeOwnership on a read-only volume
                    os.fchmod(fd, mode)
                finally:
                    os.close(fd)
    finally:
        os.close(ts_fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(DATA_TMP, dir_fd=vol_fd)
    os.symlink(new, DATA_TMP, dir_fd=vol_fd)
    os.rename(DATA_TMP, DATA, src_dir_fd=vol_fd, dst_dir_fd=vol_fd)
    tops = {p.split("/")[0] for p in payload}
    for name in os.listdir(vol_fd):
        if name.startswith("..") or name in tops:
            continue
        # A user-visible path of the old payload: only ever a symlink into ..data.
        with contextlib.suppress(OSError):
            if os.readlink(name, dir_fd=vol_fd).startswith(DATA + "/"):
                os.unlink(name, dir_fd=vol_fd)
    for name in sorted(tops):
        with contextlib.suppress(FileExistsError):
            os.symlink(f"{DATA}/{name}", name, dir_fd=vol_fd)
    if old and old != new and old.startswith(".."):
        shutil.rmtree(old, ignore_errors=True, dir_fd=vol_fd)


@contextlib.contextmanager
def _open_dirs(base: Path, parts: tuple[str, ...]) -> Iterator[int]:
    """The directory base/parts..., made as needed, never through a symlink."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        with _open_dirs_fd(fd, list(parts), None) as d:
            yield d
    finally:
        os.close(fd)


@contextlib.contextmanager
def _open_dirs_fd(fd: int, parts: list[str], owner: Owner | None) -> Iterator[int]:
    opened: list[int] = []
    cur = fd
    try:
        for part in parts:
            if part in ("", ".", ".."):
                raise VolumeError(f"invalid path component {part!r}")
            try:
                os.mkdir(part, 0o755, dir_fd=cur)
                made = True
            except FileExistsError:
                made = False
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=cur)
            opened.append(nxt)
            if made and owner is not None:
                _chown(nxt, owner, directory=True)
            cur = nxt
        yield cur
    except OSError as e:
        if e.errno == errno.ELOOP or e.errno == errno.ENOTDIR:
            raise VolumeError(f"refusing to write through a symlink in {'/'.join(parts)}") from e
        raise
    finally:
        for d in opened:
            os.close(d)


def _chown(fd: int, owner: Owner, *, directory: bool) -> None:
    if not owner.chown:
        return
    gid = owner.fs_group if owner.fs_group is not None else owner.gid
    with contextlib.suppress(OSError):
        os.fchown(fd, owner.uid, gid)
    if directory and owner.fs_group is not None:
        with contextlib.suppress(OSError):
            os.fchmod(fd, stat.S_IMODE(os.fstat(fd).st_mode) | stat.S_ISGID)


def _own_dir(fd: int, owner: Owner) -> None:
    """An emptyDir: 0777 (the kubelet's setupDir), the pod's user's, fsGroup's with setgid."""
    os.fchmod(fd, 0o777)
    _chown(fd, owner, directory=True)


def _payload_path(path: str) -> str:
    """A file path inside the volume (validated by the API server; checked again here,
    since nothing outside the volume may be written)."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise VolumeError(f"invalid path {q(path)}: must be a relative path without '..'")
    if parts[0].startswith(".."):
        raise VolumeError(f"invalid path {q(path)}: must not start with '..'")
    return path


def _mode(value: object, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o777:
        return value
    return default


def _b64(value: object) -> bytes:
    try:
        return base64.b64decode(str(value))
    except ValueError:
        raise VolumeError("cannot decode base64 data") from None


def _milli(d: Decimal) -> Decimal:
    return Decimal(math.ceil(d * 1000))


def set_up_failed(volume: str, why: str) -> str:
    """The kubelet's FailedMount message for a volume plugin's SetUp error."""
    return f"MountVolume.SetUp failed for volume {q(volume)} : {why}"


def q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
