"""`rollout status|restart|undo|history` for Deployments, StatefulSets and
DaemonSets, with kubectl's requests and lines (reference/kubectl-api.md section
3; the status rules are kubectl's DeploymentStatusViewer,
StatefulSetStatusViewer and DaemonSetStatusViewer, the undo rules
polymorphichelpers/rollback.go: a StatefulSet or DaemonSet goes back by sending
its ControllerRevision's data as a strategic merge patch)."""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import sys
import urllib.parse
from typing import Any

from svcnet.cli.client import ApiStatusError, Client, kind_name
from svcnet.cli.flags import duration
from svcnet.k8s import kinds
from svcnet.k8s.kinds import Kind
from svcnet.k8s.media import JSON_PATCH, STRATEGIC_MERGE_PATCH
from svcnet.k8s.objects import Obj
from svcnet.k8s.owners import controller_uid
from svcnet.k8s.wellknown import (
    CHANGE_CAUSE,
    POD_TEMPLATE_HASH,
    REPLICASET_SKIPPED_ANNOTATIONS,
    RESTARTED_AT,
    REVISION,
)


def add_arguments(sub: Any, plain: argparse.ArgumentParser) -> None:
    p = sub.add_parser("rollout", help="manage the rollout of a Deployment")
    verbs = p.add_subparsers(dest="rollout_verb", metavar="VERB")
    verbs.required = True
    s = verbs.add_parser("status", parents=[plain], help="watch a rollout until it completes")
    s.add_argument("resources", nargs="+", metavar="KIND/NAME")
    s.add_argument("-w", "--watch", type=_bool, default=True, metavar="BOOL")
    # 0 (the default) waits as long as it takes, as kubectl's does.
    s.add_argument("--timeout", type=duration, default=0.0, metavar="DURATION")
    r = verbs.add_parser("restart", parents=[plain], help="restart the pods of a Deployment")
    r.add_argument("resources", nargs="+", metavar="KIND/NAME")
    u = verbs.add_parser("undo", parents=[plain], help="roll back to an earlier revision")
    u.add_argument("resources", nargs="+", metavar="KIND/NAME")
    u.add_argument("--to-revision", type=int, default=0)
    h = verbs.add_parser("history", parents=[plain], help="list the revisions")
    h.add_argument("resources", nargs="+", metavar="KIND/NAME")
    for verb, what in (("pause", "stop rolling out changes"), ("resume", "roll out again")):
        v = verbs.add_parser(verb, parents=[plain], help=f"{what} to a Deployment")
        v.add_argument("resources", nargs="+", metavar="KIND/NAME")


def _bool(v: str) -> bool:
    return v.lower() in ("true", "1", "yes")


class UsageError(Exception):
    pass


ROLLABLE = ("Deployment", "StatefulSet", "DaemonSet")


def targets(words: list[str]) -> list[tuple[Kind, str]]:
    if any("/" in w for w in words):
        pairs = [(w.partition("/")[0], w.partition("/")[2]) for w in words]
    elif len(words) >= 2:
        pairs = [(words[0], n) for n in words[1:]]
    else:
        raise UsageError("error: resource(s) were provided, but no name was specified")
    out = []
    for type_, name in pairs:
        kind = kinds.lookup(type_)
        if kind is None:
            raise UsageError(f'error: the server doesn\'t have a resource type "{type_}"')
        if kind.kind not in ROLLABLE:
            raise UsageError(f"error: no status viewer has been implemented for {kind.kind}")
        out.append((kind, name))
    return out


def rollout(args: argparse.Namespace, client: Client) -> int:
    try:
        pairs = targets(args.resources)
    except UsageError as e:
        sys.stderr.write(f"{e}\n")
        return 1
    verb = {
        "status": status,
        "restart": restart,
        "undo": undo,
        "history": history,
        "pause": pause,
        "resume": resume,
    }
    rc = 0
    for kind, name in pairs:
        rc |= verb[args.rollout_verb](args, client, kind, name)
    return rc


# --- status ------------------------------------------------------------------------


