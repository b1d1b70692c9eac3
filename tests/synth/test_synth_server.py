"""The generated region loads into the server, through POST / and through the bulk path,
on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from app.config import Settings
from app.seed import seed_database
from app.synth import RegionConfig, generate_region
from app.synth.bundles import (
    patient_transaction_bundle,
    shared_transaction_bundle,
    team_groups_bundle,
)


async def _total(client: httpx.AsyncClient, query: str) -> int:
    r = await client.get(query, params={"_summary": "count"})
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


async def _post(client: httpx.AsyncClient, bundle: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/", content=orjson.dumps(bundle))
    assert r.status_code == 200, r.text[:2000]
    out: dict[str, Any] = r.json()
    return out


async def test_region_bundles_load_through_post_and_repost_creates_no_duplicates(
    client: httpx.AsyncClient,
) -> None:
    region = generate_region(RegionConfig(patients=40, seed=7))
    shared = region.shared_resources()
    patients = list(region.patient_resources())
    await _post(client, shared_transaction_bundle(shared))
    for resources in patients:
        resp = await _post(client, patient_transaction_bundle(resources))
        assert len(resp["entry"]) == len(resources)
        assert all(e["response"]["status"].startswith("201") for e in resp["entry"])
    await _post(client, team_groups_bundle(shared, region.patient_ssins()))

    n_practitioners = sum(1 for r in shared if r["resourceType"] == "Practitioner")
    n_organizations = sum(1 for r in shared if r["resourceType"] == "Organization")
    assert await _total(client, "/Practitioner") == n_practitioners
    assert await _total(client, "/Organization") == n_organizations
    assert await _total(client, "/Patient") == 40
    n_obs = sum(1 for rs in patients for r in rs if r["resourceType"] == "Observation")
    assert await _total(client, "/Observation") == n_obs

    # the shared bundle again: conditional creates find what exists
    again = await _post(client, shared_transaction_bundle(region.shared_resources()))
    assert all(e["response"]["status"].startswith("200") for e in again["entry"])
    assert await _total(client, "/Practitioner") == n_practitioners
    assert await _total(client, "/Organization") == n_organizations

    # a patient's references were resolved to the shared Practitioners/Organizations
    first = patients[0][0]
    ssin = first["identifier"][0]
    r = await client.get(
        "/Patient",
        params={
            "identifier": f"{ssin['system']}|{ssin['value']}",
            "_include": "Patient:general-practitioner",
        },
    )
    body = r.json()
    assert body["total"] == 1
    included = [e for e in body["entry"] if e["search"]["mode"] == "include"]
    assert included, "the general practitioner reference resolves to a stored resource"

    # team Groups list every patient once
    groups = (await client.get("/Group", params={"_count": "50"})).json()["entry"]
    members = [m["entity"]["reference"] for g in groups for m in g["resource"].get("member", [])]
    assert len(members) == len(set(members)) == 40


async def test_bulk_seed_loads_the_region_and_skips_a_full_database(
    app: Any, client: httpx.AsyncClient, database_url: str
) -> None:
    config = RegionConfig(patients=60, seed=11)
    settings = Settings(database_url=database_url)
    await seed_database(settings, config, False, 5, 25)
    region = generate_region(config)
    expected = sum(len(rs) for rs in region.patient_resources()) + len(region.shared_resources())
    r = await client.get("/Patient", params={"_summary": "count"})
    assert r.json()["total"] == 60
    counts = 0
    for rt in (
        "Patient",
        "Observation",
        "Encounter",
        "Condition",
        "MedicationStatement",
        "MedicationDispense",
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "CareTeam",
        "CarePlan",
        "Goal",
        "Group",
        "Procedure",
    ):
        counts += await _total(client, f"/{rt}")
    assert counts == expected
    # indexed like the API writes: a search and $everything find the seeded data
    pid = next(iter(region.patient_resources()))[0]["id"]
    ev = (await client.get(f"/Patient/{pid}/$everything", params={"_count": "500"})).json()
    own = len(next(iter(region.patient_resources())))
    assert sum(1 for e in ev["entry"] if e["search"]["mode"] == "match") == own
    # --if-empty leaves a database with data alone
    await seed_database(settings, config, True, 0, 25)
    assert await _total(client, "/Patient") == 60
