"""`svcnet exec -- CMD`: a command of this machine, seeing the cluster as a pod does.

What a pod of namespace NS gets from the kubelet, the command gets too: the
cluster's resolv.conf (the kube-dns ClusterIP, ``search NS.svc.<zone>
svc.<zone> <zone>``, ``ndots:5``) bind-mounted over /etc/resolv.conf in a
mount namespace of its own (kernel/namespaces.py: directly as root, in an
unprivileged user namespace otherwise), and the Service link variables
(``ECHO_SERVICE_HOST``...) of NS plus the ``kubernetes`` Service. Where
svcnet runs as root with ``proxy.socket_lb: host`` (the default), a
connect() to a ClusterIP is already balanced in the kernel for every process
of the machine, this one included.

The cluster's zone and DNS address are the kubelet's own configuration, read
as kubectl would (``/api/v1/nodes/NODE/proxy/configz``). The command then
replaces this process (execve), so its exit status and the signals sent to it
are its own. Through sudo, it runs as the calling user, after the mount.
"""

from __future__ import annotations

import argparse
import os
import pwd
import sys
import tempfile
from pathlib import Path

from svcnet.cli.client import ApiStatusError, Client
from svcnet.k8s import kinds, podview
from svcnet.k8s.objects import Obj
from svcnet.kernel import namespaces


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
    client.close()

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
    _drop_to_sudo_caller(env)
    try:
        os.execvpe(command[0], command, env)
    except FileNotFoundError:
        sys.stderr.write(f"svcnet exec: {command[0]}: command not found\n")
        return 127
    except PermissionError as e:
        sys.stderr.write(f"svcnet exec: {command[0]}: {e.strerror}\n")
        return 126


def _write_resolv_conf(text: str) -> Path:
    """The file to bind-mount: only this command sees it once it is unlinked."""
    fd, name = tempfile.mkstemp(prefix="svcnet-exec-resolv-", suffix=".conf")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(name, 0o644)  # readable after dropping to the sudo caller
    return Path(name)


def _drop_to_sudo_caller(env: dict[str, str]) -> None:
    """`sudo svcnet exec -- pytest` runs pytest as the user who typed it."""
    uid = os.environ.get("SUDO_UID")
    if os.geteuid() != 0 or not uid or not uid.isdigit() or int(uid) == 0:
        return
    user = pwd.getpwuid(int(uid))
    os.initgroups(user.pw_name, user.pw_gid)
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    env.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
