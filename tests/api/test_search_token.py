"""Token, uri and resource-level parameters: system|code forms, :not, :text, :in/:not-in,
:of-type, :missing, _id, _tag, _profile, _security."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.fhir import assert_outcome, create, ids, patient, search

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
SSIN = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/ssin"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def obs(
    code: str, system: str | None, display: str | None = None, text: str | None = None, **extra: Any
) -> dict[str, Any]:
    coding: dict[str, Any] = {"code": code}
    if system:
        coding["system"] = system
    if display:
        coding["display"] = display
    cc: dict[str, Any] = {"coding": [coding]}
    if text:
        cc["text"] = text
    return {"resourceType": "Observation", "status": "final", "code": cc, **extra}


@pytest.fixture
async def observations(client: httpx.AsyncClient) -> dict[str, str]:
    made = {
        "hr": obs(
            "8867-4", LOINC, "Heart rate", meta={"tag": [{"system": "http://t", "code": "ward-3"}]}
        ),
        "a1c": obs(
            "4548-4",
            LOINC,
            "Hemoglobin A1c/Hemoglobin.total in Blood",
            meta={
                "profile": ["http://example.org/StructureDefinition/lab"],
                "security": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                        "code": "R",
                    }
                ],
            },
        ),
        "local": obs("local-1", None, text="Home measured weight"),
        "sbp": obs("271649006", SNOMED, "Systolic blood pressure", status="amended"),
    }
    out = {}
    for key, body in made.items():
        out[key] = (await create(client, body))["id"]
    return out


async def _ids(client: httpx.AsyncClient, path: str, **params: str) -> set[str]:
    return ids(await search(client, path, params))


async def test_token_system_and_code_forms(
    client: httpx.AsyncClient, observations: dict[str, str]
) -> None:
    o = observations
    assert await _ids(client, "/Observation", code=f"{LOINC}|8867-4") == {o["hr"]}
    assert await _ids(client, "/Observation", code="8867-4") == {o["hr"]}
    assert await _ids(client, "/Observation", code=f"{SNOMED}|8867-4") == set()
    assert await _ids(client, "/Observation", code="|local-1") == {o["local"]}
    assert await _ids(client, "/Observation", code="|8867-4") == set()
    assert await _ids(client, "/Observation", code=f"{LOINC}|") == {o["hr"], o["a1c"]}
    # comma: OR; repeated parameter: AND
    assert await _ids(client, "/Observation", code="8867-4,271649006") == {o["hr"], o["sbp"]}
    b = await search(client, "/Observation", [("code", "8867-4,4548-4"), ("status", "final")])
    assert ids(b) == {o["hr"], o["a1c"]}
    b = await search(client, "/Observation", [("code", "8867-4"), ("code", "4548-4")])
    assert ids(b) == set()
    # codes are case-sensitive
    assert await _ids(client, "/Observation", code="LOCAL-1") == set()


async def test_token_not(client: httpx.AsyncClient, observations: dict[str, str]) -> None:
    o = observations
    got = await _ids(client, "/Observation", **{"code:not": f"{LOINC}|8867-4"})
    assert got == {o["a1c"], o["local"], o["sbp"]}
    got = await _ids(client, "/Observation", **{"status:not": "final"})
    assert got == {o["sbp"]}
    # :not also returns resources without any value
    a = await create(client, patient("A", gender="male"))
    b = await create(client, patient("B", gender="female"))
    c = await create(client, patient("C"))
    got = await _ids(client, "/Patient", **{"gender:not": "male"})
    assert got == {b["id"], c["id"]}
    assert a["id"] not in got


async def test_token_text(client: httpx.AsyncClient, observations: dict[str, str]) -> None:
    o = observations
    assert await _ids(client, "/Observation", **{"code:text": "heart"}) == {o["hr"]}
    assert await _ids(client, "/Observation", **{"code:text": "Hemoglobin"}) == {o["a1c"]}
    assert await _ids(client, "/Observation", **{"code:text": "weight"}) == {o["local"]}
    assert await _ids(client, "/Observation", **{"code:text": "SYSTOLIC blood"}) == {o["sbp"]}
    assert await _ids(client, "/Observation", **{"code:text": "diastolic"}) == set()


async def test_token_in_value_set(client: httpx.AsyncClient, observations: dict[str, str]) -> None:
    o = observations
    vitals = "http://example.org/fhir/ValueSet/monitored"
    await create(
        client,
        {
            "resourceType": "ValueSet",
            "url": vitals,
            "status": "active",
            "compose": {
                "include": [{"system": LOINC, "concept": [{"code": "8867-4"}, {"code": "4548-4"}]}]
            },
        },
    )
    whole = "http://example.org/fhir/ValueSet/all-snomed"
    await create(
        client,
        {
            "resourceType": "ValueSet",
            "url": whole,
            "status": "active",
            "compose": {"include": [{"system": SNOMED}]},
        },
    )
    nested = "http://example.org/fhir/ValueSet/nested"
    await create(
        client,
        {
            "resourceType": "ValueSet",
            "url": nested,
            "status": "active",
            "compose": {"include": [{"valueSet": [vitals, whole]}]},
        },
    )
    assert await _ids(client, "/Observation", **{"code:in": vitals}) == {o["hr"], o["a1c"]}
    assert await _ids(client, "/Observation", **{"code:in": whole}) == {o["sbp"]}
    assert await _ids(client, "/Observation", **{"code:in": nested}) == {
        o["hr"],
        o["a1c"],
        o["sbp"],
    }
    assert await _ids(client, "/Observation", **{"code:not-in": vitals}) == {o["local"], o["sbp"]}
    r = await client.get("/Observation", params={"code:in": "http://example.org/none"})
    assert_outcome(r, 400)


async def test_identifier_and_of_type(client: httpx.AsyncClient) -> None:
    mr = {"coding": [{"system": V2_0203, "code": "MR"}]}
    a = await create(
        client,
        patient(
            "Id",
            identifier=[
                {"system": SSIN, "value": "85010112345"},
                {"system": "http://hospital.example/mrn", "value": "MRN-7", "type": mr},
            ],
        ),
    )
    b = await create(client, patient("Id2", identifier=[{"system": SSIN, "value": "MRN-7"}]))
    assert await _ids(client, "/Patient", identifier=f"{SSIN}|85010112345") == {a["id"]}
    assert await _ids(client, "/Patient", identifier="MRN-7") == {a["id"], b["id"]}
    got = await _ids(client, "/Patient", **{"identifier:of-type": f"{V2_0203}|MR|MRN-7"})
    assert got == {a["id"]}


async def test_boolean_and_missing(client: httpx.AsyncClient) -> None:
    a = await create(client, patient("Act", active=True, birthDate="1970-01-01"))
    b = await create(client, patient("Inact", active=False))
    c = await create(client, patient("Unknown"))
    assert await _ids(client, "/Patient", active="true") == {a["id"]}
    assert await _ids(client, "/Patient", active="false") == {b["id"]}
    assert await _ids(client, "/Patient", **{"active:missing": "true"}) == {c["id"]}
    assert await _ids(client, "/Patient", **{"active:missing": "false"}) == {a["id"], b["id"]}
    assert await _ids(client, "/Patient", **{"birthdate:missing": "true"}) == {b["id"], c["id"]}
    assert await _ids(client, "/Patient", **{"birthdate:missing": "false"}) == {a["id"]}
    assert await _ids(client, "/Patient", **{"name:missing": "true"}) == set()


async def test_id_tag_profile_security(
    client: httpx.AsyncClient, observations: dict[str, str]
) -> None:
    o = observations
    assert await _ids(client, "/Observation", _id=o["hr"]) == {o["hr"]}
    assert await _ids(client, "/Observation", _id=f"{o['hr']},{o['sbp']},nope") == {
        o["hr"],
        o["sbp"],
    }
    assert await _ids(client, "/Observation", _tag="http://t|ward-3") == {o["hr"]}
    assert await _ids(client, "/Observation", _tag="ward-3") == {o["hr"]}
    assert await _ids(client, "/Observation", _tag="http://t|ward-4") == set()
    assert await _ids(
        client, "/Observation", _profile="http://example.org/StructureDefinition/lab"
    ) == {o["a1c"]}
    assert await _ids(client, "/Observation", _security="R") == {o["a1c"]}


async def test_uri_parameters(client: httpx.AsyncClient) -> None:
    vs = await create(
        client,
        {
            "resourceType": "ValueSet",
            "status": "active",
            "url": "http://example.org/fhir/ValueSet/diabetes",
        },
    )
    await create(
        client,
        {"resourceType": "ValueSet", "status": "active", "url": "http://other.org/ValueSet/x"},
    )
    assert await _ids(client, "/ValueSet", url="http://example.org/fhir/ValueSet/diabetes") == {
        vs["id"]
    }
    assert await _ids(client, "/ValueSet", url="http://example.org/fhir/ValueSet") == set()
    assert await _ids(client, "/ValueSet", **{"url:below": "http://example.org/fhir"}) == {vs["id"]}
    got = await _ids(
        client, "/ValueSet", **{"url:above": "http://example.org/fhir/ValueSet/diabetes/v2"}
    )
    assert got == {vs["id"]}


async def test_combo_and_patient_parameters(client: httpx.AsyncClient) -> None:
    """Parameters that combine others: Observation combo-* (code | component-code) and
    `patient` (subject restricted to a Patient)."""
    pat = await create(client, patient("Combo"))
    group = await create(client, {"resourceType": "Group", "type": "person", "actual": True})
    bp = await create(
        client,
        {
            "resourceType": "Observation",
            "status": "final",
            "subject": {"reference": f"Patient/{pat['id']}"},
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "component": [
                {
                    "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                    "valueQuantity": {"value": 150},
                }
            ],
        },
    )
    sbp = await create(
        client,
        {
            "resourceType": "Observation",
            "status": "final",
            "subject": {"reference": f"Group/{group['id']}"},
            "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
            "valueQuantity": {"value": 120},
        },
    )
    both = {bp["id"], sbp["id"]}
    assert await _ids(client, "/Observation", **{"combo-code": f"{LOINC}|8480-6"}) == both
    assert await _ids(client, "/Observation", **{"combo-code": "85354-9"}) == {bp["id"]}
    assert await _ids(client, "/Observation", **{"combo-code:not": "85354-9"}) == {sbp["id"]}
    assert await _ids(client, "/Observation", **{"combo-code:not": "8480-6"}) == set()
    assert await _ids(client, "/Observation", **{"combo-value-quantity": "gt140"}) == {bp["id"]}
    assert await _ids(client, "/Observation", **{"combo-value-quantity": "120"}) == {sbp["id"]}
    assert (
        await _ids(client, "/Observation", **{"combo-code-value-quantity": "8480-6$gt100"}) == both
    )
    assert await _ids(client, "/Observation", patient=pat["id"]) == {bp["id"]}
    assert await _ids(client, "/Observation", **{"patient:missing": "true"}) == {sbp["id"]}
    assert await _ids(client, "/Observation", **{"subject:missing": "true"}) == set()
    assert await _ids(client, "/Observation", **{"patient.name": "combo"}) == {bp["id"]}
    b = await search(client, "/Patient", {"_revinclude": "Observation:patient"})
    assert ids(b, "include") == {bp["id"]}
    b = await search(client, "/Observation", {"_include": "Observation:patient"})
    assert ids(b, "include") == {pat["id"]}
