"""Every generated resource is valid FHIR R4: against the official R4 JSON Schema and the
fhir.resources R4B models (R4 JSON validates with R4B; fhir.resources ships no R4)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from synth_facts import EXPECTED_TYPES

from app.synth import RegionConfig, generate_region

Resource = dict[str, Any]
Check = Callable[[Resource], list[str]]


def test_small_region_has_every_resource_type(small: Any) -> None:
    types = Counter(r["resourceType"] for r in small.all_resources())
    assert set(types) == EXPECTED_TYPES


def test_every_resource_of_a_small_region_matches_the_json_schema(
    small: Any, schema_errors: Check
) -> None:
    errors = [e for r in small.all_resources() for e in schema_errors(r)]
    assert errors == []


def test_every_resource_of_a_small_region_validates_with_r4b_models(
    small: Any, model_errors: Check
) -> None:
    errors = [e for r in small.all_resources() for e in model_errors(r)]
    assert errors == []


def test_a_sample_of_the_large_region_validates(
    large: Any, schema_errors: Check, model_errors: Check
) -> None:
    sample = [r for p in large.patients[::97] for r in p]
    # plus the heaviest records, where rarely used branches show up
    heaviest = sorted(large.patients, key=len)[-15:]
    sample += [r for p in heaviest for r in p]
    sample += [r for r in large.shared if r["resourceType"] != "Group"]
    assert len(sample) > 4000
    errors = [e for r in sample for e in schema_errors(r) + model_errors(r)]
    assert errors == []


def test_required_elements_the_schema_does_not_check(small: Any) -> None:
    """The R4 JSON Schema checks no minimum cardinality: check the usual ones ourselves."""
    required = {
        "Observation": ("status", "code", "subject", "effectiveDateTime", "category"),
        "Condition": (
            "clinicalStatus",
            "verificationStatus",
            "category",
            "code",
            "subject",
            "onsetDateTime",
        ),
        "Encounter": ("status", "class", "subject", "period"),
        "MedicationStatement": (
            "status",
            "medicationCodeableConcept",
            "subject",
            "effectivePeriod",
        ),
        "MedicationDispense": ("status", "medicationCodeableConcept", "subject", "whenHandedOver"),
        "CarePlan": ("status", "intent", "subject", "goal", "activity"),
        "Goal": ("lifecycleStatus", "description", "subject", "target"),
        "Procedure": ("status", "code", "subject", "performedDateTime"),
        "Group": ("type", "actual", "managingEntity", "member"),
    }
    missing = [
        f"{r['resourceType']}/{r['id']}.{k}"
        for r in small.all_resources()
        for k in required.get(r["resourceType"], ())
        if k not in r
    ]
    assert missing == []


def _empties(node: Any, path: str = "") -> list[str]:
    if node is None or node == "" or node == [] or node == {}:
        return [path]
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _empties(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _empties(v, f"{path}[{i}]")]
    return []


def test_no_empty_values(small: Any) -> None:
    """FHIR JSON forbids empty arrays, objects and strings, and nulls outside arrays."""
    assert [
        f"{r['resourceType']}/{r['id']}{p}" for r in small.all_resources() for p in _empties(r)
    ] == []


@pytest.mark.parametrize(("patients", "teams"), [(0, 8), (1, 1), (25, 3), (60, 20)])
def test_tiny_and_odd_regions_are_valid(
    patients: int, teams: int, schema_errors: Check, model_errors: Check
) -> None:
    region = generate_region(RegionConfig(patients=patients, teams=teams, seed=5))
    resources = region.shared_resources() + [r for p in region.patient_resources() for r in p]
    assert sum(1 for r in resources if r["resourceType"] == "Group") == teams
    assert sum(1 for r in resources if r["resourceType"] == "Patient") == patients
    assert [e for r in resources for e in schema_errors(r) + model_errors(r) + _empties(r)] == []


def test_team_count_out_of_range() -> None:
    with pytest.raises(ValueError):
        generate_region(RegionConfig(patients=10, teams=21))
