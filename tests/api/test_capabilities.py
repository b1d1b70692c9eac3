"""GET /metadata: a CapabilityStatement whose listed search parameters actually work."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import SchemaCheck
from tests.api.fhir import create, entries, observation, patient, search

# A value of the right shape for each search-parameter type; composites try several seconds.
SAMPLE = {
    "token": ["x"],
    "string": ["x"],
    "date": ["2024"],
    "reference": ["Patient/x"],
    "quantity": ["5"],
    "number": ["5"],
    "uri": ["http://example.org/x"],
    "composite": ["x$x", "x$5", "x$2024"],
    "special": ["x"],
}
TYPES = [
    "Patient",
    "Observation",
    "Condition",
    "Encounter",
    "MedicationRequest",
    "CarePlan",
    "CareTeam",
    "Practitioner",
    "Organization",
    "Group",
    "Procedure",
    "AllergyIntolerance",
    "Immunization",
    "DiagnosticReport",
    "RiskAssessment",
    "MeasureReport",
    "Measure",
    "ValueSet",
    "Questionnaire",
    "QuestionnaireResponse",
]


@pytest.fixture
async def capability(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/metadata")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/fhir+json")
    cs: dict[str, Any] = r.json()
    return cs


async def test_capability_statement(capability: dict[str, Any], fhir_schema: SchemaCheck) -> None:
    cs = capability
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    assert cs["kind"] == "instance"
    assert cs["status"] == "active"
    assert "application/fhir+json" in cs["format"]
    assert "xml" not in cs["format"]
    (rest,) = cs["rest"]
    assert rest["mode"] == "server"
    assert {i["code"] for i in rest["interaction"]} >= {"transaction", "batch", "history-system"}
    by_type = {r["type"]: r for r in rest["resource"]}
    assert len(by_type) >= 140
    patient_cs = by_type["Patient"]
    codes = {i["code"] for i in patient_cs["interaction"]}
    assert codes >= {
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "create",
        "search-type",
        "history-instance",
        "history-type",
    }
    params = {p["name"]: p["type"] for p in patient_cs["searchParam"]}
    assert params["family"] == "string"
    assert params["birthdate"] == "date"
    assert params["identifier"] == "token"
    assert params["general-practitioner"] == "reference"
    obs = {p["name"]: p["type"] for p in by_type["Observation"]["searchParam"]}
    assert obs["code-value-quantity"] == "composite"
    assert obs["value-quantity"] == "quantity"
    assert "Observation:subject" in by_type["Patient"]["searchRevInclude"]
    assert "Observation:subject" in by_type["Observation"]["searchInclude"]
    assert [o["name"] for o in patient_cs["operation"]] == ["everything"]
    assert fhir_schema.errors(cs) == []


@pytest.mark.parametrize("res_type", TYPES)
async def test_listed_search_params_work(
    client: httpx.AsyncClient, capability: dict[str, Any], res_type: str
) -> None:
    (rest,) = capability["rest"]
    (entry,) = [r for r in rest["resource"] if r["type"] == res_type]
    names = {p["name"] for p in entry["searchParam"]}
    assert names, res_type
    failures = []
    for p in entry["searchParam"]:
        for value in SAMPLE[p["type"]]:
            r = await client.get(
                f"/{res_type}", params={p["name"]: value}, headers={"prefer": "handling=strict"}
            )
            if r.status_code == 200 and not entries(r.json(), "outcome"):
                break
        else:
            failures.append((p["name"], p["type"], r.status_code, r.text[:160]))
        r = await client.get(
            f"/{res_type}", params={p["name"] + ":missing": "true", "_summary": "count"}
        )
        if r.status_code != 200:
            failures.append((p["name"] + ":missing", p["type"], r.status_code, r.text[:160]))
    assert failures == []


async def test_listed_params_find_data(
    client: httpx.AsyncClient, capability: dict[str, Any]
) -> None:
    pat = await create(
        client,
        patient(
            "Cap",
            gender="female",
            birthDate="1944-04-04",
            address=[{"city": "Genk", "postalCode": "3600"}],
            telecom=[{"system": "phone", "value": "011223344"}],
        ),
    )
    obs = await create(
        client,
        observation(
            f"Patient/{pat['id']}",
            "8867-4",
            effectiveDateTime="2024-05-05",
            valueQuantity={"value": 72, "unit": "/min"},
        ),
    )
    checks = [
        ("Patient", {"gender": "female"}, pat),
        ("Patient", {"address-city": "genk"}, pat),
        ("Patient", {"address-postalcode": "3600"}, pat),
        ("Patient", {"phone": "011223344"}, pat),
        ("Patient", {"telecom": "phone|011223344"}, pat),
        ("Patient", {"birthdate": "1944"}, pat),
        ("Observation", {"date": "2024-05"}, obs),
        ("Observation", {"value-quantity": "72"}, obs),
        ("Observation", {"combo-code": "8867-4"}, obs),
    ]
    by_type = {
        r["type"]: {p["name"] for p in r["searchParam"]} for r in capability["rest"][0]["resource"]
    }
    for res_type, params, expected in checks:
        assert set(params) <= by_type[res_type]
        b = await search(client, f"/{res_type}", params)
        assert [e["resource"]["id"] for e in entries(b)] == [expected["id"]], params
