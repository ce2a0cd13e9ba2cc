"""The real `svcnet` executable against a fake API server that answers only
what each test registers: what the CLI sends, prints, and exits with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from svcnet.k8s.objects import Obj
from tests.cli.conftest import FakeApi, cli, status

SERVICES = "/api/v1/namespaces/default/services"
PODS = "/api/v1/namespaces/default/pods"
REPLICASETS = "/apis/apps/v1/namespaces/default/replicasets"

POD_COLUMNS = [
    {"name": n, "type": "string", "format": "name" if n == "Name" else "", "priority": p}
    for n, p in (("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0), ("IP", 1))
]


def pod_table(*names: str, namespace: str = "default") -> Obj:
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": "10"},
        "columnDefinitions": POD_COLUMNS,
        "rows": [
            {
                "cells": [n, "2/2", "Running", "0", "55s", "127.244.0.5"],
                "object": {"metadata": {"name": n, "namespace": namespace}},
            }
            for n in names
        ],
    }


def service(name: str, rv: str = "5", uid: str = "u-1") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "resourceVersion": rv, "uid": uid},
        "spec": {"ports": [{"port": 80}]},
    }


async def test_get_prints_the_table_and_sends_only_the_last_selector(fake_api: FakeApi) -> None:
    fake_api.reply("GET", PODS, 200, pod_table("echo-spring-5dprx"))
    r = await cli("get", "pod", "-l", "app=echo", "-l", "release=spring", server=fake_api.url)
    assert (r.rc, r.err) == (0, "")
    assert r.out == (
        "NAME                READY   STATUS    RESTARTS   AGE\n"
        "echo-spring-5dprx   2/2     Running   0          55s\n"
    )
    (req,) = fake_api.sent("GET", PODS)
    assert req.query["labelSelector"] == "release=spring"
    assert req.headers["Accept"].startswith("application/json;as=Table;v=v1;g=meta.k8s.io")


async def test_get_all_namespaces_and_several_types(fake_api: FakeApi) -> None:
    fake_api.reply("GET", "/api/v1/pods", 200, pod_table("a", namespace="kube-system"))
    fake_api.reply("GET", "/api/v1/services", 200, {"kind": "Table", "rows": []})
    r = await cli("get", "pods,svc", "-A", server=fake_api.url)
    assert r.rc == 0, r.err
    assert r.out == (
        "NAMESPACE     NAME    READY   STATUS    RESTARTS   AGE\n"
        "kube-system   pod/a   2/2     Running   0          55s\n"
    )


async def test_get_nothing_found_and_not_found(fake_api: FakeApi) -> None:
    fake_api.reply("GET", PODS, 200, pod_table())
    r = await cli("get", "pods", server=fake_api.url)
    assert (r.rc, r.out, r.err) == (0, "", "No resources found in default namespace.\n")
    fake_api.reply(
        "GET", SERVICES + "/nope", 404, status(404, "NotFound", 'services "nope" not found')
    )
    r = await cli("get", "svc", "nope", server=fake_api.url)
    assert (r.rc, r.out) == (1, "")
    assert r.err == 'Error from server (NotFound): services "nope" not found\n'
    r = await cli("get", "foo", server=fake_api.url)
    assert (r.rc, r.err) == (1, 'error: the server doesn\'t have a resource type "foo"\n')


async def test_get_output_name_and_json(fake_api: FakeApi) -> None:
    items = [{"metadata": {"name": "echo-spring"}}]
    fake_api.reply("GET", REPLICASETS, 200, {"kind": "ReplicaSetList", "items": items})
    fake_api.reply("GET", SERVICES + "/echo", 200, service("echo"))
    r = await cli("get", "rs", "-o", "name", server=fake_api.url)
    assert (r.rc, r.out) == (0, "replicaset.apps/echo-spring\n")
    r = await cli("get", "svc", "echo", "-o", "json", server=fake_api.url)
    assert r.rc == 0 and json.loads(r.out) == service("echo")
    r = await cli("get", "rs", "-o", "json", server=fake_api.url)
    listed = json.loads(r.out)
    assert listed["kind"] == "List"
    assert listed["items"][0]["kind"] == "ReplicaSet"
    assert listed["items"][0]["apiVersion"] == "apps/v1"


async def test_apply_dry_runs_everything_then_reports_each_object(
    fake_api: FakeApi, tmp_path: Path
) -> None:
    (tmp_path / "m.yaml").write_text(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: echo-spring\n"
        "spec:\n  replicas: 1\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: echo\nspec:\n  ports:\n  - port: 80\n"
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: moved\nspec:\n  ports:\n"
        "  - port: 81\n"
    )
    fake_api.reply("GET", SERVICES + "/echo", 200, service("echo", rv="5"))
    fake_api.reply("GET", SERVICES + "/moved", 200, service("moved", rv="6"))

    def patched(code: int, obj: Obj, real_rv: str) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            if request.query.get("dryRun") == "All":
                return web.json_response(obj, status=200)
            body = {**obj, "metadata": {**obj["metadata"], "resourceVersion": real_rv}}
            return web.json_response(body, status=code)

        return handler

    fake_api.on("PATCH", REPLICASETS + "/echo-spring", patched(201, {"metadata": {}}, "7"))
    fake_api.on("PATCH", SERVICES + "/echo", patched(200, service("echo"), "5"))
    moved = service("moved")
    moved["spec"] = {"ports": [{"port": 81}]}
    fake_api.on("PATCH", SERVICES + "/moved", patched(200, moved, "8"))
    r = await cli("apply", "-f", str(tmp_path / "m.yaml"), server=fake_api.url)
    assert (r.rc, r.err) == (0, "")
    assert r.out == (
        "replicaset.apps/echo-spring created\nservice/echo unchanged\nservice/moved configured\n"
    )
    patches = fake_api.sent("PATCH")
    assert [p.query.get("dryRun") for p in patches] == ["All"] * 3 + [None] * 3
    for p in patches:
        assert p.headers["Content-Type"] == "application/apply-patch+yaml"
        assert p.query["fieldManager"] and p.query["fieldValidation"] == "Strict"
        assert p.query["force"] == "true"  # the file wins, as with kubectl apply
    # kubectl's annotation, exactly as `kubectl apply` would have written it.
    assert patches[4].body["metadata"] == {
        "name": "echo",
        "namespace": "default",
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": '{"apiVersion":"v1",'
            '"kind":"Service","metadata":{"annotations":{},"name":"echo","namespace":"default"},'
            '"spec":{"ports":[{"port":80}]}}\n'
        },
    }


async def test_apply_error_applies_nothing_and_names_file_line_and_field(
    fake_api: FakeApi, tmp_path: Path
) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: good\nspec:\n  ports:\n  - port: 80\n"
    )
    (tmp_path / "b.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: echo\nspec:\n  ports:\n"
        "  - name: http\n    port: 70000\n  - port: 81\n"
    )
    fake_api.reply("PATCH", SERVICES + "/good", 200, service("good"))
    causes = [
        {
            "reason": "FieldValueInvalid",
            "field": "spec.ports[0].port",
            "message": "Invalid value: 70000: must be between 1 and 65535, inclusive",
        },
        {
            "reason": "FieldValueRequired",
            "field": "spec.ports[1].name",
            "message": "Required value",
        },
    ]
    invalid = status(422, "Invalid", "...", name="echo", kind="Service", causes=causes)
    fake_api.reply("PATCH", SERVICES + "/echo", 422, invalid)
    r = await cli("apply", "-f", str(tmp_path), server=fake_api.url, cwd=tmp_path)
    assert (r.rc, r.out) == (1, "")
    assert r.err == (
        'The Service "echo" is invalid: \n'
        "* spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"
        " (b.yaml:8:5)\n"
        "* spec.ports[1].name: Required value (b.yaml:9:5)\n"
    )
    assert all(p.query.get("dryRun") == "All" for p in fake_api.sent("PATCH"))

    fake_api.reply(
        "PATCH",
        SERVICES + "/echo",
        400,
        status(400, "BadRequest", 'strict decoding error: unknown field "spec.x"'),
    )
    r = await cli("apply", "-f", "b.yaml", server=fake_api.url, cwd=tmp_path)
    assert r.rc == 1
    assert r.err == (
        'Error from server (BadRequest): error when creating "b.yaml": '
        'strict decoding error: unknown field "spec.x"\n'
    )


async def test_apply_broken_yaml_sends_nothing(fake_api: FakeApi, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: [x\n")
    r = await cli("apply", "-f", "bad.yaml", server=fake_api.url, cwd=tmp_path)
    assert r.rc == 1 and r.out == ""
    assert r.err.startswith("error: ") and "bad.yaml" in r.err and "line " in r.err
    assert fake_api.requests == []


async def test_delete_prints_then_waits_for_the_deleted_event(fake_api: FakeApi) -> None:
    fake_api.reply("DELETE", SERVICES + "/echo", 200, service("echo", uid="u-9"))
    fake_api.reply("GET", SERVICES + "/echo", 200, service("echo", rv="11", uid="u-9"))

    async def watch(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        event = {"type": "DELETED", "object": service("echo", rv="12", uid="u-9")}
        await resp.write(json.dumps(event).encode() + b"\n")
        await resp.write_eof()
        return resp

    fake_api.on("GET", SERVICES, watch)
    r = await cli("delete", "svc", "echo", server=fake_api.url)
    assert (r.rc, r.out, r.err) == (0, 'service "echo" deleted\n', "")
    (deleted,) = fake_api.sent("DELETE")
    assert deleted.body == {"propagationPolicy": "Background"}
    (w,) = fake_api.sent("GET", SERVICES)
    assert w.query["watch"] == "true"
    assert w.query["fieldSelector"] == "metadata.name=echo"
    assert w.query["resourceVersion"] == "11"

    fake_api.reply(
        "DELETE", SERVICES + "/nope", 404, status(404, "NotFound", 'services "nope" not found')
    )
    r = await cli("delete", "svc", "nope", server=fake_api.url)
    assert (r.rc, r.err) == (1, 'Error from server (NotFound): services "nope" not found\n')


async def test_logs_defaults_the_container_and_streams(fake_api: FakeApi) -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "nginx"}, {"name": "echo"}]},
    }
    fake_api.reply("GET", PODS + "/p", 200, pod)

    async def log(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        for line in (b"2020/11/08 14:35:35 start server\n", b"received request\n"):
            await resp.write(line)
        await resp.write_eof()
        return resp

    fake_api.on("GET", PODS + "/p/log", log)
    r = await cli("logs", "p", "-f", "--tail", "2", server=fake_api.url)
    assert r.rc == 0
    assert r.err == 'Defaulted container "nginx" out of: nginx, echo\n'
    assert r.out == "2020/11/08 14:35:35 start server\nreceived request\n"
    (req,) = fake_api.sent("GET", PODS + "/p/log")
    assert req.query == {"container": "nginx", "follow": "true", "tailLines": "2"}

    r = await cli("logs", "p", "-c", "echo", server=fake_api.url)
    assert r.err == ""
    assert fake_api.sent("GET", PODS + "/p/log")[-1].query == {"container": "echo"}

    fake_api.reply("GET", PODS + "/nope", 404, status(404, "NotFound", 'pods "nope" not found'))
    r = await cli("logs", "nope", server=fake_api.url)
    assert (r.rc, r.err) == (
        1,
        'error: error from server (NotFound): pods "nope" not found in namespace "default"\n',
    )


async def test_run_without_attach_posts_kubectls_body(fake_api: FakeApi) -> None:
    fake_api.reply("POST", PODS, 201, {"metadata": {"name": "tmp"}})
    r = await cli(
        "run",
        "tmp",
        "--image=busybox",
        "--restart=Never",
        "--env",
        "A=1",
        "--",
        "sh",
        "-c",
        "x",
        server=fake_api.url,
    )
    assert (r.rc, r.out, r.err) == (0, "pod/tmp created\n", "")
    (post,) = fake_api.sent("POST", PODS)
    assert post.query == {"fieldManager": "kubectl-run"}
    assert post.body["metadata"]["labels"] == {"run": "tmp"}
    assert post.body["spec"]["restartPolicy"] == "Never"
    assert post.body["spec"]["containers"] == [
        {
            "name": "tmp",
            "image": "busybox",
            "resources": {},
            "args": ["sh", "-c", "x"],
            "env": [{"name": "A", "value": "1"}],
        }
    ]


def attachable(fake_api: FakeApi, exit_code: int) -> list[bytes]:
    """A pod that runs until its attach session ends, then exits with exit_code."""
    received: list[bytes] = []
    pod: Obj = {
        "metadata": {"name": "debug", "namespace": "default", "resourceVersion": "3"},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    fake_api.reply("POST", PODS, 201, pod)

    async def get(request: web.Request) -> web.StreamResponse:
        return web.json_response(pod)

    async def attach(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=("v5.channel.k8s.io",))
        await ws.prepare(request)
        await ws.send_bytes(b"\x01Hello Docker!!")
        await ws.send_bytes(b"\x02warn\n")
        async for msg in ws:
            assert msg.type == WSMsgType.BINARY
            received.append(msg.data)
            if msg.data == b"\xff\x00":
                break
        pod["status"] = {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "containerStatuses": [
                {"state": {"terminated": {"exitCode": exit_code, "reason": "Error"}}}
            ],
        }
        await ws.send_bytes(b'\x03{"metadata":{},"status":"Success"}')
        await ws.close()
        return ws

    async def delete(request: web.Request) -> web.StreamResponse:
        return web.json_response(pod)

    fake_api.on("GET", PODS + "/debug", get)
    fake_api.on("GET", PODS + "/debug/attach", attach)
    fake_api.on("DELETE", PODS + "/debug", delete)
    return received


async def test_run_interactive_attaches_pumps_stdin_and_removes(fake_api: FakeApi) -> None:
    received = attachable(fake_api, exit_code=0)
    r = await cli(
        "run",
        "-i",
        "--rm",
        "-t",
        "debug",
        "--image=gihyodocker/fundamental:0.1.0",
        "--restart=Never",
        "--",
        "bash",
        "-il",
        server=fake_api.url,
        stdin=b"curl http://echo/\n",
    )
    assert r.rc == 0, r.err
    assert r.out == 'Hello Docker!!pod "debug" deleted\n'
    # stdin is a pipe, so -t falls back to no TTY (and stderr is attached).
    assert r.err == (
        "Unable to use a TTY - input is not a terminal or the right kind of file\nwarn\n"
    )
    assert b"".join(m[1:] for m in received if m[0] == 0) == b"curl http://echo/\n"
    assert received[-1] == b"\xff\x00"
    (ws,) = fake_api.sent("GET", PODS + "/debug/attach")
    assert ws.query == {"container": "debug", "stdin": "true", "stdout": "true", "stderr": "true"}
    (post,) = fake_api.sent("POST", PODS)
    container = post.body["spec"]["containers"][0]
    assert container["args"] == ["bash", "-il"]
    assert (container["stdin"], container["stdinOnce"], container["tty"]) == (True, True, True)


async def test_run_interactive_exits_with_the_containers_code(fake_api: FakeApi) -> None:
    attachable(fake_api, exit_code=3)
    r = await cli(
        "run",
        "-i",
        "debug",
        "--image=x",
        "--restart=Never",
        "--",
        "false",
        server=fake_api.url,
    )
    assert r.rc == 3
    assert r.out == "Hello Docker!!"
    assert r.err == "warn\npod default/debug terminated (Error)\n"
    assert fake_api.sent("DELETE") == []


async def test_scale_patches_the_scale_subresource(fake_api: FakeApi) -> None:
    fake_api.reply("GET", REPLICASETS + "/echo", 200, {"metadata": {"name": "echo"}})
    fake_api.reply("PATCH", REPLICASETS + "/echo/scale", 200, {"kind": "Scale"})
    r = await cli("scale", "rs/echo", "--replicas=3", server=fake_api.url)
    assert (r.rc, r.out) == (0, "replicaset.apps/echo scaled\n")
    (p,) = fake_api.sent("PATCH")
    assert p.body == {"spec": {"replicas": 3}}
    assert p.headers["Content-Type"] == "application/merge-patch+json"


async def test_unreachable_server_says_so(fake_api: FakeApi) -> None:
    r = await cli("get", "pods", server="http://127.15.0.1:1")
    assert r.rc == 1
    assert r.err == (
        "The connection to the server 127.15.0.1:1 was refused - "
        "did you specify the right host or port?\n"
    )
