from __future__ import annotations

import pytest

from svcnet.k8s import labels


@pytest.mark.parametrize(
    ("text", "lab", "want"),
    [
        ("app=echo", {"app": "echo"}, True),
        ("app=echo", {"app": "web"}, False),
        ("app==echo,release=summer", {"app": "echo", "release": "summer"}, True),
        ("app=echo,release=summer", {"app": "echo", "release": "spring"}, False),
        ("release!=spring", {"app": "echo"}, True),
        ("release!=spring", {"release": "spring"}, False),
        ("release in (summer, spring)", {"release": "spring"}, True),
        ("release notin (summer,spring)", {"release": "spring"}, False),
        ("release notin (summer,spring)", {}, True),
        ("app", {"app": ""}, True),
        ("!app", {"app": "x"}, False),
        ("!app", {}, True),
        ("gen>3", {"gen": "4"}, True),
        ("gen<3", {"gen": "4"}, False),
        ("", {"any": "thing"}, True),
    ],
)
def test_parse_and_match(text: str, lab: dict[str, str], want: bool) -> None:
    assert labels.parse(text).matches(lab) is want


@pytest.mark.parametrize("bad", ["app=echo,,", "a b", "x in (a", "gen>x"])
def test_parse_errors(bad: str) -> None:
    with pytest.raises(labels.SelectorError):
        labels.parse(bad)


def test_round_trip_string() -> None:
    s = labels.parse("app=echo,release in (a,b),!x,y")
    assert str(s) == "app=echo,release in (a,b),!x,y"


def test_match_expressions() -> None:
    sel = labels.from_label_selector(
        {
            "matchLabels": {"app": "echo"},
            "matchExpressions": [
                {"key": "release", "operator": "In", "values": ["summer", "spring"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        }
    )
    assert sel.matches({"app": "echo", "release": "summer"})
    assert not sel.matches({"app": "echo", "release": "summer", "canary": "1"})
    assert not sel.matches({"app": "echo", "release": "autumn"})


def test_match_expressions_errors() -> None:
    with pytest.raises(labels.SelectorError, match="values: Required value"):
        labels.from_label_selector({"matchExpressions": [{"key": "a", "operator": "In"}]})
    with pytest.raises(labels.SelectorError, match="not a valid selector operator"):
        labels.from_label_selector({"matchExpressions": [{"key": "a", "operator": "Is"}]})


def test_nil_selector_selects_nothing_empty_selects_everything() -> None:
    assert not labels.from_map(None).matches({"app": "echo"})
    assert labels.from_map({}).matches({"app": "echo"})
    assert not labels.from_label_selector(None).matches({})


def test_format_map_sorted() -> None:
    assert labels.format_map({"release": "summer", "app": "echo"}) == "app=echo,release=summer"
    assert labels.format_map({}) == "<none>"
