"""How a pod's processes see the cluster: resolv.conf, /etc/hosts, hostname.

Kubernetes gives each pod its own /etc/resolv.conf (cluster DNS first,
`search <ns>.svc.<zone> svc.<zone> <zone>`, `ndots:5`), its own /etc/hosts and
its own hostname. Here the kubelet writes both files into the pod's state
directory, and each container process, between fork and exec, enters a
private mount namespace (plus a UTS namespace for the hostname) and
bind-mounts them over the host's. Nothing leaks back: `/` is made
MS_PRIVATE before any bind.

Root can do this directly. Others get an unprivileged user namespace that
maps their own uid and gid (so files and permissions look the same) where
the kernel allows it. Where neither works the container still runs with the
host's view; `ChildSetup` reports what happened through a pipe so the pod
can say so in its status instead of failing.

The child code runs after fork in a possibly multi-threaded parent, so it
only makes pre-resolved ctypes calls on pre-encoded bytes and raw os calls.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
import signal
import termios
from dataclasses import dataclass

from svcnet.agent.identity import CapLibc, Identity
from svcnet.k8s.objects import Obj
from svcnet.kernel.namespaces import OK, Bind, NsLibc, enter_view

PR_SET_PDEATHSIG = 1


def hosts_file(pod: Obj, pod_ip: str, cluster_domain: str) -> str:
    """The kubelet's managed hosts file. `localhost` is the pod IP: in a real pod the
    loopback interface is the pod's own, shared by its containers, and here the pod
    IP is what its containers bind."""
    md, spec = pod["metadata"], pod.get("spec") or {}
    hostname = str(spec.get("hostname") or md["name"])
    names = [hostname]
    if spec.get("subdomain"):
        ns = md.get("namespace") or "default"
        names.insert(0, f"{hostname}.{spec['subdomain']}.{ns}.svc.{cluster_domain}")
    lines = [
        "# Kubernetes-managed hosts file (svcnet).",
        f"{pod_ip}\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
        f"{pod_ip}\t{' '.join(names)}",
    ]
    for alias in spec.get("hostAliases") or ():
        lines.append(f"{alias.get('ip')}\t{' '.join(alias.get('hostnames') or ())}")
    return "\n".join(lines) + "\n"


class Libc:
    """libc entry points resolved once, in the parent, so the child only calls them."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.ns = NsLibc(lib)
        self.setns = self.ns.setns
        self.prctl = lib.prctl
        self.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong]
        self.caps = CapLibc(lib)


@dataclass(frozen=True)
class ChildSetup:
    """The preexec_fn: parent-death signal, controlling tty, the pod's view, then
    the container's user and capabilities (identity.py)."""

    libc: Libc
    parent_pid: int
    report_fd: int
    tty: bool
    hostname: bytes
    resolv_path: bytes | None
    """Bind-mounted over /etc/resolv.conf; None keeps the host's."""
    hosts_path: bytes | None
    identity: Identity | None = None
    cgroup_procs: tuple[bytes, ...] = ()
    """The pod cgroup's cgroup.procs files: joined first, so all the child starts is in it."""
    mounts: tuple[Bind, ...] = ()
    """The container's volumes: without them the container does not run at all."""
    scratch: bytes = b""
    """An empty directory of the container's own for mount-point shadows (namespaces.py)."""
    cwd: bytes = b""
    """Entered again after the mounts, which may have covered (or made) it."""

    def __call__(self) -> None:
        join_cgroup(self.cgroup_procs)
        # If the daemon dies, so does the container (and its group gets no orphan
        # leader). Checking the parent after arming closes the race with its death.
        self.libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != self.parent_pid:
            os._exit(137)
        if self.tty:
            # start_new_session made us a session leader; fd 0 is the pty slave.
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        report = self._enter_pod_view()
        if self.mounts and report != OK:
            # Running the program without the files it mounts would be a lie.
            os.write(self.report_fd, b"cannot mount the pod's volumes: " + report)
            raise PermissionError(report.decode(errors="replace"))
        become(self.identity, self.libc, self.report_fd, self.parent_pid)
        if self.mounts and self.cwd:
            try:
                os.chdir(self.cwd)
            except OSError as e:
                os.write(self.report_fd, f"chdir to cwd failed: {e.strerror}".encode())
                raise
        os.write(self.report_fd, report)

    def _enter_pod_view(self) -> bytes:
        binds = ((self.resolv_path, b"/etc/resolv.conf"), (self.hosts_path, b"/etc/hosts"))
        return enter_view(self.libc.ns, binds, self.hostname, self.mounts, self.scratch)


def join_cgroup(procs: tuple[bytes, ...]) -> None:
    """In the child: move into the pod's cgroup in every hierarchy (b"0" is "me")."""
    for path in procs:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def become(identity: Identity | None, libc: Libc, report_fd: int, parent_pid: int) -> None:
    """In the child: take the container's identity or refuse to run at all.

    Changing credentials clears the parent-death signal (the kernel's
    commit_creds), so it is armed again, and the parent checked again."""
    if identity is None:
        return
    failed = identity.apply(libc.caps)
    if failed:
        os.write(report_fd, b"cannot run as the container's user: " + failed)
        raise PermissionError(failed.decode(errors="replace"))
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(137)
