"""`svcnet`'s kubectl-shaped client verbs (``svcnet.main`` adds `up`, the daemon).

Parsing lives here, in one place, so the flags of every verb can be read
together; each verb's work lives in its own module, imported only when that
verb runs, so `svcnet get` does not pay for the daemon's imports (or aiohttp).

The client verbs print what kubectl prints. Errors are turned into kubectl's
wording at this one boundary (``_run_client``) so verbs can simply raise
``ApiStatusError``/``ConnectError``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from svcnet import __version__
from svcnet.cli.client import ApiStatusError, Client, ConnectError, default_server
from svcnet.cli.flags import duration

Verb = Callable[[argparse.Namespace, Client], int]


@dataclass(frozen=True)
class Command:
    """A verb that is not a client of the API (`svcnet up`, the daemon itself),
    plugged in by ``svcnet.main`` so that this package never imports the server."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _bool_flag(value: str) -> bool:
    v = value.lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {value!r}")


def _client_options(all_namespaces: bool) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server",
        "-s",
        default=None,
        help="API server URL (default: $SVCNET_SERVER or https://127.0.0.1:6443)",
    )
    # None means "not given": apply must tell an explicit -n from the default.
    common.add_argument("-n", "--namespace", default=None, help="namespace (default: default)")
    if all_namespaces:
        common.add_argument(
            "-A", "--all-namespaces", action="store_true", help="list across all namespaces"
        )
    return common


