"""The rule language, pure: compiled tests agree with the explained evaluation, missing values
fail every comparison, and the rationale names the facts that decided."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.stratify.assign import assign, basis, explain, rationale
from app.stratify.map import load_map
from app.stratify.rules import PatientFacts

MAP = load_map()


def facts_strategy() -> st.SearchStrategy[dict[str, Any]]:
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for name, f in MAP.facts.items():
        if f.kind in ("condition", "medication", "observation-code"):
            fields[name] = st.booleans()
        elif f.kind == "lab":
            fields[name] = st.one_of(st.none(), st.floats(0, 300, allow_nan=False))
        elif f.kind == "age":
            fields[name] = st.one_of(st.none(), st.integers(0, 110))
        elif f.kind == "sex":
            fields[name] = st.sampled_from(["female", "male", "other", "unknown"])
        else:
            fields[name] = st.integers(0, 15)
    return st.fixed_dictionaries({}, optional=fields)


@settings(max_examples=400, deadline=None)
@given(facts_strategy())
def test_compiled_rules_agree_with_the_tree(values: dict[str, Any]) -> None:
    pf = PatientFacts("x", values)
    for s in MAP.all_strata():
        assert s.test(values) == s.rule.holds(pf), s.code
    a = assign(MAP, pf)
    tried = explain(MAP, pf)["pyramid"]
    assert tried[-1]["code"] == a.stratum.code and tried[-1]["matched"]
    assert not any(t["matched"] for t in tried[:-1])
    # a matched stratum always says why (but the catch-all)
    if a.stratum.code != "healthy":
        assert "no rule of a higher stratum" not in rationale(a.stratum, pf)


def test_missing_values_fail_every_comparison() -> None:
    uncontrolled = MAP.strata[2]
    pf = PatientFacts("x", {"t2d": True, "chronic_conditions": 1, "hba1c": None})
    assert not uncontrolled.rule.holds(pf)
    assert assign(MAP, pf).stratum.code == "chronic-stable"
    # nor does a missing age make anyone old or young
    frail = MAP.strata[0]
    assert not frail.test({"home_visits": 9})


def test_rationale_and_basis_name_the_deciding_facts() -> None:
    pf = PatientFacts(
        "x",
        {"t2d": True, "chronic_conditions": 1, "hba1c": 8.2, "age": 70},
        basis={"t2d": [1, 2], "hba1c": [3], "age": []},
        detail={"hba1c": "2026-05-01"},
    )
    a = assign(MAP, pf)
    assert a.stratum.code == "chronic-uncontrolled"
    why = rationale(a.stratum, pf)
    assert why == (
        "Chronic uncontrolled or multimorbid: type 2 diabetes; "
        "latest HbA1c (%) 8.2 (2026-05-01) >= 8"
    )
    assert basis(a.stratum, pf) == {1, 2, 3}
    assert rationale(MAP.strata[-1], PatientFacts("y")) == (
        "Healthy: no rule of a higher stratum holds"
    )
