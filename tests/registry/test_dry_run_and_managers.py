"""Dry-run writes answer what a real write would store, and managedFields record
managers as the API server's field manager does (request-carried entries, the
scale subresource, kubectl's move from client-side to server-side apply)."""

from __future__ import annotations

import copy
import json

import pytest

from svcnet.k8s.objects import Obj, with_last_applied
from svcnet.k8s.wellknown import LAST_APPLIED
from svcnet.registry import ApiError, Registry, ssa


def deployment(replicas: int = 1, image: str = "nginx") -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
    }


def owners(obj: Obj) -> dict[tuple[str, str, str], set[ssa.Path]]:
    return {
        (e["manager"], e["operation"], e.get("subresource", "")): ssa.decode(e["fieldsV1"])
        for e in obj["metadata"]["managedFields"]
    }


def strip_times(obj: Obj) -> Obj:
    obj = copy.deepcopy(obj)
    for e in obj["metadata"].get("managedFields") or ():
        e.pop("time", None)
    return obj


def test_dry_run_create_is_the_created_object_but_its_resource_version(reg: Registry) -> None:
    dry = reg.create(deployment(), dry_run=True, field_manager="kubectl-create")
    md = dry["metadata"]
    assert md["uid"] and md["creationTimestamp"] and md["generation"] == 1
    assert "resourceVersion" not in md
    assert reg.store.get("Deployment", "default", "web") is None
    real = reg.create(deployment(), field_manager="kubectl-create")
    for o in (dry, real):
        for f in ("uid", "creationTimestamp", "resourceVersion"):
            o["metadata"].pop(f, None)
    assert strip_times(dry) == strip_times(real)


def test_dry_run_create_of_a_service_allocates_as_the_real_one_would(reg: Registry) -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"generateName": "web-"},
        "spec": {"type": "NodePort", "ports": [{"port": 80}]},
    }
    dry = reg.create(svc, dry_run=True)
    assert dry["metadata"]["name"].startswith("web-") and len(dry["metadata"]["name"]) == 9
    assert dry["spec"]["clusterIP"].startswith("127.")
    assert 30000 <= dry["spec"]["ports"][0]["nodePort"] <= 32767
    assert reg.store.list("Service", "default") == []


def test_dry_run_update_keeps_the_live_resource_version_and_bumps_generation(
    reg: Registry,
) -> None:
    live = reg.create(deployment(), field_manager="a")
    rv = live["metadata"]["resourceVersion"]
    dry = reg.update(deployment(replicas=3), dry_run=True, field_manager="b")
    md = dry["metadata"]
    assert md["resourceVersion"] == rv
    assert md["generation"] == 2
    assert (md["uid"], md["creationTimestamp"]) == (
        live["metadata"]["uid"],
        live["metadata"]["creationTimestamp"],
    )
    assert reg.store.get("Deployment", "default", "web") == live
    real = reg.update(deployment(replicas=3), field_manager="b")
    real["metadata"]["resourceVersion"] = rv
    assert strip_times(dry) == strip_times(real)
    # A dry-run write that changes nothing answers the live object itself.
    assert reg.update(deployment(replicas=3), dry_run=True) == reg.get(
        reg.kind_of(real), "default", "web"
    )


