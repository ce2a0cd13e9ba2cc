"""Who a container's processes run as: user, groups and capabilities.

A container runtime starts a container as the image's user (root unless the
image says otherwise) with a small default set of capabilities, not all of
root's; securityContext can change the user (runAsUser, runAsGroup,
supplementalGroups, fsGroup), the capabilities (add, drop, privileged), and
forbid root (runAsNonRoot). svcnet does the same, with one difference of
place: its "image user" is the user who started svcnet. Run through sudo,
that is SUDO_UID/SUDO_GID with that user's supplementary groups, so a pod
can do nothing its owner could not; run as root without sudo (CI, a
container), it is root, still with the runtime's default capabilities only.

The parent computes an ``Identity`` per container (``for_container``); the
child applies it between fork and exec (``Identity.apply``), after the pod's
namespaces are set up (which needs the daemon's privileges) and before the
program runs. The kernel recomputes capabilities at exec from the bounding
set: dropping every capability outside the allowed set from the bounding set
and clearing the inheritable set is what limits a root container; a non-root
one loses its capabilities when it changes uid, as in any container.
"""

from __future__ import annotations

import ctypes
import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass, field

from svcnet.k8s.objects import Obj

# linux/capability.h
CAPABILITIES = (
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
)
CAP_NUMBER = {name: i for i, name in enumerate(CAPABILITIES)}

DEFAULT_CAPABILITIES = frozenset(
    CAP_NUMBER[c]
    for c in (
        "CHOWN",
        "DAC_OVERRIDE",
        "FSETID",
        "FOWNER",
        "MKNOD",
        "NET_RAW",
        "SETGID",
        "SETUID",
        "SETFCAP",
        "SETPCAP",
        "NET_BIND_SERVICE",
        "SYS_CHROOT",
        "KILL",
        "AUDIT_WRITE",
    )
)
"""containerd's and Docker's default set (oci.defaultUnixCaps)."""

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class IdentityError(Exception):
    """The container may not start as asked (the kubelet's CreateContainerConfigError)."""


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...]
    capabilities: frozenset[int] = DEFAULT_CAPABILITIES
    no_new_privs: bool = False
    warnings: tuple[str, ...] = field(default=(), compare=False)
    """What could not be honoured (svcnet not running as root), for the pod's events."""

    def apply(self, libc: CapLibc) -> bytes:
        """In the child, after fork: become this identity. Returns b"" or what failed.

        Only raw os calls and pre-resolved ctypes calls (the child of a
        possibly multi-threaded parent must not take locks)."""
        if os.geteuid() == 0:
            for cap in range(libc.last_cap + 1):
                if cap not in self.capabilities and libc.prctl(PR_CAPBSET_DROP, cap) != 0:
                    return _errno_text(f"drop capability {cap}")
            try:
                os.setgroups(list(self.groups))
                os.setresgid(self.gid, self.gid, self.gid)
                os.setresuid(self.uid, self.uid, self.uid)
            except OSError as e:
                return f"become uid {self.uid} gid {self.gid}: {e.strerror}".encode()
            if libc.clear_inheritable() != 0:
                return _errno_text("clear inheritable capabilities")
        if self.no_new_privs and libc.prctl(PR_SET_NO_NEW_PRIVS, 1) != 0:
            return _errno_text("no_new_privs")
        return b""


def _errno_text(what: str) -> bytes:
    return f"{what}: {os.strerror(ctypes.get_errno())}".encode()


class _CapHeader(ctypes.Structure):
    _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))


class _CapData(ctypes.Structure):
    _fields_ = (
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    )


