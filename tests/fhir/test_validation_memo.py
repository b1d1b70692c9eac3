"""The definition walker remembers elements it found clean (app/fhir/validation.py): by type,
place and JSON, so the same JSON elsewhere, or an error beside a remembered element, is still
found. `full=False` runs the walker alone."""

from __future__ import annotations

from typing import Any

from app.fhir.validation import collect_issues

COMP = {"code": {"text": "systolic"}, "valueQuantity": {"value": 120, "unit": "mm[Hg]"}}


def _obs(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "bp"}, **extra}


def _expressions(obj: dict[str, Any]) -> list[str]:
    return [x for i in collect_issues(obj, full=False) for x in i.expression or []]


def test_clean_element_in_another_place_is_walked_again() -> None:
    assert _expressions(_obs(component=[COMP])) == []
    # the component's JSON is no reference range
    assert "Observation.referenceRange[0].code" in _expressions(_obs(referenceRange=[COMP]))
    # a CodeableConcept's JSON ({"text": ...}) is no Coding
    assert _expressions(_obs(meta={"tag": [{"text": "bp"}]})) == ["Observation.meta.tag[0].text"]


def test_errors_beside_and_around_remembered_elements_are_found() -> None:
    assert _expressions(_obs(component=[COMP])) == []
    bad = {**COMP, "valueQuantity": {"value": "120"}}
    assert _expressions(_obs(component=[COMP, bad])) == [
        "Observation.component[1].valueQuantity.value"
    ]
    assert _expressions(_obs(component=[{**COMP, "code": {"text": "x", "coding": {}}}])) == [
        "Observation.component[0].code.coding"
    ]
    # the same remembered element, repeated, stays clean; every error is still reported
    assert _expressions(_obs(component=[COMP, COMP])) == []
    assert _expressions(_obs(component=[bad, bad])) == [
        "Observation.component[0].valueQuantity.value",
        "Observation.component[1].valueQuantity.value",
    ]