def test_dry_run_apply_answers_what_apply_stores(reg: Registry) -> None:
    reg.apply(deployment(), field_manager="kubectl")
    dry, created = reg.apply(deployment(replicas=2), dry_run=True, field_manager="kubectl")
    assert not created
    live = reg.store.get("Deployment", "default", "web")
    assert live is not None and live["spec"]["replicas"] == 1
    assert dry["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
    assert dry["metadata"]["generation"] == 2
    real, _ = reg.apply(deployment(replicas=2), field_manager="kubectl")
    real["metadata"]["resourceVersion"] = dry["metadata"]["resourceVersion"]
    assert strip_times(dry) == strip_times(real)


def test_managed_fields_a_request_carries_replace_the_live_ones(reg: Registry) -> None:
    live = reg.create(deployment(), field_manager="kubectl-client-side-apply")
    sent = copy.deepcopy(live)
    entry = sent["metadata"]["managedFields"][0]
    sent["metadata"]["managedFields"] = [dict(entry, manager="kubectl", operation="Apply")]
    out = reg.update(sent, field_manager="kubectl")
    assert [(e["manager"], e["operation"]) for e in out["metadata"]["managedFields"]] == [
        ("kubectl", "Apply")
    ]
    # Unreadable entries are ignored; an empty list clears them.
    bad = copy.deepcopy(out)
    bad["metadata"]["managedFields"] = [{"manager": "x", "fieldsV1": {"f:spec": [1]}}]
    assert (
        reg.update(bad, field_manager="kubectl")["metadata"]["managedFields"]
        == (out["metadata"]["managedFields"])
    )
    cleared = copy.deepcopy(out)
    cleared["metadata"]["managedFields"] = []
    assert "managedFields" not in reg.update(cleared, field_manager="kubectl")["metadata"]


def test_scale_subresource_is_its_own_manager(reg: Registry) -> None:
    reg.create(deployment(), field_manager="kubectl-client-side-apply")
    live = reg.store.get("Deployment", "default", "web")
    assert live is not None
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 4
    out = reg.update(scaled, field_manager="kubectl", subresource="scale")
    entry = out["metadata"]["managedFields"][-1]
    assert {k: v for k, v in entry.items() if k != "time"} == {
        "manager": "kubectl",
        "operation": "Update",
        "subresource": "scale",
        "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:replicas": {}}},
    }
    assert ("f:spec", "f:replicas") not in owners(out)[("kubectl-client-side-apply", "Update", "")]
    with pytest.raises(ApiError) as e:
        reg.apply(deployment(replicas=2), field_manager="deployer")
    assert e.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" '
        "using apps/v1: .spec.replicas"
    )


def test_kubectl_takes_over_client_side_applied_fields_without_conflicts(
    reg: Registry,
) -> None:
    applied = with_last_applied(deployment(replicas=1))
    reg.create(applied, field_manager="kubectl-client-side-apply")
    # Another manager conflicts, naming the client-side applier.
    with pytest.raises(ApiError) as e:
        reg.apply(deployment(replicas=2, image="nginx:2"), field_manager="deployer")
    assert e.value.message == (
        "Apply failed with 2 conflicts: conflicts with "
        '"kubectl-client-side-apply" using apps/v1:\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="c"].image'
    )
    # kubectl itself does not: those fields still hold what it last applied.
    out, _ = reg.apply(deployment(replicas=2, image="nginx:2"), field_manager="kubectl")
    assert out["spec"]["replicas"] == 2
    who = owners(out)
    assert ("f:spec", "f:replicas") in who[("kubectl", "Apply", "")]
    assert ("f:spec", "f:replicas") not in who[("kubectl-client-side-apply", "Update", "")]
    # ... and keeps the annotation in step (Go's encoding: sorted, compact, a newline).
    text = out["metadata"]["annotations"][LAST_APPLIED]
    assert text.endswith("}\n") and json.loads(text) == deployment(replicas=2, image="nginx:2")
    # A field changed since the last client-side apply is a conflict again.
    live = reg.store.get("Deployment", "default", "web")
    assert live is not None
    edited = copy.deepcopy(live)
    edited["metadata"]["labels"]["tier"] = "front"
    reg.update(edited, field_manager="kubectl-edit")
    with pytest.raises(ApiError) as e:
        reg.apply(
            {**deployment(), "metadata": {"name": "web", "labels": {"tier": "back"}}},
            field_manager="kubectl",
        )
    assert e.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: '
        ".metadata.labels.tier"
    )


def test_conflicts_with_an_apply_manager_name_it_alone(reg: Registry) -> None:
    reg.apply(deployment(replicas=1), field_manager="team-a")
    with pytest.raises(ApiError) as e:
        reg.apply(deployment(replicas=2), field_manager="team-b")
    assert e.value.message == 'Apply failed with 1 conflict: conflict with "team-a": .spec.replicas'