class CapLibc:
    """capget/capset/prctl resolved in the parent, and the kernel's last capability."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.prctl = lib.prctl
        self.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong]
        self._capget = lib.capget
        self._capset = lib.capset
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                self.last_cap = int(f.read())
        except OSError:
            self.last_cap = len(CAPABILITIES) - 1
        # Allocated here: the child must not allocate through ctypes' caches.
        self._header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
        self._data = (_CapData * 2)()

    def clear_inheritable(self) -> int:
        """capset with an empty inheritable set, keeping effective and permitted."""
        if self._capget(ctypes.byref(self._header), self._data) != 0:
            return -1
        self._data[0].inheritable = 0
        self._data[1].inheritable = 0
        return int(self._capset(ctypes.byref(self._header), self._data))


def node_identity(environ: Mapping[str, str], euid: int, egid: int) -> Identity:
    """The user pods run as by default: sudo's caller, else whoever runs svcnet."""
    sudo_uid, sudo_gid = environ.get("SUDO_UID", ""), environ.get("SUDO_GID", "")
    if euid == 0 and sudo_uid.isdigit() and sudo_gid.isdigit() and int(sudo_uid) != 0:
        uid, gid = int(sudo_uid), int(sudo_gid)
        user = environ.get("SUDO_USER", "")
        try:
            user = user or pwd.getpwuid(uid).pw_name
            groups = tuple(sorted(set(os.getgrouplist(user, gid))))
        except (KeyError, OSError):
            groups = (gid,)
        return Identity(uid, gid, groups)
    groups = tuple(sorted({egid, *os.getgroups()})) if euid != 0 else (0,)
    return Identity(euid, egid, groups)


def _pod_ref(pod: Obj) -> str:
    md = pod["metadata"]
    return f'"{md["name"]}_{md.get("namespace") or "default"}({md.get("uid", "")})"'


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def for_container(pod: Obj, container: Obj, node: Identity, *, root: bool) -> Identity:
    """The identity of one container: the node's default with the pod's and the
    container's securityContext on top (the container's wins, as in Kubernetes).
    `root` says whether svcnet can change users at all. Raises IdentityError."""
    spec = pod.get("spec") or {}
    psc: Obj = spec.get("securityContext") or {}
    csc: Obj = container.get("securityContext") or {}

    def pick(key: str) -> object:
        return csc[key] if csc.get(key) is not None else psc.get(key)

    run_as_user = _int(pick("runAsUser"))
    run_as_group = _int(pick("runAsGroup"))
    uid = node.uid if run_as_user is None else run_as_user
    gid = node.gid if run_as_group is None else run_as_group
    if run_as_user is None and run_as_group is None:
        groups = set(node.groups)
    else:
        groups = {gid}
    groups.update(
        g for g in (_int(x) for x in psc.get("supplementalGroups") or ()) if g is not None
    )
    fs_group = _int(psc.get("fsGroup"))
    if fs_group is not None:
        groups.add(fs_group)
    name = str(container.get("name") or "")
    if pick("runAsNonRoot") is True:
        if run_as_user == 0:
            raise IdentityError(
                f"container's runAsUser breaks non-root policy (pod: {_pod_ref(pod)}, "
                f"container: {name})"
            )
        if uid == 0:
            raise IdentityError(
                f"container has runAsNonRoot and image will run as root (pod: {_pod_ref(pod)}, "
                f"container: {name})"
            )
    caps = set(DEFAULT_CAPABILITIES)
    if csc.get("privileged") is True:
        caps = set(range(len(CAPABILITIES)))
    wanted: Obj = csc.get("capabilities") or {}
    for cap in wanted.get("add") or ():
        number = CAP_NUMBER.get(str(cap).upper().removeprefix("CAP_"))
        if number is not None:
            caps.add(number)
        elif str(cap).upper() == "ALL":
            caps = set(range(len(CAPABILITIES)))
    for cap in wanted.get("drop") or ():
        if str(cap).upper() == "ALL":
            caps.clear()
        else:
            caps.discard(CAP_NUMBER.get(str(cap).upper().removeprefix("CAP_"), -1))
    no_new_privs = csc.get("allowPrivilegeEscalation") is False
    want = Identity(uid, gid, tuple(sorted(groups)), frozenset(caps), no_new_privs)
    if root or (want.uid, want.gid) == (node.uid, node.gid):
        return want
    return Identity(
        node.uid,
        node.gid,
        node.groups,
        no_new_privs=no_new_privs,
        warnings=(
            f"container {name} runs as uid {node.uid}, not uid {uid} gid {gid}: "
            "svcnet is not running as root, so it cannot switch users",
        ),
    )
