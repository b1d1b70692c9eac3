"""Invalid resources are refused with 422 and an OperationOutcome naming the element."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.fhir import assert_outcome, create, patient, search


@pytest.mark.parametrize(
    ("body", "expression"),
    [
        (patient("Peeters", gender="F"), "Patient.gender"),
        (patient("Peeters", active="yes"), "Patient.active"),
        (patient("Peeters", birthDate="03/02/1950"), "Patient.birthDate"),
        (patient("Peeters", favouriteColour="blue"), "Patient.favouriteColour"),
        ({"resourceType": "Patient", "name": {"family": "NotAnArray"}}, "Patient.name"),
        ({"resourceType": "Patient", "name": [{"family": ["a", "b"]}]}, "Patient.name[0].family"),
        (
            {"resourceType": "Patient", "multipleBirthInteger": "two"},
            "Patient.multipleBirthInteger",
        ),
        ({"resourceType": "Observation", "code": {"text": "weight"}}, "Observation.status"),
        ({"resourceType": "Observation", "status": "final"}, "Observation.code"),
        (
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "w"},
                "valueQuantity": {"value": "80"},
            },
            "Observation.valueQuantity.value",
        ),
        (
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "w"},
                "component": [{"valueString": "x"}],
            },
            "Observation.component[0].code",
        ),
    ],
    ids=[
        "gender-F",
        "active-yes",
        "bad-date",
        "unknown-element",
        "not-array",
        "array-for-single",
        "integer-as-string",
        "obs-no-status",
        "obs-no-code",
        "quantity-string",
        "component-no-code",
    ],
)
async def test_invalid_resource_is_422(
    client: httpx.AsyncClient, body: dict[str, Any], expression: str
) -> None:
    r = await client.post(f"/{body['resourceType']}", json=body)
    oo = assert_outcome(r, 422, expression=expression)
    assert all(i["severity"] in ("error", "fatal") for i in oo["issue"])
    # nothing was stored
    bundle = await search(client, f"/{body['resourceType']}")
    assert bundle["total"] == 0


async def test_invalid_update_is_422_and_keeps_old_version(client: httpx.AsyncClient) -> None:
    created = await create(client, patient("Lemmens"))
    r = await client.put(f"/Patient/{created['id']}", json={**created, "gender": "F"})
    assert_outcome(r, 422, expression="Patient.gender")
    assert (await client.get(f"/Patient/{created['id']}")).json() == created


async def test_all_issues_are_reported(client: httpx.AsyncClient) -> None:
    r = await client.post("/Patient", json=patient("Kaya", gender="F", active="yes"))
    oo = assert_outcome(r, 422)
    exprs = {x for i in oo["issue"] for x in i.get("expression", [])}
    assert {"Patient.gender", "Patient.active"} <= exprs


async def test_contained_and_extension_content_is_validated(client: httpx.AsyncClient) -> None:
    body = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "w"},
        "contained": [{"resourceType": "Patient", "id": "p1", "gender": "F"}],
    }
    r = await client.post("/Observation", json=body)
    assert_outcome(r, 422, expression="gender")
    body = patient("Ext", extension=[{"url": "http://x", "valueBoolean": "yes"}])
    r = await client.post("/Patient", json=body)
    assert_outcome(r, 422, expression="valueBoolean")


async def test_missing_resource_type_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post("/Patient", json={"gender": "male"})
    assert_outcome(r, 400, expression="resourceType")


async def test_valid_choice_types_and_primitive_extensions(client: httpx.AsyncClient) -> None:
    body = {
        "resourceType": "Patient",
        "birthDate": "1970",
        "_birthDate": {
            "extension": [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                    "valueDateTime": "1970-01-01T10:00:00+01:00",
                }
            ]
        },
        "deceasedBoolean": False,
        "multipleBirthInteger": 2,
    }
    created = await create(client, body)
    assert created["_birthDate"] == body["_birthDate"]
    assert created["multipleBirthInteger"] == 2


async def test_elements_validated_before_do_not_hide_errors(client: httpx.AsyncClient) -> None:
    """The R4B models remember elements that validated (app/fhir/r4b.py): an element seen valid
    before, next to or inside an invalid one, must not let the invalid one through. A choice
    element with two values is an error only the models find."""
    ext = {"url": "http://example.org/colour", "valueString": "blue"}
    comp = {"code": {"text": "systolic"}, "valueQuantity": {"value": 120, "unit": "mm[Hg]"}}
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "bp"},
           "extension": [ext], "component": [comp]}
    await create(client, obs)
    await create(client, patient("Claes", extension=[ext]))
    two_values = {**ext, "valueBoolean": True}
    r = await client.post("/Patient", json=patient("Claes", extension=[ext, two_values]))
    assert_outcome(r, 422, expression="Patient.extension[1]")
    r = await client.post("/Observation", json={**obs, "component": [
        comp, {**comp, "valueString": "high"}]})
    assert_outcome(r, 422, expression="Observation.component[1]")
    r = await client.post("/Observation", json={**obs, "_status": {}})
    assert_outcome(r, 422, expression="Observation._status")
    assert (await search(client, "/Patient"))["total"] == 1
    assert (await search(client, "/Observation"))["total"] == 1


async def test_r4_types_without_an_r4b_model_are_walked_only(client: httpx.AsyncClient) -> None:
    """R4B dropped 18 R4 types (MedicinalProduct, ...): the definition walker is their whole
    validator, and they are stored, not refused with a 500."""
    body = {"resourceType": "MedicinalProduct", "name": [{"productName": "Metformine 500 mg"}]}
    created = await create(client, body)
    assert created["name"] == body["name"]
    r = await client.post("/MedicinalProduct", json={**body, "name": [{"productName": 500}]})
    assert_outcome(r, 422, expression="MedicinalProduct.name[0].productName")
