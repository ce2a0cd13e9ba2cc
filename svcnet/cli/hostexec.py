"""`svcnet exec -- CMD`: a command of this machine, seeing the cluster as a pod does.

What a pod of namespace NS gets from the kubelet, the command gets too: the
cluster's resolv.conf (the kube-dns ClusterIP, ``search NS.svc.<zone>
svc.<zone> <zone>``, ``ndots:5``) bind-mounted over /etc/resolv.conf in a
mount namespace of its own (kernel/namespaces.py: directly as root, in an
unprivileged user namespace otherwise), and the Service link variables
(``ECHO_SERVICE_HOST``...) of NS plus the ``kubernetes`` Service. As root it
also gets a pod's network identity: a session pod is created in NS and the
command runs in its container's cgroups, so the socket hooks give it that
pod's IP as its source and balance its connect()s as a pod's; the pod is
deleted when the command ends (and ends by itself if this process dies).

The cluster's zone and DNS address are the kubelet's own configuration, read
as kubectl would (``/api/v1/nodes/NODE/proxy/configz``). Without a session
pod the command replaces this process (execve); with one, this process waits
for it, passes signals on (a terminal's ^C reaches it directly) and ends as it
ended: with its exit status, or killed by the same signal. Through sudo, it
runs as the calling user, after the mount.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from svcnet.cli.client import ApiStatusError, Client
from svcnet.k8s import kinds, podview
from svcnet.k8s.objects import Obj
from svcnet.kernel import cgroups, namespaces


def kubelet_dns(client: Client) -> tuple[str, str]:
    """(cluster domain, cluster DNS address) from the node's kubelet configuration."""
    nodes = client.get(kinds.BY_KIND["Node"].collection_path(None))["items"]
    if not nodes:
        raise ApiStatusError(
            {"kind": "Status", "code": 404, "reason": "NotFound", "message": "no node"}
        )
    name = nodes[0]["metadata"]["name"]
    config = client.get(f"/api/v1/nodes/{name}/proxy/configz")["kubeletconfig"]
    return str(config["clusterDomain"]), str(config["clusterDNS"][0])


def service_env(client: Client, namespace: str) -> dict[str, str]:
    """The kubelet's Service variables for a pod of `namespace` (enableServiceLinks)."""
    services = kinds.BY_KIND["Service"]
    own: list[Obj] = client.get(services.collection_path(namespace))["items"]
    if namespace != "default":
        try:
            own.append(client.get(services.object_path("default", "kubernetes")))
        except ApiStatusError as e:
            if e.code != 404:
                raise
    return podview.service_links(own)


def hostexec(args: argparse.Namespace, client: Client) -> int:
    command: list[str] = args.command
    if args.pod:
        sys.stderr.write(
            f"error: svcnet exec runs a command of this machine as a pod would see the "
            f"cluster (svcnet exec -- CMD); to run a command in pod {args.pod[0]}, use "
            f"kubectl exec {args.pod[0]} -- CMD\n"
        )
        return 1
    if not command:
        sys.stderr.write("error: no command: svcnet exec [-n NAMESPACE] -- CMD [ARG...]\n")
        return 1
    ns = args.namespace
    domain, dns_ip = kubelet_dns(client)
    env = dict(os.environ)
    env.update(service_env(client, ns))
    pod_view = {"metadata": {"namespace": ns}, "spec": {}}
    conf = podview.resolv_conf(pod_view, domain, dns_ip)
    assert conf is not None  # ClusterFirst always has one
    session = _start_session(client, ns) if os.geteuid() == 0 else None

    resolv = _write_resolv_conf(conf)
    try:
        report = namespaces.enter_view(namespaces.NsLibc(), [(bytes(resolv), b"/etc/resolv.conf")])
    finally:
        resolv.unlink()  # the bind mount holds the file on
    if report != namespaces.OK:
        # No private mount here (no root, no user namespaces): glibc's resolver
        # still takes the search path and ndots from the environment, so names
        # resolve where the machine's resolver sends cluster.local to svcnet.
        sys.stderr.write(
            f"svcnet exec: cannot give the command the cluster's resolv.conf "
            f"({report.decode(errors='replace')}); it keeps this machine's nameservers, "
            f"with the cluster's search path in LOCALDOMAIN\n"
        )
        env["LOCALDOMAIN"] = " ".join(conf.split("\n", 1)[0].split()[1:])
        env["RES_OPTIONS"] = "ndots:5"
    if session is not None:
        return _run_in_session(client, ns, session, command, env)
    client.close()
    _drop_to_sudo_caller(env)
    try:
        os.execvpe(command[0], command, env)
    except FileNotFoundError:
        sys.stderr.write(f"svcnet exec: {command[0]}: command not found\n")
        return 127
    except PermissionError as e:
        sys.stderr.write(f"svcnet exec: {command[0]}: {e.strerror}\n")
        return 126


