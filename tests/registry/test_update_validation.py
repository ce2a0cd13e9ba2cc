"""What an update may not change (ValidateStatefulSetUpdate, ValidateJobSpecUpdate,
ValidatePersistentVolumeClaimUpdate), with the API server's messages."""

from __future__ import annotations

import copy

import pytest

from svcnet.k8s.objects import Obj
from svcnet.registry import ApiError, Registry

TEMPLATE: Obj = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
}


def refused(reg: Registry, obj: Obj) -> str:
    with pytest.raises(ApiError) as e:
        reg.update(obj)
    assert e.value.code == 422
    return e.value.message


def test_statefulset_spec_fields_other_than_the_mutable_ones_are_forbidden(reg: Registry) -> None:
    sts = reg.create(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "web"}},
                "template": TEMPLATE,
            },
        }
    )
    ok = copy.deepcopy(sts)
    ok["spec"]["replicas"] = 3
    ok["spec"]["updateStrategy"] = {"type": "OnDelete"}
    ok["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx"
    ok = reg.update(ok)
    bad = copy.deepcopy(ok)
    bad["spec"]["serviceName"] = "other"
    assert refused(reg, bad) == (
        'StatefulSet "web" is invalid: spec: Forbidden: updates to statefulset spec for fields '
        "other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    )


def test_job_selector_and_template_are_immutable(reg: Registry) -> None:
    job = reg.create(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j", "namespace": "default"},
            "spec": {"template": {"spec": {**TEMPLATE["spec"], "restartPolicy": "Never"}}},
        }
    )
    bad = copy.deepcopy(job)
    bad["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx"
    assert refused(reg, bad) == (
        'Job "j" is invalid: spec.template: Invalid value: core.PodTemplateSpec{...}: '
        "field is immutable"
    )
    bad = copy.deepcopy(job)
    # Still matching the template's labels: only the change is wrong.
    bad["spec"]["selector"] = {"matchLabels": {"job-name": "j"}}
    assert refused(reg, bad) == (
        'Job "j" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:'
        'map[string]string{"job-name":"j"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: '
        "field is immutable"
    )
    fine = copy.deepcopy(job)
    fine["spec"]["parallelism"] = 2
    assert reg.update(fine)["spec"]["parallelism"] == 2


def test_claim_spec_is_immutable_but_a_bound_claim_may_grow(reg: Registry) -> None:
    pvc = reg.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "default"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )
    # The binder sets volumeName once.
    bound = copy.deepcopy(pvc)
    bound["spec"]["volumeName"] = "pv-1"
    bound = reg.update(bound)
    bound = reg.update_status(
        "PersistentVolumeClaim", "default", "data", lambda o: o.update(status={"phase": "Bound"})
    )
    grow = copy.deepcopy(bound)
    grow["spec"]["resources"]["requests"]["storage"] = "2Gi"
    grow = reg.update(grow)
    shrink = copy.deepcopy(grow)
    shrink["spec"]["resources"]["requests"]["storage"] = "1Gi"
    assert refused(reg, shrink) == (
        'PersistentVolumeClaim "data" is invalid: spec.resources.requests.storage: Forbidden: '
        "field can not be less than previous value"
    )
    modes = copy.deepcopy(grow)
    modes["spec"]["accessModes"] = ["ReadWriteMany"]
    message = refused(reg, modes)
    assert message.startswith(
        'PersistentVolumeClaim "data" is invalid: spec: Forbidden: spec is immutable after '
        "creation except resources.requests and volumeAttributesClassName for bound claims\n"
    ), message
    assert '-\taccessModes: ["ReadWriteOnce"],\n+\taccessModes: ["ReadWriteMany"],' in message
