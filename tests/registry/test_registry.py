"""The admission layer: defaulting, kubectl's validation messages, allocation."""

from __future__ import annotations

import pytest

from svcnet.k8s.kinds import BY_KIND
from svcnet.k8s.objects import Obj
from svcnet.registry import ApiError, Registry


def svc(spec: Obj, name: str = "echo") -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def error(reg: Registry, obj: Obj) -> ApiError:
    with pytest.raises(ApiError) as e:
        reg.create(obj)
    return e.value


def test_service_defaults(reg: Registry) -> None:
    o = reg.create(svc({"selector": {"app": "echo"}, "ports": [{"name": "http", "port": 80}]}))
    spec = o["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["ports"][0] == {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}
    assert spec["sessionAffinity"] == "None"
    ip = spec["clusterIP"]
    assert ip.startswith("127.") and spec["clusterIPs"] == [ip]
    assert o["metadata"]["namespace"] == "default"


def test_affinity_timeout_default(reg: Registry) -> None:
    o = reg.create(svc({"sessionAffinity": "ClientIP", "ports": [{"port": 80}]}))
    assert o["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] == 10800


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"ports": [{"port": 70000}]},
            'Service "echo" is invalid: [spec.ports[0].port: Invalid value: 70000: must be between '
            "1 and 65535, inclusive, spec.ports[0].targetPort: Invalid value: 70000: must be "
            "between 1 and 65535, inclusive]",
        ),
        (
            {"ports": [{"port": 80, "targetPort": 0}], "type": "Foo"},
            'Service "echo" is invalid: spec.type: Unsupported value: "Foo": supported values: '
            '"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
        ),
        (
            {"ports": [{"name": "http", "port": 80}, {"port": 81}]},
            'Service "echo" is invalid: spec.ports[1].name: Required value',
        ),
        (
            {"ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]},
            'Service "echo" is invalid: spec.ports[1].name: Duplicate value: "http"',
        ),
        (
            {"ports": [{"port": 80, "nodePort": 30080}]},
            'Service "echo" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when '
            "`type` is 'ClusterIP'",
        ),
        (
            {"type": "NodePort", "ports": [{"port": 80, "nodePort": 29999}]},
            'Service "echo" is invalid: spec.ports[0].nodePort: Invalid value: 29999: provided '
            "port is not in the valid range. The range of valid ports is 30000-32767",
        ),
        ({}, 'Service "echo" is invalid: spec.ports: Required value'),
        (
            {"ports": [{"port": 80, "protocol": "HTTP"}]},
            'Service "echo" is invalid: spec.ports[0].protocol: Unsupported value: "HTTP": '
            'supported values: "SCTP", "TCP", "UDP"',
        ),
        ({"type": "ExternalName"}, 'Service "echo" is invalid: spec.externalName: Required value'),
        (
            {"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]},
            'Service "echo" is invalid: spec.clusterIPs[0]: Invalid value: "None": may not be '
            "set to 'None' for NodePort services",
        ),
        (
            {"clusterIP": "10.96.0.5", "ports": [{"port": 80}]},
            'Service "echo" is invalid: spec.clusterIPs: Invalid value: []string{"10.96.0.5"}: '
            "failed to allocate IP 10.96.0.5: provided IP is not in the valid range. The range of "
            "valid IPs is 127.96.0.0/12",
        ),
        (
            {"ports": [{"port": 80, "targetPort": "way-too-long-port-name"}]},
            'Service "echo" is invalid: spec.ports[0].targetPort: Invalid value: '
            '"way-too-long-port-name": must be no more than 15 characters',
        ),
        (
            {
                "sessionAffinity": "None",
                "sessionAffinityConfig": {"clientIP": {}},
                "ports": [{"port": 80}],
            },
            'Service "echo" is invalid: spec.sessionAffinityConfig: Forbidden: must not be set '
            "when session affinity is None",
        ),
    ],
)
def test_service_validation_messages(reg: Registry, spec: Obj, message: str) -> None:
    e = error(reg, svc(spec))
    assert e.code == 422 and e.reason == "Invalid"
    assert e.message == message


def test_bad_service_name(reg: Registry) -> None:
    e = error(reg, svc({"ports": [{"port": 80}]}, name="My_Svc"))
    assert e.message.startswith(
        'Service "My_Svc" is invalid: metadata.name: Invalid value: "My_Svc": a DNS-1035 label'
    )


def test_nodeport_collision_and_release(reg: Registry) -> None:
    reg.create(svc({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}, "a"))
    e = error(reg, svc({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}, "b"))
    assert "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated" in (
        e.message
    )
    reg.delete(BY_KIND["Service"], "default", "a")
    reg.create(svc({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}, "b"))


def test_clusterip_collision_and_immutability(reg: Registry) -> None:
    a = reg.create(svc({"ports": [{"port": 80}]}, "a"))
    ip = a["spec"]["clusterIP"]
    e = error(reg, svc({"clusterIP": ip, "ports": [{"port": 80}]}, "b"))
    assert f"failed to allocate IP {ip}: provided IP is already allocated" in e.message
    with pytest.raises(ApiError) as changed:
        reg.update(svc({"clusterIP": "127.96.0.99", "ports": [{"port": 80}]}, "a"))
    assert "may not change once set" in changed.value.message


