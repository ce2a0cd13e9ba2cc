"""ConfigMaps and Secrets in the registry: defaults, stringData, keys, base64, tables."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest

from svcnet.api.tables import table
from svcnet.k8s.objects import Obj
from svcnet.registry import ApiError, Registry


def cm(data: Obj, name: str = "app-config", **extra: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": data,
        **extra,
    }


def secret(name: str = "app-secret", **fields: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, **fields}


def refused(reg: Registry, obj: Obj) -> ApiError:
    with pytest.raises(ApiError) as e:
        reg.create(obj)
    return e.value


def test_secret_string_data_is_folded_into_data_and_type_defaults(reg: Registry) -> None:
    s = reg.create(secret(stringData={"password": "s3cret"}, data={"user": "YWRtaW4="}))
    assert s["type"] == "Opaque"
    assert "stringData" not in s
    assert s["data"] == {"user": "YWRtaW4=", "password": base64.b64encode(b"s3cret").decode()}


def test_secret_data_must_be_base64_as_the_decoder_says(reg: Registry) -> None:
    e = refused(reg, secret(data={"password": "not base64!"}))
    assert e.code == 400
    assert e.message == (
        'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3'
    )


@pytest.mark.parametrize(
    ("key", "detail"),
    [
        ("bad key", "a valid config key must consist of alphanumeric characters"),
        ("..hidden", "must not start with '..'"),
        (".", "must not be '.'"),
    ],
)
def test_config_keys_are_validated(reg: Registry, key: str, detail: str) -> None:
    e = refused(reg, cm({key: "x"}))
    assert e.code == 422
    assert f'ConfigMap "app-config" is invalid: data[{key}]: Invalid value: "{key}": ' in e.message
    assert detail in e.message


def test_configmap_key_in_data_and_binary_data_is_a_duplicate(reg: Registry) -> None:
    e = refused(reg, cm({"k": "v"}, binaryData={"k": "dg=="}))
    assert 'binaryData[k]: Invalid value: "k": duplicate of key present in data' in e.message


def test_get_columns_as_kubectl_prints_them(reg: Registry) -> None:
    c = reg.create(cm({"a": "1", "b": "2"}, binaryData={"c": "dg=="}))
    s = reg.create(
        secret(type="kubernetes.io/basic-auth", stringData={"username": "u", "password": "p"})
    )
    now = dt.datetime.now(dt.UTC)
    t = table("ConfigMap", [c], now)
    assert [col["name"] for col in t["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert t["rows"][0]["cells"][:2] == ["app-config", 3]
    t = table("Secret", [s], now)
    assert [col["name"] for col in t["columnDefinitions"]] == ["Name", "Type", "Data", "Age"]
    assert t["rows"][0]["cells"][:3] == ["app-secret", "kubernetes.io/basic-auth", 2]
