"""The schema check's fast path (jsonschema-rs) never accepts what the Python
validator, whose errors svcnet reports in the API server's words, would refuse:
over the manifests in this repository (the Kubernetes website's and the
guestbook tutorial's among them) and over random damage done to them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from svcnet.k8s import kinds
from svcnet.registry import schema

ROOT = Path(__file__).resolve().parents[2]


def corpus() -> list[dict[str, Any]]:
    docs = []
    for path in sorted([*ROOT.glob("config/*.yaml"), *ROOT.glob("tests/**/manifests/**/*.yaml")]):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and kinds.for_api_version(
                str(doc.get("apiVersion")), str(doc.get("kind"))
            ):
                docs.append(doc)
    return docs


CORPUS = corpus()


def python_errors(obj: dict[str, Any]) -> list[Any]:
    kind = kinds.for_api_version(str(obj["apiVersion"]), str(obj["kind"]))
    assert kind is not None
    v = schema._validator(kind.api_version, kind.kind)
    return [] if v is None else list(v.iter_errors(obj))


def test_the_corpus_is_large_and_valid_both_ways() -> None:
    assert len(CORPUS) >= 20
    for doc in CORPUS:
        kind = kinds.for_api_version(str(doc["apiVersion"]), str(doc["kind"]))
        assert kind is not None
        assert schema._valid(doc, kind), doc["metadata"]
        assert python_errors(doc) == []


def paths(obj: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths(v, (*at, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += paths(v, (*at, i))
    return out


JUNK = st.one_of(
    st.integers(-(2**40), 2**40),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["bogus", "name", "port", "x"]), st.integers(), max_size=2),
    st.sampled_from(["!!notbase64", "YWJj", "80", "TCP", "None"]),
)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_damaged_manifest_is_never_accepted_by_the_fast_path_alone(data: Any) -> None:
    doc = copy.deepcopy(data.draw(st.sampled_from(CORPUS)))
    where = data.draw(st.sampled_from(paths(doc)[1:]))
    parent = doc
    for p in where[:-1]:
        parent = parent[p]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        parent.pop(where[-1])  # a required field may go
    else:
        parent[where[-1]] = data.draw(JUNK)
    kind = kinds.for_api_version(str(doc.get("apiVersion")), str(doc.get("kind")))
    if kind is None:
        return
    if schema._valid(doc, kind):
        assert python_errors(doc) == [], where


@pytest.mark.parametrize("value", ["!!!", "YWJ", "YWJjZA=", "Y"])
def test_bad_base64_in_a_secret_is_refused_by_both(value: str) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": value}}
    assert not schema._valid(secret, kinds.BY_KIND["Secret"])
    assert python_errors(secret)