def build_parser(commands: Sequence[Command] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="svcnet",
        description="Kubernetes Service networking on one machine, without a cluster.",
    )
    parser.add_argument("--version", action="version", version=f"svcnet {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND")
    sub.required = True
    plain = _client_options(all_namespaces=False)
    listing = _client_options(all_namespaces=True)

    for command in commands:
        command.add_arguments(sub.add_parser(command.name, help=command.help))

    p = sub.add_parser("apply", parents=[plain], help="apply manifests (create or update)")
    p.add_argument("-f", "--filename", action="append", required=True, metavar="PATH")
    p.add_argument("-R", "--recursive", action="store_true")
    p.add_argument(
        "--watch",
        action="store_true",
        help="keep applying the files as they change, and restart the pods of mapped "
        "programs that change (Ctrl-C stops)",
    )
    p.add_argument("--changes-only", action="store_true", help=argparse.SUPPRESS)

    p = sub.add_parser("delete", parents=[plain], help="delete objects by file or by name")
    p.add_argument("-f", "--filename", action="append", metavar="PATH")
    p.add_argument("-R", "--recursive", action="store_true")
    p.add_argument("resources", nargs="*", metavar="KIND NAME")
    p.add_argument("--wait", type=_bool_flag, default=True, metavar="BOOL")
    p.add_argument("--ignore-not-found", action="store_true")
    p.add_argument("--timeout", type=duration, default=0.0, metavar="DURATION")

    p = sub.add_parser("get", parents=[listing], help="list objects")
    p.add_argument("resources", nargs="*", metavar="KIND[,KIND] [NAME...]")
    # pflag semantics, which kubectl users rely on without knowing it: a
    # repeated -l replaces the earlier one (`-l app=echo -l release=spring`
    # selects only release=spring). argparse's default "store" action does the
    # same; do not turn this into "append".
    p.add_argument("-l", "--selector", default=None)
    p.add_argument(
        "-o",
        "--output",
        default="",
        metavar="FORMAT",
        help="wide, yaml, json, name or jsonpath=TEMPLATE",
    )
    p.add_argument("--show-labels", action="store_true")

    p = sub.add_parser("describe", parents=[listing], help="show details of objects")
    p.add_argument("resources", nargs="+", metavar="KIND NAME")
    p.add_argument("-l", "--selector", default=None)

    p = sub.add_parser("wait", parents=[plain], help="wait for a condition on objects")
    p.add_argument("resources", nargs="*", metavar="KIND/NAME | KIND [NAME...]")
    p.add_argument("-l", "--selector", default=None)
    p.add_argument("--all", action="store_true")
    p.add_argument(
        "--for",
        dest="for_",
        required=True,
        metavar="CONDITION",
        help="delete, create, condition=TYPE[=VALUE] or jsonpath={.path}[=VALUE]",
    )
    p.add_argument("--timeout", type=duration, default=30.0, metavar="DURATION")

    p = sub.add_parser("logs", parents=[plain], help="print a container's log")
    p.add_argument("pod", nargs="?", default="", metavar="POD | TYPE/NAME")
    p.add_argument("-l", "--selector", default=None)
    p.add_argument("--prefix", action="store_true")
    p.add_argument("--all-containers", action="store_true")
    p.add_argument("--max-log-requests", type=int, default=5)
    p.add_argument("-c", "--container", default="")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--tail", type=int, default=-1)
    p.add_argument("--timestamps", action="store_true")
    p.add_argument("-p", "--previous", action="store_true")

    p = sub.add_parser("run", parents=[plain], help="run a pod")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--image", required=True)
    p.add_argument("--rm", action="store_true")
    p.add_argument("-i", "--stdin", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("--restart", default="Always")
    p.add_argument("--env", action="append", default=[], metavar="K=V")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--labels", "-l", default="")
    p.add_argument("--command", action="store_true")
    p.add_argument("args", nargs="*", metavar="-- CMD")

    p = sub.add_parser(
        "exec",
        parents=[plain],
        help="run a command of this machine as a pod of the namespace sees the cluster",
        usage="svcnet exec [-n NAMESPACE] -- CMD [ARG...]",
    )
    p.add_argument("pod", nargs="*", help=argparse.SUPPRESS)

    from svcnet.cli import portforward

    portforward.add_arguments(
        sub.add_parser(
            "port-forward",
            parents=[plain],
            help="forward local ports to a pod (TYPE/NAME [LOCAL:]REMOTE...)",
        )
    )

    p = sub.add_parser("scale", parents=[plain], help="set a ReplicaSet's or Deployment's size")
    p.add_argument("resources", nargs="+", metavar="KIND/NAME")
    p.add_argument("--replicas", type=int, required=True)

    from svcnet.cli import rollout
    from svcnet.cli import set as set_

    rollout.add_arguments(sub, plain)
    set_.add_arguments(sub, plain)

    sub.add_parser("version", parents=[plain], help="print client and server versions")

    from svcnet.cli import kubeconfig

    kubeconfig.add_arguments(
        sub.add_parser("kubeconfig", help="print (or --merge) a kubeconfig for real kubectl")
    )
    from svcnet.cli import hostdns

    hostdns.add_arguments(
        sub.add_parser(
            "dns",
            help="send this machine's lookups of cluster.local to svcnet (print, apply, undo)",
        )
    )
    return parser


def _verb(name: str) -> Verb:
    if name in ("apply", "delete"):
        from svcnet.cli import apply

        return apply.apply if name == "apply" else apply.delete
    if name == "get":
        from svcnet.cli import get

        return get.get
    if name == "describe":
        from svcnet.cli import describe

        return describe.describe
    if name == "logs":
        from svcnet.cli import logs

        return logs.logs
    if name == "run":
        from svcnet.cli import run

        return run.run
    if name == "wait":
        from svcnet.cli import wait

        return wait.wait
    if name == "exec":
        from svcnet.cli import hostexec

        return hostexec.hostexec
    if name == "port-forward":
        from svcnet.cli import portforward

        return portforward.port_forward
    if name in ("rollout", "set"):
        from svcnet.cli import rollout
        from svcnet.cli import set as set_

        return rollout.rollout if name == "rollout" else set_.set_image
    from svcnet.cli import scale

    return scale.scale if name == "scale" else scale.version


def main(argv: list[str] | None = None, commands: Sequence[Command] = ()) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` is the container's command line, taken verbatim
    # (argparse would otherwise read `sh -c ...` as options of `run`).
    command: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1 :]
    parser = build_parser(commands)
    args = parser.parse_args(argv)
    if args.verb == "run":
        args.args = [*args.args, *command]
    elif args.verb == "exec":
        args.command = command
    elif command:
        parser.error(f"unexpected arguments after --: {' '.join(command)}")
    for plugged in commands:
        if args.verb == plugged.name:
            return plugged.run(args)
    if args.verb == "kubeconfig":
        from svcnet.cli import kubeconfig

        return kubeconfig.kubeconfig(args)
    if args.verb == "dns":
        from svcnet.cli import hostdns

        return hostdns.hostdns(args)
    return _run_client(args, _verb(args.verb))


def _run_client(args: argparse.Namespace, verb: Verb) -> int:
    args.explicit_namespace = args.namespace is not None
    if args.namespace is None:
        args.namespace = "default"
    client = Client(args.server or default_server())
    try:
        return verb(args, client)
    except ApiStatusError as e:
        from svcnet.cli.printer import status_error_text

        sys.stderr.write(status_error_text(e.status))
        if e.code == 401:
            sys.stderr.write(client.unauthorized_hint() + "\n")
        return 1
    except ConnectError as e:
        sys.stderr.write(f"{e}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `svcnet logs -f ... | head`: the reader left; that is not an error.
        return 0
    finally:
        client.close()