def status_message(d: Obj) -> tuple[str, bool]:
    """kubectl's DeploymentStatusViewer: (message, done). Raises RuntimeError when stuck."""
    name = d["metadata"]["name"]
    st = d.get("status") or {}
    if int(d["metadata"].get("generation") or 0) > int(st.get("observedGeneration") or 0):
        return "Waiting for deployment spec update to be observed...\n", False
    for c in st.get("conditions") or ():
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            raise RuntimeError(f'deployment "{name}" exceeded its progress deadline')
    want = int((d.get("spec") or {}).get("replicas", 1))
    updated = int(st.get("updatedReplicas") or 0)
    replicas = int(st.get("replicas") or 0)
    available = int(st.get("availableReplicas") or 0)
    wait = f'Waiting for deployment "{name}" rollout to finish: '
    if updated < want:
        return f"{wait}{updated} out of {want} new replicas have been updated...\n", False
    if replicas > updated:
        return f"{wait}{replicas - updated} old replicas are pending termination...\n", False
    if available < updated:
        return f"{wait}{available} of {updated} updated replicas are available...\n", False
    return f'deployment "{name}" successfully rolled out\n', True


def statefulset_status_message(sts: Obj) -> tuple[str, bool]:
    """kubectl's StatefulSetStatusViewer."""
    spec, st = sts.get("spec") or {}, sts.get("status") or {}
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        raise RuntimeError("rollout status is only available for RollingUpdate strategy type")
    observed = int(st.get("observedGeneration") or 0)
    if observed == 0 or int(sts["metadata"].get("generation") or 0) > observed:
        return "Waiting for statefulset spec update to be observed...\n", False
    want = int(spec.get("replicas", 1))
    ready = int(st.get("readyReplicas") or 0)
    if ready < want:
        return f"Waiting for {want - ready} pods to be ready...\n", False
    updated = int(st.get("updatedReplicas") or 0)
    ru = strategy.get("rollingUpdate")
    if ru is not None:
        if ru.get("partition") is not None and updated < want - int(ru["partition"]):
            return (
                "Waiting for partitioned roll out to finish: "
                f"{updated} out of {want - int(ru['partition'])} new pods have been updated...\n",
                False,
            )
        return f"partitioned roll out complete: {updated} new pods have been updated...\n", True
    if st.get("updateRevision") != st.get("currentRevision"):
        return (
            f"waiting for statefulset rolling update to complete {updated} pods at revision "
            f"{st.get('updateRevision')}...\n",
            False,
        )
    return (
        f"statefulset rolling update complete {int(st.get('currentReplicas') or 0)} pods at "
        f"revision {st.get('currentRevision')}...\n",
        True,
    )


