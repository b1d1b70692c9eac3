"""Reference search (Type/id, plain id, :Type, :identifier, absolute URLs), chains and _has."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.fhir import assert_outcome, create, ids, observation, patient, put, search

SSIN = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/ssin"
LOINC = "http://loinc.org"


@pytest.fixture
async def world(client: httpx.AsyncClient) -> dict[str, str]:
    org = await create(
        client, {"resourceType": "Organization", "name": "Huisartsenpraktijk Leuven"}
    )
    prac = await create(
        client, {"resourceType": "Practitioner", "name": [{"family": "Peeters", "given": ["Jan"]}]}
    )
    p1 = await create(
        client,
        patient(
            "Janssens",
            identifier=[{"system": SSIN, "value": "1"}],
            managingOrganization={"reference": f"Organization/{org['id']}"},
            generalPractitioner=[{"reference": f"Practitioner/{prac['id']}"}],
        ),
    )
    p2 = await create(client, patient("Peeters", identifier=[{"system": SSIN, "value": "2"}]))
    same = await put(client, patient("Same", id="same-id"))
    group = await put(
        client, {"resourceType": "Group", "id": "same-id", "type": "person", "actual": True}
    )
    o1 = await create(
        client,
        observation(
            f"Patient/{p1['id']}", "4548-4", performer=[{"reference": f"Practitioner/{prac['id']}"}]
        ),
    )
    o2 = await create(client, observation(f"Patient/{p2['id']}", "8867-4"))
    o3 = await create(client, observation("Patient/same-id", "8867-4"))
    o4 = await create(client, observation("Group/same-id", "8867-4"))
    o5 = await create(
        client,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "logical"},
            "subject": {"identifier": {"system": SSIN, "value": "9"}},
        },
    )
    o6 = await create(client, observation(f"http://testserver/Patient/{p2['id']}", "29463-7"))
    return {
        "org": org["id"],
        "prac": prac["id"],
        "p1": p1["id"],
        "p2": p2["id"],
        "same": same["id"],
        "group": group["id"],
        "o1": o1["id"],
        "o2": o2["id"],
        "o3": o3["id"],
        "o4": o4["id"],
        "o5": o5["id"],
        "o6": o6["id"],
    }


async def _obs(client: httpx.AsyncClient, params: Any) -> set[str]:
    return ids(await search(client, "/Observation", params))


async def test_reference_forms(client: httpx.AsyncClient, world: dict[str, str]) -> None:
    w = world
    assert await _obs(client, {"subject": f"Patient/{w['p1']}"}) == {w["o1"]}
    assert await _obs(client, {"subject": w["p1"]}) == {w["o1"]}
    assert await _obs(client, {"patient": w["p1"]}) == {w["o1"]}
    assert await _obs(client, {"subject": f"http://testserver/Patient/{w['p1']}"}) == {w["o1"]}
    # an absolute reference to this server is stored and indexed as a local one
    assert await _obs(client, {"subject": f"Patient/{w['p2']}"}) == {w["o2"], w["o6"]}
    stored = (await client.get(f"/Observation/{w['o6']}")).json()
    assert stored["subject"]["reference"] in (
        f"Patient/{w['p2']}",
        f"http://testserver/Patient/{w['p2']}",
    )
    assert await _obs(client, {"subject": f"Patient/{w['p1']},Patient/{w['p2']}"}) == {
        w["o1"],
        w["o2"],
        w["o6"],
    }
    assert await _obs(client, {"performer": f"Practitioner/{w['prac']}"}) == {w["o1"]}


async def test_reference_type_modifier(client: httpx.AsyncClient, world: dict[str, str]) -> None:
    w = world
    assert await _obs(client, {"subject": "same-id"}) == {w["o3"], w["o4"]}
    assert await _obs(client, {"subject:Patient": "same-id"}) == {w["o3"]}
    assert await _obs(client, {"subject:Group": "same-id"}) == {w["o4"]}
    assert await _obs(client, {"subject": "Group/same-id"}) == {w["o4"]}
    assert await _obs(client, {"patient": "same-id"}) == {w["o3"]}


async def test_reference_identifier_and_missing(
    client: httpx.AsyncClient, world: dict[str, str]
) -> None:
    w = world
    assert await _obs(client, {"subject:identifier": f"{SSIN}|9"}) == {w["o5"]}
    assert await _obs(client, {"subject:identifier": f"{SSIN}|1"}) == set()
    assert await _obs(client, {"performer:missing": "false"}) == {w["o1"]}
    assert await _obs(client, {"performer:missing": "true"}) == {
        w[k] for k in ("o2", "o3", "o4", "o5", "o6")
    }


async def test_chains(client: httpx.AsyncClient, world: dict[str, str]) -> None:
    w = world
    assert await _obs(client, {"subject:Patient.name": "janssens"}) == {w["o1"]}
    assert await _obs(client, {"subject:Patient.name": "peeters"}) == {w["o2"], w["o6"]}
    assert await _obs(client, {"patient.name": "jans"}) == {w["o1"]}
    assert await _obs(client, {"subject.identifier": f"{SSIN}|2"}) == {w["o2"], w["o6"]}
    assert await _obs(client, {"subject:Patient.identifier": f"{SSIN}|1"}) == {w["o1"]}
    # two links
    assert await _obs(client, {"patient.organization.name": "huisarts"}) == {w["o1"]}
    assert await _obs(client, {"subject:Patient.general-practitioner.name": "peeters"}) == {w["o1"]}
    assert await _obs(
        client, {"subject:Patient.general-practitioner:Practitioner.family": "peeters"}
    ) == {w["o1"]}
    assert await _obs(client, {"performer:Practitioner.name": "jan"}) == {w["o1"]}
    assert await _obs(client, {"subject:Patient.name": "nobody"}) == set()
    r = await client.get("/Observation", params={"subject.nonsense": "x"})
    assert_outcome(r, 400)


async def test_has(client: httpx.AsyncClient, world: dict[str, str]) -> None:
    w = world
    b = await search(client, "/Patient", {"_has:Observation:patient:code": f"{LOINC}|4548-4"})
    assert ids(b) == {w["p1"]}
    b = await search(client, "/Patient", {"_has:Observation:subject:code": "8867-4"})
    assert ids(b) == {w["p2"], w["same"]}
    b = await search(client, "/Practitioner", {"_has:Observation:performer:code": "4548-4"})
    assert ids(b) == {w["prac"]}
    # a _has inside a _has: organisations managing a patient with an HbA1c result
    b = await search(
        client,
        "/Organization",
        {"_has:Patient:organization:_has:Observation:patient:code": "4548-4"},
    )
    assert ids(b) == {w["org"]}
    b = await search(client, "/Patient", {"_has:Observation:patient:code": "0000-0"})
    assert ids(b) == set()
    r = await client.get("/Patient", params={"_has:Observation:code:code": "x"})
    assert_outcome(r, 400)