SESSION_LABEL = "svcnet.dev/exec-session"


def _start_session(client: Client, ns: str) -> tuple[str, list[Path]] | None:
    """A pod whose network identity the command takes (its IP as source, its
    localhost, its connect-time balancing), as `kubectl debug` makes a pod for a
    shell: its one container waits as long as this process lives. Returns the
    pod's name and the cgroup.procs files of that container's cgroups, or None
    (said why) where there is none to be had."""
    kind = kinds.BY_KIND["Pod"]
    watch = f"while [ -d /proc/{os.getpid()} ]; do sleep 1; done"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "exec-", "labels": {SESSION_LABEL: "true"}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "session", "image": "svcnet/exec-session",
                            "command": ["sh", "-c", watch]}],
        },
    }  # fmt: skip
    name = ""
    try:
        name = str(client.call("POST", kind.collection_path(ns), body=pod)["metadata"]["name"])

        def running(o: Obj | None) -> bool:
            statuses = ((o or {}).get("status") or {}).get("containerStatuses") or []
            return bool(statuses) and "running" in (statuses[0].get("state") or {})

        got = client.wait_for(kind, ns, name, running, timeout=30)
        cid = str(((got or {}).get("status") or {})["containerStatuses"][0]["containerID"])
        return name, cgroups.procs_files_of(int(cid.removeprefix("svcnet://")))
    except (ApiStatusError, TimeoutError, OSError, KeyError, ValueError) as e:
        sys.stderr.write(f"svcnet exec: the command gets no pod identity of its own ({e})\n")
        if name:
            _delete_session(client, ns, name)
        return None


def _delete_session(client: Client, ns: str, name: str) -> None:
    with contextlib.suppress(ApiStatusError, OSError):
        client.call(
            "DELETE",
            kinds.BY_KIND["Pod"].object_path(ns, name),
            body={"gracePeriodSeconds": 0},
        )


def _run_in_session(
    client: Client,
    ns: str,
    session: tuple[str, list[Path]],
    command: list[str],
    env: dict[str, str],
) -> int:
    """Run the command in the session pod's cgroups, wait, remove the pod, and
    end as the command ended (its code, or its signal)."""
    name, procs = session
    ids = _sudo_caller(env)

    def in_child() -> None:
        me = str(os.getpid()).encode()
        for path in procs:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, me)
            finally:
                os.close(fd)
        for sig in (signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        _become(ids)

    # A terminal's ^C and ^\ reach the command itself (same process group);
    # signals sent to this process are passed on.
    for sig in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    try:
        child = subprocess.Popen(command, env=env, preexec_fn=in_child)
    except FileNotFoundError:
        _delete_session(client, ns, name)
        sys.stderr.write(f"svcnet exec: {command[0]}: command not found\n")
        return 127
    except PermissionError as e:
        _delete_session(client, ns, name)
        sys.stderr.write(f"svcnet exec: {command[0]}: {e.strerror}\n")
        return 126
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, lambda s, _f: child.send_signal(s))
    code = child.wait()
    _delete_session(client, ns, name)
    client.close()
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return 128 - code if code < 0 else code


def _write_resolv_conf(text: str) -> Path:
    """The file to bind-mount: only this command sees it once it is unlinked."""
    fd, name = tempfile.mkstemp(prefix="svcnet-exec-resolv-", suffix=".conf")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(name, 0o644)  # readable after dropping to the sudo caller
    return Path(name)


def _sudo_caller(env: dict[str, str]) -> tuple[int, int, list[int]] | None:
    """(uid, gid, groups) of the user who ran `sudo svcnet exec`, with `env` made
    theirs (HOME, USER); None when there is no one to drop to."""
    uid = os.environ.get("SUDO_UID")
    if os.geteuid() != 0 or not uid or not uid.isdigit() or int(uid) == 0:
        return None
    user = pwd.getpwuid(int(uid))
    env.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
    return user.pw_uid, user.pw_gid, os.getgrouplist(user.pw_name, user.pw_gid)


def _become(ids: tuple[int, int, list[int]] | None) -> None:
    if ids is not None:
        os.setgroups(ids[2])
        os.setgid(ids[1])
        os.setuid(ids[0])


def _drop_to_sudo_caller(env: dict[str, str]) -> None:
    """`sudo svcnet exec -- pytest` runs pytest as the user who typed it."""
    _become(_sudo_caller(env))
