"""Issue 13: the NetworkPolicy evaluator's label selectors, against the Kubernetes semantics (metav1.LabelSelector).

Tables from the API reference: `NotIn` and `DoesNotExist` match a pod that lacks the key; `In` and `Exists` do not;
requirements are ANDed; an empty selector selects everything. Then a property: whatever `witness()` returns matches,
and when it returns nothing no label set over the same keys and values matches either (checked by brute force).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.checks.netpol import PolicyError, Requirement, Selector


def expr(key: str, op: str, *values: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"key": key, "operator": op}
    if values:
        doc["values"] = list(values)
    return doc


MATCHES = [
    # (matchExpressions, labels, matches)
    ([expr("tier", "In", "db")], {"tier": "db"}, True),
    ([expr("tier", "In", "db")], {"tier": "web"}, False),
    ([expr("tier", "In", "db")], {}, False),
    ([expr("tier", "NotIn", "db")], {"tier": "web"}, True),
    ([expr("tier", "NotIn", "db")], {"tier": "db"}, False),
    ([expr("tier", "NotIn", "db")], {}, True),  # a missing key is "not in" any set
    ([expr("tier", "Exists")], {"tier": ""}, True),
    ([expr("tier", "Exists")], {}, False),
    ([expr("tier", "DoesNotExist")], {}, True),
    ([expr("tier", "DoesNotExist")], {"tier": "db"}, False),
    ([expr("tier", "DoesNotExist")], {"other": "x"}, True),
    ([expr("a", "Exists"), expr("b", "NotIn", "x")], {"a": "1"}, True),
    ([expr("a", "Exists"), expr("b", "NotIn", "x")], {"a": "1", "b": "x"}, False),
    ([expr("a", "In", "1", "2"), expr("a", "NotIn", "2")], {"a": "2"}, False),
    ([], {"anything": "at-all"}, True),
]


@pytest.mark.parametrize(("expressions", "labels", "expected"), MATCHES)
def test_match_expressions(expressions: list[dict[str, Any]], labels: dict[str, str], expected: bool) -> None:
    assert Selector.parse({"matchExpressions": expressions}).matches(labels) is expected


def test_match_labels_and_expressions_are_anded() -> None:
    sel = Selector.parse({"matchLabels": {"app": "orca"}, "matchExpressions": [expr("role", "DoesNotExist")]})
    assert sel.matches({"app": "orca"})
    assert not sel.matches({"app": "orca", "role": "backup"})
    assert not sel.matches({"role": "x"})


def test_no_selector_and_empty_selector_select_everything() -> None:
    assert Selector.parse(None).matches({"x": "y"})
    assert Selector.parse({}).matches({})


@pytest.mark.parametrize(
    "bad",
    [
        expr("tier", "In"),  # In/NotIn need values
        expr("tier", "NotIn"),
        expr("tier", "Exists", "x"),  # Exists/DoesNotExist take none
        expr("tier", "DoesNotExist", "x"),
        expr("tier", "Matches", "x"),
    ],
)
def test_what_the_api_server_rejects_is_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(PolicyError):
        Selector.parse({"matchExpressions": [bad]})


SATISFIABLE = [
    ([Requirement("k", "In", frozenset({"a"})), Requirement("k", "DoesNotExist")], False),
    ([Requirement("k", "Exists"), Requirement("k", "DoesNotExist")], False),
    ([Requirement("k", "In", frozenset({"a"})), Requirement("k", "NotIn", frozenset({"a"}))], False),
    ([Requirement("k", "NotIn", frozenset({"a"})), Requirement("k", "DoesNotExist")], True),
    ([Requirement("k", "Exists"), Requirement("k", "NotIn", frozenset({"any-0"}))], True),
]


@pytest.mark.parametrize(("reqs", "expected"), SATISFIABLE)
def test_satisfiable(reqs: list[Requirement], expected: bool) -> None:
    sel = Selector(tuple(reqs))
    assert sel.satisfiable() is expected
    witness = sel.witness()
    if witness is not None:
        assert sel.matches(witness)


def test_forces() -> None:
    assert Selector((Requirement("k", "In", frozenset({"a"})),)).forces("k", "a")
    assert not Selector((Requirement("k", "In", frozenset({"a", "b"})),)).forces("k", "a")
    assert not Selector((Requirement("k", "NotIn", frozenset({"b"})),)).forces("k", "a")


KEYS = ("a", "b")
VALUES = ("x", "y")
OPS = ("In", "NotIn", "Exists", "DoesNotExist")


@st.composite
def requirements(draw: st.DrawFn) -> Requirement:
    op = draw(st.sampled_from(OPS))
    values = frozenset(draw(st.sets(st.sampled_from(VALUES), min_size=1))) if op in ("In", "NotIn") else frozenset()
    return Requirement(draw(st.sampled_from(KEYS)), op, values)


def all_label_sets() -> list[dict[str, str]]:
    """Every label set over KEYS, each key absent or one of VALUES or a value no requirement names."""
    choices = [None, *VALUES, "other"]
    out = []
    for combo in itertools.product(choices, repeat=len(KEYS)):
        out.append({k: v for k, v in zip(KEYS, combo, strict=True) if v is not None})
    return out


@settings(max_examples=400, deadline=None)
@given(st.lists(requirements(), max_size=4))
def test_witness_is_sound_and_complete(reqs: list[Requirement]) -> None:
    sel = Selector(tuple(reqs))
    witness = sel.witness()
    brute = any(sel.matches(labels) for labels in all_label_sets())
    if witness is None:
        assert not brute, f"{sel} is satisfiable but witness() found nothing"
    else:
        assert sel.matches(witness), f"witness {witness} does not match {sel}"
        assert brute
