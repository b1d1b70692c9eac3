"""_include and _revinclude, with :iterate, target types and paging."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.fhir import (
    assert_outcome,
    create,
    entries,
    ids,
    link,
    observation,
    patient,
    search,
    typed_ids,
)


def ref(resource: dict[str, Any]) -> dict[str, str]:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


@pytest.fixture
async def care(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    org = await create(client, {"resourceType": "Organization", "name": "Wijkgezondheidscentrum"})
    gp = await create(client, {"resourceType": "Practitioner", "name": [{"family": "Huisarts"}]})
    nurse = await create(
        client, {"resourceType": "Practitioner", "name": [{"family": "Verpleger"}]}
    )
    pat = await create(
        client, patient("Care", managingOrganization=ref(org), generalPractitioner=[ref(gp)])
    )
    other = await create(client, patient("Other"))
    team = await create(
        client,
        {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": ref(pat),
            "participant": [{"member": ref(gp)}, {"member": ref(nurse)}, {"member": ref(org)}],
        },
    )
    plan = await create(
        client,
        {
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "subject": ref(pat),
            "careTeam": [ref(team)],
        },
    )
    med = await create(
        client,
        {
            "resourceType": "Medication",
            "code": {"coding": [{"system": "http://www.whocc.no/atc", "code": "A10BA02"}]},
        },
    )
    rx = await create(
        client,
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "subject": ref(pat),
            "medicationReference": ref(med),
            "requester": ref(gp),
        },
    )
    o1 = await create(client, observation(f"Patient/{pat['id']}", performer=[ref(nurse)]))
    o2 = await create(client, observation(f"Patient/{pat['id']}", "4548-4"))
    o3 = await create(client, observation(f"Patient/{other['id']}", performer=[ref(gp)]))
    return {
        "org": org,
        "gp": gp,
        "nurse": nurse,
        "pat": pat,
        "other": other,
        "team": team,
        "plan": plan,
        "med": med,
        "rx": rx,
        "o1": o1,
        "o2": o2,
        "o3": o3,
    }


def key(r: dict[str, Any]) -> str:
    return f"{r['resourceType']}/{r['id']}"


async def test_include(client: httpx.AsyncClient, care: dict[str, dict[str, Any]]) -> None:
    c = care
    b = await search(
        client,
        "/MedicationRequest",
        [("_include", "MedicationRequest:medication"), ("_include", "MedicationRequest:patient")],
    )
    assert typed_ids(b) == {key(c["rx"])}
    assert typed_ids(b, "include") == {key(c["med"]), key(c["pat"])}
    assert b["total"] == 1  # included resources do not count
    b = await search(client, "/MedicationRequest", {"_include": "MedicationRequest:*"})
    assert typed_ids(b, "include") == {key(c["med"]), key(c["pat"]), key(c["gp"])}
    b = await search(
        client, "/MedicationRequest", {"_include": "MedicationRequest:subject:Patient"}
    )
    assert typed_ids(b, "include") == {key(c["pat"])}
    b = await search(client, "/MedicationRequest", {"_include": "MedicationRequest:subject:Group"})
    assert typed_ids(b, "include") == set()


async def test_include_is_deduplicated(
    client: httpx.AsyncClient, care: dict[str, dict[str, Any]]
) -> None:
    c = care
    b = await search(
        client, "/Observation", {"patient": c["pat"]["id"], "_include": "Observation:patient"}
    )
    assert typed_ids(b) == {key(c["o1"]), key(c["o2"])}
    included = entries(b, "include")
    assert [e["resource"]["id"] for e in included] == [c["pat"]["id"]]
    assert included[0]["fullUrl"] == f"http://testserver/Patient/{c['pat']['id']}"


async def test_revinclude(client: httpx.AsyncClient, care: dict[str, dict[str, Any]]) -> None:
    c = care
    b = await search(
        client, "/Patient", {"_id": c["pat"]["id"], "_revinclude": "Observation:subject"}
    )
    assert typed_ids(b) == {key(c["pat"])}
    assert typed_ids(b, "include") == {key(c["o1"]), key(c["o2"])}
    b = await search(client, "/Practitioner", {"_revinclude": "CareTeam:participant"})
    assert typed_ids(b) == {key(c["gp"]), key(c["nurse"])}
    assert typed_ids(b, "include") == {key(c["team"])}
    b = await search(
        client,
        "/Patient",
        [
            ("_id", c["pat"]["id"]),
            ("_revinclude", "CarePlan:subject"),
            ("_revinclude", "MedicationRequest:patient"),
        ],
    )
    assert typed_ids(b, "include") == {key(c["plan"]), key(c["rx"])}


async def test_include_iterate(client: httpx.AsyncClient, care: dict[str, dict[str, Any]]) -> None:
    c = care
    # a care-plan app: the plan, its team, and the team's members
    b = await search(
        client,
        "/CarePlan",
        [("_include", "CarePlan:care-team"), ("_include:iterate", "CareTeam:participant")],
    )
    assert typed_ids(b) == {key(c["plan"])}
    assert typed_ids(b, "include") == {key(c["team"]), key(c["gp"]), key(c["nurse"]), key(c["org"])}
    # without :iterate the second level is not followed
    b = await search(
        client,
        "/CarePlan",
        [("_include", "CarePlan:care-team"), ("_include", "CareTeam:participant")],
    )
    assert typed_ids(b, "include") == {key(c["team"])}
    # _revinclude then :iterate _include from what it brought
    b = await search(
        client,
        "/Patient",
        [
            ("_id", c["pat"]["id"]),
            ("_revinclude", "Observation:subject"),
            ("_include:iterate", "Observation:performer"),
        ],
    )
    assert typed_ids(b, "include") == {key(c["o1"]), key(c["o2"]), key(c["nurse"])}
    # _revinclude:iterate: patients, their observations' performers' ... back to observations
    b = await search(
        client,
        "/Practitioner",
        [
            ("_id", c["nurse"]["id"]),
            ("_revinclude", "Observation:performer"),
            ("_include:iterate", "Observation:subject"),
            ("_revinclude:iterate", "Observation:subject"),
        ],
    )
    assert typed_ids(b, "include") == {key(c["o1"]), key(c["pat"]), key(c["o2"])}


async def test_include_skips_deleted_and_follows_page(
    client: httpx.AsyncClient, care: dict[str, dict[str, Any]]
) -> None:
    c = care
    await client.delete(f"/Observation/{c['o2']['id']}")
    b = await search(
        client, "/Patient", {"_id": c["pat"]["id"], "_revinclude": "Observation:subject"}
    )
    assert typed_ids(b, "include") == {key(c["o1"])}
    # each page includes what its own matches reference
    b = await search(
        client,
        "/Observation",
        {"_include": "Observation:subject", "_count": "1", "_sort": "_lastUpdated"},
    )
    seen = []
    while True:
        (match,) = entries(b)
        subject = match["resource"]["subject"]["reference"]
        assert typed_ids(b, "include") == {subject}
        seen.append(match["resource"]["id"])
        nxt = link(b, "next")
        if nxt is None:
            break
        b = await search(client, nxt)
    assert seen == [c["o1"]["id"], c["o3"]["id"]]


async def test_bad_include_is_400(
    client: httpx.AsyncClient, care: dict[str, dict[str, Any]]
) -> None:
    assert_outcome(await client.get("/Patient", params={"_include": "Patient"}), 400)
    assert_outcome(await client.get("/Patient", params={"_include": "Patient:nonsense"}), 400)
    assert_outcome(await client.get("/Patient", params={"_revinclude": "Observation:nope"}), 400)
    r = await client.get("/Patient", params={"_include:sideways": "Patient:organization"})
    assert_outcome(r, 400)


async def test_include_with_ids(client: httpx.AsyncClient, care: dict[str, dict[str, Any]]) -> None:
    b = await search(client, "/Patient", {"_include": "Patient:general-practitioner"})
    assert ids(b, "include") == {care["gp"]["id"]}
    assert ids(b) == {care["pat"]["id"], care["other"]["id"]}