def daemonset_status_message(ds: Obj) -> tuple[str, bool]:
    """kubectl's DaemonSetStatusViewer."""
    spec, st = ds.get("spec") or {}, ds.get("status") or {}
    if (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") != "RollingUpdate":
        raise RuntimeError("rollout status is only available for RollingUpdate strategy type")
    name = ds["metadata"]["name"]
    if int(ds["metadata"].get("generation") or 0) > int(st.get("observedGeneration") or 0):
        return "Waiting for daemon set spec update to be observed...\n", False
    desired = int(st.get("desiredNumberScheduled") or 0)
    updated = int(st.get("updatedNumberScheduled") or 0)
    available = int(st.get("numberAvailable") or 0)
    wait = f'Waiting for daemon set "{name}" rollout to finish: '
    if updated < desired:
        return f"{wait}{updated} out of {desired} new pods have been updated...\n", False
    if available < desired:
        return f"{wait}{available} of {desired} updated pods are available...\n", False
    return f'daemon set "{name}" successfully rolled out\n', True


VIEWERS = {
    "Deployment": status_message,
    "StatefulSet": statefulset_status_message,
    "DaemonSet": daemonset_status_message,
}


def status(args: argparse.Namespace, client: Client, kind: Kind, name: str) -> int:
    last = ""
    failure = ""

    def done(obj: Obj | None) -> bool:
        nonlocal last, failure
        if obj is None:
            failure = f'Error from server (NotFound): {kind.qualified_plural} "{name}" not found'
            return True
        try:
            msg, ok = VIEWERS[kind.kind](obj)
        except RuntimeError as e:
            failure = f"error: {e}"
            return True
        if msg != last:
            sys.stdout.write(msg)
            sys.stdout.flush()
            last = msg
        return ok or not args.watch

    client.get(kind.object_path(args.namespace, name))  # NotFound in kubectl's words
    try:
        client.wait_for(kind, args.namespace, name, done, timeout=args.timeout or None)
    except TimeoutError:
        sys.stderr.write("error: timed out waiting for the condition\n")
        return 1
    if failure:
        sys.stderr.write(failure + "\n")
        return 1
    return 0


# --- restart -----------------------------------------------------------------------


def restart(args: argparse.Namespace, client: Client, kind: Kind, name: str) -> int:
    path = kind.object_path(args.namespace, name)
    d = client.get(path)
    if (d.get("spec") or {}).get("paused"):
        sys.stderr.write(
            f'error: deployments.apps "{name}" can\'t restart paused deployment '
            "(run rollout resume first)\n"
        )
        return 1
    restart_deployment(client, kind, args.namespace, name)
    print(f"{kind_name(kind)}/{name} restarted")
    return 0


def restart_deployment(
    client: Client, kind: Kind, namespace: str, name: str, precise: bool = False
) -> None:
    """kubectl's restart: a new restartedAt in the pod template starts a rollout.
    `precise`: with microseconds, so two restarts within a second both roll."""
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if precise else "%Y-%m-%dT%H:%M:%SZ"
    now = dt.datetime.now(dt.UTC).strftime(fmt)
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
    client.call(
        "PATCH",
        kind.object_path(namespace, name),
        query={"fieldManager": "kubectl-rollout"},
        body=patch,
        content_type=STRATEGIC_MERGE_PATCH,
    )


# --- pause and resume --------------------------------------------------------------


def _set_paused(client: Client, kind: Kind, namespace: str, name: str, paused: bool) -> int:
    path = kind.object_path(namespace, name)
    d = client.get(path)
    if bool((d.get("spec") or {}).get("paused")) == paused:
        # kubectl's words when its patch would change nothing.
        state = "already paused" if paused else "not paused"
        sys.stderr.write(f'error: {kind.qualified_plural} "{name}" is {state}\n')
        return 1
    client.call(
        "PATCH",
        path,
        query={"fieldManager": "kubectl-rollout"},
        body={"spec": {"paused": paused}},
        content_type=STRATEGIC_MERGE_PATCH,
    )
    print(f"{kind_name(kind)}/{name} {'paused' if paused else 'resumed'}")
    return 0


def pause(args: argparse.Namespace, client: Client, kind: Kind, name: str) -> int:
    if kind.kind != "Deployment":
        sys.stderr.write(f'error: {kind.qualified_plural} "{name}" pausing is not supported\n')
        return 1
    return _set_paused(client, kind, args.namespace, name, True)


def resume(args: argparse.Namespace, client: Client, kind: Kind, name: str) -> int:
    if kind.kind != "Deployment":
        sys.stderr.write(f'error: {kind.qualified_plural} "{name}" resuming is not supported\n')
        return 1
    return _set_paused(client, kind, args.namespace, name, False)


# --- history and undo ----------------------------------------------------------------


def _revision(obj: Obj) -> int:
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def owned_replicasets(client: Client, d: Obj, namespace: str) -> list[Obj]:
    """The Deployment's ReplicaSets, as kubectl finds them: by selector, then by
    controller uid."""
    sel = (d["spec"].get("selector") or {}).get("matchLabels") or {}
    q = urllib.parse.urlencode({"labelSelector": ",".join(f"{k}={v}" for k, v in sel.items())})
    rs_kind = kinds.BY_KIND["ReplicaSet"]
    items = client.get(f"{rs_kind.collection_path(namespace)}?{q}").get("items") or []
    uid = d["metadata"]["uid"]
    return [rs for rs in items if controller_uid(rs) == uid]


def controlled_history(client: Client, owner: Obj, namespace: str) -> list[Obj]:
    """kubectl's controlledHistory: the ControllerRevisions the selector finds that
    the owner controls, by revision."""
    sel = (owner["spec"].get("selector") or {}).get("matchLabels") or {}
    q = urllib.parse.urlencode({"labelSelector": ",".join(f"{k}={v}" for k, v in sel.items())})
    cr_kind = kinds.BY_KIND["ControllerRevision"]
    items = client.get(f"{cr_kind.collection_path(namespace)}?{q}").get("items") or []
    uid = owner["metadata"]["uid"]
    owned = [cr for cr in items if controller_uid(cr) == uid]
    return sorted(owned, key=lambda cr: int(cr.get("revision") or 0))


def history(args: argparse.Namespace, client: Client, kind: Kind, name: str) -> int:
    d = client.get(kind.object_path(args.namespace, name))
    if kind.kind == "Deployment":
        rows = sorted(
            (
                _revision(rs),
                (rs["metadata"].get("annotations") or {}).get(CHANGE_CAUSE, "<none>"),
            )
            for rs in owned_replicasets(client, d, args.namespace)
        )
    else:
        by_number = {
            int(cr.get("revision") or 0): (cr["metadata"].get("annotations") or {}).get(
                CHANGE_CAUSE
            )
            or "<none>"
            for cr in controlled_history(client, d, args.namespace)
        }
        rows = sorted(by_number.items())
    print(f"{kind_name(kind)}/{name} ")
    width = max(len("REVISION"), *(len(str(r)) for r, _ in rows)) if rows else len("REVISION")
    print(f"{'REVISION':<{width}}  CHANGE-CAUSE")
    for rev, cause in rows:
        print(f"{rev:<{width}}  {cause}")
    print()
    return 0


def strip_template_hash(template: Obj) -> Obj:
    """A ReplicaSet's pod template as its Deployment wrote it (no pod-template-hash)."""
    t = copy.deepcopy(template)
    (t.get("metadata") or {}).get("labels", {}).pop(POD_TEMPLATE_HASH, None)
    return t


def undo_revision(args: argparse.Namespace, client: Client, kind: Kind, name: str) -> int:
    """StatefulSetRollbacker and DaemonSetRollbacker: the revision's data, which
    is the patch that restores its template."""
    path = kind.object_path(args.namespace, name)
    owner = client.get(path)
    history_ = controlled_history(client, owner, args.namespace)
    target: Obj | None = None
    if args.to_revision:
        target = next((cr for cr in history_ if cr.get("revision") == args.to_revision), None)
    elif len(history_) > 1:
        target = history_[-2]
    if target is None:
        sys.stderr.write(
            f"error: unable to find specified revision {args.to_revision} in history\n"
        )
        return 1
    template = copy.deepcopy(((target.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    if as_go(template) == as_go(owner["spec"]["template"]):
        print(
            f"{kind_name(kind)}/{name} skipped rollback (current template already matches "
            f"revision {target.get('revision')})"
        )
        return 0
    client.call("PATCH", path, body=target.get("data"), content_type=STRATEGIC_MERGE_PATCH)
    print(f"{kind_name(kind)}/{name} rolled back")
    return 0


def as_go(template: Obj) -> Obj:
    """A template with `creationTimestamp: null` as Go compares it: the same as none."""
    t = copy.deepcopy(template)
    md = t.get("metadata")
    if isinstance(md, dict) and "creationTimestamp" in md and md["creationTimestamp"] is None:
        del md["creationTimestamp"]
    return t


def undo(args: argparse.Namespace, client: Client, kind: Kind, name: str) -> int:
    if kind.kind != "Deployment":
        return undo_revision(args, client, kind, name)
    path = kind.object_path(args.namespace, name)
    d = client.get(path)
    if (d.get("spec") or {}).get("paused"):
        sys.stderr.write(
            f"error: you cannot rollback a paused deployment; resume it first with "
            f"'kubectl rollout resume deployment/{name}' and try again\n"
        )
        return 1
    rss = owned_replicasets(client, d, args.namespace)
    by_rev = {_revision(rs): rs for rs in rss}
    if args.to_revision:
        target = by_rev.get(args.to_revision)
        if target is None:
            sys.stderr.write(
                f"error: unable to find specified revision {args.to_revision} in history\n"
            )
            return 1
    else:
        revs = sorted(by_rev)
        if len(revs) < 2:
            sys.stderr.write(f'error: no rollout history found for deployment "{name}"\n')
            return 1
        target = by_rev[revs[-2]]
    template = strip_template_hash(target["spec"]["template"])
    if template == d["spec"]["template"]:
        print(
            f"{kind_name(kind)}/{name} skipped rollback (current template already matches "
            f"revision {_revision(target)})"
        )
        return 0
    live_ann = d["metadata"].get("annotations") or {}
    annotations = {k: live_ann[k] for k in REPLICASET_SKIPPED_ANNOTATIONS if k in live_ann}
    for k, v in (target["metadata"].get("annotations") or {}).items():
        if k not in REPLICASET_SKIPPED_ANNOTATIONS:
            annotations[k] = v
    patch = [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]
    try:
        client.call("PATCH", path, body=patch, content_type=JSON_PATCH)
    except ApiStatusError:
        raise
    print(f"{kind_name(kind)}/{name} rolled back")
    return 0