def test_apply_keeps_allocations_and_type_changes(reg: Registry) -> None:
    o, created = reg.apply(svc({"type": "NodePort", "ports": [{"name": "http", "port": 80}]}))
    assert created
    ip, np = o["spec"]["clusterIP"], o["spec"]["ports"][0]["nodePort"]
    assert 30086 <= np <= 32767  # dynamic band above the static 30000-30085
    again, created = reg.apply(svc({"type": "NodePort", "ports": [{"name": "http", "port": 80}]}))
    assert not created and again is o  # nothing changed: no new resourceVersion
    c, _ = reg.apply(svc({"type": "ClusterIP", "ports": [{"name": "http", "port": 80}]}))
    assert c["spec"]["clusterIP"] == ip and "nodePort" not in c["spec"]["ports"][0]
    x, _ = reg.apply(svc({"type": "ExternalName", "externalName": "gihyo.jp"}))
    assert "clusterIP" not in x["spec"]
    back, _ = reg.apply(svc({"type": "ClusterIP", "ports": [{"port": 80}]}))
    assert back["spec"]["clusterIP"].startswith("127.")


def test_unknown_field_is_refused_with_its_path(reg: Registry) -> None:
    e = error(reg, svc({"ports": [{"port": 80, "targetPrt": 8080}]}))
    assert e.code == 400
    assert e.message == (
        'Service in version "v1" cannot be handled as a Service: strict decoding error: '
        'unknown field "spec.ports[0].targetPrt"'
    )
    assert e.causes[0].field == "spec.ports[0].targetPrt"


def test_wrong_type_is_refused(reg: Registry) -> None:
    e = error(
        reg,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": [{"name": "echo"}],
            "spec": {"ports": [{"port": 80}]},
        },
    )
    assert e.code == 400
    assert e.message.endswith(
        "json: cannot unmarshal array into Go struct field Service.metadata of type v1.ObjectMeta"
    )


def test_missing_namespace_refused(reg: Registry) -> None:
    obj = svc({"ports": [{"port": 80}]})
    obj["metadata"]["namespace"] = "nope"
    e = error(reg, obj)
    assert (e.code, e.message) == (404, 'namespaces "nope" not found')


def test_already_exists_and_not_found(reg: Registry) -> None:
    reg.create(svc({"ports": [{"port": 80}]}))
    assert error(reg, svc({"ports": [{"port": 80}]})).message == 'services "echo" already exists'
    with pytest.raises(ApiError) as e:
        reg.get(BY_KIND["ReplicaSet"], "default", "x")
    assert e.value.message == 'replicasets.apps "x" not found'


def test_replicaset_selector_must_match_template(reg: Registry) -> None:
    e = error(
        reg,
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "rs"},
            "spec": {
                "selector": {"matchLabels": {"app": "a"}},
                "template": {
                    "metadata": {"labels": {"app": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}]},
                },
            },
        },
    )
    assert e.message == (
        'ReplicaSet "rs" is invalid: spec.template.metadata.labels: Invalid value: '
        'map[string]string{"app":"b"}: `selector` does not match template `labels`'
    )


def test_pod_defaults_and_delete_of_unscheduled_pod(reg: Registry) -> None:
    p = reg.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "gihyodocker/echo:latest"}]},
        }
    )
    assert p["spec"]["restartPolicy"] == "Always"
    assert p["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert p["status"]["phase"] == "Pending"
    reg.delete(BY_KIND["Pod"], "default", "p")
    assert reg.store.get("Pod", "default", "p") is None


def test_running_pod_delete_is_graceful(reg: Registry) -> None:
    reg.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"nodeName": "svcnet", "containers": [{"name": "c", "image": "i"}]},
        }
    )
    d = reg.delete(BY_KIND["Pod"], "default", "p")
    assert d["metadata"]["deletionGracePeriodSeconds"] == 30
    assert d["metadata"]["deletionTimestamp"]
    assert reg.store.get("Pod", "default", "p") is not None


def test_default_namespace_cannot_be_deleted(reg: Registry) -> None:
    with pytest.raises(ApiError) as e:
        reg.delete(BY_KIND["Namespace"], "", "default")
    assert e.value.code == 403


def test_list_selectors(reg: Registry) -> None:
    for n, rel in (("a", "spring"), ("b", "summer")):
        o = svc({"ports": [{"port": 80}]}, n)
        o["metadata"]["labels"] = {"app": "echo", "release": rel}
        reg.create(o)
    k = BY_KIND["Service"]
    assert [o["metadata"]["name"] for o in reg.list(k, "default", "release=summer")] == ["b"]
    assert [o["metadata"]["name"] for o in reg.list(k, None, None, "metadata.name=a")] == ["a"]
    assert [o["metadata"]["name"] for o in reg.list(k, "default", None, "metadata.name!=a")] == [
        "b"
    ]


