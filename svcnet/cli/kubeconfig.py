"""`svcnet kubeconfig`: point real kubectl (and any client library) at svcnet.

Without flags it prints a complete kubeconfig with one cluster, user and
context, all named ``svcnet``, for the daemon the CLI would talk to
(``--server`` / ``$SVCNET_SERVER``), so
``svcnet kubeconfig > ~/.kube/svcnet.yaml; export KUBECONFIG=~/.kube/svcnet.yaml``
is all a user needs. ``--merge`` adds (or refreshes) those three entries in
the user's kubeconfig (``--kubeconfig``, else the first file of
``$KUBECONFIG``, else ``~/.kube/config``) and leaves every other entry and
the current context alone; ``--use`` also makes ``svcnet`` the current
context, as ``kubectl config use-context svcnet`` would.

The entries carry what kubectl needs to reach the cluster as its owner: the
cluster's CA and bearer token (svcnet/credentials.py), read from the state
directory of the svcnet serving at that address (or $SVCNET_CA and
$SVCNET_TOKEN). The output is a secret: it is written 0600, as kind writes its.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import yaml

from svcnet import credentials
from svcnet.cli.client import ApiStatusError, Client, ConnectError, default_server
from svcnet.k8s.objects import Obj

NAME = credentials.NAME


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--server",
        "-s",
        default=None,
        help="API server URL (default: $SVCNET_SERVER or https://127.0.0.1:6443)",
    )
    p.add_argument("--name", default=NAME, help="name of the cluster, user and context")
    p.add_argument("-n", "--namespace", default="default", help="the context's namespace")
    p.add_argument(
        "--merge",
        action="store_true",
        help="add the context to your kubeconfig instead of printing a new one",
    )
    p.add_argument(
        "--use", action="store_true", help="with --merge: also make it the current context"
    )
    p.add_argument(
        "--kubeconfig",
        default=None,
        metavar="PATH",
        help="the file --merge writes (default: first of $KUBECONFIG, else ~/.kube/config)",
    )


def merge(
    config: Obj,
    server: str,
    name: str,
    namespace: str,
    use: bool,
    ca_pem: bytes | None = None,
    token: str | None = None,
) -> Obj:
    """`config` with the svcnet entries upserted (by name); other entries untouched."""
    out = dict(config)
    out.setdefault("apiVersion", "v1")
    out.setdefault("kind", "Config")
    for key, entry in zip(
        ("clusters", "users", "contexts"),
        credentials.entries(server, name, namespace, ca_pem, token),
        strict=True,
    ):
        items = [
            i for i in out.get(key) or [] if not (isinstance(i, dict) and i.get("name") == name)
        ]
        items.append(entry)
        out[key] = items
    if use:
        out["current-context"] = name
    else:
        out.setdefault("current-context", "")
    return out


def target_path(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("KUBECONFIG", "")
    for part in env.split(os.pathsep):
        if part:
            return Path(part).expanduser()
    return Path.home() / ".kube" / "config"


def _reachable(client: Client) -> str | None:
    """None if the daemon answers /version, else why not."""
    try:
        client.get("/version")
    except (ConnectError, ApiStatusError, OSError, ValueError) as e:
        return str(e)
    return None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def kubeconfig(args: argparse.Namespace) -> int:
    server = (args.server or default_server()).rstrip("/")
    if args.use and not args.merge:
        args.merge = True
    client = Client(server)
    try:
        problem = _reachable(client)
    finally:
        client.close()
    ca_pem = client.auth.ca_path.read_bytes() if client.auth.ca_path else None
    token = client.auth.token
    if not token:
        sys.stderr.write(
            f"warning: no credential for {server} was found ({client.unauthorized_hint()})\n"
        )
    if problem is not None:
        sys.stderr.write(
            f"warning: no svcnet API answers at {server} ({problem}); start it with "
            "`svcnet up` or pick it with --server\n"
        )
    if not args.merge:
        sys.stdout.write(
            credentials.dump(
                credentials.kubeconfig(server, ca_pem, token, args.name, args.namespace)
            )
        )
        return 0
    path = target_path(args.kubeconfig)
    current: Obj = {}
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as e:
            sys.stderr.write(f"error: cannot read {path}: {e}\n")
            return 1
        if loaded is not None and not isinstance(loaded, dict):
            sys.stderr.write(f"error: {path} is not a kubeconfig (not a mapping)\n")
            return 1
        current = loaded or {}
    merged = merge(current, server, args.name, args.namespace, args.use, ca_pem, token)
    _write(path, credentials.dump(merged))
    if args.use:
        sys.stdout.write(f'Context "{args.name}" written to {path} and made current.\n')
    else:
        sys.stdout.write(
            f'Context "{args.name}" written to {path}; the current context is unchanged '
            f"(use it with `kubectl --context {args.name} ...` or "
            f"`kubectl config use-context {args.name}`).\n"
        )
    return 0