def test_dry_run_writes_nothing(reg: Registry) -> None:
    reg.create(svc({"ports": [{"port": 80}]}), dry_run=True)
    assert reg.store.get("Service", "default", "echo") is None


def test_objects_without_status_never_gain_one(reg: Registry) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    reg.create(cm)
    reg.modify("ConfigMap", "default", "c", lambda o: o["data"].update(a="2"))
    stored = reg.store.get("ConfigMap", "default", "c")
    assert stored is not None and "status" not in stored and stored["data"] == {"a": "2"}


def test_update_status_changes_status_only(reg: Registry) -> None:
    svc = reg.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
        }
    )

    def ingress(o: Obj) -> None:
        o["status"] = {"loadBalancer": {"ingress": [{"ip": "127.240.0.1"}]}}

    out = reg.update_status("Service", "default", "web", ingress)
    assert out["status"]["loadBalancer"]["ingress"] == [{"ip": "127.240.0.1"}]
    assert int(out["metadata"]["resourceVersion"]) > int(svc["metadata"]["resourceVersion"])
    assert out["spec"] == svc["spec"]

    def sneaky(o: Obj) -> None:
        o["spec"]["type"] = "ClusterIP"

    def relabel(o: Obj) -> None:
        o["metadata"].setdefault("labels", {})["a"] = "b"

    def respec(o: Obj) -> None:
        o["spec"] = {**o["spec"], "type": "NodePort"}

    def rename(o: Obj) -> None:
        o["metadata"] = {**o["metadata"], "labels": {"a": "b"}}

    for fn in (sneaky, relabel, respec, rename):
        with pytest.raises(ApiError) as e:
            reg.update_status("Service", "default", "web", fn)
        assert e.value.code == 500, fn.__name__
        live = reg.store.get("Service", "default", "web")
        assert live == out, fn.__name__  # nothing of it stayed, not even in place

    def more(o: Obj) -> None:
        o["status"]["loadBalancer"]["ingress"].append({"ip": "127.240.0.2"})

    latest = reg.update_status("Service", "default", "web", more)
    assert len(latest["status"]["loadBalancer"]["ingress"]) == 2
    assert out["status"]["loadBalancer"]["ingress"] == [{"ip": "127.240.0.1"}]  # as it was
    assert latest["spec"] is out["spec"]  # shared, as nobody changes a stored object
    with pytest.raises(ApiError) as e:
        reg.update_status("Service", "default", "nope", ingress)
    assert e.value.code == 404


def test_modify_is_admitted_like_an_update(reg: Registry) -> None:
    reg.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"ports": [{"port": 80}]},
        }
    )

    def move(o: Obj) -> None:
        o["spec"]["clusterIP"] = "127.96.200.200"

    with pytest.raises(ApiError) as e:
        reg.modify("Service", "default", "web", move)
    assert e.value.code == 422 and "may not change once set" in str(e.value.causes[0].message)


def test_bind_sets_the_node_once(reg: Registry) -> None:
    reg.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        }
    )
    assert reg.bind("default", "p", "svcnet")["spec"]["nodeName"] == "svcnet"
    assert reg.bind("default", "p", "svcnet")["spec"]["nodeName"] == "svcnet"
    with pytest.raises(ApiError) as e:
        reg.bind("default", "p", "elsewhere")
    assert e.value.code == 409 and "already assigned" in e.value.message


@pytest.mark.parametrize(
    ("labels", "cause"),
    [
        (
            {"app": "x" * 64},
            f'metadata.labels: Invalid value: "{"x" * 64}": must be no more than 63 characters',
        ),
        (
            {"app": "-bad-"},
            'metadata.labels: Invalid value: "-bad-": a valid label must be an empty string or '
            "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
            "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
        (
            {"Example.com/a": "b"},
            'metadata.labels: Invalid value: "Example.com/a": prefix part a lowercase RFC 1123 '
            "subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        (
            {"a/b/c": "d"},
            'metadata.labels: Invalid value: "a/b/c": a qualified name must consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
            "subdomain prefix and '/' (e.g. 'example.com/MyName')",
        ),
    ],
)
def test_labels_are_validated_on_every_kind(reg: Registry, labels: Obj, cause: str) -> None:
    with pytest.raises(ApiError) as e:
        reg.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c", "labels": labels},
            }
        )
    assert e.value.code == 422
    assert [c.render() for c in e.value.causes] == [cause]


def test_annotations_fit_in_256_kib(reg: Registry) -> None:
    big = {"a": "x" * (256 * 1024)}
    with pytest.raises(ApiError) as e:
        reg.create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "annotations": big}}
        )
    assert [c.render() for c in e.value.causes] == [
        "metadata.annotations: Too long: may not be more than 262144 bytes"
    ]
    ok = {"a": "x" * (256 * 1024 - 1)}
    reg.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "annotations": ok}}
    )
